"""GPU check: the CUDA paths on the real model, in one short run that prints a table.

On one CUDA GPU (bf16 autocast, the model on the device) it trains a reward model, a DPO policy
and a KTO policy for a few full fine-tuning steps on real HH-RLHF pairs, runs a few GRPO and PPO
steps against the new reward model, samples from the base model, then closes one short cycle:
the DPO policy's samples for held-out prompts scored by the new reward model. Each row reports
tokens/s and the peak GPU memory of that step alone (``torch.cuda.max_memory_allocated`` after a
reset). Sized to finish in well under 6 minutes on one GPU; ``--device cpu --pairs 8 --steps 1``
is the smoke run that keeps it working here (tests/training/test_gpu_check.py).

    python bench/gpu_check.py                      # SmolLM2-135M-Instruct, installed if needed
    python bench/gpu_check.py --model PATH --steps 20 --pairs 256
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training.config import DPOConfig, KTOConfig, RewardConfig  # noqa: E402
from training.contract.records import PreferencePair, UnpairedExample  # noqa: E402
from training.generate import generate, score  # noqa: E402
from training.modeling import load_causal_lm, load_reward_model, load_tokenizer  # noqa: E402
from training.records import load_jsonl  # noqa: E402
from training.rl import grpo, ppo  # noqa: E402
from training.rl.config import GRPOConfig, PPOConfig  # noqa: E402
from training.trainers import dpo, kto, reward_model  # noqa: E402

HH_SAMPLE = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"
FALLBACK_PROMPTS = [
    "How do I bake a simple chocolate cake?",
    "Explain what a reward model is in two sentences.",
    "Give me three tips for a good night's sleep.",
    "What is the difference between weather and climate?",
]


@dataclass
class Row:
    step: str
    seconds: float
    tokens: int
    peak_gib: float
    note: str = ""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    """Peak GPU memory since the last reset; on CPU the process's max RSS (it only grows)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def real_pairs(n: int, seed: int) -> list[PreferencePair]:
    """``n`` HH-RLHF pairs (a seeded sample), or hand-made ones where the shared data is absent."""
    if HH_SAMPLE.exists():
        pairs, _ = load_jsonl(HH_SAMPLE, "preference", strict=False)
        random.Random(seed).shuffle(pairs)
        return pairs[:n]
    return [
        PreferencePair(
            [{"role": "user", "content": FALLBACK_PROMPTS[i % len(FALLBACK_PROMPTS)]}],
            "Here is a short, careful answer with the steps in order.",
            "No.",
        )
        for i in range(n)
    ]


def resolve_model(arg: str) -> str:
    if arg:
        return arg
    from training.base_models import default_models_dir, install_base_model

    return str(install_base_model("smollm2-135m-instruct", default_models_dir()).path)


def train_row(name: str, module: Any, config: Any, records: list[Any], device: torch.device) -> Row:
    peak_reset(device)
    t0 = time.perf_counter()
    result = module.run(config, records)
    seconds = time.perf_counter() - t0
    loss = result.history[-1].get("loss", float("nan")) if result.history else float("nan")
    return Row(name, seconds, result.train_tokens, peak_gib(device), f"loss {loss:.4f}")


