"""The offline optimisation loop every record-based trainer shares (reward model, DPO, KTO, SFT).

A trainer supplies ``train_step(model, items) -> (loss, metrics)`` (the loss is the mean over the
micro-batch's *units*: examples, response tokens for SFT, or pairs weighted by their ``weight``)
and ``evaluate(model) -> metrics``; :func:`fit` plans the data (length-bucketed steps, a pure
function of the seed and the epoch), splits each step into micro-batches (gradient accumulation
with exact weighting, a token budget per forward, each process's share under DDP) and runs them
under bf16 autocast on CUDA.
Everything else — AdamW, linear warm-up + cosine decay, clipping, evaluation every N steps,
resumable checkpoints (weights, optimizer, scheduler, RNG), the history, the tracker, the
progress callback and the tqdm bar — is :class:`training.session.TrainingSession`, the same
step-driven loop the on-policy trainers (``training/rl/``) drive with rollouts instead of records.

Distributed: when ``WORLD_SIZE > 1`` the process group is initialised (NCCL on CUDA, gloo on CPU)
and the model wrapped in DDP. Every process plans the same steps and takes its share of each, so a
2-process run takes the same optimizer steps as a 1-process run with twice the batch.

Where the pieces live, all importable from here too: :mod:`training.session` (``TrainingSession``,
``Progress``, ``ProgressCallback``, ``RunResult``, ``Fitted``, ``seed_everything``,
``cosine_schedule``, ``build_optimizer``, ``build_scheduler``), :mod:`training.checkpoints`
(``save_checkpoint``, ``load_checkpoint``, ``checkpoint_root``, ``resolve_resume``) and
:mod:`training.distributed` (``init_distributed``, ``is_main``, ``barrier``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch

from training.batching import plan_epoch, split_step, token_chunks
from training.checkpoints import checkpoint_root, load_checkpoint, resolve_resume, save_checkpoint
from training.config import TrainConfig
from training.distributed import barrier, init_distributed, is_main
from training.modeling import autocast
from training.session import (
    Evaluate,
    Fitted,
    Progress,
    ProgressCallback,
    RunResult,
    TrainingSession,
    build_optimizer,
    build_scheduler,
    cosine_schedule,
    seed_everything,
)

__all__ = [
    "Evaluate",
    "Fitted",
    "Progress",
    "ProgressCallback",
    "RunResult",
    "TrainStep",
    "TrainingSession",
    "barrier",
    "build_optimizer",
    "build_scheduler",
    "checkpoint_root",
    "cosine_schedule",
    "fit",
    "init_distributed",
    "is_main",
    "load_checkpoint",
    "resolve_resume",
    "save_checkpoint",
    "seed_everything",
]

TrainStep = Callable[[Any, list[Any]], tuple[torch.Tensor, dict[str, float]]]


def fit(
    *,
    config: TrainConfig,
    model: Any,
    items: Sequence[Any],
    lengths: Sequence[int],  # padded tokens each item costs in a forward (bucketing, budgets)
    units: Sequence[float],  # each item's weight in the step's mean (1, tokens, a pair's weight)
    train_step: TrainStep,
    evaluate: Evaluate | None,
    progress: ProgressCallback | None = None,
    groups: Sequence[Hashable] | None = None,  # kept together in a step (plan_epoch)
) -> Fitted:
    """Train ``model`` in place; return (history, last eval metrics, steps, train tokens)."""
    _, world = init_distributed()
    pieces = config.grad_accum * world
    step_size = config.batch_size * pieces
    epoch_plan = lambda e: [  # noqa: E731
        s
        for s in plan_epoch(
            lengths,
            step_size,
            seed=config.seed,
            epoch=e,
            window=config.bucket_window,
            groups=groups,
        )
        if len(s) >= pieces  # every process needs a non-empty micro-batch
    ]
    steps_per_epoch = len(epoch_plan(0))
    if steps_per_epoch == 0:
        raise ValueError(f"need at least {pieces} training examples, got {len(items)}")
    total = config.max_steps or config.num_epochs * steps_per_epoch
    session = TrainingSession(
        config=config, model=model, total_steps=total, evaluate=evaluate, progress=progress
    )
    rank, device = session.rank, session.device
    with session:
        plans: dict[int, list[list[int]]] = {}
        for step in session.steps():
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
                # all-zero weights (AI pairs of weight 0): no gradient, not a division by zero
                share = sum(units[j] for j in part) * world / step_units if step_units else 0.0
                # DDP all-reduces on the step's last backward only
                with session.no_sync(n == len(parts) - 1):
                    with autocast(device, config.bf16):
                        loss, metrics = train_step(session.model, [items[j] for j in part])
                    (loss * share).backward()
                w = share / world
                for k, v in {"loss": loss.item(), **metrics}.items():
                    sums[k] = sums.get(k, 0.0) + v * (1 if k == "tokens" else w)
            # each process's sums are its weighted share of the step: summed, they are the step's
            session.end_step(sums, grad_norm=session.optimizer_step(), reduce="sum")
    return session.fitted()
