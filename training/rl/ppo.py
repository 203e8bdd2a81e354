"""PPO against a reward model, as InstructGPT and "The N implementation details of RLHF with PPO"
describe it: the policy (actor), a value head on its last hidden state (critic), the frozen
reference (the starting model; with LoRA the same weights with the adapter disabled) and the
reward model.

Per-token reward: -beta * KL(pi || ref) at every token (k1 on the sampled token) plus the
reward model's score at the last token (minus ``missing_eos_penalty`` for a response cut by the
length limit); optional reward whitening; GAE(gamma, lambda); advantage whitening over the whole
rollout; clipped surrogate (``cliprange``) and clipped value loss (``cliprange_value``), weighted
``1 : vf_coef`` and averaged over the minibatch's response tokens; beta fixed or adapted towards
``target_kl`` (Ziegler et al. 2019). The loop is :mod:`training.rl.engine`.

Public API for the workers::

    result = training.rl.ppo.run(PPOConfig(...), prompts, eval_prompts,
                                 reward_model="/artifacts/rm-v3" or a callable, progress=cb)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from training.loop import ProgressCallback
from training.records import Prompt
from training.rl.config import PPOConfig
from training.rl.engine import Method, Ratio, RLResult, run_online
from training.rl.losses import (
    adaptive_kl_beta,
    gae,
    kl_k1,
    masked_whiten,
    ppo_policy_loss,
    ppo_token_rewards,
    ppo_value_loss,
)
from training.rl.policy import token_logprobs
from training.rl.rewards import Scorer
from training.rl.rollout import Rollout


def advantages(
    r: Rollout, config: PPOConfig, beta: float, reduce: Callable[[Tensor], Tensor]
) -> dict[str, float]:
    """Per-token rewards, GAE and whitening; stores ``advantages`` and ``returns`` (B, R)."""
    assert r.values is not None
    mask = r.response_mask
    rewards = ppo_token_rewards(r.scores, kl_k1(r.logprobs, r.ref_logprobs), mask, beta)
    if config.normalize_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False, reduce=reduce)
    adv, returns = gae(rewards, r.values, mask, gamma=config.gamma, lam=config.lam)
    if config.whiten_advantages:
        adv = masked_whiten(adv, mask, reduce=reduce)
    r.extra.update(advantages=adv, returns=returns)
    return {}


def loss(
    r: Rollout,
    rows: Tensor,
    logits: Tensor,
    values: Tensor | None,
    config: PPOConfig,
    beta: float,
) -> tuple[Tensor, dict[str, Ratio]]:
    """Sum over the rows' response tokens of policy loss + vf_coef * value loss."""
    assert values is not None
    assert r.values is not None
    mask = r.response_mask[rows]
    logp = token_logprobs(logits, r.responses[rows])
    old = r.logprobs[rows]
    pg, clipped = ppo_policy_loss(logp, old, r.extra["advantages"][rows], clip=config.cliprange)
    returns = r.extra["returns"][rows]
    vf, v_clipped = ppo_value_loss(
        values.float(), r.values[rows], returns, clip=config.cliprange_value
    )
    n = float(mask.sum())

    def total(x: Tensor) -> float:
        return float((x.detach().float() * mask).sum())

    metrics = {
        "loss/policy": (total(pg), n),
        "loss/value": (total(vf), n),
        "policy/clipfrac": (total(clipped), n),
        "policy/approxkl": (total(0.5 * (logp - old) ** 2), n),
        "val/clipfrac": (total(v_clipped), n),
        "val/error": (total((values - returns) ** 2), n),
    }
    return ((pg + config.vf_coef * vf) * mask).sum(), metrics


def _beta(beta: float, kl: float, config: PPOConfig, episodes: int) -> float:
    if not config.adaptive_kl:
        return beta
    return adaptive_kl_beta(
        beta, kl, target=config.target_kl, horizon=config.kl_horizon, n_steps=episodes
    )


METHOD = Method(
    name="ppo",
    value_head=True,
    advantages=advantages,
    loss=loss,
    units=lambda r, rows, config: float(r.response_mask[rows].sum()),
    adaptive_beta=_beta,
)


def run(
    config: PPOConfig,
    train_records: Sequence[Prompt] | None = None,
    eval_records: Sequence[Prompt] | None = None,
    progress: ProgressCallback | None = None,
    *,
    reward_model: str | Scorer | None = None,
    gold: str | Scorer | None = None,
) -> RLResult:
    """Train a policy with PPO; prompts default to ``config.train_file``/``eval_file``, the
    reward to ``config.reward_model``/``reward_rule``."""
    return run_online(
        config,
        METHOD,
        train_records,
        eval_records,
        reward_model=reward_model,
        gold=gold,
        progress=progress,
    )


__all__: list[Any] = ["METHOD", "PPOConfig", "run"]
