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
    python bench/train.py --real --pairs 32 --batch_size 4       # SmolLM2-135M, real HH pairs
    python bench/train.py --real --lora_r 16 --learning_rate 1e-4  # the same with LoRA
    python bench/train.py --real --generation --trainers ""      # sampling only

``--real`` runs the installed SmolLM2-135M-Instruct (``--model`` for another folder) on the shared
HH-RLHF harmless sample (``../shared/data/hh-rlhf``; the sequence lengths of real pairs): both
sides see the same conversations, ours as chat messages through our encoder, TRL's in its
conversational format, each applying the model's chat template. ``--lora_r`` > 0 trains LoRA
adapters on every linear layer on both sides (TRL through ``peft_config``; its DPO/KTO reference is
then the adapter-disabled model, as ours). Gradient checkpointing is on for both sides by default
(TRL 1.16's configs default to it); ``--no-gradient_checkpointing`` turns it off for both.
``--generation`` adds a sampling row: our batched ``training.generate.generate`` next to a plain
``model.generate`` loop (one prompt at a time, ``num_return_sequences=k``) on the same prompts.

Prints one row per trainer with both figures, the ratios, and final losses (mean of the last 5
logged steps) for a sanity check that both learn the same thing.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HH_SAMPLE = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"

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


def hh_data(n: int, seed: int) -> list[dict]:
    """``n`` real HH-RLHF pairs (a seeded sample): the dialogue as chat messages, two answers."""
    from training.cai import as_messages
    from training.records import load_jsonl

    pairs, _ = load_jsonl(HH_SAMPLE, "preference", strict=False)
    random.Random(seed).shuffle(pairs)
    return [
        {
            "prompt": as_messages(p.prompt),
            "chosen": p.chosen.strip(),
            "rejected": p.rejected.strip(),
        }
        for p in pairs[:n]
    ]


def load_rows(args: argparse.Namespace) -> list[dict]:
    return hh_data(args.pairs, seed=0) if args.real else make_data(args.pairs, seed=0)


def settings(args: argparse.Namespace) -> dict:
    return {
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "max_length": args.max_length,
        "max_prompt_length": args.max_prompt_length,
        "epochs": 1,
        "beta": 0.1,
        "seed": 0,
        "max_batch_tokens": args.max_batch_tokens,  # ours only: same update, lower peak
        "gradient_checkpointing": args.gradient_checkpointing,
        "lora_r": args.lora_r,
        "lora_alpha": 16,
    }


def trl_rows(rows: list[dict]) -> list[dict]:
    """TRL's conversational format for chat prompts (it applies the chat template itself)."""
    if not rows or isinstance(rows[0]["prompt"], str):
        return rows
    return [
        {
            "prompt": r["prompt"],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in rows
    ]


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
        "gradient_checkpointing": s["gradient_checkpointing"],
        "lora_r": s["lora_r"],
        "lora_alpha": s["lora_alpha"],
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

    peft_config = None
    if s["lora_r"]:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=s["lora_r"],
            lora_alpha=s["lora_alpha"],
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="SEQ_CLS" if kind == "rm" else "CAUSAL_LM",
        )
    rows = trl_rows(rows)
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
        "gradient_checkpointing": s["gradient_checkpointing"],
    }
    t0 = time.perf_counter()
    if kind == "rm":
        from trl import RewardConfig, RewardTrainer

        tok = load_tokenizer(str(work / "rm"))
        model = AutoModelForSequenceClassification.from_pretrained(str(work / "rm"), num_labels=1)
        model.config.pad_token_id = tok.pad_token_id
        trainer = RewardTrainer(
            model=model,
            args=RewardConfig(max_length=s["max_length"], **common),
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=peft_config,
        )
    elif kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        tok = load_tokenizer(str(work / "lm"))
        model = AutoModelForCausalLM.from_pretrained(str(work / "lm"))
        trainer = DPOTrainer(
            model=model,
            ref_model=None if peft_config else copy.deepcopy(model),
            args=DPOConfig(beta=s["beta"], max_length=s["max_length"], **common),
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=peft_config,
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
            ref_model=None if peft_config else copy.deepcopy(model),
            args=KTOConfig(beta=s["beta"], max_length=s["max_length"], **common),
            train_dataset=Dataset.from_list(unpaired),
            processing_class=tok,
            peft_config=peft_config,
        )
    trainer.train()
    seconds = time.perf_counter() - t0
    return seconds, [h["loss"] for h in trainer.state.log_history if "loss" in h]


