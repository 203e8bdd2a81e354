"""DPO trainer: preference pairs -> a policy, against a frozen reference.

Read top to bottom: ``setup`` loads data, tokenizer and model and precomputes the reference
log-probs (cached on disk; the reference is the starting model unless ``ref_model`` is set, and is
never held beside the policy during training); ``train_step`` runs chosen and rejected in one
forward that computes their shared prompt once (:mod:`training.shared_prefix`) and applies the
configured pair loss; ``evaluate`` reports TRL-named metrics
on the held-out pairs; ``run`` ties them together through :func:`training.loop.fit` and ends in
:func:`training.trainers.common.finish_run` (the result and the artifact).

Public API for the workers::

    result = training.trainers.dpo.run(DPOConfig(...), train_pairs, eval_pairs, progress=cb)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training.config import DPOConfig, default_cache_dir
from training.loop import ProgressCallback, RunResult, fit, init_distributed, seed_everything
from training.losses import PAIR_LOSSES, weighted_mean
from training.modeling import (
    autocast,
    fingerprint,
    fit_to_context,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    prepare_for_training,
)
from training.records import PreferencePair
from training.reference import cached_logps
from training.shared_prefix import PAD, pack, shared_prefix_logps
from training.tokenize import EncodedPair, Encoder, encode_pairs
from training.trainers.common import finish_run, load_splits

NAME = "dpo"  # this trainer's entry in training/contract/trainers.py

Item = tuple[EncodedPair, float, float]  # pair, reference logp(chosen), reference logp(rejected)


@dataclass
class State:
    config: DPOConfig
    tokenizer: Any
    model: Any
    device: torch.device
    train: list[Item]
    eval: list[Item]
    counts: dict[str, int]


def _with_reference(
    pairs: list[EncodedPair],
    ref_model: Any,
    config: DPOConfig,
    fp: str,
    pad_id: int,
    device: torch.device,
) -> list[Item]:
    seqs = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    if not seqs:
        return []
    logps, _ = cached_logps(
        ref_model,
        seqs,
        model_fingerprint=fp,
        cache_dir=config.ref_cache_dir or default_cache_dir(),
        pad_id=pad_id,
        batch_size=config.eval_batch_size,
        device=device,
        bf16=config.bf16,
    )
    n = len(pairs)
    return [(p, float(logps[i]), float(logps[n + i])) for i, p in enumerate(pairs)]


def setup(
    config: DPOConfig,
    train_records: Sequence[PreferencePair] | None = None,
    eval_records: Sequence[PreferencePair] | None = None,
) -> State:
    init_distributed()
    seed_everything(config.seed)
    device = pick_device(config.device)
    train, evals, counts = load_splits(config, "preference", train_records, eval_records)
    tokenizer = load_tokenizer(config.model)
    max_length, max_prompt_length = fit_to_context(
        config.model, config.max_length, config.max_prompt_length
    )
    encoder = Encoder(tokenizer, max_length=max_length, max_prompt_length=max_prompt_length)
    train_enc, eval_enc = encode_pairs(encoder, train), encode_pairs(encoder, evals)
    counts.update(encoder.report.as_dict())
    model = load_causal_lm(config.model, device)
    ref_path = config.ref_model or config.model
    ref = load_causal_lm(ref_path, device) if config.ref_model else model
    fp = fingerprint(ref_path)
    pad = tokenizer.pad_token_id
    train_items = _with_reference(train_enc, ref, config, fp, pad, device)
    eval_items = _with_reference(eval_enc, ref, config, fp, pad, device)
    del ref
    gc.collect()
    model = prepare_for_training(model, config, "CAUSAL_LM")
    return State(config, tokenizer, model, device, train_items, eval_items, counts)


def _forward(state: State, model: Any, items: Sequence[Item]) -> dict[str, torch.Tensor]:
    """Policy log-probs of chosen and rejected in one forward, each prompt computed once for both
    answers (:mod:`training.shared_prefix`), and the loss."""
    cfg = state.config
    pairs = [it[0] for it in items]
    seqs = [(p.chosen.prompt_ids, p.chosen.response_ids) for p in pairs]
    seqs += [(p.rejected.prompt_ids, p.rejected.response_ids) for p in pairs]
    batch = pack(seqs, state.tokenizer.pad_token_id).to(state.device)  # (~B, T)
    logps, lengths = shared_prefix_logps(model, batch, len(seqs))  # (2B,), (2B,)
    chosen, rejected = logps.float().chunk(2)  # (B,) each
    chosen_len, rejected_len = lengths.chunk(2)
    ref = torch.tensor([[it[1], it[2]] for it in items], device=state.device)  # (B, 2)
    chosen_lr, rejected_lr = chosen - ref[:, 0], rejected - ref[:, 1]
    losses = PAIR_LOSSES[cfg.loss_type](
        chosen_lr,
        rejected_lr,
        beta=cfg.beta,
        label_smoothing=cfg.label_smoothing,
        chosen_lengths=chosen_len,
        rejected_lengths=rejected_len,
    )
    return {
        "losses": losses,
        "chosen_rewards": cfg.beta * chosen_lr.detach(),
        "rejected_rewards": cfg.beta * rejected_lr.detach(),
        "chosen_logps": chosen.detach(),
        "rejected_logps": rejected.detach(),
        "tokens": (batch.segments != PAD).sum(),
    }


def _metrics(out: dict[str, torch.Tensor]) -> dict[str, float]:
    c, r = out["chosen_rewards"], out["rejected_rewards"]
    return {
        "rewards/chosen": c.mean().item(),
        "rewards/rejected": r.mean().item(),
        "rewards/accuracies": (c > r).float().mean().item(),
        "rewards/margins": (c - r).mean().item(),
        "logps/chosen": out["chosen_logps"].mean().item(),
        "logps/rejected": out["rejected_logps"].mean().item(),
    }


def train_step(
    state: State, model: Any, items: list[Item]
) -> tuple[torch.Tensor, dict[str, float]]:
    out = _forward(state, model, items)
    weights = torch.tensor([it[0].weight for it in items], device=state.device)  # (B,)
    loss = weighted_mean(out["losses"], weights)
    return loss, {**_metrics(out), "tokens": float(out["tokens"])}


@torch.no_grad()
def evaluate(state: State, model: Any) -> dict[str, float]:
    """Held-out metrics; ``kl`` is the mean policy/reference log-ratio of the data responses
    divided by beta (an off-policy proxy; :mod:`training.evaluate` measures KL on samples)."""
    if not state.eval:
        return {}
    model.eval()
    outs = []
    order = sorted(range(len(state.eval)), key=lambda i: -state.eval[i][0].length)
    for start in range(0, len(order), state.config.eval_batch_size):
        chunk = [state.eval[i] for i in order[start : start + state.config.eval_batch_size]]
        with autocast(state.device, state.config.bf16):
            outs.append(_forward(state, model, chunk))
    cat = {k: torch.cat([o[k] for o in outs]) for k in outs[0] if k != "tokens"}
    metrics = _metrics(cat)
    metrics["loss"] = cat["losses"].mean().item()
    kl = torch.cat([cat["chosen_rewards"], cat["rejected_rewards"]]) / state.config.beta
    metrics["kl"] = kl.mean().item()
    return metrics


def run(
    config: DPOConfig,
    train_records: Sequence[PreferencePair] | None = None,
    eval_records: Sequence[PreferencePair] | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Train a DPO policy; records default to ``config.train_file``/``eval_file``."""
    t0 = time.perf_counter()
    state = setup(config, train_records, eval_records)
    fitted = fit(
        config=config,
        model=state.model,
        items=state.train,
        lengths=[2 * it[0].length for it in state.train],
        units=[it[0].weight for it in state.train],
        train_step=lambda m, items: train_step(state, m, items),
        evaluate=(lambda m: evaluate(state, m)) if state.eval else None,
        progress=progress,
    )
    return finish_run(state, fitted, trainer=NAME, started=t0, data=[it[0] for it in state.train])
