"""Reward-model trainer: preference pairs -> a scalar reward (Bradley-Terry).

The model is a sequence classifier with one output (``AutoModelForSequenceClassification``,
``num_labels=1``): a decoder reads the last token, an encoder (e.g. MiniLM) its pooled output.
Chosen and rejected go through one concatenated forward.

Public API for the workers::

    result = training.trainers.reward_model.run(RewardConfig(...), train_pairs, eval_pairs)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training.batching import pad_sequences
from training.calibration import fit_temperature
from training.config import RewardConfig
from training.loop import ProgressCallback, RunResult, fit, init_distributed, seed_everything
from training.losses import bradley_terry_loss
from training.modeling import (
    autocast,
    fit_to_context,
    load_reward_model,
    load_tokenizer,
    pick_device,
    prepare_for_training,
    to_device,
)
from training.records import PreferencePair
from training.tokenize import EncodedPair, Encoder, classifier_ids, encode_pairs, n_special_tokens
from training.trainers.common import finish_run, load_splits

NAME = "rm"  # this trainer's entry in training/contract/trainers.py

# Fewer held-out pairs than this fit no calibration temperature (it would be noise).
MIN_CALIBRATION_PAIRS = 8
# Parameter names of the scalar head in transformers' sequence classifiers (BERT-like, decoders).
HEAD_PREFIXES = ("classifier", "score")


@dataclass
class State:
    config: RewardConfig
    tokenizer: Any
    model: Any
    device: torch.device
    train: list[EncodedPair]
    eval: list[EncodedPair]
    counts: dict[str, int]


def setup(
    config: RewardConfig,
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
    encoder = Encoder(
        tokenizer,
        max_length=max_length - n_special_tokens(tokenizer),
        max_prompt_length=max_prompt_length,
    )
    train_enc, eval_enc = encode_pairs(encoder, train), encode_pairs(encoder, evals)
    counts.update(encoder.report.as_dict())
    model = load_reward_model(config.model, device, tokenizer.pad_token_id)
    if config.freeze_backbone:
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith(HEAD_PREFIXES) or ".pooler." in name
    model = prepare_for_training(model, config, "SEQ_CLS")
    return State(config, tokenizer, model, device, train_enc, eval_enc, counts)


def rewards(model: Any, tokenizer: Any, seqs: Sequence[Any], device: torch.device) -> torch.Tensor:
    """Scalar rewards (N,) for encoded (prompt, response) sequences in one padded forward."""
    batch = pad_sequences([classifier_ids(tokenizer, s) for s in seqs], tokenizer.pad_token_id)
    batch = to_device(batch, device)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.squeeze(-1).float()  # (N,)


def _forward(state: State, model: Any, pairs: Sequence[EncodedPair]) -> dict[str, torch.Tensor]:
    seqs = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    chosen, rejected = rewards(model, state.tokenizer, seqs, state.device).chunk(2)  # (B,) each
    margin = None
    if state.config.use_margin:
        margin = torch.tensor([p.margin for p in pairs], device=state.device)
    losses = bradley_terry_loss(chosen, rejected, margin, state.config.center_rewards_coef)
    return {"losses": losses, "chosen": chosen.detach(), "rejected": rejected.detach()}


def _metrics(out: dict[str, torch.Tensor]) -> dict[str, float]:
    c, r = out["chosen"], out["rejected"]
    return {
        "rewards/chosen": c.mean().item(),
        "rewards/rejected": r.mean().item(),
        "rewards/accuracies": (c > r).float().mean().item(),
        "rewards/margins": (c - r).mean().item(),
    }


def train_step(
    state: State, model: Any, pairs: list[EncodedPair]
) -> tuple[torch.Tensor, dict[str, float]]:
    out = _forward(state, model, pairs)
    tokens = sum(p.chosen.length + p.rejected.length for p in pairs)
    return out["losses"].mean(), {**_metrics(out), "tokens": float(tokens)}


@torch.no_grad()
def evaluate(state: State, model: Any) -> dict[str, float]:
    """Held-out pairwise accuracy (``accuracy`` = ``rewards/accuracies``), loss, rewards, the
    rewards' correlation with response length and the margins' calibration ``temperature``."""
    if not state.eval:
        return {}
    model.eval()
    outs = []
    bs = state.config.eval_batch_size
    order = sorted(state.eval, key=lambda p: -p.length)
    for start in range(0, len(order), bs):
        with autocast(state.device, state.config.bf16):
            outs.append(_forward(state, model, order[start : start + bs]))
    cat = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    metrics = _metrics(cat)
    metrics["loss"] = cat["losses"].mean().item()
    metrics["accuracy"] = metrics["rewards/accuracies"]
    lengths = [len(p.chosen.response_ids) for p in order] + [
        len(p.rejected.response_ids) for p in order
    ]
    correlation = length_correlation(torch.cat([cat["chosen"], cat["rejected"]]), lengths)
    if correlation is not None:
        metrics["length_correlation"] = correlation
    if len(order) >= MIN_CALIBRATION_PAIRS:
        metrics["temperature"] = fit_temperature((cat["chosen"] - cat["rejected"]).tolist())
    return metrics


def length_correlation(scores: torch.Tensor, lengths: Sequence[int]) -> float | None:
    """Pearson correlation of rewards with response length in tokens, over every held-out
    response: a reward model that pays for length shows up here before the policy learns to
    ramble. None when either side is constant (undefined)."""
    if len(lengths) < 3:
        return None
    data = torch.stack([scores.float().cpu(), torch.tensor(lengths, dtype=torch.float32)])
    if bool((data.std(dim=1) == 0).any()):
        return None
    return float(torch.corrcoef(data)[0, 1])


def run(
    config: RewardConfig,
    train_records: Sequence[PreferencePair] | None = None,
    eval_records: Sequence[PreferencePair] | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Train a reward model; records default to ``config.train_file``/``eval_file``."""
    t0 = time.perf_counter()
    state = setup(config, train_records, eval_records)
    fitted = fit(
        config=config,
        model=state.model,
        items=state.train,
        lengths=[2 * p.length for p in state.train],
        units=[1] * len(state.train),
        train_step=lambda m, pairs: train_step(state, m, pairs),
        evaluate=(lambda m: evaluate(state, m)) if state.eval else None,
        progress=progress,
    )
    return finish_run(state, fitted, trainer=NAME, started=t0, data=state.train)
