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

from collections.abc import Callable

from training.judges.verdicts import (
    Judge,
    PairToJudge,
    ProgressFn,
    Verdict,
    combine,
    flip_rate,
)


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
