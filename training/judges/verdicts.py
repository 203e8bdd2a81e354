"""The types every judge shares, and the consistency rule (see :mod:`training.judges`).

Kept apart from the package's loader so each judge module imports these without importing the
package that imports it back (no import cycle, as tests/test_layering.py demands).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from training.contract.records import Prompt

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class PairToJudge:
    """Two responses to one prompt; ``key`` is the caller's id (a task id) echoed in the verdict."""

    key: Any
    prompt: Prompt
    first: str  # the task's first response (position 0)
    second: str  # position 1


@dataclass(frozen=True)
class Verdict:
    """The judge's decision on one pair, both orders combined (see :func:`combine`)."""

    key: Any
    winner: int | None  # 0 = first, 1 = second, None = inconsistent across the two orders
    confidence: float | None  # mean P(winner) over both orders (0.5..1); None when inconsistent
    p_first_order: float  # P(first wins) when shown first
    p_second_order: float  # P(first wins) when shown second
    tokens: int  # tokens the judge processed for this pair (both orders)


class Judge(Protocol):
    @property
    def name(self) -> str:
        """What judged: a model path, or a fake judge's rule."""

    @property
    def template_hash(self) -> str:
        """sha256 of the prompt template; "" for the reward-model judge."""

    def judge(
        self,
        pairs: Sequence[PairToJudge],
        *,
        principle: str = "",
        guidelines: str = "",
        progress: ProgressFn | None = None,
    ) -> list[Verdict]: ...


def combine(key: Any, p_first_order: float, p_second_order: float, tokens: int = 0) -> Verdict:
    """The consistency rule: ``first`` wins if P(first wins) > 0.5 in both orders, ``second``
    if < 0.5 in both, otherwise the pair is inconsistent. Confidence is the mean P(winner)."""
    if p_first_order > 0.5 and p_second_order > 0.5:
        winner: int | None = 0
        confidence: float | None = (p_first_order + p_second_order) / 2
    elif p_first_order < 0.5 and p_second_order < 0.5:
        winner = 1
        confidence = 1 - (p_first_order + p_second_order) / 2
    else:
        winner, confidence = None, None
    return Verdict(key, winner, confidence, p_first_order, p_second_order, tokens)


def flip_rate(verdicts: Sequence[Verdict]) -> float:
    """Inconsistent verdicts / judged verdicts (0 for none judged)."""
    return sum(v.winner is None for v in verdicts) / len(verdicts) if verdicts else 0.0
