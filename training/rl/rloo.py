"""RLOO: REINFORCE with a leave-one-out baseline over k samples per prompt, no critic.

Ahmadian et al. 2024 "Back to Basics" https://arxiv.org/abs/2402.14740. The sequence reward is
the score minus beta times the response's summed k1 KL to the reference (as in TRL 1.16's
``RLOOTrainer``); each sample's advantage is its reward minus the mean of its k - 1 siblings';
the loss is the clipped surrogate on the *sequence* log-prob ratio, averaged over sequences. With
``ppo_epochs = num_minibatches = 1`` the ratio is 1 and this is plain REINFORCE-LOO.

Public API::

    result = training.rl.rloo.run(
        RLOOConfig(...), prompts, eval_prompts, reward_model=..., progress=cb
    )
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from training.loop import ProgressCallback
from training.records import Prompt
from training.rl.config import RLOOConfig
from training.rl.engine import Method, Ratio, RLResult, run_online
from training.rl.losses import kl_k1, masked_whiten, ppo_policy_loss, rloo_advantages
from training.rl.policy import token_logprobs
from training.rl.rewards import Scorer
from training.rl.rollout import Rollout


def advantages(
    r: Rollout, config: RLOOConfig, beta: float, reduce: Callable[[Tensor], Tensor]
) -> dict[str, float]:
    mask = r.response_mask
    kl = (kl_k1(r.logprobs, r.ref_logprobs) * mask).sum(-1)  # (B,)
    adv = rloo_advantages(r.scores - beta * kl, config.k)
    if config.normalize_advantages:
        ones = adv.new_ones(adv.shape)
        adv = masked_whiten(adv, ones, reduce=reduce)
    r.extra["advantages"] = adv
    return {}


def loss(
    r: Rollout,
    rows: Tensor,
    logits: Tensor,
    values: Tensor | None,
    config: RLOOConfig,
    beta: float,
) -> tuple[Tensor, dict[str, Ratio]]:
    """Sum over the rows' sequences of the clipped sequence-ratio surrogate."""
    mask = r.response_mask[rows]
    logp = (token_logprobs(logits, r.responses[rows]) * mask).sum(-1, keepdim=True)  # (b, 1)
    old = (r.logprobs[rows] * mask).sum(-1, keepdim=True)
    adv = r.extra["advantages"][rows][:, None]
    per_seq, clipped = ppo_policy_loss(logp, old, adv, clip=config.cliprange)
    n = float(len(rows))
    return per_seq.sum(), {
        "loss/policy": (float(per_seq.detach().sum()), n),
        "policy/clipfrac": (float(clipped.float().sum()), n),
    }


METHOD = Method(
    name="rloo",
    value_head=False,
    advantages=advantages,
    loss=loss,
    units=lambda r, rows, config: float(len(rows)),
)


def run(
    config: RLOOConfig,
    train_records: Sequence[Prompt] | None = None,
    eval_records: Sequence[Prompt] | None = None,
    progress: ProgressCallback | None = None,
    *,
    reward_model: str | Scorer | None = None,
    gold: str | Scorer | None = None,
) -> RLResult:
    """Train a policy with RLOO (see :func:`training.rl.ppo.run` for the arguments)."""
    return run_online(
        config,
        METHOD,
        train_records,
        eval_records,
        reward_model=reward_model,
        gold=gold,
        progress=progress,
    )
