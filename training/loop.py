"""The optimisation loop every trainer shares.

A trainer supplies ``train_step(model, items) -> (loss, metrics)`` (the loss is the mean over the
micro-batch's *units*: examples, or response tokens for SFT) and ``evaluate(model) -> metrics``;
:func:`fit` does the rest: AdamW, linear warm-up + cosine decay, gradient accumulation with exact
weighting, gradient clipping, bf16 autocast on CUDA, DDP when launched by ``torchrun``, evaluation
every N steps, resumable checkpoints (weights, optimizer, scheduler, RNG; data order is a function
of the seed), a progress callback and an optional tqdm bar.

Distributed: when ``WORLD_SIZE > 1`` the process group is initialised (NCCL on CUDA, gloo on CPU)
and the model wrapped in DDP. Every process plans the same steps and takes its share of each, so a
2-process run takes the same optimizer steps as a 1-process run with twice the batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_model, save_model

from training.batching import plan_epoch, split_step, token_chunks
from training.config import TrainConfig
from training.modeling import autocast
from training.tracking import open_tracker


@dataclass(frozen=True)
class Progress:
    """What the progress callback receives (the workers store it on the run)."""

    step: int
    total_steps: int
    loss: float
    metrics: dict[str, float]
    eta_seconds: float
    phase: str = "train"


ProgressCallback = Callable[[Progress], None]


@dataclass
class RunResult:
    """Outcome of a training run."""

    artifact_path: Path | None
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    train_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.seconds if self.seconds else 0.0


TrainStep = Callable[[Any, list[Any]], tuple[torch.Tensor, dict[str, float]]]
Evaluate = Callable[[Any], dict[str, float]]


def init_distributed() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def cosine_schedule(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def checkpoint_root(config: TrainConfig) -> Path:
    return Path(f"{config.output_dir}.checkpoints")


def _resolve_resume(config: TrainConfig) -> Path | None:
    if not config.resume_from:
        return None
    if config.resume_from != "latest":
        return Path(config.resume_from)
    root = checkpoint_root(config)
    steps = (
        sorted(root.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
        if root.exists()
        else []
    )
    return steps[-1] if steps else None


def save_checkpoint(
    path: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]
) -> None:
    """Write a resumable checkpoint atomically (weights as safetensors)."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(getattr(model, "module", model), str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python_rng": random.getstate(),
        },
        tmp / "optimizer.pt",
    )
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    load_model(getattr(model, "module", model), str(path / "model.safetensors"))
    # weights_only: tensors and plain containers only, never arbitrary pickled objects.
    blob = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["torch_rng"])
    if blob["cuda_rng"]:
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    random.setstate(_as_tuple(blob["python_rng"]))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def _reduce(values: dict[str, float], weight: float) -> tuple[dict[str, float], float]:
    """Sum weighted metrics and weights over processes."""
    if not dist.is_initialized():
        return values, weight
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys] + [weight], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, t[:-1].tolist(), strict=True)), float(t[-1])


