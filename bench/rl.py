"""Benchmark: our online RL (PPO, RLOO, GRPO) next to TRL 1.16's ``RLOOTrainer`` and
``GRPOTrainer`` on SmolLM2-135M-Instruct, same prompts, k, generation length, steps and settings;
then a beta sweep of our RLOO (the reward-KL frontier).

Both sides optimise the same transparent Python rule reward (:class:`Brevity`, below), so the
comparison is about the trainers, not about a reward model. Settings shared by both sides: ``k``
samples per prompt (TRL ``num_generations``), ``max_new_tokens`` (``max_completion_length``),
temperature 1 with no top-k/top-p, ``--prompts`` prompts per step (TRL: ``prompts * k``
completions per generation, split into micro-batches of ``--batch_size`` sequences accumulated
into one optimizer update per rollout: ``per_device_train_batch_size = batch_size``,
``gradient_accumulation_steps = steps_per_generation = prompts * k / batch_size``), one pass over
each rollout (``num_iterations = 1``, ours ``ppo_epochs = num_minibatches = 1``), clip 0.2, the
same beta, AdamW at the same learning rate with cosine decay and no warm-up, grad-norm clip 1,
seed 0, fp32 on CPU (bf16 autocast on CUDA), gradient checkpointing on both sides (TRL's
RLOO/GRPO configs default to it; ``--no-gradient_checkpointing`` turns it off on both), no vLLM,
no evaluation, no saving for TRL (ours writes its artifact after the loop, outside the timed
span).

Each (method, implementation) cell runs in a fresh subprocess so its peak memory is its own:
``resource.getrusage`` max RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Timing. The *loop* is from the start of the first rollout to the end of the last optimizer step
(ours: the progress callback after each step; TRL: a ``TrainerCallback.on_step_end``), so model
loading, trainer construction and saving are left out on both sides. Inside it, *rollout* is the
time in the function that samples, runs the policy/reference log-prob passes and scores (ours:
``training.rl.engine.collect``, wrapped; TRL: the trainer's ``_generate_and_score_completions``,
patched on the instance), of which *generation* is the sampling call alone (ours:
``training.rl.rollout.generate``; TRL: ``_generate_single_turn``, the ``model.generate`` call).
*Update* = loop - rollout (forward/backward, optimizer step, logging).

Tokens, counted from each side's own rollouts (the same way): *generated* = response tokens up to
and including the end-of-turn token; *trained* = the non-padding prompt + response tokens of
every sequence passed through the training forward/backward (times the passes). Rollout tok/s =
generated / rollout time; update tok/s = trained / update time; total tok/s = (generated +
trained) / loop time. Reward gained per minute = (mean reward of the last ``--last`` steps' rollouts
- the first step's) / loop minutes, where a step's reward is the mean score of its rollout.

    python bench/rl.py                       # the default CPU run (2 cores; see below)
    python bench/rl.py --prompts 8 --new_tokens 32 --steps 5   # the size of issue #14
    python bench/rl.py --steps 20 --prompts 16 --new_tokens 64 --device cuda
    python bench/rl.py --methods rloo --no-sweep
    python bench/rl.py --tiny                # seconds: a tiny random GPT-2 (the smoke test)

The beta sweep (``--betas``) trains our ``--sweep_method`` with a fixed seed at each beta,
evaluating on held-out prompts before and after (``eval_samples`` samples each, the same seeds
each time), and prints the held-out reward gain, the final KL(pi || ref) per response and its
square root: the frontier a user reads to choose beta.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "What is the capital of France?",
    "Name a fruit that is yellow.",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Give me a synonym for happy.",
    "What is two plus three?",
    "Which planet is closest to the sun?",
    "What do bees make?",
    "What is the opposite of cold?",
    "Name a large animal that lives in the sea.",
    "What language is spoken in Brazil?",
    "How many days are in a week?",
    "What is frozen water called?",
    "Which animal says moo?",
    "What is the boiling point of water in Celsius?",
    "Name a primary colour.",
    "What is the largest ocean on Earth?",
    "Who wrote Romeo and Juliet?",
    "What gas do plants breathe in?",
    "How many hours are in a day?",
    "What is the chemical symbol for gold?",
    "Name a musical instrument with strings.",
    "What is the tallest animal?",
    "In which continent is Kenya?",
]


@dataclass(frozen=True)
class Brevity:
    """``1 - min(len(response), limit) / limit``: 1 for an empty answer, 0 at ``limit``
    characters or more. Transparent and dense; a chat model learns to answer shortly (and end
    its turn) within a few steps, and a KL leash visibly holds it back."""

    limit: int = 120

    def __call__(self, prompts: Any, responses: Any) -> list[float]:
        return [1.0 - min(len(text), self.limit) / self.limit for text in responses]


REWARD = Brevity()


def brevity(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
    """TRL's reward-function signature around :data:`REWARD` (conversational completions)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return REWARD(prompts, texts)


