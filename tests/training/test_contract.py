"""The data contract (training/contract/): judgment rows -> records, aggregation, rendering.

Pure: no database, no torch. The same rules feed the exports (tests/insight/test_exports.py) and
the retrain cycle; tests/workers/test_records.py checks that both give identical records.
"""

from __future__ import annotations

from typing import Any

import training.records
import training.tokenize
from training.contract import (
    Item,
    JudgmentRow,
    PreferencePair,
    agreement,
    build_records,
    item_records,
    plain_format,
    standard_prompt,
)

PROMPT = ({"role": "user", "content": "q"},)
TEXTS = {1: "one", 2: "two", 3: "three", 4: "four"}


def judgment(kind: str, n: int = 1, **kw: Any) -> JudgmentRow:
    return JudgmentRow(
        task_id=1,
        id=n,
        rater_id=n,
        kind=kind,
        choice=kw.get("choice", ""),
        strength=kw.get("strength"),
        preferred=kw.get("preferred"),
        payload=kw.get("payload", {}),
    )


def item(kind: str, *judgments: JudgmentRow, texts: dict[int, str] = TEXTS) -> Item:
    return Item(task_id=1, kind=kind, prompt=PROMPT, texts=texts, judgments=judgments)


def ranking(groups: list[list[int]], n: int = 1) -> JudgmentRow:
    return judgment("ranking", n, payload={"ranking": groups})


def test_ranking_without_ties_gives_all_pairs_with_rank_gap_margins():
    recs = build_records([item("ranking", ranking([[3], [1], [4], [2]]))])

    pairs = {(p.chosen, p.rejected): p.margin for p in recs.pairs}
    assert len(pairs) == 6  # C(4, 2)
    assert pairs[("three", "one")] == 0.0
    assert pairs[("three", "two")] == 2.0
    assert pairs[("four", "two")] == 0.0
    assert ("one", "three") not in pairs


def test_ranking_ties_give_no_pair_inside_a_group():
    recs = build_records([item("ranking", ranking([[1, 2], [3, 4]]))])

    assert sorted((p.chosen, p.rejected) for p in recs.pairs) == [
        ("one", "four"), ("one", "three"), ("two", "four"), ("two", "three"),
    ]  # fmt: skip
    assert recs.counts["ranking_ties"] == 2


def test_pairwise_strength_becomes_margin_and_tie_both_bad_are_documented():
    two = {1: "one", 2: "two"}
    recs = build_records(
        [
            item(
                "pairwise",
                judgment("pairwise", 1, choice="B", strength=4, preferred=2),
                judgment("pairwise", 2, choice="A", strength=1, preferred=1),
                judgment("pairwise", 3, choice="tie"),
                judgment("pairwise", 4, choice="both_bad"),
                texts=two,
            )
        ]
    )

    assert [(p.chosen, p.rejected, p.margin) for p in recs.pairs] == [
        ("two", "one", 3.0),
        ("one", "two", 0.0),
    ]
    assert all(type(p.margin) is float for p in recs.pairs)
    assert recs.counts["tie"] == 1
    assert recs.counts["both_bad"] == 1
    assert recs.counts["judgments/pairwise"] == 4
    assert [(u.completion, u.desirable) for u in recs.unpaired] == [("one", False), ("two", False)]


def test_thumbs_become_kto_and_demonstrations_sft():
    thumbs = {"ratings": [{"response": 1, "thumb": "up"}, {"response": 2, "thumb": "down"}]}
    recs = build_records(
        [
            item("rating", judgment("rating", payload=thumbs), texts={1: "good", 2: "bad"}),
            item(
                "demonstration",
                judgment("demonstration", 1, payload={"text": "the ideal answer"}),
                judgment("demonstration", 2, payload={"text": "  "}),  # blank: no example
                texts={},
            ),
        ]
    )

    assert [(u.completion, u.desirable) for u in recs.unpaired] == [("good", True), ("bad", False)]
    assert [(s.prompt, s.completion) for s in recs.sft] == [(PROMPT, "the ideal answer")]
    assert recs.counts["pairs"] == 0


def test_majority_decides_per_item_and_averages_the_winners_margins():
    two = {1: "one", 2: "two"}
    votes = item(
        "pairwise",
        judgment("pairwise", 1, choice="A", strength=4, preferred=1),
        judgment("pairwise", 2, choice="A", strength=2, preferred=1),
        judgment("pairwise", 3, choice="B", strength=4, preferred=2),
        texts=two,
    )
    recs = build_records([votes], aggregation="majority")
    assert [(p.chosen, p.rejected, p.margin) for p in recs.pairs] == [("one", "two", 2.0)]
    assert agreement(votes) == 2 / 3
    split = item("pairwise", *votes.judgments[1:], texts=two)  # 1 against 1: no winner
    assert build_records([split], aggregation="majority").pairs == []
    bad = item("pairwise", *(judgment("pairwise", n, choice="both_bad") for n in (1, 2)), texts=two)
    assert [u.completion for u in build_records([bad], aggregation="majority").unpaired] == [
        "one",
        "two",
    ]
    rank = item("ranking", ranking([[1], [2]], 1), ranking([[1], [2]], 2), ranking([[2], [1]], 3))
    assert [
        (p.chosen, p.rejected) for p in build_records([rank], aggregation="majority").pairs
    ] == [("one", "two")]
    assert agreement(item("demonstration", judgment("demonstration"))) is None
    assert agreement(item("pairwise", judgment("pairwise", choice="tie"))) is None


class Strings:
    """A sink of its own: the rules say which records, the sink how they are written."""

    def pair(self, chosen: str, rejected: str, margin: float) -> str:
        return f"{chosen}>{rejected}@{margin}"

    def unpaired(self, completion: str, desirable: bool) -> str:
        return f"{completion}{'+' if desirable else '-'}"

    def sft(self, completion: str) -> str:
        return completion


def test_any_sink_receives_the_same_records_in_the_same_order():
    rows = item("ranking", ranking([[2], [1, 3]]))
    assert list(item_records(rows, Strings())) == ["two>one@0.0", "two>three@0.0"]


def test_rendering_has_one_home():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert plain_format(msgs) == "\n\nSystem: be brief\n\nHuman: hi\n\nAssistant:"
    assert plain_format([{"role": "tool", "content": "x"}]) == "\n\nTool: x\n\nAssistant:"
    assert standard_prompt(msgs) == plain_format(msgs)
    assert standard_prompt([{"role": "user", "content": "hi"}]) == "hi"
    assert training.tokenize.plain_format is plain_format


def test_training_reads_the_contracts_record_types():
    assert training.records.PreferencePair is PreferencePair
    pair = PreferencePair([{"role": "user", "content": "q", "extra": "x"}], "a", "b", 1.0)
    assert pair.prompt == PROMPT  # a list of messages is stored as a tuple of two-key dicts
