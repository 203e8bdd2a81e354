"""Benchmark: label efficiency where selection acts (issue 13, point 5).

Which pairs a reward model learns from is the one thing active selection changes, so it is
measured there first, on a fixed pool of real candidates:

1. **Gold judge** (fixed, independent of the reward model being trained), ``--gold``:

   - ``finished-concise`` (the default, :func:`training.gold.finished_and_concise`): 1 for an
     answer that ends its sentence, plus 0.5 x (1 - characters/300). A transparent rule over
     real text, learnable by the learner below with room to climb;
   - ``minilm``: a MiniLM reward model trained once on 600 HH-RLHF pairs the pool's prompts never
     come from (:func:`training.gold.ensure_hh_gold`). Learned from real human preferences,
     but measured unlearnable here (the learner tops out at 0.57-0.62 even from every candidate
     pair labelled without noise), so the curves stay flat and no saving can be measured; kept
     to show exactly that. Why two golds: :mod:`training.gold`.
2. **Pool**: ``--prompts`` HH-RLHF prompts (from the other half of the sample), ``--k`` answers
   each sampled from SmolLM2-135M-Instruct (``training.generate``; unreadable text dropped as the
   loop drops it), every pair of a prompt's answers a candidate pair. A share of the prompts
   (``--heldout``) is never labelled: accuracy is measured on their pairs.
3. **Raters**: simulated, preferring the higher gold score but answering the other way with
   probability ``--flip`` (0.16: two raters agree on (1 - f)^2 + f^2 = 73 % of pairs, the
   agreement of real preference data).
4. **Learner**: the reward model's features are SmolLM2's own last-token features, frozen
   (``training.generate.reward_features``, the pooling ``LlamaForSequenceClassification`` uses),
   and its head a linear Bradley-Terry head refitted on the labels after every batch (L-BFGS,
   L2 ``--l2`` on standardized features). A full fine-tune per batch, per arm and per seed is
   hours on this CPU; the head is the part that the labels decide. Arms, each ``--batch`` labels
   per round after the same ``--start`` random labels, ``--seeds`` seeds, equal budgets:

   - ``random``: pairs drawn uniformly from the unlabelled candidates;
   - ``active``: the loop's own selection, ``workers.active.select_pairs`` (the head's most
     uncertain pairs, at most 2 per prompt, plus the loop's ``random_share`` of random pairs,
     25 % unless ``--active-random-share``), on the head's margins;
   - ``oracle``: knows the gold: the pairs the current head orders against the gold, most
     confidently wrong first (the labels that move the head most), at most 2 per prompt.

Printed: held-out accuracy against the gold (pairs with a gold difference of at least
``--min-gap`` standard deviations) per labels spent, mean and standard error over seeds; the
labels each arm needs to reach random's final accuracy (first budget whose mean reaches it,
linearly interpolated); active's labels as a share of random's (target <= 70 %) and the share of
the oracle's saving that active captures (target >= 50 % where even the oracle misses 70 %).
The gold model, the pool and the features are cached under ``var/cache/label-efficiency/``
(keyed by model fingerprint and settings), so reruns only redo the experiment.

    python bench/label_efficiency.py                 # ~25 min the first time on 2 CPU cores
    python bench/label_efficiency.py --seeds 16 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"
CACHE = ROOT / "var" / "cache" / "label-efficiency"
ARMS = ("random", "active", "oracle")


# ---------------------------------------------------------------- stages (cached)


def cached(path: Path, build: Callable[[Path], None]) -> Path:
    """``build(tmp)`` once, then renamed into place: a half-written stage is never used."""
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    build(tmp)
    tmp.rename(path)
    return path


def build_pool(out: Path, model_dir: str, prompts: list, args: argparse.Namespace) -> None:
    import torch

    from annotation.textcheck import unreadable_reason
    from training.generate import generate
    from training.modeling import load_causal_lm, load_tokenizer

    t0 = time.perf_counter()
    tok, model = load_tokenizer(model_dir), load_causal_lm(model_dir, torch.device("cpu"))
    samples = generate(
        model,
        tok,
        prompts,
        k=args.k,
        max_new_tokens=args.new_tokens,
        batch_size=args.gen_batch,
        temperature=1.0,
        seed=0,
        logprobs=False,
    )
    rows, dropped, tokens = [], 0, 0
    for prompt, group in zip(prompts, samples, strict=True):
        texts = []
        for s in group:
            tokens += len(s.token_ids)
            if unreadable_reason(s.text) or s.text in texts:
                dropped += 1
            else:
                texts.append(s.text)
        if len(texts) >= 2:
            rows.append({"prompt": [dict(m) for m in prompt], "candidates": texts})
    seconds = time.perf_counter() - t0
    out.write_text(json.dumps({"rows": rows, "dropped": dropped, "tokens": tokens}))
    print(
        f"pool: {len(rows)} prompts, {sum(len(r['candidates']) for r in rows)} answers "
        f"({dropped} unreadable or repeated dropped), {tokens} tokens in {seconds:.0f} s "
        f"({tokens / seconds:.1f} tokens/s)"
    )


def learner_features(out: Path, pool: list, model_dir: str, args: argparse.Namespace) -> None:
    """SmolLM2's frozen last-token features of every (prompt, answer) of the pool."""
    import torch

    from training.generate import reward_features
    from training.modeling import load_reward_model, load_tokenizer

    items = [(r["prompt"], text) for r in pool for text in r["candidates"]]
    t0 = time.perf_counter()
    tok = load_tokenizer(model_dir)
    learner = load_reward_model(model_dir, torch.device("cpu"), tok.pad_token_id)
    features = reward_features(
        learner,
        tok,
        items,
        batch_size=16,
        max_length=args.max_length,
        max_prompt_length=args.max_length - args.new_tokens,
    )
    torch.save({"features": features}, out)
    print(f"features of {len(items)} answers: {time.perf_counter() - t0:.0f} s")


