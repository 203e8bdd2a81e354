"""Online-RL losses and advantage estimators as small pure functions: tensors in, tensors out.

Shapes: ``B`` sequences (responses), ``T`` response tokens (right-padded), ``mask`` (B, T) is 1 on
real response tokens (the end-of-turn token included) and 0 on padding. Per-token functions return
per-token values; the trainer aggregates them (token mean, or per-sequence mean), so micro-batches
and processes can be weighted exactly.

Notation: ``logp`` is log pi(y_t | x, y_<t) under the policy being trained, ``old_logp`` the same at
rollout time, ``ref_logp`` under the frozen reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:  # (B, T)
    """Per-token KL estimator k1 = log pi - log ref, for tokens sampled from pi.

    Schulman 2020, "Approximating KL divergence" http://joschu.net/blog/kl-approx.html. With
    r = ref(y) / pi(y) and y ~ pi:  k1 = -log r. Unbiased for KL(pi || ref), high variance, can be
    negative per sample. The PPO per-token reward (InstructGPT eq. 2) uses it.
    """
    return logp - ref_logp


def kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:  # (B, T)
    """k2 = (log r)^2 / 2 (Schulman 2020): biased, low variance, always >= 0."""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:  # (B, T)
    """k3 = (r - 1) - log r with r = ref / pi (Schulman 2020): unbiased and always >= 0.

    GRPO (Shao et al. 2024, https://arxiv.org/abs/2402.03300, eq. 4) adds it to the loss:
        D_KL = exp(ref - logp) - (ref - logp) - 1
    """
    log_r = ref_logp - logp
    return torch.exp(log_r) - log_r - 1


def ppo_token_rewards(
    scores: Tensor,  # (B,) reward-model score of each response
    kl: Tensor,  # (B, T) per-token KL estimate (k1)
    mask: Tensor,  # (B, T)
    beta: float,
) -> Tensor:  # (B, T)
    """Per-token reward: -beta * KL at every token, plus the score at the last response token.

    InstructGPT https://arxiv.org/abs/2203.02155 (eq. 2); Ziegler et al. 2019
    https://arxiv.org/abs/1909.08593; "The N implementation details of RLHF with PPO" (Huang et
    al. 2024, https://arxiv.org/abs/2403.17031):  r_t = -beta * kl_t + [t = last] * score.
    """
    rewards = -beta * kl * mask
    last = (mask.sum(-1).long() - 1).clamp(min=0)  # (B,) index of the last real token
    return rewards.scatter_add(1, last[:, None], scores[:, None].to(rewards.dtype))


def gae(
    rewards: Tensor,  # (B, T)
    values: Tensor,  # (B, T) V(s_t), the state before token t
    mask: Tensor,  # (B, T)
    *,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:  # advantages (B, T), returns (B, T)
    """Generalized advantage estimation; the value after the last token is 0.

    Schulman et al. 2016 https://arxiv.org/abs/1506.02438 (eq. 16):
        delta_t = r_t + gamma * V_{t+1} - V_t
        A_t = delta_t + gamma * lam * A_{t+1}          returns_t = A_t + V_t
    """
    rewards, values = rewards * mask, values * mask
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        adv[:, t] = running
    return adv * mask, (adv + values) * mask


Reducer = Callable[[Tensor], Tensor]  # sums a tensor over processes (identity on one process)


def masked_whiten(
    x: Tensor, mask: Tensor, *, shift_mean: bool = True, reduce: Reducer | None = None
) -> Tensor:
    """(x - mean) / std over the masked entries (unbiased variance, as TRL); ``shift_mean=False``
    keeps the mean (reward normalisation). ``reduce`` sums the moments over processes, so every
    process whitens with the statistics of the whole batch.

    "N implementation details" (Huang et al. 2024), advantage whitening:
        x' = (x - mu) / sqrt(var + 1e-8)   [+ mu when not shift_mean]
    """
    m = mask.to(x.dtype)
    moments = torch.stack([(x * m).sum(), (x * x * m).sum(), m.sum()]).double()
    if reduce is not None:
        moments = reduce(moments)
    total, squares, n = moments.tolist()
    mean = total / max(n, 1.0)
    var = (squares - n * mean * mean) / max(n - 1, 1.0)
    out = (x - mean) * torch.rsqrt(torch.tensor(max(var, 0.0) + 1e-8, dtype=x.dtype))
    return (out if shift_mean else out + mean) * m


def ppo_policy_loss(
    logp: Tensor,  # (B, T)
    old_logp: Tensor,  # (B, T)
    advantages: Tensor,  # (B, T), or (B, 1) for a sequence-level advantage
    *,
    clip: float,
) -> tuple[Tensor, Tensor]:  # per-token loss (B, T), clipped (B, T) bool
    """PPO clipped surrogate (negated, to minimise).

    Schulman et al. 2017 https://arxiv.org/abs/1707.06347 (eq. 7), ratio rho = exp(logp - old):
        loss_t = max(-A_t * rho_t, -A_t * clip(rho_t, 1 - eps, 1 + eps))
    ``clipped`` marks tokens where the clipped branch is taken (the clip fraction).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip, 1 + clip)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def ppo_value_loss(
    values: Tensor,  # (B, T) current critic
    old_values: Tensor,  # (B, T) critic at rollout time
    returns: Tensor,  # (B, T)
    *,
    clip: float,
) -> tuple[Tensor, Tensor]:  # per-token loss (B, T), clipped (B, T) bool
    """Clipped value loss ("N implementation details", detail 9; OpenAI baselines ppo2):
    v_clip = old + clip(v - old, -eps, eps)
    loss_t = 0.5 * max((v - R)^2, (v_clip - R)^2)
    """
    v_clipped = old_values + (values - old_values).clamp(-clip, clip)
    plain, clipped = (values - returns) ** 2, (v_clipped - returns) ** 2
    return 0.5 * torch.maximum(plain, clipped), clipped > plain