def prompts_of(n: int, offset: int = 0) -> list[tuple[dict[str, str], ...]]:
    """``n`` single-turn chat prompts (rendered with the model's chat template by both sides)."""
    picked = [QUESTIONS[(offset + i) % len(QUESTIONS)] for i in range(n)]
    return [({"role": "user", "content": q},) for q in picked]


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Clock:
    """Accumulates the rollout / generation seconds and tokens, and the loop's span."""

    def __init__(self) -> None:
        self.rollout = self.generation = 0.0
        self.generated = self.prompt_tokens = 0
        self.start: float | None = None
        self.end = 0.0

    def timed(self, fn: Any, field: str, on_result: Any = None) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            if self.start is None:
                self.start = t0
            out = fn(*a, **kw)
            setattr(self, field, getattr(self, field) + time.perf_counter() - t0)
            if on_result is not None:
                on_result(out)
            return out

        return wrapper

    def step_end(self) -> None:
        self.end = time.perf_counter()

    def figures(self, passes: int) -> dict[str, float]:
        loop = self.end - (self.start or self.end)
        update = max(loop - self.rollout, 1e-9)
        trained = (self.prompt_tokens + self.generated) * passes
        return {
            "loop_s": loop,
            "rollout_s": self.rollout,
            "generation_s": self.generation,
            "update_s": update,
            "generated_tokens": self.generated,
            "trained_tokens": trained,
            "rollout_tok_s": self.generated / max(self.rollout, 1e-9),
            "update_tok_s": trained / update,
            "total_tok_s": (self.generated + trained) / max(loop, 1e-9),
        }