def gold_scores(pool: list, args: argparse.Namespace) -> list[float]:
    """The gold score of every answer of the pool (``--gold``)."""
    from training.gold import RewardModelGold, ensure_hh_gold, finished_and_concise

    if args.gold == "finished-concise":
        return [finished_and_concise(text) for r in pool for text in r["candidates"]]
    gold_dir = ensure_hh_gold(HH, CACHE, n_pairs=args.gold_pairs, max_length=args.gold_max_length)
    items = [(r["prompt"], text) for r in pool for text in r["candidates"]]
    return RewardModelGold(gold_dir, max_length=args.gold_max_length)(items)


# ---------------------------------------------------------------- the experiment (pure)


@dataclass(frozen=True)
class Pool:
    """Candidate pairs as index pairs into the answers; ``prompt`` of each pair; the labelled
    (train) prompts' pairs and the held-out prompts' pairs."""

    features: object  # (N, H) standardized float64 tensor
    gold: list[float]
    train_pairs: list[tuple[int, int]]
    train_prompt: list[int]
    eval_pairs: list[tuple[int, int]]


def make_pool(rows: list, gold: list[float], features, heldout: float, min_gap: float) -> Pool:
    import itertools
    import statistics

    import torch

    feats = features.double()
    feats = (feats - feats.mean(0)) / feats.std(0).clamp_min(1e-6)
    offsets, start = [], 0
    for r in rows:
        offsets.append(list(range(start, start + len(r["candidates"]))))
        start += len(r["candidates"])
    order = list(range(len(rows)))
    random.Random(1).shuffle(order)
    n_eval = round(heldout * len(rows))
    eval_rows, train_rows = set(order[:n_eval]), order[n_eval:]
    gap = min_gap * statistics.pstdev(gold)
    eval_pairs = [
        (a, b)
        for i in sorted(eval_rows)
        for a, b in itertools.combinations(offsets[i], 2)
        if abs(gold[a] - gold[b]) >= gap
    ]
    train_pairs, train_prompt = [], []
    for i in sorted(train_rows):
        for a, b in itertools.combinations(offsets[i], 2):
            train_pairs.append((a, b))
            train_prompt.append(i)
    return Pool(torch.as_tensor(feats), gold, train_pairs, train_prompt, eval_pairs)


