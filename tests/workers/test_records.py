"""Judgments -> training records (pure conversion, and the snapshot query's exclusions)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from annotation import models
from tests.factories import make_rater, make_task
from workers.records import JudgmentRow, build_records, eligible_judgments

PROMPT = ({"role": "user", "content": "q"},)
TEXTS = {1: "one", 2: "two", 3: "three", 4: "four"}


def row(kind: str, **kw: object) -> JudgmentRow:
    return JudgmentRow(id=1, kind=kind, prompt=PROMPT, texts=kw.pop("texts", TEXTS), **kw)


def test_ranking_without_ties_gives_all_pairs_with_rank_gap_margins():
    recs = build_records([row("ranking", payload={"ranking": [[3], [1], [4], [2]]})])

    pairs = {(p.chosen, p.rejected): p.margin for p in recs.pairs}
    assert len(pairs) == 6  # C(4, 2)
    assert pairs[("three", "one")] == 0.0
    assert pairs[("three", "two")] == 2.0
    assert pairs[("four", "two")] == 0.0
    assert ("one", "three") not in pairs


def test_ranking_ties_give_no_pair_inside_a_group():
    recs = build_records([row("ranking", payload={"ranking": [[1, 2], [3, 4]]})])

    assert sorted((p.chosen, p.rejected) for p in recs.pairs) == [
        ("one", "four"), ("one", "three"), ("two", "four"), ("two", "three"),
    ]  # fmt: skip
    assert recs.counts["ranking_ties"] == 2


def test_pairwise_strength_becomes_margin_and_tie_both_bad_are_documented():
    two = {1: "one", 2: "two"}
    recs = build_records(
        [
            row("pairwise", texts=two, choice="B", strength=4, preferred=2),
            row("pairwise", texts=two, choice="A", strength=1, preferred=1),
            row("pairwise", texts=two, choice="tie"),
            row("pairwise", texts=two, choice="both_bad"),
        ]
    )

    assert [(p.chosen, p.rejected, p.margin) for p in recs.pairs] == [
        ("two", "one", 3.0),
        ("one", "two", 0.0),
    ]
    assert recs.counts["tie"] == 1
    assert [(u.completion, u.desirable) for u in recs.unpaired] == [("one", False), ("two", False)]


def test_thumbs_become_kto_and_demonstrations_sft():
    recs = build_records(
        [
            row(
                "rating",
                texts={1: "good", 2: "bad"},
                payload={
                    "ratings": [{"response": 1, "thumb": "up"}, {"response": 2, "thumb": "down"}]
                },
            ),
            row("demonstration", texts={}, payload={"text": "the ideal answer"}),
        ]
    )

    assert [(u.completion, u.desirable) for u in recs.unpaired] == [("good", True), ("bad", False)]
    assert [(s.prompt, s.completion) for s in recs.sft] == [(PROMPT, "the ideal answer")]
    assert recs.counts["pairs"] == 0


@pytest.mark.django_db
def test_snapshot_leaves_out_excluded_raters_gold_and_revised(project):
    keep, excluded = make_rater(project), make_rater(project)
    rows = []
    for rater in (keep, excluded):
        task = make_task(project, required=2)
        rows.append(
            models.Judgment.objects.create(
                task=task, project=project, rater=rater, kind="pairwise", choice="tie"
            )
        )
    gold = make_task(project, is_gold=True, gold_answer={"choice": "A"})
    models.Judgment.objects.create(
        task=gold, project=project, rater=keep, kind="pairwise", choice="A"
    )
    old = models.Judgment.objects.create(
        task=make_task(project), project=project, rater=keep, kind="pairwise", choice="A",
        is_current=False,
    )  # fmt: skip
    models.RaterExclusion.objects.create(project=project, rater=excluded)
    lifted = make_rater(project)
    models.RaterExclusion.objects.create(project=project, rater=lifted, lifted_at=timezone.now())
    back = models.Judgment.objects.create(
        task=make_task(project), project=project, rater=lifted, kind="pairwise", choice="tie"
    )

    ids = set(eligible_judgments(project_id=project.id).values_list("id", flat=True))

    assert ids == {rows[0].id, back.id}
    assert old.id not in ids
