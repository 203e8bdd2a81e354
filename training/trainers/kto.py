"""KTO trainer: thumbs-up/down examples -> a policy, against a frozen reference.

Same shape as :mod:`training.trainers.dpo`. Each example also carries a *mismatched* sequence (its
prompt with another example's completion, fixed at tokenization); the policy's log-probs of those
(no gradient) minus the reference's give KTO's reference point z0 for the micro-batch. Reference
log-probs of both are precomputed and cached before training.

Public API for the workers::

    result = training.trainers.kto.run(KTOConfig(...), train_examples, eval_examples, progress=cb)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training.config import KTOConfig, default_cache_dir
from training.loop import ProgressCallback, RunResult, fit, init_distributed, seed_everything
from training.losses import kto_kl_estimate, kto_loss
from training.modeling import (
    autocast,
    fingerprint,
    fit_to_context,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    prepare_for_training,
)
from training.records import UnpairedExample
from training.reference import cached_logps
from training.shared_prefix import PAD, pack, shared_prefix_logps
from training.tokenize import EncodedUnpaired, Encoder, encode_unpaired
from training.trainers.common import finish_run, load_splits

NAME = "kto"  # this trainer's entry in training/contract/trainers.py

Item = tuple[EncodedUnpaired, float, float]  # example, reference logp, reference logp of KL seq


@dataclass
class State:
    config: KTOConfig
    tokenizer: Any
    model: Any
    device: torch.device
    train: list[Item]
    eval: list[Item]
    counts: dict[str, int]


def _with_reference(
    examples: list[EncodedUnpaired],
    ref: Any,
    config: KTOConfig,
    fp: str,
    pad: int,
    device: torch.device,
) -> list[Item]:
    seqs = [e.completion for e in examples] + [e.kl for e in examples]
    if not seqs:
        return []
    logps, _ = cached_logps(
        ref,
        seqs,
        model_fingerprint=fp,
        cache_dir=config.ref_cache_dir or default_cache_dir(),
        pad_id=pad,
        batch_size=config.eval_batch_size,
        device=device,
        bf16=config.bf16,
    )
    n = len(examples)
    return [(e, float(logps[i]), float(logps[n + i])) for i, e in enumerate(examples)]


def setup(
    config: KTOConfig,
    train_records: Sequence[UnpairedExample] | None = None,
    eval_records: Sequence[UnpairedExample] | None = None,
) -> State:
    init_distributed()
    seed_everything(config.seed)
    device = pick_device(config.device)
    train, evals, counts = load_splits(config, "unpaired", train_records, eval_records)
    counts["train/desirable"] = sum(r.desirable for r in train)
    counts["train/undesirable"] = len(train) - counts["train/desirable"]
    tokenizer = load_tokenizer(config.model)
    max_length, max_prompt_length = fit_to_context(
        config.model, config.max_length, config.max_prompt_length
    )
    encoder = Encoder(tokenizer, max_length=max_length, max_prompt_length=max_prompt_length)
    train_enc, eval_enc = encode_unpaired(encoder, train), encode_unpaired(encoder, evals)
    counts.update(encoder.report.as_dict())
    model = load_causal_lm(config.model, device)
    ref_path = config.ref_model or config.model
    ref = load_causal_lm(ref_path, device) if config.ref_model else model
    fp, pad = fingerprint(ref_path), tokenizer.pad_token_id
    train_items = _with_reference(train_enc, ref, config, fp, pad, device)
    eval_items = _with_reference(eval_enc, ref, config, fp, pad, device)
    del ref
    gc.collect()
    model = prepare_for_training(model, config, "CAUSAL_LM")
    return State(config, tokenizer, model, device, train_items, eval_items, counts)


def _forward(state: State, model: Any, items: Sequence[Item]) -> dict[str, torch.Tensor]:
    """Policy log-probs of the completions (with grad) and of the KL completions (without), each
    prompt computed once for its completions in the batch (:mod:`training.shared_prefix`)."""
    cfg, pad = state.config, state.tokenizer.pad_token_id
    examples = [it[0] for it in items]
    batch = pack([(e.completion.prompt_ids, e.completion.response_ids) for e in examples], pad)
    kl_batch = pack([(e.kl.prompt_ids, e.kl.response_ids) for e in examples], pad)
    batch, kl_batch = batch.to(state.device), kl_batch.to(state.device)
    logps, _ = shared_prefix_logps(model, batch, len(examples))  # (B,)
    with torch.no_grad():
        unwrapped = getattr(model, "module", model)
        kl_logps, _ = shared_prefix_logps(unwrapped, kl_batch, len(examples))  # (B,)
    ref = torch.tensor([[it[1], it[2]] for it in items], device=state.device)  # (B, 2)
    kl = kto_kl_estimate(kl_logps.float(), ref[:, 1])
    logratios = logps.float() - ref[:, 0]
    desirable = torch.tensor([e.desirable for e in examples], device=state.device)
    losses = kto_loss(
        logratios,
        desirable,
        kl,
        beta=cfg.beta,
        desirable_weight=cfg.desirable_weight,
        undesirable_weight=cfg.undesirable_weight,
    )
    return {
        "losses": losses,
        "rewards": cfg.beta * logratios.detach(),
        "logps": logps.detach().float(),
        "desirable": desirable,
        "kl": kl.reshape(1),
        "tokens": (batch.segments != PAD).sum() + (kl_batch.segments != PAD).sum(),
    }


def _metrics(out: dict[str, torch.Tensor]) -> dict[str, float]:
    d = out["desirable"]
    metrics = {"kl": out["kl"].mean().item()}
    if d.any():
        metrics["rewards/chosen"] = out["rewards"][d].mean().item()
        metrics["logps/chosen"] = out["logps"][d].mean().item()
    if (~d).any():
        metrics["rewards/rejected"] = out["rewards"][~d].mean().item()
        metrics["logps/rejected"] = out["logps"][~d].mean().item()
    if d.any() and (~d).any():
        metrics["rewards/margins"] = metrics["rewards/chosen"] - metrics["rewards/rejected"]
    return metrics


def train_step(
    state: State, model: Any, items: list[Item]
) -> tuple[torch.Tensor, dict[str, float]]:
    out = _forward(state, model, items)
    return out["losses"].mean(), {"kl": out["kl"].item(), "tokens": float(out["tokens"])}


@torch.no_grad()
def evaluate(state: State, model: Any) -> dict[str, float]:
    """Held-out KTO metrics plus ``rewards/accuracies``: the implicit reward (beta * log-ratio)
    ranks a desirable above an undesirable completion (AUC over all such cross pairs)."""
    if not state.eval:
        return {}
    model.eval()
    outs = []
    bs = state.config.eval_batch_size
    for start in range(0, len(state.eval), bs):
        with autocast(state.device, state.config.bf16):
            outs.append(_forward(state, model, state.eval[start : start + bs]))
    cat = {k: torch.cat([o[k] for o in outs]) for k in outs[0] if k != "tokens"}
    metrics = _metrics(cat)
    metrics["loss"] = cat["losses"].mean().item()
    d, r = cat["desirable"], cat["rewards"]
    if d.any() and (~d).any():
        metrics["rewards/accuracies"] = (r[d][:, None] > r[~d][None, :]).float().mean().item()
    return metrics


def run(
    config: KTOConfig,
    train_records: Sequence[UnpairedExample] | None = None,
    eval_records: Sequence[UnpairedExample] | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Train a KTO policy; records default to ``config.train_file``/``eval_file``."""
    t0 = time.perf_counter()
    state = setup(config, train_records, eval_records)
    fitted = fit(
        config=config,
        model=state.model,
        items=state.train,
        lengths=[it[0].length for it in state.train],
        units=[1] * len(state.train),
        # a prompt's completions in one step share its forward
        groups=[it[0].completion.prompt_ids for it in state.train],
        train_step=lambda m, items: train_step(state, m, items),
        evaluate=(lambda m: evaluate(state, m)) if state.eval else None,
        progress=progress,
    )
    return finish_run(state, fitted, trainer=NAME, started=t0, data=[it[0] for it in state.train])