def fit_head(features, labelled: Sequence[tuple[int, int]], l2: float):
    """Bradley-Terry head w minimising mean softplus(-w.(phi_win - phi_lose)) + l2/2 |w|^2."""
    import torch
    from torch.nn.functional import softplus

    win = torch.tensor([w for w, _ in labelled])
    lose = torch.tensor([lo for _, lo in labelled])
    diffs = features[win] - features[lose]
    w = torch.zeros(features.shape[1], dtype=features.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        loss = softplus(-(diffs @ w)).mean() + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(objective)
    return w.detach()


def accuracy(rewards: list[float], gold: list[float], pairs: list[tuple[int, int]]) -> float:
    right = sum((rewards[a] - rewards[b]) * (gold[a] - gold[b]) > 0 for a, b in pairs)
    return right / len(pairs)


def rater_label(pair: tuple[int, int], gold: list[float], flip: float, rng) -> tuple[int, int]:
    """(winner, loser) as a simulated rater answers: the gold's order, flipped with ``flip``."""
    a, b = pair
    better = (a, b) if gold[a] > gold[b] else (b, a)
    if gold[a] == gold[b]:
        better = (a, b) if rng.random() < 0.5 else (b, a)
    return better if rng.random() >= flip else (better[1], better[0])


def choose(
    arm: str,
    pool: Pool,
    open_pairs: list[int],
    rewards: list[float] | None,
    batch: int,
    rng: random.Random,
    seed: int,
    random_share: float = 0.25,
) -> list[int]:
    """Indexes into ``pool.train_pairs`` of the next batch, by the arm's rule (``random_share``:
    the active arm's share of random pairs, the loop's run option of that name)."""
    if arm == "random" or rewards is None:
        return rng.sample(open_pairs, min(batch, len(open_pairs)))
    if arm == "active":
        from workers.active import select_pairs

        by_prompt: dict[int, list[int]] = {}
        for i in open_pairs:
            by_prompt.setdefault(pool.train_prompt[i], []).extend(pool.train_pairs[i])
        index = {pool.train_pairs[i]: i for i in open_pairs}
        answers = {p: sorted(set(ids)) for p, ids in by_prompt.items()}
        # Every pair of the pool's prompts is offered (the loop offers fresh candidates each
        # cycle; here a prompt's labelled pairs stay in the pool), then the labelled ones are
        # dropped from both of its parts: the most uncertain (at most 2 per prompt) and the
        # random share, so the batch keeps the loop's mix.
        picks = select_pairs(
            answers,
            {n: rewards[n] for ids in answers.values() for n in ids},
            budget=len(pool.train_pairs),
            random_share=random_share,
            seed=seed * 1_000_003 + len(open_pairs),  # a new draw each round
        )
        n_random = round(batch * random_share)
        fresh = [c for c in picks if c.response_ids in index]
        chosen = [index[c.response_ids] for c in fresh if c.reason == "uncertain"]
        chosen = chosen[: batch - n_random]
        drawn = [index[c.response_ids] for c in fresh if c.reason == "random"]
        chosen += [i for i in drawn if i not in chosen][:n_random]
        return _fill(chosen, open_pairs, batch, rng)
    # oracle: the most confidently wrong pairs under the current head, 2 per prompt at most
    gold = pool.gold

    def wrongness(i: int) -> float:
        a, b = pool.train_pairs[i]
        return -(rewards[a] - rewards[b]) * math.copysign(1.0, gold[a] - gold[b])

    per: dict[int, int] = {}
    chosen = []
    for i in sorted(open_pairs, key=wrongness, reverse=True):
        if per.get(pool.train_prompt[i], 0) < 2:
            chosen.append(i)
            per[pool.train_prompt[i]] = per.get(pool.train_prompt[i], 0) + 1
        if len(chosen) == batch:
            break
    return _fill(chosen, open_pairs, batch, rng)


def _fill(chosen: list[int], open_pairs: list[int], batch: int, rng: random.Random) -> list[int]:
    taken = set(chosen)
    rest = [i for i in open_pairs if i not in taken]
    return chosen + rng.sample(rest, min(batch - len(chosen), len(rest)))


def run_arm(arm: str, pool: Pool, seed: int, args: argparse.Namespace) -> list[float]:
    """Held-out accuracy after each round, at ``start``, ``start + batch``, ... labels. Every arm
    of a seed starts from the same random labels and meets the same rater coin flips in order."""
    rng = random.Random(seed * 101 + ARMS.index(arm))
    noise = random.Random(seed * 7919)
    taken = random.Random(seed).sample(range(len(pool.train_pairs)), args.start)
    labels = [rater_label(pool.train_pairs[i], pool.gold, args.flip, noise) for i in taken]
    curve = []
    while True:
        w = fit_head(pool.features, labels, args.l2)
        rewards = (pool.features @ w).tolist()
        curve.append(accuracy(rewards, pool.gold, pool.eval_pairs))
        if len(labels) >= args.budget:
            return curve
        done = set(taken)
        open_pairs = [i for i in range(len(pool.train_pairs)) if i not in done]
        batch = choose(
            arm, pool, open_pairs, rewards, args.batch, rng, seed, args.active_random_share
        )
        taken += batch
        labels += [rater_label(pool.train_pairs[i], pool.gold, args.flip, noise) for i in batch]


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n)