def rloo_advantages(rewards: Tensor, k: int) -> Tensor:  # (B,)
    """REINFORCE leave-one-out: each sample's baseline is the mean reward of the other k - 1
    samples of its prompt. Rewards are grouped by prompt, k in a row (B = prompts * k).

    Kool et al. 2019 https://openreview.net/forum?id=r1lgTGL5DE; Ahmadian et al. 2024
    https://arxiv.org/abs/2402.14740 (eq. 6):  A_i = R_i - (sum_{j != i} R_j) / (k - 1)
    """
    grouped = rewards.view(-1, k)  # (P, k)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)
    return (grouped - baseline).reshape(-1)


def grpo_advantages(rewards: Tensor, k: int, *, scale: str = "group") -> Tensor:  # (B,)
    """Group-relative advantages: reward minus the mean of its prompt's k samples, divided by the
    group's (``scale="group"``) or the batch's (``"batch"``) unbiased std, or not (``"none"``).

    Shao et al. 2024 https://arxiv.org/abs/2402.03300 (section 4.1.2):
        A_i = (R_i - mean(R_group)) / (std(R_group) + 1e-4)
    """
    grouped = rewards.view(-1, k)  # (P, k)
    centred = grouped - grouped.mean(1, keepdim=True)
    std = {
        "group": lambda: grouped.std(1, keepdim=True),
        "batch": lambda: rewards.std().expand_as(grouped),
        "none": lambda: None,
    }[scale]()
    return (centred if std is None else centred / (std + 1e-4)).reshape(-1)


def grpo_token_loss(
    logp: Tensor,  # (B, T)
    old_logp: Tensor,  # (B, T)
    ref_logp: Tensor,  # (B, T)
    advantages: Tensor,  # (B,)
    *,
    clip: float,
    beta: float,
) -> Tensor:  # (B, T)
    """GRPO per-token loss: the clipped surrogate with the sequence's advantage at every token,
    plus beta * k3 KL to the reference as a loss term (not in the reward).

    Shao et al. 2024 https://arxiv.org/abs/2402.03300 (eq. 3):
        loss_t = -min(rho_t * A, clip(rho_t, 1 - eps, 1 + eps) * A) + beta * k3_t
    """
    surrogate, _ = ppo_policy_loss(logp, old_logp, advantages[:, None], clip=clip)
    return surrogate + beta * kl_k3(logp, ref_logp) if beta else surrogate


def adaptive_kl_beta(beta: float, kl: float, *, target: float, horizon: int, n_steps: int) -> float:
    """Adaptive KL coefficient (Ziegler et al. 2019 https://arxiv.org/abs/1909.08593, sec. 2.2):
        e = clip(KL / target - 1, -0.2, 0.2)        beta <- beta * (1 + e * n_steps / horizon)
    ``n_steps`` is the number of episodes (responses) since the last update.
    """
    error = min(max(kl / target - 1, -0.2), 0.2)
    return beta * (1 + error * n_steps / horizon)


def entropy_from_logits(logits: Tensor) -> Tensor:  # (B, T)
    """Entropy of each position's next-token distribution: -sum_v p_v log p_v."""
    logps = torch.log_softmax(logits.float(), dim=-1)
    return -(logps.exp() * logps).sum(-1)


KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "k1": kl_k1,
    "k2": kl_k2,
    "k3": kl_k3,
}