def run_ours(method: str, work: Path, s: dict, evaluate: bool) -> dict:
    import training.rl.engine as engine
    import training.rl.rollout as rollout_mod
    from training.rl import grpo, ppo, rloo
    from training.rl.config import GRPOConfig, PPOConfig, RLOOConfig

    clock = Clock()

    def count(r: Any) -> None:  # (the sweep's evaluation rollouts count too; it reports no speed)
        clock.generated += int(r.response_mask.sum())
        clock.prompt_tokens += int(r.attention_mask[:, : r.prompt_width].sum())

    engine.collect = clock.timed(engine.collect, "rollout", count)
    rollout_mod.generate = clock.timed(rollout_mod.generate, "generation")
    config_cls, module = {
        "ppo": (PPOConfig, ppo),
        "rloo": (RLOOConfig, rloo),
        "grpo": (GRPOConfig, grpo),
    }[method]
    config = config_cls(
        model=s["model"],
        output_dir=str(work / f"ours-{method}"),
        rollout_batch_size=s["prompts"],
        k=s["k"],
        max_new_tokens=s["new_tokens"],
        temperature=1.0,
        max_steps=s["steps"],
        learning_rate=s["learning_rate"],
        beta=s["beta"],
        batch_size=s["batch_size"],
        ppo_epochs=s["ppo_epochs"] if method == "ppo" else 1,
        num_minibatches=1,
        max_grad_norm=1.0,
        seed=s["seed"],
        device=s["device"],
        eval_samples=s["eval_samples"],
        kl_alarm=0.0,
        gradient_checkpointing=s["gradient_checkpointing"],
    )
    train = prompts_of(s["prompts"])
    evals = prompts_of(s["eval_prompts"], offset=s["prompts"]) if evaluate else []
    steps: list[dict] = []

    training_peak = [0.0]

    def progress(p: Any) -> None:
        clock.step_end()
        steps.append(dict(p.metrics))
        training_peak[0] = peak_memory_mb()  # before the artifact is written (TRL saves none)

    result = module.run(config, train, evals, reward_model=REWARD, progress=progress)
    history = [h for h in result.history if "objective/scores" in h]
    passes = config.ppo_epochs
    out = {
        **clock.figures(passes),
        "train_peak_mb": training_peak[0],
        "rewards": [h["objective/scores"] for h in history],
        "kl": [h["objective/kl"] for h in history],
        "mean_length": [h["completions/mean_length"] for h in history],
    }
    if evaluate:
        evals_h = [h for h in result.history if "eval/scores" in h]
        out["eval_start"] = evals_h[0]["eval/scores"]
        out["eval_end"] = evals_h[-1]["eval/scores"]
        out["eval_kl"] = evals_h[-1]["eval/kl"]
        out["eval_length"] = evals_h[-1]["eval/mean_length"]
    return out


def run_trl(method: str, work: Path, s: dict) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback

    from training.modeling import load_tokenizer

    cuda = s["device"] != "cpu" and torch.cuda.is_available()
    n_seq = s["prompts"] * s["k"]
    accum = n_seq // s["batch_size"]
    common = {
        "output_dir": str(work / f"trl-{method}"),
        "per_device_train_batch_size": s["batch_size"],
        "gradient_accumulation_steps": accum,
        "steps_per_generation": accum,
        "num_generations": s["k"],
        "max_completion_length": s["new_tokens"],
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "num_iterations": 1,
        "epsilon": 0.2,
        "beta": s["beta"],
        "learning_rate": s["learning_rate"],
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "max_steps": s["steps"],
        "seed": s["seed"],
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "bf16": cuda,
        "use_cpu": not cuda,
        "dataloader_num_workers": 0,
        "disable_dropout": True,
        "shuffle_dataset": False,
        # TRL's RLOO/GRPO configs default to True; set explicitly so both sides run alike
        "gradient_checkpointing": s["gradient_checkpointing"],
    }
    if method == "rloo":
        from trl import RLOOConfig as Config
        from trl import RLOOTrainer as Trainer
    else:
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer

        common["loss_type"] = "dapo"
        common["scale_rewards"] = "group"
    clock = Clock()

    class StepEnd(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            clock.step_end()

    # Repeat the prompts so max_steps rollouts each see the same `prompts` prompts in order.
    rows = [{"prompt": list(p)} for p in prompts_of(s["prompts"])] * s["steps"]
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(s["model"], dtype=torch.float32),
        reward_funcs=brevity,
        args=Config(**common),
        train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(s["model"]),
        callbacks=[StepEnd()],
    )

    def count(out: dict) -> None:
        clock.generated += int(out["completion_mask"].sum())
        clock.prompt_tokens += int(out["prompt_mask"].sum())

    trainer._generate_and_score_completions = clock.timed(
        trainer._generate_and_score_completions, "rollout", count
    )
    trainer._generate_single_turn = clock.timed(trainer._generate_single_turn, "generation")
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    return {
        **clock.figures(1),
        "rewards": [h["reward"] for h in logs],
        # TRL logs the per-token mean k1 KL; times the mean length ~ the per-response KL
        "kl": [h.get("kl", 0.0) * h["completions/mean_length"] for h in logs],
        "mean_length": [h["completions/mean_length"] for h in logs],
    }