def generation_row(
    name: str, path: str, prompts: list[Any], device: torch.device, args: argparse.Namespace
) -> tuple[Row, list[Any]]:
    tok, model = load_tokenizer(path), load_causal_lm(path, device)
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    peak_reset(device)
    t0 = time.perf_counter()
    samples = generate(
        model,
        tok,
        prompts,
        k=args.k,
        temperature=0.7,
        max_new_tokens=args.new_tokens,
        batch_size=args.gen_batch,
        seed=args.seed,
    )
    seconds = time.perf_counter() - t0
    tokens = sum(len(s.token_ids) for group in samples for s in group)
    stopped = sum(s.stopped for group in samples for s in group)
    total = sum(len(group) for group in samples)
    row = Row(name, seconds, tokens, peak_gib(device), f"{stopped}/{total} ended their turn")
    del model
    return row, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="model folder; default: installed SmolLM2")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (smoke run)")
    parser.add_argument("--pairs", type=int, default=128, help="HH-RLHF pairs to train on")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per trainer")
    parser.add_argument("--batch", type=int, default=8, help="micro-batch size")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--prompts", type=int, default=16, help="prompts to sample for")
    parser.add_argument("--k", type=int, default=4, help="samples per prompt")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--gen-batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --device cpu for the smoke run")
    started = time.perf_counter()
    model = resolve_model(args.model)
    pairs = real_pairs(args.pairs + args.prompts, args.seed)
    train, held = pairs[: args.pairs], pairs[args.pairs :]
    prompts = [p.prompt for p in held] or [p.prompt for p in train[: args.prompts]]
    unpaired = [
        u
        for p in train
        for u in (
            UnpairedExample(p.prompt, p.chosen, True),
            UnpairedExample(p.prompt, p.rejected, False),
        )
    ]
    common = {
        "model": model,
        "device": args.device,
        "bf16": True,
        "max_steps": args.steps,
        "batch_size": args.batch,
        "max_length": args.max_length,
        "max_prompt_length": min(256, args.max_length // 2),
        "learning_rate": 1e-5,
        "seed": args.seed,
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        out = Path(tmp)
        rm_dir, dpo_dir = out / "rm", out / "dpo"
        rows.append(
            train_row(
                "reward model (full FT)",
                reward_model,
                RewardConfig(**common, output_dir=str(rm_dir)),
                train,
                device,
            )
        )
        rows.append(
            train_row(
                "DPO (full FT)",
                dpo,
                DPOConfig(**common, output_dir=str(dpo_dir), ref_cache_dir=str(out / "ref")),
                train,
                device,
            )
        )
        rows.append(
            train_row(
                "KTO (full FT)",
                kto,
                KTOConfig(**common, output_dir=str(out / "kto"), ref_cache_dir=str(out / "ref")),
                unpaired,
                device,
            )
        )
        online = {
            **common,
            "max_steps": max(1, args.steps // 4),
            "rollout_batch_size": min(8, len(prompts)),
            "k": max(2, args.k),
            "max_new_tokens": args.new_tokens // 2,
            "reward_model": str(rm_dir),
        }
        for name, module, config_class in (
            ("GRPO (full FT, new RM)", grpo, GRPOConfig),
            ("PPO (full FT, new RM)", ppo, PPOConfig),
        ):
            config = config_class(**online, output_dir=str(out / name.split()[0].lower()))
            peak_reset(device)
            t0 = time.perf_counter()
            result = module.run(config, [p.prompt for p in train[: args.pairs]])
            last = result.history[-1] if result.history else {}
            rows.append(
                Row(
                    name,
                    time.perf_counter() - t0,
                    result.train_tokens,
                    peak_gib(device),
                    f"reward {last.get('objective/scores', float('nan')):+.3f}, "
                    f"kl {last.get('objective/kl', float('nan')):.3f}",
                )
            )
        base_row, _ = generation_row("generate (base)", model, prompts, device, args)
        rows.append(base_row)
        cycle_row, samples = generation_row(
            "generate (new DPO policy)", str(dpo_dir), prompts, device, args
        )
        rows.append(cycle_row)
        tok = load_tokenizer(str(rm_dir))
        rm = load_reward_model(str(rm_dir), device, tok.pad_token_id)
        flat = [(prompts[i], s.text) for i, group in enumerate(samples) for s in group]
        peak_reset(device)
        t0 = time.perf_counter()
        rewards = score(rm, tok, flat, max_length=args.max_length)
        rows.append(
            Row(
                "score samples (new RM)",
                time.perf_counter() - t0,
                sum(len(tok(t[1])["input_ids"]) for t in flat),
                peak_gib(device),
                f"mean reward {sum(rewards) / max(1, len(rewards)):+.3f}",
            )
        )
        example = samples[0][0].text if samples and samples[0] else ""

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\nGPU check on {name}, model {model}, torch {torch.__version__}")
    print(f"{'step':<28}{'seconds':>9}{'tokens':>9}{'tokens/s':>10}{'peak GiB':>10}  note")
    for r in rows:
        print(
            f"{r.step:<28}{r.seconds:>9.1f}{r.tokens:>9}{r.tokens_per_second:>10.0f}"
            f"{r.peak_gib:>10.2f}  {r.note}"
        )
    print(f"total {time.perf_counter() - started:.0f} s")
    print(f"a new-policy sample: {example[:300]!r}")
    if args.json:
        Path(args.json).write_text(
            json.dumps([{**r.__dict__, "tokens_per_second": r.tokens_per_second} for r in rows]),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
