"""ODIN: a reward model with a separate length head, so the reward used is not a length proxy.

Chen et al. 2024, "ODIN: Disentangled Reward Mitigates Hacking in RLHF",
https://arxiv.org/abs/2402.07319 (the disentangled reward model). The reward model's scalar
head becomes two linear heads on the same pooled features: row 0 of the head's weight is the
*quality* head, row 1 the *length* head. The Bradley-Terry loss is taken on their sum
``r = r_Q + r_L``; the length head is pushed to correlate with response length, the quality
head to be uncorrelated with it, and the two heads' weights to be orthogonal, so that length
goes through the length head and the quality head keeps the rest. After training only the
quality head is kept (:func:`quality_only`): the saved artifact is an ordinary one-output reward
model, so every scorer (``score``, the workers, online RL) uses the quality head and loads it
as before.

The correlations are Pearson correlations over the responses of one micro-batch (chosen and
rejected together), as in the paper; lengths are response tokens, what the model reads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

QUALITY, LENGTH = 0, 1  # rows of the two-output head
HEADS = 2
HEAD_NAMES = ("score", "classifier")  # decoders' and encoders' sequence-classifier heads


def pearson(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:  # () scalar
    """Pearson correlation of two (N,) tensors, differentiable; 0 when either is constant.

    rho(x, y) = sum_i (x_i - mean x)(y_i - mean y)
                / sqrt(sum_i (x_i - mean x)^2 * sum_i (y_i - mean y)^2)
    """
    dx, dy = x - x.mean(), y - y.mean()  # (N,)
    return (dx * dy).sum() / torch.sqrt((dx * dx).sum() * (dy * dy).sum() + eps)


def odin_correlation_loss(
    quality: Tensor,  # (N,) quality-head rewards of every response in the batch
    length_reward: Tensor,  # (N,) length-head rewards of the same responses
    lengths: Tensor,  # (N,) response lengths
) -> Tensor:  # () scalar
    """ODIN's length term: the quality head uncorrelated with length, the length head carrying
    it, with rho the Pearson correlation over the batch's responses:

        L_len = |rho(r_Q, L)| - |rho(r_L, L)|

    The paper writes the second part as ``-rho(r_L, L)``: a length head that rises with length,
    right for its data, where the longer response was preferred two times in three. Where the
    shorter one wins (HH-RLHF harmless: 56 %), that sign makes the length head work against the
    labels, and the quality head then paid for length (measured: docs/training.md), so the
    length head here may carry length in either direction. It lies in [-1, 1]; the trainer adds
    ``odin_correlation_coef * L_len`` to the mean Bradley-Terry loss.
    """
    lengths = lengths.to(quality.dtype)
    return pearson(quality, lengths).abs() - pearson(length_reward, lengths).abs()


def odin_orthogonality_loss(
    quality_weight: Tensor,  # (H,) the quality head's weight
    length_weight: Tensor,  # (H,) the length head's weight
    eps: float = 1e-8,
) -> Tensor:  # () scalar
    """ODIN's orthogonality term between the two heads (paper: ``|W_Q^T W_L|``), here on the
    unit-normalised weights (the absolute cosine) so that shrinking a head cannot satisfy it:

        L_orth = |w_Q . w_L| / (||w_Q|| ||w_L||)
    """
    dot = (quality_weight * length_weight).sum()
    return dot.abs() / (quality_weight.norm() * length_weight.norm() + eps)


def head_weight(model: Any) -> Tensor:
    """The trainable (2, H) weight of the two-output head, wherever DDP or LoRA put it (LoRA
    trains a copy of the head under ``modules_to_save``; its frozen original is skipped)."""
    for name, param in model.named_parameters():
        parts = name.split(".")
        if (
            param.requires_grad
            and parts[-1] == "weight"
            and any(p in HEAD_NAMES for p in parts)
            and param.dim() == 2
            and param.shape[0] == HEADS
        ):
            return param
    raise ValueError("ODIN needs a trainable two-output `score` or `classifier` head")


def quality_only(model: Any) -> Any:
    """``model`` (a plain transformers sequence classifier, LoRA merged) with its two-output
    head replaced by a one-output head holding the quality row: the artifact to save."""
    name = next((n for n in HEAD_NAMES if isinstance(getattr(model, n, None), nn.Linear)), None)
    if name is None:
        raise ValueError("quality_only needs a linear `score` or `classifier` head")
    head: nn.Linear = getattr(model, name)
    single = nn.Linear(head.in_features, 1, bias=head.bias is not None)
    single = single.to(device=head.weight.device, dtype=head.weight.dtype)
    with torch.no_grad():
        single.weight.copy_(head.weight[QUALITY : QUALITY + 1])
        if head.bias is not None:
            single.bias.copy_(head.bias[QUALITY : QUALITY + 1])
    setattr(model, name, single)
    model.config.num_labels = 1
    return model
