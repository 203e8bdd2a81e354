"""Reward-model trainer: preference pairs -> a scalar reward (Bradley-Terry).

The model is a sequence classifier with one output (``AutoModelForSequenceClassification``,
``num_labels=1``): a decoder reads the last token, an encoder (e.g. MiniLM) its pooled output.
Chosen and rejected go through one concatenated forward. With ``length_debias = "odin"`` the head
has two outputs, quality and length (:mod:`training.odin`), and only the quality head is saved.

Held-out metrics include the length-balanced accuracy and its parts
(:mod:`training.pair_accuracy`): a model that learnt "shorter wins" shows it there.

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
from training.losses import bradley_terry_loss, weighted_mean
from training.modeling import (
    autocast,
    fit_to_context,
    load_reward_model,
    load_tokenizer,
    pick_device,
    prepare_for_training,
    to_device,
    unwrap_for_save,
)
from training.odin import (
    HEADS,
    LENGTH,
    QUALITY,
    head_weight,
    odin_correlation_loss,
    odin_orthogonality_loss,
    quality_only,
)
from training.pair_accuracy import length_balanced_accuracy
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
    eval_chars: list[tuple[int, int]]  # characters of each eval pair's chosen and rejected

    @property
    def odin(self) -> bool:
        return self.config.length_debias == "odin"


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
    heads = HEADS if config.length_debias == "odin" else 1
    model = load_reward_model(config.model, device, tokenizer.pad_token_id, num_labels=heads)
    if config.freeze_backbone:
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith(HEAD_PREFIXES) or ".pooler." in name
    model = prepare_for_training(model, config, "SEQ_CLS")
    chars = [(len(p.chosen), len(p.rejected)) for p in evals]
    return State(config, tokenizer, model, device, train_enc, eval_enc, counts, chars)


def head_outputs(
    model: Any, tokenizer: Any, seqs: Sequence[Any], device: torch.device
) -> torch.Tensor:
    """The head's outputs (N, K) for encoded (prompt, response) sequences in one padded
    forward: K = 1 (the reward), or 2 with ODIN (quality, length)."""
    batch = pad_sequences([classifier_ids(tokenizer, s) for s in seqs], tokenizer.pad_token_id)
    batch = to_device(batch, device)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.float()  # (N, K)


def rewards(model: Any, tokenizer: Any, seqs: Sequence[Any], device: torch.device) -> torch.Tensor:
    """Scalar rewards (N,): the only head, or ODIN's quality head."""
    return head_outputs(model, tokenizer, seqs, device)[:, QUALITY]


def _forward(state: State, model: Any, pairs: Sequence[EncodedPair]) -> dict[str, torch.Tensor]:
    seqs = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    heads = head_outputs(model, state.tokenizer, seqs, state.device)  # (2B, K)
    chosen, rejected = heads[:, QUALITY].chunk(2)  # (B,) each: the reward that is kept
    margin = None
    if state.config.use_margin:
        margin = torch.tensor([p.margin for p in pairs], device=state.device)
    # ODIN ranks on the sum of both heads (the length head takes the length part of it)
    fit_c, fit_r = heads.sum(-1).chunk(2) if state.odin else (chosen, rejected)
    losses = bradley_terry_loss(fit_c, fit_r, margin, state.config.center_rewards_coef)
    return {
        "losses": losses,
        "chosen": chosen.detach(),
        "rejected": rejected.detach(),
        "heads": heads,
    }


def _response_lengths(pairs: Sequence[EncodedPair], device: torch.device) -> torch.Tensor:
    """Response tokens (2B,), chosen then rejected, in ``_forward``'s order."""
    lengths = [len(p.chosen.response_ids) for p in pairs]
    lengths += [len(p.rejected.response_ids) for p in pairs]
    return torch.tensor(lengths, device=device)


def _odin_terms(
    state: State, model: Any, pairs: Sequence[EncodedPair], heads: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """ODIN's correlation and orthogonality terms for one micro-batch, weighted, and their
    values as metrics."""
    lengths = _response_lengths(pairs, state.device)
    corr = odin_correlation_loss(heads[:, QUALITY], heads[:, LENGTH], lengths)
    weight = head_weight(model)  # (2, H)
    orth = odin_orthogonality_loss(weight[QUALITY].float(), weight[LENGTH].float())
    cfg = state.config
    extra = cfg.odin_correlation_coef * corr + cfg.odin_orthogonal_coef * orth
    return extra, {"odin/correlation_loss": corr.item(), "odin/orthogonality": orth.item()}


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
    weights = torch.tensor([p.weight for p in pairs], device=state.device)  # (B,)
    loss = weighted_mean(out["losses"], weights)
    metrics = {**_metrics(out), "tokens": float(tokens)}
    if state.odin:
        extra, odin_metrics = _odin_terms(state, model, pairs, out["heads"])
        loss, metrics = loss + extra, {**metrics, **odin_metrics}
    return loss, metrics


@torch.no_grad()
def evaluate(state: State, model: Any) -> dict[str, float]:
    """Held-out pairwise accuracy (``accuracy`` = ``rewards/accuracies``) beside its
    length-balanced form and parts (:func:`training.pair_accuracy.length_balanced_accuracy`,
    lengths in characters), loss, rewards, the rewards' correlation with response length
    (tokens) and the margins' calibration ``temperature``. With ODIN the reward is the quality
    head, and ``length_head_correlation`` says how much length the length head took."""
    if not state.eval:
        return {}
    model.eval()
    outs = []
    bs = state.config.eval_batch_size
    index = sorted(range(len(state.eval)), key=lambda i: -state.eval[i].length)
    order = [state.eval[i] for i in index]
    for start in range(0, len(order), bs):
        with autocast(state.device, state.config.bf16):
            outs.append(_forward(state, model, order[start : start + bs]))
    cat = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    metrics = _metrics(cat)
    metrics["loss"] = cat["losses"].mean().item()
    metrics["accuracy"] = metrics["rewards/accuracies"]
    chars = [state.eval_chars[i] for i in index]
    balanced = length_balanced_accuracy(
        cat["chosen"].tolist(),
        cat["rejected"].tolist(),
        [c for c, _ in chars],
        [r for _, r in chars],
    )
    metrics.update({k: v for k, v in balanced.items() if k != "accuracy"})
    lengths = [len(p.chosen.response_ids) for p in order] + [
        len(p.rejected.response_ids) for p in order
    ]
    correlation = length_correlation(torch.cat([cat["chosen"], cat["rejected"]]), lengths)
    if correlation is not None:
        metrics["length_correlation"] = correlation
    if state.odin:
        # each batch's heads are its chosen then its rejected responses, batch after batch
        head_lengths = [
            n
            for start in range(0, len(order), bs)
            for n in _response_lengths(order[start : start + bs], state.device).tolist()
        ]
        head = length_correlation(cat["heads"][:, LENGTH], head_lengths)
        if head is not None:
            metrics["length_head_correlation"] = head
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
        units=[p.weight for p in state.train],
        train_step=lambda m, pairs: train_step(state, m, pairs),
        evaluate=(lambda m: evaluate(state, m)) if state.eval else None,
        progress=progress,
    )
    if state.odin:  # the artifact is an ordinary one-output reward model: the quality head
        state.model = quality_only(unwrap_for_save(state.model))
    return finish_run(state, fitted, trainer=NAME, started=t0, data=state.train)
