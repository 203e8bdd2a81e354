"""GRPO: group-normalised advantages over k samples per prompt, KL to the reference as a loss
term (k3), no critic.

Shao et al. 2024 (DeepSeekMath) https://arxiv.org/abs/2402.03300. The advantage of a sample is
its score minus its group's mean, divided by the group's std (``scale_rewards``); every token of
the response gets it; the per-token loss is the clipped surrogate plus ``beta * k3``. Aggregation
(``loss_type``) as TRL 1.16: ``"dapo"`` averages over all response tokens of the minibatch (TRL's
default, no length bias), ``"grpo"`` averages each sequence's tokens, then the sequences.

Public API::

    result = training.rl.grpo.run(
        GRPOConfig(...), prompts, eval_prompts, reward_model=..., progress=cb
    )
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from training.loop import ProgressCallback
from training.records import Prompt
from training.rl.config import GRPOConfig
from training.rl.engine import Method, Ratio, RLResult, run_online
from training.rl.losses import grpo_advantages, grpo_token_loss, kl_k3
from training.rl.policy import token_logprobs
from training.rl.rewards import Scorer
from training.rl.rollout import Rollout


def advantages(
    r: Rollout, config: GRPOConfig, beta: float, reduce: Callable[[Tensor], Tensor]
) -> dict[str, float]:
    r.extra["advantages"] = grpo_advantages(r.scores, config.k, scale=config.scale_rewards)
    return {}


def _token_mean(per_token: Tensor, mask: Tensor) -> Tensor:  # "dapo": sum over tokens
    return (per_token * mask).sum()


def _sequence_mean(per_token: Tensor, mask: Tensor) -> Tensor:  # "grpo": sum of sequence means
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).sum()


AGGREGATES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], float]]] = {
    "dapo": (_token_mean, lambda mask: float(mask.sum())),
    "grpo": (_sequence_mean, lambda mask: float(mask.shape[0])),
}


def loss(
    r: Rollout,
    rows: Tensor,
    logits: Tensor,
    values: Tensor | None,
    config: GRPOConfig,
    beta: float,
) -> tuple[Tensor, dict[str, Ratio]]:
    mask = r.response_mask[rows]
    logp = token_logprobs(logits, r.responses[rows])
    ref, old = r.ref_logprobs[rows], r.logprobs[rows]
    adv = r.extra["advantages"][rows]
    per_token = grpo_token_loss(logp, old, ref, adv, clip=config.cliprange, beta=beta)
    aggregate, units = AGGREGATES[config.loss_type]
    n = float(mask.sum())
    ratio = (logp - old).exp()
    clipped = (ratio - 1).abs() > config.cliprange
    return aggregate(per_token, mask), {
        "loss/policy": (float(aggregate(per_token.detach(), mask)), units(mask)),
        "policy/kl_k3": (float((kl_k3(logp.detach(), ref) * mask).sum()), n),
        "policy/clipfrac": (float((clipped.float() * mask).sum()), n),
    }


METHOD = Method(
    name="grpo",
    value_head=False,
    advantages=advantages,
    loss=loss,
    units=lambda r, rows, config: AGGREGATES[config.loss_type][1](r.response_mask[rows]),
    advantages_need_logprobs=False,
)


def run(
    config: GRPOConfig,
    train_records: Sequence[Prompt] | None = None,
    eval_records: Sequence[Prompt] | None = None,
    progress: ProgressCallback | None = None,
    *,
    reward_model: str | Scorer | None = None,
    gold: str | Scorer | None = None,
) -> RLResult:
    """Train a policy with GRPO (see :func:`training.rl.ppo.run` for the arguments)."""
    return run_online(
        config,
        METHOD,
        train_records,
        eval_records,
        reward_model=reward_model,
        gold=gold,
        progress=progress,
    )
