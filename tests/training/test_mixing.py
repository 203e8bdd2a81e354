"""The mixing rule on plain rows (training/contract/mixing.py): which AI verdicts train, with
which weight, under each choice (the database-backed checks: tests/workers/test_ai_mixing.py)."""

from __future__ import annotations

import pytest

from training.contract import Item, JudgmentRow
from training.contract.mixing import AIItem, AIPairRow, Mixing, ai_pairs, mixed_records

TEXTS = {10: "first", 11: "second"}
PROMPT = ({"role": "user", "content": "q"},)
AI = AIItem(
    1,
    PROMPT,
    TEXTS,
    [
        AIPairRow(1, 1, 11, 10, 0.9),
        AIPairRow(1, 2, 10, 11, 0.6),
        AIPairRow(1, 3, None, None, None),  # inconsistent
        AIPairRow(1, 4, 11, 10, 0.8),
    ],
)
HUMAN = Item(1, "pairwise", PROMPT, TEXTS, [JudgmentRow(1, 1, 7, "pairwise", "A", 3, 10, {})])


def test_which_verdicts_train() -> None:
    assert list(ai_pairs(AI, Mixing("ai"))) == [
        ("second", "first"),
        ("first", "second"),
        ("second", "first"),
    ]
    assert list(ai_pairs(AI, Mixing("ai", min_confidence=0.7))) == [("second", "first")] * 2
    assert list(ai_pairs(AI, Mixing("ai"), aggregation="majority")) == [("second", "first")]
    tie = AI._replace(verdicts=AI.verdicts[:2])
    assert list(ai_pairs(tie, Mixing("ai"), aggregation="majority")) == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("human", [("first", "second", 2.0, 1.0)]),
        ("ai", [("second", "first", 0.0, 1.0), ("second", "first", 0.0, 1.0)]),
        (
            "both",
            [
                ("first", "second", 2.0, 1.0),
                ("second", "first", 0.0, 0.25),
                ("second", "first", 0.0, 0.25),
            ],
        ),
    ],
)
def test_mixed_records(mode, expected) -> None:
    out = mixed_records([HUMAN], [AI], Mixing(mode, weight=0.25, min_confidence=0.7))
    assert [(p.chosen, p.rejected, p.margin, p.weight) for p in out.pairs] == expected
    assert out.counts["ai"] == sum(1 for e in expected if e[2] == 0.0)
    assert out.counts["human"] == (0 if mode == "ai" else 1)


@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "mixed"}, {"weight": 1.5}, {"weight": -0.1}, {"min_confidence": 0.3}],
)
def test_bad_choices_are_refused(kwargs) -> None:
    with pytest.raises(ValueError, match="ai_"):
        Mixing(**kwargs)


def test_a_cai_verdict_is_a_pair_and_its_revision_one_sft_example() -> None:
    texts = {20: "original", 21: "revised", 22: "revised again"}
    item = AIItem(
        None,
        PROMPT,
        texts,
        [
            AIPairRow(None, 7, 21, 20, 1.0, cai=True),
            AIPairRow(None, 8, 21, 20, 1.0, cai=True),  # the same revision: one SFT example
            AIPairRow(None, 9, 22, 99, 1.0, cai=True),  # a response not of this prompt
        ],
    )
    judged = AI._replace(verdicts=AI.verdicts[:1])  # a judge's verdict gives no SFT example
    out = mixed_records([HUMAN], [judged, item], Mixing("both", weight=0.5))
    assert [(p.chosen, p.rejected, p.weight) for p in out.pairs] == [
        ("first", "second", 1.0),
        ("second", "first", 0.5),
        ("revised", "original", 0.5),
        ("revised", "original", 0.5),
    ]
    assert [(s.prompt, s.completion) for s in out.sft] == [(PROMPT, "revised")]
    assert (out.counts["human"], out.counts["ai"], out.counts["ai_sft"]) == (1, 4, 1)
    assert mixed_records([HUMAN], [item], Mixing("human")).sft == []