def worker(method: str, impl: str, work: Path, s: dict) -> None:
    import torch

    torch.set_num_threads(s["threads"])
    t0 = time.perf_counter()
    if impl == "trl":
        out = run_trl(method, work, s)
    else:
        out = run_ours(method, work, s, evaluate=impl == "sweep")
    rewards = out["rewards"]
    last = rewards[-s["last"] :]
    gain = sum(last) / len(last) - rewards[0]
    out.update(
        method=method,
        impl=impl,
        beta=s["beta"],
        wall_s=time.perf_counter() - t0,
        peak_mb=peak_memory_mb(),
        reward_gain=gain,
        gain_per_min=gain / max(out["loop_s"] / 60, 1e-9),
        load=os.getloadavg()[0],
    )
    print("RESULT " + json.dumps(out), flush=True)


def cell(method: str, impl: str, work: Path, s: dict) -> dict | None:
    run_dir = work / f"{method}-{impl}-{s['beta']}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a repeat starts from nothing, like the first
    run_dir.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--worker", method, impl, str(run_dir), json.dumps(s)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"  {method}/{impl} beta={s['beta']} failed:\n{proc.stderr[-3000:]}", flush=True)
        return None
    r = json.loads(lines[-1][len("RESULT ") :])
    print(
        f"  {method}/{impl} beta={s['beta']}: {time.perf_counter() - t0:.0f}s, "
        f"load {r['load']:.1f}, rewards {[round(x, 3) for x in r['rewards']]}, "
        f"peak {r['peak_mb']:.0f} MB ({r.get('train_peak_mb', r['peak_mb']):.0f} MB before saving)",
        flush=True,
    )
    return r


def print_table(runs: dict[tuple[str, str], list[dict]], methods: list[str]) -> None:
    """Medians over the repeats; speed and memory are the medians of the ratios of the runs
    made in turn (ours i / TRL i), so a machine that slows down between pairs does not count."""
    print(
        f"\n{'method':7}{'impl':6}{'runs':>5}{'gen s':>7}{'rollout s':>10}{'update s':>9}"
        f"{'rollout tok/s':>14}{'update tok/s':>13}{'total tok/s':>12}{'peak MB':>9}"
        f"{'gain/min':>9}{'speed x':>8}{'mem x':>7}"
    )
    for method in methods:
        trl = runs.get((method, "trl"), [])
        for impl in ("ours", "trl"):
            rs = runs.get((method, impl), [])
            if not rs:
                continue
            speed = mem = ""
            if impl == "ours" and trl:
                pairs = list(zip(rs, trl, strict=False))
                speed = f"{median(a['total_tok_s'] / b['total_tok_s'] for a, b in pairs):.2f}"
                mem = f"{median(a['peak_mb'] / b['peak_mb'] for a, b in pairs):.2f}"
            m = {k: median(r[k] for r in rs) for k in TABLE_FIGURES}
            print(
                f"{method:7}{impl:6}{len(rs):5}{m['generation_s']:7.1f}{m['rollout_s']:10.1f}"
                f"{m['update_s']:9.1f}{m['rollout_tok_s']:14.1f}{m['update_tok_s']:13.1f}"
                f"{m['total_tok_s']:12.1f}{m['peak_mb']:9.0f}{m['gain_per_min']:9.3f}"
                f"{speed:>8}{mem:>7}"
            )


TABLE_FIGURES = (
    "generation_s",
    "rollout_s",
    "update_s",
    "rollout_tok_s",
    "update_tok_s",
    "total_tok_s",
    "peak_mb",
    "gain_per_min",
)


def median(values: Any) -> float:
    return statistics.median(list(values))


