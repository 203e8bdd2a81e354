"""The three record types every trainer reads, and what a prompt is.

- :class:`PreferencePair` (reward model, DPO): a prompt, a chosen and a rejected response, a
  ``margin`` >= 0 (how strongly the rater preferred ``chosen``; 0 when unknown) and a ``weight``
  >= 0 (the pair's share in the loss's weighted mean; 1 by default, e.g. less for an AI label).
- :class:`UnpairedExample` (KTO): a prompt, one completion and whether it is desirable.
- :class:`SFTExample` (SFT): a prompt and the completion to imitate.

A *prompt* is either a tuple of chat messages (``{"role", "content"}``; a list is accepted and
stored as a tuple of fresh two-key dicts), rendered later by a chat template or the plain format
(:mod:`training.contract.render`), or a string that is already formatted and used verbatim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

Message: TypeAlias = Mapping[str, str]
Prompt: TypeAlias = str | tuple[Message, ...]


class DataError(ValueError):
    """A data file or record is malformed; the message names the file and line."""


def is_message(m: Any) -> bool:
    return (
        isinstance(m, Mapping)
        and isinstance(m.get("role"), str)
        and isinstance(m.get("content"), str)
    )


def valid_weight(value: Any) -> bool:
    """A finite number >= 0 (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def as_prompt(value: Any, where: str) -> Prompt:
    """A string as is, or a message list as a tuple of ``{"role", "content"}`` dicts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(is_message(m) for m in value):
        return tuple({"role": m["role"], "content": m["content"]} for m in value)
    raise DataError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages")


@dataclass(frozen=True)
class PreferencePair:
    """``chosen`` was preferred to ``rejected`` for ``prompt``; ``margin`` >= 0: strength;
    ``weight`` >= 0: how much the pair counts in the reward-model and DPO losses (a weighted mean
    over pairs: weight 2 counts as the pair twice, weight 0 as no pair)."""

    prompt: Prompt
    chosen: str
    rejected: str
    margin: float = 0.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", as_prompt(self.prompt, "PreferencePair"))
        if not isinstance(self.chosen, str) or not isinstance(self.rejected, str):
            raise DataError("PreferencePair: 'chosen' and 'rejected' must be strings")
        if not isinstance(self.margin, int | float) or self.margin < 0:
            raise DataError(f"PreferencePair: 'margin' must be a number >= 0, got {self.margin!r}")
        if not valid_weight(self.weight):
            raise DataError(f"PreferencePair: 'weight' must be a number >= 0, got {self.weight!r}")


@dataclass(frozen=True)
class UnpairedExample:
    """One completion for ``prompt`` labelled desirable (thumbs up) or not (thumbs down)."""

    prompt: Prompt
    completion: str
    desirable: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", as_prompt(self.prompt, "UnpairedExample"))
        if not isinstance(self.completion, str):
            raise DataError("UnpairedExample: 'completion' must be a string")
        if not isinstance(self.desirable, bool):
            raise DataError(f"UnpairedExample: 'desirable' must be a bool, got {self.desirable!r}")


@dataclass(frozen=True)
class SFTExample:
    """A demonstration: the model should answer ``prompt`` with ``completion``."""

    prompt: Prompt
    completion: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", as_prompt(self.prompt, "SFTExample"))
        if not isinstance(self.completion, str):
            raise DataError("SFTExample: 'completion' must be a string")

    @classmethod
    def from_messages(cls, messages: Sequence[Message]) -> SFTExample:
        """Split a conversation: the last (assistant) message is the completion."""
        if not messages or messages[-1].get("role") != "assistant":
            raise DataError("SFTExample: the last message must have role 'assistant'")
        return cls(prompt=tuple(messages[:-1]), completion=messages[-1]["content"])