def labels_to_reach(curve: Sequence[float], budgets: Sequence[int], target: float) -> float | None:
    """The first budget at which ``curve`` reaches ``target``, interpolated between rounds."""
    for i, value in enumerate(curve):
        if value >= target:
            if i == 0:
                return float(budgets[0])
            lo, hi = curve[i - 1], value
            return budgets[i - 1] + (budgets[i] - budgets[i - 1]) * (target - lo) / (hi - lo)
    return None


def share_interval(
    curves: dict[str, list[list[float]]], budgets: list[int], resamples: int, seed: int = 0
) -> tuple[float, float] | None:
    """95 % bootstrap interval (seeds resampled with replacement, percentile) of active's share
    of random's labels; a resample where active never reaches the target counts as over 100 %."""
    if resamples < 1 or "active" not in curves:
        return None
    rng = random.Random(seed)
    n = len(curves["random"])
    shares = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        means = {
            arm: [sum(curves[arm][i][b] for i in pick) / n for b in range(len(budgets))]
            for arm in ("random", "active")
        }
        reach = labels_to_reach(means["active"], budgets, means["random"][-1])
        shares.append(reach / budgets[-1] if reach is not None else math.inf)
    shares.sort()
    return shares[int(0.025 * resamples)], shares[min(resamples - 1, int(0.975 * resamples))]


