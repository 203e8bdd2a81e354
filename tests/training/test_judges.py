"""AI judges (training/judges): the both-order protocol, the consistency rule, the fake judge,
and the LLM judge reading its choice from the answer tokens' log-probabilities."""

from __future__ import annotations

import math

import pytest

from training.judges import PairToJudge, Verdict, combine, flip_rate, load_judge
from training.judges.fake import FakeJudge


def test_combine_consistent_first_second_and_inconsistent() -> None:
    assert combine("k", 0.8, 0.6) == Verdict("k", 0, pytest.approx(0.7), 0.8, 0.6, 0)
    second = combine("k", 0.2, 0.4, tokens=5)
    assert (second.winner, second.confidence, second.tokens) == (1, pytest.approx(0.7), 5)
    for p1, p2 in ((0.8, 0.3), (0.3, 0.8), (0.5, 0.9), (0.5, 0.5)):
        v = combine("k", p1, p2)
        assert v.winner is None
        assert v.confidence is None
        assert (v.p_first_order, v.p_second_order) == (p1, p2)


def test_fake_judge_runs_both_orders_with_position_bias() -> None:
    judge = load_judge("fake", "marker=good,bias=0.5,scale=2")
    pairs = [
        PairToJudge(1, "q", "good good", "bad"),  # clear: first
        PairToJudge(2, "q", "plain", "also plain"),  # equal: the bias decides each order
        PairToJudge(3, "q", "meh", "good"),  # clear: second
    ]
    seen: list[tuple[int, int]] = []
    first, tie, second = judge.judge(pairs, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # shown first: sigmoid(2 * (2 - 0) + 0.5); shown second: 1 - sigmoid(2 * (0 - 2) + 0.5)
    assert first.p_first_order == pytest.approx(sig(4.5))
    assert first.p_second_order == pytest.approx(1 - sig(-3.5))
    assert first.winner == 0
    assert first.confidence == pytest.approx((sig(4.5) + 1 - sig(-3.5)) / 2)
    # equal scores: the first-shown response wins in both orders, so the orders disagree
    assert tie.winner is None
    assert tie.confidence is None
    assert tie.p_first_order == pytest.approx(sig(0.5))
    assert tie.p_second_order == pytest.approx(1 - sig(0.5))
    assert second.winner == 1
    assert 0.5 < second.confidence < 1
    assert flip_rate([first, tie, second]) == pytest.approx(1 / 3)
    assert first.tokens == 2 * (1 + 2 + 1)


def test_fake_judge_without_bias_is_consistent_when_scores_differ() -> None:
    judge = FakeJudge(bias=0.0, noise=1.0)  # the hash breaks every tie
    pairs = [PairToJudge(i, "q", f"answer {i}", f"reply {i}") for i in range(20)]
    verdicts = judge.judge(pairs)
    assert flip_rate(verdicts) == 0
    assert {v.winner for v in verdicts} == {0, 1}
    assert judge.judge(pairs) == verdicts  # deterministic
    assert all(v.p_first_order == pytest.approx(v.p_second_order) for v in verdicts)


def test_fake_judge_spec_and_unknown_method() -> None:
    assert load_judge("fake", "").name == FakeJudge().name
    assert load_judge("fake", "/some/model/path").name == FakeJudge().name
    assert FakeJudge.from_spec("marker=yes,noise=0.5") == FakeJudge(marker="yes", noise=0.5)
    with pytest.raises(ValueError, match="unknown setting"):
        FakeJudge.from_spec("colour=red")
    with pytest.raises(ValueError, match="numbers"):
        FakeJudge.from_spec("bias=high")
    with pytest.raises(ValueError, match="unknown judge method"):
        load_judge("oracle", "")
    assert len(load_judge("fake", "").template_hash) == 64
