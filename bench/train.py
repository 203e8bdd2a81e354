"""Benchmark: our RM / DPO / KTO trainers next to TRL 1.16's, same model, data and settings.

Each (trainer, implementation) pair runs in a fresh subprocess so peak memory is its own:
``resource.getrusage`` max RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA. Throughput is
*training tokens per second*: the non-padding tokens of the training set (prompt + response of
every sequence the method trains on, counted once by our tokenizer for both implementations, times
epochs) divided by the wall time from "start building the trainer" to "training finished" (ours:
the whole ``run()``, including tokenization, the reference log-prob pass and saving the artifact;
TRL: constructing the trainer, which tokenizes, plus ``train()``).

    python bench/train.py                 # CPU here; CUDA when available
    python bench/train.py --pairs 512 --repeats 2 --trainers dpo,kto

Prints one row per trainer with both figures, the ratios, and final losses (mean of the last 5
logged steps) for a sanity check that both learn the same thing.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "lemon",
    "piano",
    "rocket",
    "quiet",
    "silver",
    "garden",
    "window",
]


def make_data(n: int, seed: int) -> list[dict[str, str]]:
    """Preference pairs with widely varying lengths (where length bucketing pays off)."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    rows = []
    for _ in range(n):
        base = text(1, 16)
        rows.append(
            {
                "prompt": "Q: " + text(2, 24) + "\nA:",
                "chosen": f" {base} GOOD",
                "rejected": f" {base} {text(0, 6)} bad",
            }
        )
    return rows


