"""Rewards for online RL: a reward-model artifact, or a Python rule.

A *scorer* is any ``(prompts, responses) -> list[float]`` callable. :class:`RewardModelScorer`
wraps a reward-model artifact (tokenised with its own tokenizer, so the policy and the reward model
need not share a vocabulary) and can be moved off the device between rollouts. Rules are cheap
synthetic rewards for tests, demos and gold judges; :data:`RULES` names the built-in ones so a
TOML config can pick one (``reward_rule = "marker_share:x"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training.config import ConfigError
from training.records import Prompt

Scorer = Callable[[Sequence[Prompt], Sequence[str]], list[float]]


class RewardModelScorer:
    """Scores with a reward-model artifact (``training.generate.score``)."""

    def __init__(
        self, path: str, device: torch.device, *, batch_size: int = 16, max_length: int = 512
    ) -> None:
        from training.modeling import load_reward_model, load_tokenizer

        self.path, self.device = path, device
        self.tokenizer = load_tokenizer(path)
        self.model = load_reward_model(path, device, self.tokenizer.pad_token_id)
        self.model.requires_grad_(False)
        self.batch_size, self.max_length = batch_size, max_length

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        from training.generate import score

        pairs = list(zip(prompts, responses, strict=True))
        return score(
            self.model,
            self.tokenizer,
            pairs,
            batch_size=self.batch_size,
            max_length=self.max_length,
            max_prompt_length=self.max_length // 2,
        )

    def to(self, device: torch.device) -> RewardModelScorer:
        """Move the model (offloading while the policy trains)."""
        self.model.to(device)
        return self


@dataclass(frozen=True)
class MarkerShare:
    """Share of the response's characters that are ``marker`` characters, plus ``bonus`` when
    the response contains ``word``: a dense synthetic reward a tiny random model can learn."""

    marker: str = "x"
    word: str = ""
    bonus: float = 1.0

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        out = []
        for text in responses:
            share = sum(ch in self.marker for ch in text) / max(1, len(text))
            out.append(share + (self.bonus if self.word and self.word in text else 0.0))
        return out


@dataclass(frozen=True)
class ContainsWord:
    """1.0 when the response contains ``word`` (case-insensitive), else 0.0."""

    word: str

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        return [float(self.word.lower() in text.lower()) for text in responses]


@dataclass(frozen=True)
class LengthReward:
    """Response length in characters divided by ``scale``: the textbook hackable proxy."""

    scale: float = 100.0

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        return [len(text) / self.scale for text in responses]


RULES: dict[str, Callable[[str], Scorer]] = {
    "marker_share": lambda arg: MarkerShare(marker=arg or "x"),
    "contains": lambda arg: ContainsWord(arg),
    "length": lambda arg: LengthReward(float(arg) if arg else 100.0),
}


def rule(spec: str) -> Scorer:
    """``"name"`` or ``"name:argument"`` from :data:`RULES`."""
    name, _, arg = spec.partition(":")
    if name not in RULES:
        raise ValueError(f"unknown reward rule {name!r}; choose from {', '.join(RULES)}")
    return RULES[name](arg)


def resolve(
    reward: str | Scorer | None,
    *,
    path: str,
    rule_spec: str,
    device: torch.device,
    batch_size: int,
) -> Scorer | None:
    """The scorer ``reward`` names (a callable, an artifact path), else the config's path or
    rule; None when none is given."""
    if callable(reward):
        return reward
    path = reward or path
    if path:
        return RewardModelScorer(path, device, batch_size=batch_size)
    return rule(rule_spec) if rule_spec else None


def move(scorer: Any, device: torch.device) -> None:
    """Move a scorer's model when it has one (rules have nothing to move)."""
    if isinstance(scorer, RewardModelScorer):
        scorer.to(device)


def scorers_for(
    config: Any, reward: str | Scorer | None, gold: str | Scorer | None, device: torch.device
) -> tuple[Scorer, Scorer | None]:
    """(reward scorer, gold scorer or None) of an online run: the arguments win over the
    config's paths and rules; a run without any reward is a :class:`ConfigError`."""
    kw: dict[str, Any] = {"device": device, "batch_size": config.reward_batch_size}
    scorer = resolve(reward, path=config.reward_model, rule_spec=config.reward_rule, **kw)
    if scorer is None:
        raise ConfigError("reward_model: a reward-model path or reward_rule is required")
    return scorer, resolve(
        gold, path=config.gold_reward_model, rule_spec=config.gold_reward_rule, **kw
    )
