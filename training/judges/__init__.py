"""AI judges: a model that says which of two responses is better, judged in both orders.

The interface the platform calls (``workers/ai_feedback.py``, ``bench/ai_feedback.py``, the
``python -m training judge`` CLI)::

    judge = load_judge("llm_judge", "var/models/smollm2-135m-instruct")
    verdicts = judge.judge([PairToJudge(key, prompt, first, second)], principle="...")

Every pair is judged twice, with ``first`` shown first and then shown second, and the two
probabilities are combined by :func:`combine` (the consistency rule): the judge picks a response
only when both orders agree; otherwise the verdict is *inconsistent* (``winner is None``), which
is recorded as such and counted in the flip rate, never turned into a choice. Position bias is
the best-known failure of LLM judges (Zheng et al. 2023, https://arxiv.org/abs/2306.05685), and
this is its standard control.

Three judges (:data:`JUDGES`): ``llm_judge`` (any local causal LM, the answer read from the
log-probabilities of the answer tokens, :mod:`training.judges.llm`), ``reward_model`` (a trained
reward model's score difference, :mod:`training.judges.reward`) and ``fake`` (a deterministic
rule for tests, :mod:`training.judges.fake`). Torch is imported only by the first two.
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


def _fake(model: str, device: str, batch_size: int) -> Judge:
    from training.judges.fake import FakeJudge

    return FakeJudge.from_spec(model)


def _llm(model: str, device: str, batch_size: int) -> Judge:
    from training.judges.llm import LLMJudge

    return LLMJudge(model, device=device, batch_size=batch_size)


def _reward(model: str, device: str, batch_size: int) -> Judge:
    from training.judges.reward import RewardModelJudge

    return RewardModelJudge(model, device=device, batch_size=batch_size)


JUDGES: dict[str, Callable[[str, str, int], Judge]] = {
    "fake": _fake,
    "llm_judge": _llm,
    "reward_model": _reward,
}


def load_judge(method: str, model: str, *, device: str = "auto", batch_size: int = 8) -> Judge:
    """The judge of ``method`` (a key of :data:`JUDGES`) over ``model``: a local model folder
    (``llm_judge``: "" means the installed SmolLM2-135M-Instruct), a reward-model artifact, or a
    fake judge's spec (:meth:`training.judges.fake.FakeJudge.from_spec`)."""
    if method not in JUDGES:
        raise ValueError(f"unknown judge method {method!r}; known: {', '.join(sorted(JUDGES))}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return JUDGES[method](model, device, batch_size)


__all__ = [
    "JUDGES",
    "Judge",
    "PairToJudge",
    "ProgressFn",
    "Verdict",
    "combine",
    "flip_rate",
    "load_judge",
]