def summarize(curves: dict[str, list[list[float]]], budgets: list[int], resamples: int = 0) -> dict:
    """Mean and SE per arm and budget; labels to reach random's final mean accuracy, on the mean
    curve and per seed (its SE); active's share of random's labels (with a bootstrap interval
    over seeds when ``resamples``) and of the oracle's saving; each arm's paired gain."""
    table = {
        arm: [mean_se([c[i] for c in runs]) for i in range(len(budgets))]
        for arm, runs in curves.items()
    }
    target = table["random"][-1][0]
    # random must learn for "labels to reach random's final accuracy" to mean anything: its final
    # mean above its first by more than two standard errors of the difference
    (first, se_first), (last, se_last) = table["random"][0], table["random"][-1]
    random_learns = last - first > 2 * math.hypot(se_first, se_last)
    reach = {
        arm: labels_to_reach([m for m, _ in rows], budgets, target) for arm, rows in table.items()
    }
    per_seed = {
        arm: [labels_to_reach(c, budgets, target) for c in runs] for arm, runs in curves.items()
    }
    full = budgets[-1]
    # paired by seed (every arm of a seed starts from the same labels and meets the same rater
    # coin flips): the arm's mean accuracy over the budgets after the start minus random's. One
    # number per seed over the whole curve, so it does not hang on where a flat end is crossed.
    paired = {
        arm: mean_se(
            [
                sum(a - b for a, b in zip(mine[1:], theirs[1:], strict=True)) / (len(budgets) - 1)
                for mine, theirs in zip(runs, curves["random"], strict=True)
            ]
        )
        for arm, runs in curves.items()
        if arm != "random" and len(budgets) > 1
    }
    out = {
        "budgets": budgets,
        "target": target,
        "table": table,
        "reach": reach,
        "random_learns": random_learns,
        "paired_gain": paired,
    }
    out["reach_se"] = {
        arm: mean_se([x if x is not None else full for x in xs])[1] if len(xs) > 1 else 0.0
        for arm, xs in per_seed.items()
    }
    out["reached_seeds"] = {arm: sum(x is not None for x in xs) for arm, xs in per_seed.items()}
    active, oracle = reach.get("active"), reach.get("oracle")
    out["active_share"] = active / full if active is not None else None
    out["active_share_interval"] = share_interval(curves, budgets, resamples)
    out["oracle_share"] = oracle / full if oracle is not None else None
    if active is not None and oracle is not None and oracle < full:
        out["saving_captured"] = (full - active) / (full - oracle)
    else:
        out["saving_captured"] = None
    return out