def worker(kind: str, impl: str, work: Path, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if kind == "gen":
        print("RESULT " + json.dumps(generation_worker(impl, work, args)))
        return
    rows = load_rows(args)
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


def generation_worker(impl: str, work: Path, args: argparse.Namespace) -> dict:
    """New tokens per second sampling ``k`` answers to each of ``gen_prompts`` HH prompts: ours
    (batched, ``training.generate.generate``) or a plain ``model.generate`` loop, one prompt at
    a time with ``num_return_sequences=k``; the same sampling settings and stop tokens."""
    import torch

    from training.generate import generate, stop_token_ids
    from training.modeling import load_causal_lm, load_tokenizer

    prompts = [r["prompt"] for r in hh_data(args.gen_prompts, seed=1)]
    tok = load_tokenizer(str(work / "lm"))
    model = load_causal_lm(str(work / "lm"), torch.device("cpu"))
    stops = stop_token_ids(model, tok)
    t0 = time.perf_counter()
    if impl == "ours":
        samples = generate(
            model,
            tok,
            prompts,
            k=args.gen_k,
            max_new_tokens=args.gen_tokens,
            batch_size=args.gen_batch,
            logprobs=False,
        )
        new_tokens = sum(len(x.token_ids) for group in samples for x in group)
    else:
        new_tokens = 0
        model.eval()
        for messages in prompts:
            ids = tok.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = model.generate(
                    **ids,
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=None,
                    max_new_tokens=args.gen_tokens,
                    num_return_sequences=args.gen_k,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=stops,
                )
            for row in out[:, ids["input_ids"].shape[1] :].tolist():
                end = next((i for i, t in enumerate(row) if t in stops), None)
                new_tokens += len(row) if end is None else end + 1
    seconds = time.perf_counter() - t0
    return {
        "kind": "gen",
        "impl": impl,
        "seconds": seconds,
        "tokens_per_s": new_tokens / seconds,
        "peak_mb": peak_memory_mb(),
        "final_loss": float("nan"),
        "steps": new_tokens,
    }


def real_model(arg: str) -> Path:
    """The folder of ``--model``, or of the installed SmolLM2-135M-Instruct."""
    if arg:
        return Path(arg).resolve()
    from training.base_models import default_models_dir, install_base_model

    # absolute: each cell's folder links to it, and a relative link target would dangle
    return Path(install_base_model("smollm2-135m-instruct", default_models_dir()).path).resolve()


def worker_args(args: argparse.Namespace) -> list[str]:
    """The settings a cell's subprocess needs, as command-line flags."""
    flags = [
        f"--pairs={args.pairs}",
        f"--batch_size={args.batch_size}",
        f"--threads={args.threads}",
        f"--max_batch_tokens={args.max_batch_tokens}",
        f"--learning_rate={args.learning_rate}",
        f"--max_length={args.max_length}",
        f"--max_prompt_length={args.max_prompt_length}",
        f"--lora_r={args.lora_r}",
        f"--gen_prompts={args.gen_prompts}",
        f"--gen_k={args.gen_k}",
        f"--gen_tokens={args.gen_tokens}",
        f"--gen_batch={args.gen_batch}",
        "--gradient_checkpointing"
        if args.gradient_checkpointing
        else "--no-gradient_checkpointing",
    ]
    return flags + (["--real"] if args.real else [])


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
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--max_prompt_length", type=int, default=128)
    parser.add_argument(
        "--real", action="store_true", help="SmolLM2-135M-Instruct on real HH-RLHF pairs"
    )
    parser.add_argument("--model", default="", help="--real: a model folder (default SmolLM2)")
    parser.add_argument("--lora_r", type=int, default=0, help="LoRA rank on both sides; 0 = full")
    parser.add_argument(
        "--gradient_checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="both sides (TRL's default is on)",
    )
    parser.add_argument("--generation", action="store_true", help="add the sampling row")
    parser.add_argument("--gen_prompts", type=int, default=16)
    parser.add_argument("--gen_k", type=int, default=4)
    parser.add_argument("--gen_tokens", type=int, default=48)
    parser.add_argument("--gen_batch", type=int, default=16, help="ours: sequences per batch")
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "IMPL", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]), args)
        return

    from training.tiny import write_tiny_causal_lm, write_tiny_reward_model

    kinds = [k for k in args.trainers.split(",") if k] + (["gen"] if args.generation else [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.real:
            folder = real_model(args.model)
            (work / "lm").symlink_to(folder)
            (work / "rm").symlink_to(folder)
            what = f"{folder.name}, {args.pairs} HH-RLHF pairs"
        else:
            size = {"n_layer": args.layers, "n_embd": args.hidden, "n_head": 4, "n_positions": 512}
            write_tiny_causal_lm(work / "lm", **size)
            write_tiny_reward_model(work / "rm", **size)
            what = (
                f"GPT-2 {args.layers} layers x {args.hidden} hidden, byte vocab; {args.pairs} pairs"
            )
        print(
            f"model: {what}, batch {args.batch_size}, 1 epoch, lr {args.learning_rate}, "
            f"max_length {args.max_length}, max_prompt_length {args.max_prompt_length}, "
            f"{'LoRA r ' + str(args.lora_r) if args.lora_r else 'full fine-tune'}, gradient "
            f"checkpointing {'on' if args.gradient_checkpointing else 'off'} (both), ours "
            f"max_batch_tokens {args.max_batch_tokens}; {args.threads} threads",
            flush=True,
        )
        results: dict[tuple[str, str], dict] = {}
        for kind in kinds:
            for rep in range(args.repeats):
                for impl in ("ours", "trl"):
                    # a fresh cache dir per run: ours must pay for its reference pass every time
                    run_dir = work / f"{kind}-{impl}-{rep}"
                    run_dir.mkdir()
                    for name in ("lm", "rm"):
                        (run_dir / name).symlink_to(work / name)
                    cmd = [sys.executable, __file__, "--worker", kind, impl, str(run_dir)]
                    cmd += worker_args(args)
                    load = os.getloadavg()[0]
                    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
                    if proc.returncode != 0 or not lines:
                        print(f"{kind}/{impl} failed:\n{proc.stderr[-3000:]}")
                        continue
                    r = json.loads(lines[-1][len("RESULT ") :])
                    r["load"] = round((load + os.getloadavg()[0]) / 2, 1)
                    print(f"  {kind}/{impl}: " + json.dumps(r), flush=True)
                    best = results.get((kind, impl))
                    if best is None or r["tokens_per_s"] > best["tokens_per_s"]:
                        results[(kind, impl)] = r
        print("(gen: ours batched sampling vs a plain model.generate loop; load: 1-min average)")
        print(
            f"{'trainer':8}{'ours tok/s':>12}{'TRL tok/s':>12}{'speed x':>9}"
            f"{'ours MB':>10}{'TRL MB':>10}{'mem ratio':>10}{'ours loss':>11}{'TRL loss':>10}"
            f"{'load':>11}"
        )
        for kind in kinds:
            o, t = results.get((kind, "ours")), results.get((kind, "trl"))
            if not o or not t:
                continue
            print(
                f"{kind:8}{o['tokens_per_s']:12.1f}{t['tokens_per_s']:12.1f}"
                f"{o['tokens_per_s'] / t['tokens_per_s']:9.2f}"
                f"{o['peak_mb']:10.0f}{t['peak_mb']:10.0f}{o['peak_mb'] / t['peak_mb']:10.2f}"
                f"{o['final_loss']:11.4f}{t['final_loss']:10.4f}"
                f"{o['load']:>5}/{t['load']:<5}"
            )


if __name__ == "__main__":
    main()
