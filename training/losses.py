"""Losses as small pure functions: tensors in, per-example losses out.

Each function returns one loss per example (or per pair) so the training loop can weight
micro-batches exactly; the trainer takes the mean. Variants are picked through the mappings at the
bottom (``PAIR_LOSSES``), never through an if-chain.

Notation: ``pi`` is the policy, ``ref`` the frozen reference, ``logp(y|x)`` the summed log-prob of
the response tokens, and a *log-ratio* is ``logp_pi(y|x) - logp_ref(y|x)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor


def bradley_terry_loss(
    chosen_rewards: Tensor,  # (B,)
    rejected_rewards: Tensor,  # (B,)
    margin: Tensor | None = None,  # (B,) rater strength, >= 0
    center_coef: float = 0.0,
) -> Tensor:  # (B,)
    """Bradley-Terry reward-model loss, with the Llama 2 margin and reward centering.

    Bradley & Terry (1952); InstructGPT https://arxiv.org/abs/2203.02155 (eq. 1);
    margin: Llama 2 https://arxiv.org/abs/2307.09288 (eq. 2); centering: Eisenstein et al.
    https://arxiv.org/abs/2312.09244.

        loss_i = -log sigmoid(r_c - r_r - m_i) + c * (r_c + r_r)^2

    The centering term pulls the mean reward towards 0 so rewards are comparable across runs.
    """
    diff = chosen_rewards - rejected_rewards  # (B,)
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff)
    if center_coef:
        loss = loss + center_coef * (chosen_rewards + rejected_rewards) ** 2
    return loss


def dpo_sigmoid_loss(
    chosen_logratios: Tensor,  # (B,)
    rejected_logratios: Tensor,  # (B,)
    *,
    beta: float,
    label_smoothing: float = 0.0,
    chosen_lengths: Tensor | None = None,  # unused; same signature as ipo_loss
    rejected_lengths: Tensor | None = None,
) -> Tensor:  # (B,)
    """DPO, with conservative label smoothing (cDPO).

    Rafailov et al. 2023 https://arxiv.org/abs/2305.18290 (eq. 7); cDPO: Mitchell 2023
    https://ericmitchell.ai/cdpo.pdf. With h = beta * (chosen_logratio - rejected_logratio) and
    eps the assumed label-flip probability:

        loss = -(1 - eps) * log sigmoid(h) - eps * log sigmoid(-h)
    """
    h = beta * (chosen_logratios - rejected_logratios)  # (B,)
    return -(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)


def ipo_loss(
    chosen_logratios: Tensor,  # (B,)
    rejected_logratios: Tensor,  # (B,)
    *,
    beta: float,
    label_smoothing: float = 0.0,  # unused; same signature as dpo_sigmoid_loss
    chosen_lengths: Tensor | None = None,  # (B,) response tokens
    rejected_lengths: Tensor | None = None,
) -> Tensor:  # (B,)
    """IPO: regress the log-ratio gap onto 1 / (2 beta).

    Azar et al. 2023 https://arxiv.org/abs/2310.12036 (eq. 17). Log-ratios are averaged per
    response token (as in TRL, confirmed with the authors), so with n_c, n_r the lengths:

        loss = (chosen_logratio / n_c - rejected_logratio / n_r - 1 / (2 beta))^2
    """
    if chosen_lengths is not None and rejected_lengths is not None:
        chosen_logratios = chosen_logratios / chosen_lengths.clamp(min=1)
        rejected_logratios = rejected_logratios / rejected_lengths.clamp(min=1)
    return (chosen_logratios - rejected_logratios - 1 / (2 * beta)) ** 2


def kto_kl_estimate(policy_kl_logps: Tensor, ref_kl_logps: Tensor) -> Tensor:  # () scalar
    """KTO's reference point z0 = max(0, mean KL) from mismatched (x, y') pairs, detached.

    Ethayarajh et al. 2024 https://arxiv.org/abs/2402.01306 (section 4.1):

        z0 = max(0, mean_j [logp_pi(y'_j | x_j) - logp_ref(y'_j | x_j)])

    Detached: no gradient flows through the reference point.
    """
    return (policy_kl_logps - ref_kl_logps).mean().detach().clamp(min=0)


def kto_loss(
    logratios: Tensor,  # (B,) policy - reference log-ratio of each completion
    desirable: Tensor,  # (B,) bool
    kl: Tensor,  # () reference point z0 from kto_kl_estimate
    *,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> Tensor:  # (B,)
    """Kahneman-Tversky Optimization.

    Ethayarajh et al. 2024 https://arxiv.org/abs/2402.01306 (eq. 7), with r = log-ratio:

        desirable:    loss = lambda_D * (1 - sigmoid(beta * (r - z0)))
        undesirable:  loss = lambda_U * (1 - sigmoid(beta * (z0 - r)))
    """
    chosen = desirable_weight * (1 - torch.sigmoid(beta * (logratios - kl)))
    rejected = undesirable_weight * (1 - torch.sigmoid(beta * (kl - logratios)))
    return torch.where(desirable, chosen, rejected)


def sft_loss(
    logits: Tensor,  # (B, T, V)
    labels: Tensor,  # (B, T), -100 on prompt and padding
) -> Tensor:  # (B,) summed over response tokens
    """Next-token cross-entropy on response tokens, summed per sequence.

    Divide by the number of response tokens (the trainer does, per optimizer step) for the usual
    token-mean:  loss = -sum_{t in response} log p(y_t | y_<t, x).
    """
    return -token_logps(logits, labels).sum(-1)


def token_logps(logits: Tensor, labels: Tensor) -> Tensor:  # (B, T-1)
    """log p(label_t | tokens < t) for each labelled position; 0 where the label is -100."""
    shifted = logits[:, :-1].float()  # (B, T-1, V) position t predicts token t + 1
    targets = labels[:, 1:]  # (B, T-1)
    # log_softmax + gather on the contiguous last dim is ~2x faster on CPU than cross_entropy
    # over a transposed (B, V, T) view.
    logps = torch.log_softmax(shifted, dim=-1).gather(-1, targets.clamp(min=0)[..., None])
    return logps.squeeze(-1) * (targets != -100)  # (B, T-1)


def weighted_mean(losses: Tensor, weights: Tensor) -> Tensor:  # () scalar
    """``sum_i w_i * loss_i / sum_i w_i``: the reduction of the pair losses (a pair of weight 2
    counts as the pair twice, weight 0 as no pair). All weights 0 give 0 with a zero gradient
    (that micro-batch's share of the step is 0 too, see :func:`training.loop.fit`); no host
    sync, so it costs nothing on a GPU."""
    return (losses * weights).sum() / weights.sum().clamp(min=1e-12)


PairLoss = Callable[..., Tensor]

PAIR_LOSSES: dict[str, PairLoss] = {"sigmoid": dpo_sigmoid_loss, "ipo": ipo_loss}
