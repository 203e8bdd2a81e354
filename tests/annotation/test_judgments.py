"""Submitting and revising judgments: storage, idempotency, revisions, demonstrations."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import Assignment, Judgment, Response, Task
from annotation.services.assignment import assignment_claim_next, assignment_skip
from annotation.services.judgments import judgment_revise, judgment_submit
from tests.factories import make_rater, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]


def lease(project, rater):
    return assignment_claim_next(project=project, rater=rater).assignment


def test_submit_stores_choice_as_displayed_and_the_winner(project, rater):
    task = make_task(project)
    a = lease(project, rater)
    result = judgment_submit(
        assignment_id=a.id,
        rater=rater,
        body={
            "choice": "B",
            "strength": 4,
            "flags": ["unsafe"],
            "rationale": "clearer",
            "time_spent_ms": 5300,
        },
    )
    j = result.judgment
    assert result.created
    assert (j.choice, j.strength, j.preferred_response_id) == ("B", 4, a.display_order[1])
    assert j.display_order == a.display_order
    assert (j.flags, j.rationale, j.time_spent_ms) == (["unsafe"], "clearer", 5300)
    task.refresh_from_db()
    assert (task.judgments_done, task.slots_taken) == (1, 1)
    assert Assignment.objects.get(id=a.id).status == "submitted"


def test_task_completes_when_overlap_reached(project):
    task = make_task(project, required=2)
    for _ in range(2):
        r = make_rater(project)
        judgment_submit(assignment_id=lease(project, r).id, rater=r, body={"choice": "tie"})
    task.refresh_from_db()
    assert task.status == "complete"


def test_ten_retries_with_one_key_store_one_judgment(project, rater):
    make_task(project)
    a = lease(project, rater)
    body = {"choice": "A", "strength": 2}
    results = [
        judgment_submit(assignment_id=a.id, rater=rater, body=body, idempotency_key="k1")
        for _ in range(10)
    ]
    assert [r.created for r in results] == [True] + [False] * 9
    assert {r.judgment.id for r in results} == {results[0].judgment.id}
    assert Judgment.objects.count() == 1
    assert Task.objects.get().judgments_done == 1


def test_same_key_other_body_is_a_conflict(project, rater):
    make_task(project)
    a = lease(project, rater)
    judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"}, idempotency_key="k")
    with pytest.raises(Conflict, match="different request body"):
        judgment_submit(
            assignment_id=a.id,
            rater=rater,
            body={"choice": "A", "strength": 1},
            idempotency_key="k",
        )
    assert Judgment.objects.get().choice == "tie"


def test_second_submit_without_key_is_refused(project, rater):
    make_task(project)
    a = lease(project, rater)
    judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"})
    with pytest.raises(Conflict, match="revise"):
        judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"})
    assert Judgment.objects.count() == 1


def test_invalid_payload_changes_nothing(project, rater):
    task = make_task(project)
    a = lease(project, rater)
    with pytest.raises(ValidationFailed):
        judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "A"})
    task.refresh_from_db()
    assert task.judgments_done == 0
    assert Assignment.objects.get(id=a.id).status == "active"
    assert Judgment.objects.count() == 0


def test_other_raters_assignment_is_not_found(project, rater):
    make_task(project)
    a = lease(project, rater)
    other = make_rater(project)
    with pytest.raises(NotFound):
        judgment_submit(assignment_id=a.id, rater=other, body={"choice": "tie"})


def test_skipped_task_cannot_be_judged(project, rater):
    make_task(project)
    a = lease(project, rater)
    assignment_skip(assignment_id=a.id, rater=rater, reason="unreadable")
    with pytest.raises(Conflict, match="skipped"):
        judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"})


def test_revision_keeps_the_old_row(project, rater):
    make_task(project)
    a = lease(project, rater)
    first = judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"}).judgment
    second = judgment_revise(
        judgment_id=first.id, rater=rater, body={"choice": "A", "strength": 3}
    ).judgment
    first.refresh_from_db()
    assert (first.revision, first.is_current, first.choice) == (1, False, "tie")
    assert (second.revision, second.is_current, second.choice) == (2, True, "A")
    assert second.display_order == first.display_order
    with pytest.raises(Conflict, match="already revised"):
        judgment_revise(judgment_id=first.id, rater=rater, body={"choice": "tie"})
    assert Task.objects.get().judgments_done == 1


def test_database_refuses_two_current_judgments(project, rater):
    make_task(project)
    a = lease(project, rater)
    j = judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"}).judgment
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            task=j.task, project=project, rater=rater, kind="pairwise", revision=2, choice="tie"
        )


def test_demonstration_keeps_original_and_edit(project, rater):
    task = make_task(project, kind="demonstration", n_responses=1)
    a = lease(project, rater)
    original = task.task_responses.get().response
    j = judgment_submit(
        assignment_id=a.id,
        rater=rater,
        body={"text": original.text + " Improved.", "based_on": original.id},
    ).judgment
    edit = Response.objects.get(id=j.payload["response"])
    assert edit.parent_id == original.id
    assert edit.origin == "human"
    assert edit.author_id == rater.id
    original.refresh_from_db()
    assert not original.text.endswith("Improved.")


def test_ranking_and_rating_round_trip(project, rater):
    make_task(project, kind="ranking", n_responses=3, priority=2)
    make_task(project, kind="rating", n_responses=2, priority=1)
    a = lease(project, rater)
    ids = a.display_order
    j = judgment_submit(
        assignment_id=a.id, rater=rater, body={"ranking": [[ids[2]], [ids[0], ids[1]]]}
    ).judgment
    assert j.payload == {"ranking": [[ids[2]], [ids[0], ids[1]]]}
    b = lease(project, rater)
    ratings = [{"response": rid, "thumb": "up", "likert": 5} for rid in b.display_order]
    j = judgment_submit(assignment_id=b.id, rater=rater, body={"ratings": ratings}).judgment
    assert [r["thumb"] for r in j.payload["ratings"]] == ["up", "up"]


def _field_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize(
    "body",
    [
        {"choice": "B", "strength": 3, "flags": ["unsafe"], "rationale": "r", "time_spent_ms": 9},
        {"choice": "tie"},
    ],
)
def test_returned_judgment_is_the_stored_row(project, rater, body):
    """On both paths the caller's instance is what the database holds, every field."""
    make_task(project)
    result = judgment_submit(
        assignment_id=lease(project, rater).id, rater=rater, body=body, idempotency_key="k"
    )
    stored = Judgment.objects.get(id=result.judgment.id)
    assert _field_values(result.judgment) == _field_values(stored)
    assert result.judgment._state.adding is False
