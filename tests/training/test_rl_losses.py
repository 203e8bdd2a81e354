"""training/rl/losses.py against numbers computed by hand (in each docstring), and the RLOO/GRPO
advantages and the GRPO loss against TRL 1.16.0's implementation on the same tensors.

TRL keeps these formulas inline in its trainer methods, so the ``trl_*`` helpers below reproduce
them line for line from the installed source (file and line cited); ``nanstd`` is TRL's own
function, imported.
"""

from __future__ import annotations

import math

import pytest
import torch

from training.rl.losses import (
    adaptive_kl_beta,
    entropy_from_logits,
    gae,
    grpo_advantages,
    grpo_token_loss,
    kl_k1,
    kl_k2,
    kl_k3,
    masked_whiten,
    ppo_policy_loss,
    ppo_token_rewards,
    ppo_value_loss,
    rloo_advantages,
)

t = torch.tensor


def close(a: torch.Tensor, b: object, tol: float = 1e-6) -> None:
    torch.testing.assert_close(a.float(), torch.as_tensor(b).float(), atol=tol, rtol=0)


def test_gae_by_hand() -> None:
    """Row 1: r = [0, 0, 1], V = [.5, .4, .3], gamma 1, lambda .5, no padding:
    t=2: delta = 1 + 0 - .3 = .7, A = .7;  t=1: delta = 0 + .3 - .4 = -.1, A = -.1 + .5 * .7 = .25;
    t=0: delta = 0 + .4 - .5 = -.1, A = -.1 + .5 * .25 = .025.  Returns = A + V = [.525, .65, 1].
    """
    adv, ret = gae(t([[0.0, 0.0, 1.0]]), t([[0.5, 0.4, 0.3]]), t([[1.0, 1, 1]]), gamma=1, lam=0.5)
    close(adv, [[0.025, 0.25, 0.7]])
    close(ret, [[0.525, 0.65, 1.0]])


def test_gae_ignores_padding_by_hand() -> None:
    """r = [0, 2, pad], V = [1, 1, 9 (pad)], gamma .9, lambda 1: the value after the last real
    token is 0.  t=1: delta = 2 + 0 - 1 = 1, A = 1;  t=0: delta = 0 + .9 * 1 - 1 = -.1,
    A = -.1 + .9 * 1 = .8.  Returns [1.8, 2, 0]; padding gets 0."""
    adv, ret = gae(t([[0.0, 2, 5]]), t([[1.0, 1, 9]]), t([[1.0, 1, 0]]), gamma=0.9, lam=1.0)
    close(adv, [[0.8, 1.0, 0.0]])
    close(ret, [[1.8, 2.0, 0.0]])


def test_ppo_token_rewards_by_hand() -> None:
    """kl = [.1, -.2, (pad) .3], beta .5, score 2 on the last real token (index 1):
    [-.05, .1 + 2, 0]."""
    rewards = ppo_token_rewards(t([2.0]), t([[0.1, -0.2, 0.3]]), t([[1.0, 1, 0]]), beta=0.5)
    close(rewards, [[-0.05, 2.1, 0.0]])


def test_ppo_policy_loss_by_hand() -> None:
    """eps .2.  ratio 1.5, A 1: max(-1.5, -1.2) = -1.2 (clipped);  ratio .5, A -1:
    max(.5, .8) = .8 (clipped);  ratio 1.1, A 2: -2.2 (inside, not clipped);  ratio .5, A 1:
    max(-.5, -.8) = -.5 (the pessimistic, unclipped branch)."""
    ratio = t([[1.5, 0.5, 1.1, 0.5]])
    loss, clipped = ppo_policy_loss(ratio.log(), torch.zeros(1, 4), t([[1.0, -1, 2, 1]]), clip=0.2)
    close(loss, [[-1.2, 0.8, -2.2, -0.5]])
    assert clipped.tolist() == [[True, True, False, False]]