def settings(args: argparse.Namespace) -> dict:
    return {
        "batch_size": args.batch_size,
        "learning_rate": 1e-4,
        "max_length": 256,
        "max_prompt_length": 128,
        "epochs": 1,
        "beta": 0.1,
        "seed": 0,
        "max_batch_tokens": args.max_batch_tokens,  # ours only: same update, lower peak
    }


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def count_tokens(kind: str, model_dir: str, rows: list[dict[str, str]], s: dict) -> int:
    from training.modeling import load_tokenizer
    from training.records import PreferencePair
    from training.tokenize import Encoder, encode_pairs

    enc = Encoder(
        load_tokenizer(model_dir),
        max_length=s["max_length"],
        max_prompt_length=s["max_prompt_length"],
    )
    pairs = encode_pairs(
        enc, [PreferencePair(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
    )
    total = sum(p.chosen.length + p.rejected.length for p in pairs)
    return total * s["epochs"]  # KTO trains on the same sequences, unpaired


def run_ours(
    kind: str, work: Path, rows: list[dict[str, str]], s: dict
) -> tuple[float, list[float]]:
    from training.config import DPOConfig, KTOConfig, RewardConfig
    from training.records import PreferencePair, UnpairedExample
    from training.trainers import dpo, kto, reward_model

    pairs = [PreferencePair(r["prompt"], r["chosen"], r["rejected"]) for r in rows]
    common = {
        "output_dir": str(work / f"ours-{kind}"),
        "batch_size": s["batch_size"],
        "learning_rate": s["learning_rate"],
        "max_length": s["max_length"],
        "max_prompt_length": s["max_prompt_length"],
        "num_epochs": s["epochs"],
        "seed": s["seed"],
        "max_grad_norm": 1.0,
        "max_batch_tokens": s["max_batch_tokens"],
    }
    t0 = time.perf_counter()
    if kind == "rm":
        result = reward_model.run(RewardConfig(model=str(work / "rm"), **common), pairs)
    elif kind == "dpo":
        cfg = DPOConfig(
            model=str(work / "lm"), beta=s["beta"], ref_cache_dir=str(work / "cache"), **common
        )
        result = dpo.run(cfg, pairs)
    else:
        unpaired = [
            UnpairedExample(p.prompt, text, good)
            for p in pairs
            for text, good in ((p.chosen, True), (p.rejected, False))
        ]
        cfg = KTOConfig(
            model=str(work / "lm"), beta=s["beta"], ref_cache_dir=str(work / "cache"), **common
        )
        result = kto.run(cfg, unpaired)
    return time.perf_counter() - t0, [h["loss"] for h in result.history if "loss" in h]


def run_trl(
    kind: str, work: Path, rows: list[dict[str, str]], s: dict
) -> tuple[float, list[float]]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from training.modeling import load_tokenizer

    common = {
        "output_dir": str(work / f"trl-{kind}"),
        "per_device_train_batch_size": s["batch_size"],
        "learning_rate": s["learning_rate"],
        "num_train_epochs": s["epochs"],
        "seed": s["seed"],
        "max_grad_norm": 1.0,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "bf16": torch.cuda.is_available(),
        "use_cpu": not torch.cuda.is_available(),
        "dataloader_num_workers": 0,
    }
    t0 = time.perf_counter()
    if kind == "rm":
        from trl import RewardConfig, RewardTrainer

        tok = load_tokenizer(str(work / "rm"))
        model = AutoModelForSequenceClassification.from_pretrained(str(work / "rm"), num_labels=1)
        trainer = RewardTrainer(
            model=model,
            args=RewardConfig(max_length=s["max_length"], **common),
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
        )
    elif kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        tok = load_tokenizer(str(work / "lm"))
        model = AutoModelForCausalLM.from_pretrained(str(work / "lm"))
        trainer = DPOTrainer(
            model=model,
            ref_model=copy.deepcopy(model),
            args=DPOConfig(beta=s["beta"], max_length=s["max_length"], **common),
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
        )
    else:
        from trl import KTOConfig, KTOTrainer

        tok = load_tokenizer(str(work / "lm"))
        model = AutoModelForCausalLM.from_pretrained(str(work / "lm"))
        unpaired = [
            {"prompt": r["prompt"], "completion": r[side], "label": side == "chosen"}
            for r in rows
            for side in ("chosen", "rejected")
        ]
        trainer = KTOTrainer(
            model=model,
            ref_model=copy.deepcopy(model),
            args=KTOConfig(beta=s["beta"], max_length=s["max_length"], **common),
            train_dataset=Dataset.from_list(unpaired),
            processing_class=tok,
        )
    trainer.train()
    seconds = time.perf_counter() - t0
    return seconds, [h["loss"] for h in trainer.state.log_history if "loss" in h]


def worker(kind: str, impl: str, work: Path, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    rows = make_data(args.pairs, seed=0)
    s = settings(args)
    seconds, losses = (run_ours if impl == "ours" else run_trl)(kind, work, rows, s)
    tokens = count_tokens(kind, str(work / "lm"), rows, s)
    out = {
        "kind": kind,
        "impl": impl,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "peak_mb": peak_memory_mb(),
        "final_loss": sum(losses[-5:]) / max(1, len(losses[-5:])),
        "steps": len(losses),
    }
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--trainers", default="rm,dpo,kto")
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs per cell")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--max_batch_tokens", type=int, default=2048, help="ours: cap on padded tokens per forward"
    )
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "IMPL", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]), args)
        return

    from training.tiny import write_tiny_causal_lm, write_tiny_reward_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        size = {"n_layer": args.layers, "n_embd": args.hidden, "n_head": 4, "n_positions": 512}
        write_tiny_causal_lm(work / "lm", **size)
        write_tiny_reward_model(work / "rm", **size)
        print(
            f"model: GPT-2 {args.layers} layers x {args.hidden} hidden, byte vocab; "
            f"{args.pairs} pairs, batch {args.batch_size}, 1 epoch, max_length 256, "
            f"ours max_batch_tokens {args.max_batch_tokens}",
            flush=True,
        )
        results: dict[tuple[str, str], dict] = {}
        for kind in args.trainers.split(","):
            for rep in range(args.repeats):
                for impl in ("ours", "trl"):
                    # a fresh cache dir per run: ours must pay for its reference pass every time
                    run_dir = work / f"{kind}-{impl}-{rep}"
                    run_dir.mkdir()
                    for name in ("lm", "rm"):
                        (run_dir / name).symlink_to(work / name)
                    cmd = [sys.executable, __file__, "--worker", kind, impl, str(run_dir)]
                    cmd += [f"--pairs={args.pairs}", f"--batch_size={args.batch_size}"]
                    cmd += [
                        f"--threads={args.threads}",
                        f"--max_batch_tokens={args.max_batch_tokens}",
                    ]
                    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                    if proc.returncode != 0 or not lines:
                        print(f"{kind}/{impl} failed:\n{proc.stderr[-3000:]}")
                        continue
                    r = json.loads(lines[-1][len("RESULT ") :])
                    print(f"  {kind}/{impl}: " + json.dumps(r), flush=True)
                    best = results.get((kind, impl))
                    if best is None or r["tokens_per_s"] > best["tokens_per_s"]:
                        results[(kind, impl)] = r
        print(
            f"{'trainer':8}{'ours tok/s':>12}{'TRL tok/s':>12}{'speed x':>9}"
            f"{'ours MB':>10}{'TRL MB':>10}{'mem ratio':>10}{'ours loss':>11}{'TRL loss':>10}"
        )
        for kind in args.trainers.split(","):
            o, t = results.get((kind, "ours")), results.get((kind, "trl"))
            if not o or not t:
                continue
            print(
                f"{kind:8}{o['tokens_per_s']:12.0f}{t['tokens_per_s']:12.0f}"
                f"{o['tokens_per_s'] / t['tokens_per_s']:9.2f}"
                f"{o['peak_mb']:10.0f}{t['peak_mb']:10.0f}{o['peak_mb'] / t['peak_mb']:10.2f}"
                f"{o['final_loss']:11.4f}{t['final_loss']:10.4f}"
            )


if __name__ == "__main__":
    main()