def fit(
    *,
    config: TrainConfig,
    model: Any,
    items: Sequence[Any],
    lengths: Sequence[int],  # padded tokens each item costs in a forward (bucketing, budgets)
    units: Sequence[int],
    train_step: TrainStep,
    evaluate: Evaluate | None,
    progress: ProgressCallback | None = None,
) -> tuple[list[dict[str, float]], dict[str, float], int, int]:
    """Train ``model`` in place; return (history, last eval metrics, steps, train tokens)."""
    rank, world = init_distributed()
    device = next(model.parameters()).device
    pieces = config.grad_accum * world
    step_size = config.batch_size * pieces
    epoch_plan = lambda e: [  # noqa: E731
        s
        for s in plan_epoch(
            lengths, step_size, seed=config.seed, epoch=e, window=config.bucket_window
        )
        if len(s) >= pieces  # every process needs a non-empty micro-batch
    ]
    steps_per_epoch = len(epoch_plan(0))
    if steps_per_epoch == 0:
        raise ValueError(f"need at least {pieces} training examples, got {len(items)}")
    total = config.max_steps or config.num_epochs * steps_per_epoch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_schedule(config.warmup_steps, total, config.min_lr_ratio)
    )
    history: list[dict[str, float]] = []
    eval_metrics: dict[str, float] = {}
    start_step, tokens = 0, 0
    resume = _resolve_resume(config)
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, scheduler)
        start_step, history, tokens = state["step"], state["history"], state["tokens"]
        eval_metrics = state.get("eval_metrics", {})
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    model.train()
    # TensorBoard / MLflow when config.report_to names them (training/tracking.py); rank 0 only.
    with open_tracker(config, main_process=rank == 0) as tracker:
        bar = None
        if config.progress_bar and rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=start_step, desc="train", unit="step")
        if evaluate is not None and start_step == 0:
            initial = {f"eval/{k}": v for k, v in evaluate(getattr(model, "module", model)).items()}
            history.append({"step": 0, **initial})
            tracker.log(0, initial)
            model.train()
        t0 = time.perf_counter()
        plans: dict[int, list[list[int]]] = {}
        for step in range(start_step, total):
            epoch, index = divmod(step, steps_per_epoch)
            if epoch not in plans:
                plans = {epoch: epoch_plan(epoch)}
            step_items = plans[epoch][index]
            step_units = sum(units[i] for i in step_items)
            micro = split_step(step_items, pieces)
            sums: dict[str, float] = {}
            parts = [
                chunk
                for i in range(config.grad_accum)
                for chunk in token_chunks(micro[i * world + rank], lengths, config.max_batch_tokens)
            ]
            for n, part in enumerate(parts):
                share = sum(units[j] for j in part) * world / step_units
                sync = world == 1 or n == len(parts) - 1  # DDP all-reduces on the last backward
                with model.no_sync() if not sync else contextlib.nullcontext():
                    with autocast(device, config.bf16):
                        loss, metrics = train_step(model, [items[j] for j in part])
                    (loss * share).backward()
                w = share / world
                for k, v in {"loss": loss.item(), **metrics}.items():
                    sums[k] = sums.get(k, 0.0) + v * (1 if k == "tokens" else w)
            if config.max_grad_norm > 0:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
            else:
                grad_norm = float(
                    torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
                )
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            sums, _ = _reduce(sums, 1.0)
            tokens += int(sums.pop("tokens", 0))
            done = step + 1
            elapsed = time.perf_counter() - t0
            eta = elapsed / (done - start_step) * (total - done)
            record = {
                "step": done,
                **sums,
                "grad_norm": grad_norm,
                "lr": scheduler.get_last_lr()[0],
            }
            logged = done % config.log_every == 0 or done == total
            if logged:
                history.append(record)
            evaluated = evaluate is not None and (
                done == total or bool(config.eval_every and done % config.eval_every == 0)
            )
            if evaluated and evaluate is not None:
                eval_metrics = {
                    f"eval/{k}": v for k, v in evaluate(getattr(model, "module", model)).items()
                }
                record.update(eval_metrics)
                model.train()
            if logged or evaluated:  # the trackers get what the history keeps, eval included
                tracker.log(done, record if logged else eval_metrics)
            if progress is not None and rank == 0:
                progress(Progress(done, total, sums["loss"], dict(record), eta))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss']:.4f}")
            if config.save_every and done % config.save_every == 0 and done < total:
                if rank == 0:
                    save_checkpoint(
                        checkpoint_root(config) / f"step-{done}",
                        model,
                        optimizer,
                        scheduler,
                        {
                            "step": done,
                            "history": history,
                            "tokens": tokens,
                            "eval_metrics": eval_metrics,
                        },
                    )
                barrier()
        if bar is not None:
            bar.close()
    return history, eval_metrics, total, tokens