def test_ppo_value_loss_by_hand() -> None:
    """eps .2.  v 1, old .5, R 2: v_clip = .7, .5 * max(1, 1.69) = .845 (clipped);
    v 0, old .5, R 0: v_clip = .3, .5 * max(0, .09) = .045 (clipped);
    v .6, old .5, R 1: inside, .5 * .16 = .08."""
    loss, clipped = ppo_value_loss(t([1.0, 0.0, 0.6]), t([0.5, 0.5, 0.5]), t([2.0, 0, 1]), clip=0.2)
    close(loss, [0.845, 0.045, 0.08])
    assert clipped.tolist() == [True, True, False]


def test_kl_estimators_by_hand() -> None:
    """pi(y) = .5, ref(y) = .25, so r = ref / pi = .5 and log r = -0.693147:
    k1 = -log r = .693147;  k2 = (log r)^2 / 2 = .240227;  k3 = r - 1 - log r = .193147."""
    logp, ref = t([math.log(0.5)]), t([math.log(0.25)])
    close(kl_k1(logp, ref), [0.693147])
    close(kl_k2(logp, ref), [0.240227])
    close(kl_k3(logp, ref), [0.193147])


def test_kl_estimators_agree_in_expectation() -> None:
    """On samples from pi, k1 and k3 both estimate KL(pi || ref) (unbiased)."""
    torch.manual_seed(0)
    p, q = torch.softmax(torch.randn(6), 0), torch.softmax(torch.randn(6), 0)
    exact = float((p * (p / q).log()).sum())
    y = torch.multinomial(p, 200_000, replacement=True)
    logp, ref = p.log()[y], q.log()[y]
    assert float(kl_k1(logp, ref).mean()) == pytest.approx(exact, abs=0.02)
    assert float(kl_k3(logp, ref).mean()) == pytest.approx(exact, abs=0.02)


def test_masked_whiten_by_hand() -> None:
    """x = [1, 2, 3, (pad) 100]: mean 2, unbiased var 1, so [-1, 0, 1, 0]; keeping the mean:
    [1, 2, 3, 0]."""
    x, mask = t([1.0, 2, 3, 100]), t([1.0, 1, 1, 0])
    close(masked_whiten(x, mask), [-1.0, 0, 1, 0], tol=1e-5)
    close(masked_whiten(x, mask, shift_mean=False), [1.0, 2, 3, 0], tol=1e-5)


def test_rloo_advantages_by_hand() -> None:
    """Group [1, 2, 3]: baselines (2+3)/2 = 2.5, (1+3)/2 = 2, (1+2)/2 = 1.5, advantages
    [-1.5, 0, 1.5]; group [10, 10, 10]: 0."""
    close(rloo_advantages(t([1.0, 2, 3, 10, 10, 10]), 3), [-1.5, 0, 1.5, 0, 0, 0])


def test_grpo_advantages_by_hand() -> None:
    """Group [1, 2, 3]: mean 2, unbiased std 1, so [-1, 0, 1] / (1 + 1e-4); [10, 10, 10]: 0.
    scale 'none' leaves [-1, 0, 1]."""
    r = t([1.0, 2, 3, 10, 10, 10])
    close(grpo_advantages(r, 3), [-1 / 1.0001, 0, 1 / 1.0001, 0, 0, 0])
    close(grpo_advantages(r, 3, scale="none"), [-1.0, 0, 1, 0, 0, 0])


def test_grpo_token_loss_by_hand() -> None:
    """ratio 1, A 2, pi .5 vs ref .25 (k3 = .193147), beta .1: -2 + .0193147 = -1.9806853."""
    logp = t([[math.log(0.5)]])
    loss = grpo_token_loss(logp, logp, t([[math.log(0.25)]]), t([2.0]), clip=0.2, beta=0.1)
    close(loss, [[-1.9806853]])


def test_adaptive_kl_by_hand() -> None:
    """beta .1, target 6, horizon 1000, 100 episodes.  KL 9: e = clip(.5) = .2,
    beta * (1 + .2 * 100 / 1000) = .102;  KL 3: e = -.2, .098."""
    assert adaptive_kl_beta(0.1, 9.0, target=6, horizon=1000, n_steps=100) == pytest.approx(0.102)
    assert adaptive_kl_beta(0.1, 3.0, target=6, horizon=1000, n_steps=100) == pytest.approx(0.098)


