"""Benchmark: label efficiency of the closed loop, active vs random pair selection.

Runs the simulated loop (workers/simulate.py: tiny model, simulated raters with a hidden rule and
73 % inter-rater agreement) for a fixed label budget with each selection strategy and the same
seeds, and prints:

- the policy's hidden score after every round (mean over seeds) and the gain per 1,000 judgments;
- how many judgments active selection needed to reach random selection's final hidden score
  (target: at most 70 % of the budget);
- the same per seed (every seed that ran: the spread between seeds is as large as the effect);
- time per cycle split by step.

It uses a throwaway SQLite database and artifact folder under a temp dir (never your data)::

    .venv/bin/python bench/loop.py --rounds 4 --labels-per-round 96 --train-prompts 64 --seeds 0 1 2

On a random-weights tiny model the reward model barely learns, so the published figures start
from a base pretrained here on the HH-RLHF sample (``training/pretrain.py``; built once and
cached under var/bench/bases) with the lipogram rule::

    .venv/bin/python bench/loop.py --rounds 4 --labels-per-round 96 --train-prompts 64 \
        --max-new-tokens 32 --policy-lr 1e-4 --jobs 2 \
        --pretrain-corpus ../shared/data/hh-rlhf/harmless-sample.jsonl --seeds 32 33 34 35
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django(tmp: Path) -> None:
    os.environ["PREFLOOP_VAR_DIR"] = str(tmp)
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["LOOP_ARTIFACTS_DIR"] = str(tmp / "artifacts")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def pretrained_base(args: argparse.Namespace) -> str:
    """The base pretrained on ``--pretrain-corpus``, built once and cached under var/bench/bases
    by corpus, pretraining code, torch and transformers versions (the same code builds another
    base under other versions), steps and seed; "" (random weights) without a corpus."""
    if not args.pretrain_corpus:
        return ""
    import hashlib
    import shutil

    import torch
    import transformers

    from training.pretrain import pretrain_tiny_causal_lm, read_corpus

    corpus = Path(args.pretrain_corpus)
    code = (ROOT / "training" / "pretrain.py").read_bytes()
    versions = f"torch {torch.__version__} transformers {transformers.__version__}".encode()
    digest = hashlib.sha256(corpus.read_bytes() + code + versions).hexdigest()[:12]
    path = ROOT / "var" / "bench" / "bases" / f"{digest}-{args.pretrain_steps}-{args.pretrain_seed}"
    if not (path / "pretrain.json").exists():
        torch.set_num_threads(args.threads)
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        metrics = pretrain_tiny_causal_lm(
            partial, read_corpus(corpus), steps=args.pretrain_steps, seed=args.pretrain_seed
        )
        partial.rename(path)
        print(f"pretrained the base at {path}: {metrics}", flush=True)
    return str(path)


def hidden_rule(args: argparse.Namespace) -> str:
    return args.rule or ("lipogram" if args.pretrain_corpus else "lowercase")


def run_strategy(selection: str, seed: int, args: argparse.Namespace, tmp: Path) -> list:
    from workers.simulate import SimConfig, Simulation

    config = SimConfig(
        base_model=pretrained_base(args),
        rule=hidden_rule(args),
        max_new_tokens=args.max_new_tokens,
        policy_learning_rate=args.policy_lr,
        rounds=args.rounds,
        labels_per_round=args.labels_per_round,
        train_prompts=args.train_prompts,
        eval_prompts=args.eval_prompts,
        selection=selection,
        similarity_power=args.similarity_power,
        uncertainty_power=args.uncertainty_power,
        seed=seed,
        workdir=str(tmp / f"{selection}-{seed}"),
    )
    return Simulation(config).run(
        report=lambda r: print(f"  [{selection} seed {seed}] {r.line()}", flush=True)
    )


def first_reaching(curve: list[tuple[int, float]], target: float) -> int | None:
    """Judgments at the first round whose score reaches ``target`` (None if never)."""
    return next((n for n, score in curve if score >= target), None)


def interpolated_reaching(curve: list[tuple[int, float]], target: float) -> float | None:
    """Judgments where the curve, linear between rounds, first reaches ``target``."""
    for (n0, s0), (n1, s1) in itertools.pairwise(curve):
        if s0 >= target:
            return float(n0)
        if s1 >= target:
            return n0 + (n1 - n0) * (target - s0) / (s1 - s0)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--labels-per-round", type=int, default=48)
    parser.add_argument("--train-prompts", type=int, default=32)
    parser.add_argument("--eval-prompts", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument(
        "--pretrain-corpus",
        default="",
        help="start from a tiny model pretrained on this corpus (.jsonl or text; cached); "
        "default: random weights",
    )
    parser.add_argument(
        "--rule",
        default="",
        help="the raters' hidden rule (workers/simulate.py RULES); default: lipogram on a "
        "pretrained base, lowercase on random weights",
    )
    parser.add_argument("--policy-lr", type=float, default=3e-3, help="DPO learning rate")
    parser.add_argument("--pretrain-steps", type=int, default=1000)
    parser.add_argument("--pretrain-seed", type=int, default=0)
    parser.add_argument(
        "--similarity-power",
        type=float,
        default=None,
        help="active selection's weight on the pairs' text similarity (0 = reward-model margin "
        "only); default: the worker default",
    )
    parser.add_argument(
        "--uncertainty-power",
        type=float,
        default=None,
        help="active selection's weight on the reward model's calibrated uncertainty (0 = "
        "similarity only); default: the worker default",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; a seed reproduces its run only at the same count (the "
        "published figures use 1)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes running seeds in parallel (one core each)"
    )
    parser.add_argument("--save", default="", help=argparse.SUPPRESS)  # a --jobs child's results
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmpdir:
        tmp = Path(tmpdir)
        setup_django(tmp)
        pretrained_base(args)  # built once here, before any child process needs it
        results = run_in_processes(args) if args.jobs > 1 else run_seeds(args, tmp)
        if args.save:
            Path(args.save).write_text(json.dumps(results, default=vars))
            return
        report(results, args, time.perf_counter() - t0)


def run_seeds(args: argparse.Namespace, tmp: Path) -> dict[str, list[list]]:
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, list[list]] = {"active": [], "random": []}
    for seed in args.seeds:
        for selection in ("random", "active"):
            results[selection].append(run_strategy(selection, seed, args, tmp))
    return results


def run_in_processes(args: argparse.Namespace) -> dict[str, list[list]]:
    """Seeds dealt round-robin to ``--jobs`` child processes; their results merged in seed order
    (a seed's run does not depend on which process ran it)."""
    from workers.simulate import RoundReport

    shares = [args.seeds[i :: args.jobs] for i in range(args.jobs)]
    with tempfile.TemporaryDirectory(prefix="bench-loop-jobs-") as tmpdir:
        children = []
        for i, seeds in enumerate(s for s in shares if s):
            out = Path(tmpdir) / f"job-{i}.json"
            argv = _without_option(sys.argv[1:], "--jobs")
            argv = _without_option(argv, "--seeds")
            cmd = [sys.executable, __file__, *argv, "--seeds", *map(str, seeds), "--save", str(out)]
            children.append((seeds, out, subprocess.Popen(cmd)))
        per_seed: dict[int, dict[str, list]] = {}
        for seeds, out, child in children:
            if child.wait() != 0:
                raise SystemExit(f"the child running seeds {seeds} failed")
            saved = json.loads(out.read_text())
            for j, seed in enumerate(seeds):
                per_seed[seed] = {
                    sel: [RoundReport(**r) for r in runs[j]] for sel, runs in saved.items()
                }
    return {sel: [per_seed[s][sel] for s in args.seeds] for sel in ("active", "random")}


def _without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name`` and the values that follow it."""
    out, skipping = [], False
    for a in argv:
        if a == name:
            skipping = True
        elif skipping and a.startswith("--"):
            skipping = False
        if not skipping and not a.startswith(f"{name}="):
            out.append(a)
    return out


def report(results: dict[str, list[list]], args: argparse.Namespace, seconds: float) -> None:
    budget = args.rounds * args.labels_per_round
    print(f"\nBudget {budget} judgments per run ({args.rounds} rounds x {args.labels_per_round}),")
    print(f"seeds {args.seeds}; hidden score = mean over seeds. Total wall time {seconds:.0f}s.")
    base = f"pretrained on {args.pretrain_corpus}" if args.pretrain_corpus else "random weights"
    print(
        f"base: tiny GPT-2, {base}; hidden rule {hidden_rule(args)}; {args.max_new_tokens} new "
        f"tokens; policy learning rate {args.policy_lr:g}"
    )
    from workers.steps import DEFAULTS

    powers = {
        k: DEFAULTS[k] if getattr(args, k) is None else getattr(args, k)
        for k in ("uncertainty_power", "similarity_power")
    }
    print(
        "active = calibrated RM uncertainty ** {uncertainty_power:g} x text similarity ** "
        "{similarity_power:g}, plus 25 % random pairs\n".format(**powers)
    )
    curves = {}
    for selection, runs in results.items():
        curve = [
            (runs[0][i].total_judgments, statistics.mean(r[i].hidden_score for r in runs))
            for i in range(args.rounds + 1)
        ]
        curves[selection] = curve
        gain = (curve[-1][1] - curve[0][1]) / budget * 1000
        rm = [r[-1].rm_accuracy for r in runs if r[-1].rm_accuracy is not None]
        print(
            f"{selection:>6}: " + "  ".join(f"{n:4d}:{s:.4f}" for n, s in curve)
            + f"   gain/1k judgments {gain:+.4f}"
            + (f"   final RM acc {statistics.mean(rm):.3f}" if rm else "")
        )  # fmt: skip
    print("\nPer seed (hidden score after each round; share of the budget active needed to reach")
    print("that seed's random final, linear between rounds):")
    for i, seed in enumerate(args.seeds):
        seed_curves = {
            sel: [(r.total_judgments, r.hidden_score) for r in runs[i]]
            for sel, runs in results.items()
        }
        reach = interpolated_reaching(seed_curves["active"], seed_curves["random"][-1][1])
        for sel, curve in seed_curves.items():
            tail = f"   reach {reach / budget:.0%}" if sel == "active" and reach else ""
            if sel == "active" and reach is None:
                tail = "   reach never"
            print(f"  seed {seed} {sel:>6}: " + "  ".join(f"{s:.3f}" for _, s in curve) + tail)
    target = curves["random"][-1][1]
    needed = first_reaching(curves["active"], target)
    between = interpolated_reaching(curves["active"], target)
    if needed is None or between is None:
        print(f"\nactive never reached random's final score {target:.4f} within the budget")
    else:
        share = between / budget
        verdict = "meets" if share <= 0.7 else "misses"
        print(
            f"\nactive reached random's final score {target:.4f} at round end {needed} judgments "
            f"({needed / budget:.0%}); linear between rounds {between:.0f} = {share:.0%} of the "
            f"budget ({verdict} the <= 70 % target)"
        )
    print("\nTime per cycle by step (s, mean over rounds 1.. and seeds):")
    for selection, runs in results.items():
        steps: dict[str, list[float]] = {}
        for run in runs:
            for rnd in run[1:]:
                for name, value in rnd.timings.items():
                    steps.setdefault(name, []).append(value)
        from workers.steps import STEP_WEIGHTS

        parts = [f"{n} {statistics.mean(steps[n]):.2f}" for n in STEP_WEIGHTS if n in steps]
        total = sum(statistics.mean(v) for v in steps.values())
        print(f"{selection:>6}: total {total:.2f} | " + "  ".join(parts))


if __name__ == "__main__":
    main()