def print_report(summary: dict, meta: dict) -> None:
    print(
        f"pool: {meta['prompts']} prompts ({meta['train_prompts']} labelled, "
        f"{meta['eval_prompts']} held out), {meta['answers']} answers, {meta['train_pairs']} "
        f"candidate pairs, {meta['eval_pairs']} held-out pairs; rater flip {meta['flip']}; "
        f"{meta['seeds']} seeds; head L2 {meta['l2']}; gold {meta['gold']}; active's random "
        f"share {meta['active_random_share']}"
    )
    budgets = summary["budgets"]
    print(f"{'labels':>7}" + "".join(f"{arm:>18}" for arm in summary["table"]))
    for i, budget in enumerate(budgets):
        cells = "".join(
            f"{rows[i][0]:>11.3f} ± {rows[i][1]:.3f}" for rows in summary["table"].values()
        )
        print(f"{budget:>7}{cells}")
    print(f"target: random's final accuracy {summary['target']:.3f} at {budgets[-1]} labels")
    if not summary["random_learns"]:
        print(
            "caution: random selection barely learns here (its final accuracy is within two "
            "standard errors of its first), so labels-to-reach rests on a flat curve"
        )
    for arm, labels in summary["reach"].items():
        se = summary["reach_se"][arm]
        seeds = summary["reached_seeds"][arm]
        shown = (
            f"{labels:.0f} labels (± {se:.0f} over seeds)" if labels is not None else "not reached"
        )
        print(f"  {arm:<7} reaches it with {shown}; {seeds}/{meta['seeds']} seeds reach it")
    for arm, (gain, se) in summary["paired_gain"].items():
        print(
            f"  {arm:<7} mean held-out accuracy over the curve, paired by seed: "
            f"{gain:+.4f} ± {se:.4f} against random"
        )
    share, oracle = summary["active_share"], summary["oracle_share"]
    if share is not None:
        print(f"active needs {100 * share:.0f} % of random's labels (target <= 70 %)")
    if summary.get("active_share_interval"):
        lo, hi = (
            f"{100 * x:.0f} %" if math.isfinite(x) else "never"
            for x in summary["active_share_interval"]
        )
        print(f"  95 % bootstrap interval over seeds: {lo} to {hi}")
    if oracle is not None:
        print(f"oracle needs {100 * oracle:.0f} % of random's labels")
    if summary["saving_captured"] is not None:
        print(f"active captures {100 * summary['saving_captured']:.0f} % of the oracle's saving")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="the policy / learner backbone (SmolLM2)")
    parser.add_argument("--prompts", type=int, default=240)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--gen-batch", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256, help="learner features")
    parser.add_argument(
        "--gold", choices=["finished-concise", "minilm"], default="finished-concise"
    )
    parser.add_argument("--gold-pairs", type=int, default=600)
    parser.add_argument("--gold-max-length", type=int, default=128)
    parser.add_argument("--heldout", type=float, default=0.25, help="share of prompts")
    parser.add_argument("--min-gap", type=float, default=0.1, help="gold SDs, held-out pairs")
    parser.add_argument("--flip", type=float, default=0.16)
    parser.add_argument("--start", type=int, default=8)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--budget", type=int, default=488)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument(
        "--active-random-share",
        type=float,
        default=None,
        help="the active arm's share of random pairs; default: the loop's (random_share)",
    )
    parser.add_argument(
        "--resamples", type=int, default=2000, help="bootstrap resamples of the seeds (0: none)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from annotation.run_options import run_option_defaults

    if args.active_random_share is None:
        args.active_random_share = float(run_option_defaults()["random_share"])
    if not 0.0 <= args.active_random_share <= 1.0:
        parser.error("--active-random-share must be in [0, 1]")
    torch.set_num_threads(args.threads)
    if not HH.is_file():
        print(f"no HH-RLHF sample at {HH}", file=sys.stderr)
        return 2
    from training.base_models import default_models_dir, install_base_model, read_manifest

    model_dir = args.model or str(
        install_base_model("smollm2-135m-instruct", default_models_dir()).path
    )
    manifest = read_manifest(Path(model_dir)) or {}
    fingerprint = json.dumps(manifest.get("weights") or model_dir, sort_keys=True)
    from training.gold import hh_prompts

    settings = [fingerprint, args.prompts, args.k, args.new_tokens, args.max_length]
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]
    prompts = hh_prompts(HH, args.prompts)
    pool_file = cached(
        CACHE / f"pool-{key}.json", lambda out: build_pool(out, model_dir, prompts, args)
    )
    rows = json.loads(pool_file.read_text())["rows"]
    features_file = cached(
        CACHE / f"features-{key}.pt", lambda out: learner_features(out, rows, model_dir, args)
    )
    features = torch.load(features_file)["features"]
    pool = make_pool(rows, gold_scores(rows, args), features, args.heldout, args.min_gap)
    budgets = list(range(args.start, args.budget + 1, args.batch))
    t0 = time.perf_counter()
    curves = {arm: [run_arm(arm, pool, seed, args) for seed in range(args.seeds)] for arm in ARMS}
    summary = summarize(curves, budgets, resamples=args.resamples)
    meta = {
        "prompts": len(rows),
        "train_prompts": len(set(pool.train_prompt)),
        "eval_prompts": len(rows) - len(set(pool.train_prompt)),
        "answers": len(pool.gold),
        "train_pairs": len(pool.train_pairs),
        "eval_pairs": len(pool.eval_pairs),
        "flip": args.flip,
        "seeds": args.seeds,
        "l2": args.l2,
        "gold": args.gold,
        "active_random_share": args.active_random_share,
        "experiment_seconds": round(time.perf_counter() - t0, 1),
        "cache_key": key,
    }
    if args.json:
        print(json.dumps({"meta": meta, **summary, "curves": curves}, indent=2))
    else:
        print_report(summary, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