def test_entropy_by_hand() -> None:
    """Uniform over 4 tokens: log 4 = 1.386294."""
    close(entropy_from_logits(torch.zeros(1, 1, 4)), [[1.386294]])


# --- TRL 1.16.0 on the same tensors -------------------------------------------------------------


def trl_rloo_advantages(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """trl/trainer/rloo_trainer.py (1.16.0) lines 1675-1690, ``_generate_and_score_completions``."""
    grouped_rewards = rewards.view(-1, num_generations)
    scorable_counts = (~torch.isnan(grouped_rewards)).sum(dim=1, keepdim=True)
    grouped_sum = torch.nansum(grouped_rewards, dim=1, keepdim=True)
    baselines = (grouped_sum - grouped_rewards) / (scorable_counts - 1)
    return rewards - baselines.view(-1)


def trl_grpo_advantages(rewards: torch.Tensor, num_generations: int, scale: str) -> torch.Tensor:
    """trl/trainer/grpo_trainer.py (1.16.0) lines 2765-2787 (``sum_then_normalize``)."""
    from trl.trainer.utils import nanstd

    mean_grouped_rewards = torch.nanmean(rewards.view(-1, num_generations), dim=1)
    mean_grouped_rewards = mean_grouped_rewards.repeat_interleave(num_generations, dim=0)
    if scale == "group":
        std_rewards = nanstd(rewards.view(-1, num_generations), dim=1)
        std_rewards = std_rewards.repeat_interleave(num_generations, dim=0)
    else:  # "batch"
        std_rewards = nanstd(rewards).expand_as(rewards)
    return (rewards - mean_grouped_rewards) / (std_rewards + 1e-4)


def trl_grpo_loss(logps, old, ref, advantages, mask, *, eps, beta, loss_type):
    """trl/trainer/grpo_trainer.py (1.16.0) lines 3093-3170, ``_compute_loss`` (token-level
    importance sampling, one process, no accumulation: dapo's normalizer is the token count)."""
    log_ratio = logps - old
    coef_1 = torch.exp(log_ratio)
    per_token_kl = torch.exp(ref - logps) - (ref - logps) - 1
    coef_2 = torch.clamp(coef_1, 1 - eps, 1 + eps)
    per_token_loss = -torch.min(coef_1 * advantages[:, None], coef_2 * advantages[:, None])
    per_token_loss = per_token_loss + beta * per_token_kl
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)


@pytest.fixture
def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    mask = torch.ones(8, 5)
    mask[1, 3:] = 0
    mask[6, 1:] = 0
    return {
        "rewards": torch.randn(8, generator=g) * 3,
        "logps": -torch.rand(8, 5, generator=g) * 3,
        "old": -torch.rand(8, 5, generator=g) * 3,
        "ref": -torch.rand(8, 5, generator=g) * 3,
        "mask": mask,
    }


def test_rloo_advantages_match_trl(tensors) -> None:
    close(rloo_advantages(tensors["rewards"], 4), trl_rloo_advantages(tensors["rewards"], 4), 1e-5)


@pytest.mark.parametrize("scale", ["group", "batch"])
def test_grpo_advantages_match_trl(tensors, scale) -> None:
    ours = grpo_advantages(tensors["rewards"], 4, scale=scale)
    close(ours, trl_grpo_advantages(tensors["rewards"], 4, scale), 1e-5)


@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_grpo_loss_matches_trl(tensors, loss_type) -> None:
    from training.rl.grpo import AGGREGATES

    adv = grpo_advantages(tensors["rewards"], 4)
    lp, old, ref, mask = (tensors[k] for k in ("logps", "old", "ref", "mask"))
    per_token = grpo_token_loss(lp, old, ref, adv, clip=0.2, beta=0.04)
    aggregate, units = AGGREGATES[loss_type]
    ours = aggregate(per_token, mask) / units(mask)
    close(ours, trl_grpo_loss(lp, old, ref, adv, mask, eps=0.2, beta=0.04, loss_type=loss_type))