def print_frontier(rows: list[dict]) -> None:
    print(
        f"\n{'beta':>6}{'train gain':>11}{'eval start':>11}{'eval end':>9}{'eval gain':>10}"
        f"{'KL':>8}{'sqrt KL':>8}{'length':>8}"
    )
    for r in rows:
        kl = r["eval_kl"]
        print(
            f"{r['beta']:6.2f}{r['reward_gain']:11.3f}{r['eval_start']:11.3f}"
            f"{r['eval_end']:9.3f}{r['eval_end'] - r['eval_start']:10.3f}{kl:8.3f}"
            f"{max(kl, 0.0) ** 0.5:8.3f}{r['eval_length']:8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "var/models/smollm2-135m-instruct"))
    parser.add_argument("--methods", default="ppo,rloo,grpo")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new_tokens", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=8, help="sequences per forward")
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--beta", type=float, default=0.05, help="beta of the comparison")
    parser.add_argument("--ppo_epochs", type=int, default=1, help="ours PPO only (no TRL PPO)")
    parser.add_argument("--last", type=int, default=2, help="steps averaged for the gain")
    parser.add_argument("--betas", default="0,0.01,0.05,0.2")
    parser.add_argument("--sweep_method", default="rloo")
    parser.add_argument("--sweep_steps", type=int, default=4)
    parser.add_argument("--eval_prompts", type=int, default=4)
    parser.add_argument("--eval_samples", type=int, default=2)
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--trl", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--gradient_checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="both sides (TRL's RLOO/GRPO default: on)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each cell, ours and TRL in turn; medians"
    )
    parser.add_argument("--tiny", action="store_true", help="a tiny random GPT-2 (smoke test)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, impl, work, s = args.worker
        worker(method, impl, Path(work), json.loads(s))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        if args.tiny:
            from training.tiny import write_tiny_causal_lm

            model = str(work / "tiny")
            write_tiny_causal_lm(model, chat_template=True)
        s = {k: v for k, v in vars(args).items() if k not in ("worker", "methods", "betas")}
        s["model"] = model
        methods = [m for m in args.methods.split(",") if m]  # "" = only the sweep
        print(
            f"model {Path(model).name}; {args.prompts} prompts x k={args.k}, {args.new_tokens} "
            f"new tokens, {args.steps} steps, micro-batch {args.batch_size}, lr "
            f"{args.learning_rate}, beta {args.beta}, device {args.device}, {args.threads} "
            f"threads, gradient checkpointing {'on' if args.gradient_checkpointing else 'off'} "
            f"on both sides; reward: the same Python rule on both sides ({REWARD}), so the "
            "comparison is about the trainers",
            flush=True,
        )
        print(f"load before: {os.getloadavg()}", flush=True)
        runs: dict[tuple[str, str], list[dict]] = {}
        for method in methods:
            impls = ["ours"] + (["trl"] if args.trl and method in ("rloo", "grpo") else [])
            for _ in range(args.repeats):  # in turn, ours then TRL: drift hits both alike
                for impl in impls:
                    r = cell(method, impl, work, s)
                    if r is not None:
                        runs.setdefault((method, impl), []).append(r)
        print_table(runs, methods)
        print(
            "rollout = sampling + policy/reference log-prob passes + reward; update = loop - "
            "rollout; tok/s counts generated + trained tokens (see the module docstring); "
            f"gain/min = (mean reward of the last {args.last} steps - step 1) / loop minutes"
        )
        if args.sweep:
            rows = []
            for beta in [float(b) for b in args.betas.split(",")]:
                r = cell(
                    args.sweep_method, "sweep", work, {**s, "beta": beta, "steps": args.sweep_steps}
                )
                if r is not None:
                    rows.append(r)
            print(
                f"\nbeta frontier: our {args.sweep_method}, {args.sweep_steps} steps, seed "
                f"{args.seed}; held-out: {args.eval_prompts} prompts x {args.eval_samples} "
                "samples before and after; KL = KL(pi || ref) per response (nats) after training"
            )
            print_frontier(rows)
        print(f"\nload after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
