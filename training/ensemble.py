"""Bootstrap reward heads: a cheap ensemble whose disagreement measures what the RM doesn't know.

A single reward model's margin ``sigmoid(r_a - r_b)`` mixes two kinds of uncertainty: pairs that
are close to a tie (aleatoric: a label teaches little, raters flip a coin) and pairs the model has
not learned to order (epistemic: a label teaches a lot). An ensemble separates them: members agree
on a tie and disagree on the unknown. Training K reward models costs K times the compute, so, as
in "Efficient Exploration for LLMs" (Dwaracherla et al. 2024, https://arxiv.org/abs/2402.00396)
and BAL-PM (Melo et al. 2024, https://arxiv.org/abs/2405.10023), only the last layer is
ensembled: the trained RM's features ``phi`` stay fixed and its linear head ``w0`` is refitted K
times, each time on a bootstrap resample of the labeled pairs. Head k minimises

    mean_i softplus(-w_k . (phi(chosen_i) - phi(rejected_i))) + (l2 / 2) ||w_k - w0||^2

(Bradley-Terry on the resample, anchored to the trained head), so heads agree where the labels
pin the head down and spread where they don't. Plain torch, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import Linear
from torch.nn.functional import softplus

from training.generate import reward_features
from training.records import PreferencePair, Prompt


def bootstrap_heads(
    diffs: Tensor, anchor: Tensor, *, n_heads: int, l2: float = 1.0, seed: int = 0
) -> Tensor:
    """K heads (K, H) fitted on resamples of ``diffs`` = phi(chosen) - phi(rejected), (P, H)."""
    if n_heads < 1 or l2 <= 0:
        raise ValueError(f"need n_heads >= 1 and l2 > 0, got {n_heads}, {l2}")
    diffs, anchor = diffs.detach().double(), anchor.detach().double()
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(diffs), (n_heads, len(diffs)), generator=gen)  # (K, P)
    weights = anchor.expand(n_heads, -1).clone().requires_grad_(True)  # (K, H)
    opt = torch.optim.LBFGS([weights], max_iter=100, line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        opt.zero_grad()
        margins = torch.einsum("kph,kh->kp", diffs[picks], weights)  # (K, P)
        fit = softplus(-margins).mean(dim=1)  # (K,)
        loss = (fit + 0.5 * l2 * (weights - anchor).pow(2).sum(dim=1)).sum()
        loss.backward()
        return loss

    opt.step(objective)
    return weights.detach().float()


def head_weight(reward_model: Any) -> Tensor:
    """The trained scalar head's weight (H,) (``score`` in decoders, ``classifier`` in encoders)."""
    for name in ("score", "classifier"):
        head = getattr(reward_model, name, None)
        if isinstance(head, Linear) and head.out_features == 1:
            return head.weight.detach()[0].float().cpu()
    raise ValueError("the reward model has no linear scalar `score` or `classifier` head")


def ensemble_rewards(
    reward_model: Any,
    tokenizer: Any,
    labeled: Sequence[PreferencePair],
    items: Sequence[tuple[Prompt, str]],
    *,
    n_heads: int,
    l2: float = 1.0,
    seed: int = 0,
) -> Tensor:
    """Reward of each (prompt, response) in ``items`` under each bootstrap head: (N, K)."""
    chosen = reward_features(reward_model, tokenizer, [(p.prompt, p.chosen) for p in labeled])
    rejected = reward_features(reward_model, tokenizer, [(p.prompt, p.rejected) for p in labeled])
    heads = bootstrap_heads(
        chosen - rejected, head_weight(reward_model), n_heads=n_heads, l2=l2, seed=seed
    )  # (K, H)
    return reward_features(reward_model, tokenizer, items) @ heads.T  # (N, H) @ (H, K)
