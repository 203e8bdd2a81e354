"""The retrain cycle's records: which judgments a snapshot takes, and that an export and a cycle
built from the same judgments hold identical records (the rules themselves are tested without a
database in tests/training/test_contract.py)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from annotation import models
from annotation.services.exports import export_write
from annotation.services.loop import new_judgment_count
from tests.factories import make_rater, make_task
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters
from training.contract import PreferencePair, SFTExample, UnpairedExample, standard_prompt
from training.records import load_jsonl
from workers.records import build_records, eligible_judgments, snapshot_rows


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
    assert new_judgment_count(project=project) == 2  # the retrain policy counts the same rows


def _every_kind_judged(project: models.Project) -> None:
    """Pairwise (A/B, ties, both bad) by three raters, one of them excluded later; a ranking
    with a tie group; thumbs; demonstrations (one revised); a gold task."""
    raters = make_raters(project, 3)
    tasks = make_pairwise_tasks(project, 12)
    judge_pairwise(project, tasks, raters, seed=11, first_wins_prob=0.7, tie_prob=0.15)
    models.Judgment.objects.filter(task=tasks[0][0], rater=raters[0]).update(
        choice="both_bad", strength=None, preferred_response=None
    )
    gold = make_pairwise_tasks(project, 2, is_gold=True, start=90)
    judge_pairwise(project, gold, raters[:1], seed=12, first_wins_prob=1.0)
    models.RaterExclusion.objects.create(project=project, rater=raters[2])
    rater = raters[0]
    for groups in ([[0], [1], [2], [3]], [[2], [0, 1], [3]]):
        task = make_task(project, kind="ranking", n_responses=4)
        ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
        models.Judgment.objects.create(
            task=task, project=project, rater=rater, kind="ranking",
            payload={"ranking": [[ids[p] for p in g] for g in groups]}, display_order=ids,
        )  # fmt: skip
    task = make_task(project, kind="rating", n_responses=2)
    a, b = task.task_responses.order_by("position").values_list("response_id", flat=True)
    thumbs = [{"response": a, "thumb": "up"}, {"response": b, "thumb": "down"}]
    models.Judgment.objects.create(
        task=task, project=project, rater=rater, kind="rating", payload={"ratings": thumbs}
    )
    demo = make_task(project, kind="demonstration", n_responses=1)
    for rev, text in ((1, "A first try."), (2, "The ideal answer.")):
        models.Judgment.objects.create(
            task=demo, project=project, rater=rater, kind="demonstration", revision=rev,
            is_current=rev == 2, payload={"text": text},
        )  # fmt: skip


@pytest.mark.django_db
def test_an_export_and_a_cycle_from_the_same_judgments_hold_identical_records(
    project, on_postgres, tmp_path
):
    if not on_postgres:
        pytest.skip("checked on PostgreSQL, the production database")
    _every_kind_judged(project)
    snapshot = list(
        eligible_judgments(project_id=project.id).order_by("id").values_list("id", flat=True)
    )
    cycle = build_records(snapshot_rows(snapshot))
    demo = models.Task.objects.get(kind="demonstration")
    assert cycle.sft == [SFTExample(tuple(demo.prompt.messages), "The ideal answer.")]
    assert len(cycle.pairs) > 20
    assert len(cycle.unpaired) == 4  # both bad (2) and the thumbs (2)
    assert cycle.counts["tie"] > 0

    def exported(dataset: str, kind: str, style: str) -> list:
        path = tmp_path / f"{dataset}-{style}.jsonl"
        manifest = export_write(
            project=project, params={"dataset": dataset, "style": style}, path=path
        )
        assert manifest["complete"]
        records, report = load_jsonl(path, kind)
        assert report.kept == manifest["counts"]["rows"]
        return records

    assert exported("preference", "preference", "conversational") == cycle.pairs
    assert exported("unpaired", "unpaired", "conversational") == cycle.unpaired
    assert exported("sft", "sft", "conversational") == cycle.sft
    # The standard style writes the same records with the prompt rendered as text.
    assert exported("preference", "preference", "standard") == [
        PreferencePair(standard_prompt(p.prompt), p.chosen, p.rejected, p.margin)
        for p in cycle.pairs
    ]
    assert exported("unpaired", "unpaired", "standard") == [
        UnpairedExample(standard_prompt(u.prompt), u.completion, u.desirable)
        for u in cycle.unpaired
    ]
