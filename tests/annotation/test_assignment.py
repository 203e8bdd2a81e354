"""Claiming, skipping and expiring leases (single-threaded behaviour; races: test_concurrency)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.errors import Conflict, NoTaskAvailable, ValidationFailed
from annotation.models import Assignment, AssignmentStatus, Judgment, Task
from annotation.services.assignment import (
    assignment_claim_next,
    assignment_expire_stale,
    assignment_renew,
    assignment_skip,
)
from annotation.services.judgments import judgment_submit
from tests.factories import make_rater, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]


def claim(project, rater, **kwargs):
    return assignment_claim_next(project=project, rater=rater, **kwargs).assignment


def test_highest_priority_first_then_oldest(project, rater):
    low = make_task(project, priority=0.1)
    high = make_task(project, priority=0.9)
    also_high = make_task(project, priority=0.9)
    got = claim(project, rater)
    assert got.task_id == high.id
    assignment_skip(assignment_id=got.id, rater=rater, reason="unclear")
    assert claim(project, rater).task_id == also_high.id
    assert low.id != high.id


def test_resumes_live_lease_instead_of_claiming_another(project, rater):
    make_task(project)
    make_task(project)
    first = assignment_claim_next(project=project, rater=rater)
    again = assignment_claim_next(project=project, rater=rater)
    assert again.resumed
    assert again.assignment.id == first.assignment.id
    assert Assignment.objects.filter(rater=rater).count() == 1


def test_prefetch_holds_at_most_two_leases(project, rater):
    for _ in range(4):
        make_task(project)
    first = claim(project, rater)
    second = claim(project, rater, prefetch=True)
    third = claim(project, rater, prefetch=True)
    assert second.id != first.id
    assert third.id == second.id
    assert Assignment.objects.filter(rater=rater, status="active").count() == 2


def test_overlap_limits_raters_per_task(project):
    task = make_task(project, required=2)
    raters = [make_rater(project) for _ in range(3)]
    assert claim(project, raters[0]).task_id == task.id
    assert claim(project, raters[1]).task_id == task.id
    with pytest.raises(NoTaskAvailable):
        claim(project, raters[2])
    task.refresh_from_db()
    assert task.slots_taken == 2


def test_never_the_same_task_twice_after_judging_or_skipping(project, rater):
    judged = make_task(project, priority=2)
    skipped = make_task(project, priority=1)
    a = claim(project, rater)
    judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"})
    b = claim(project, rater)
    assert b.task_id == skipped.id
    assignment_skip(assignment_id=b.id, rater=rater, reason="not my language")
    with pytest.raises(NoTaskAvailable):
        claim(project, rater)
    assert judged.id != skipped.id


def test_skip_returns_the_slot_and_needs_a_reason(project):
    task = make_task(project, required=1)
    first, second = make_rater(project), make_rater(project)
    a = claim(project, first)
    with pytest.raises(ValidationFailed, match="reason"):
        assignment_skip(assignment_id=a.id, rater=first, reason="  ")
    assignment_skip(assignment_id=a.id, rater=first, reason="offensive")
    assert claim(project, second).task_id == task.id
    with pytest.raises(Conflict):
        assignment_skip(assignment_id=a.id, rater=first, reason="again")


def test_expired_lease_returns_the_slot(project):
    task = make_task(project, required=1)
    first, second = make_rater(project), make_rater(project)
    a = claim(project, first)
    Assignment.objects.filter(id=a.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    got = claim(project, second)
    assert got.task_id == task.id
    a.refresh_from_db()
    assert a.status == AssignmentStatus.EXPIRED
    task.refresh_from_db()
    assert task.slots_taken == 1


def test_renew_keeps_a_lease_alive_and_refuses_finished_ones(project):
    make_task(project, required=1)
    first, second = make_rater(project), make_rater(project)
    a = claim(project, first)
    Assignment.objects.filter(id=a.id).update(expires_at=timezone.now() + timedelta(seconds=1))
    renewed = assignment_renew(assignment_id=a.id, rater=first)
    assert renewed.expires_at > timezone.now() + timedelta(seconds=project.lease_seconds - 5)
    with pytest.raises(NoTaskAvailable):
        claim(project, second)
    judgment_submit(assignment_id=a.id, rater=first, body={"choice": "tie"})
    with pytest.raises(Conflict, match="submitted"):
        assignment_renew(assignment_id=a.id, rater=first)


def test_late_submit_after_expiry_is_rejected_when_slot_was_reassigned(project):
    make_task(project, required=1)
    first, second = make_rater(project), make_rater(project)
    a = claim(project, first)
    Assignment.objects.filter(id=a.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    claim(project, second)
    with pytest.raises(Conflict, match="expired"):
        judgment_submit(assignment_id=a.id, rater=first, body={"choice": "tie"})


def test_late_submit_after_expiry_is_accepted_when_slot_is_free(project):
    task = make_task(project, required=1)
    first = make_rater(project)
    a = claim(project, first)
    Assignment.objects.filter(id=a.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert assignment_expire_stale(project_id=project.id) == 1
    judgment_submit(assignment_id=a.id, rater=first, body={"choice": "tie"})
    task.refresh_from_db()
    assert (task.slots_taken, task.judgments_done, task.status) == (1, 1, "complete")


def test_display_order_is_a_recorded_permutation(project, rater):
    task = make_task(project, kind="ranking", n_responses=4)
    a = claim(project, rater)
    expected = list(task.task_responses.values_list("response_id", flat=True))
    assert sorted(a.display_order) == sorted(expected)


def test_display_order_is_randomized_across_raters(project):
    project.overlap = 40
    project.save()
    make_task(project, kind="ranking", n_responses=4)
    orders = {tuple(claim(project, make_rater(project)).display_order) for _ in range(40)}
    assert len(orders) > 5


def test_gold_tasks_injected_at_rate_and_hidden(project):
    regular = make_task(project)
    gold = make_task(project, is_gold=True, gold_answer={"choice": "A"})
    project.gold_rate = 0.5
    project.save()
    rater_gold = make_rater(project)
    rater_regular = make_rater(project)
    assert claim(project, rater_gold, gold_roll=0.1).task_id == gold.id
    assert claim(project, rater_regular, gold_roll=0.9).task_id == regular.id


def test_gold_rate_zero_never_serves_gold(project, rater):
    make_task(project, is_gold=True, gold_answer={"choice": "A"})
    with pytest.raises(NoTaskAvailable):
        claim(project, rater, gold_roll=0.0)


def test_gold_tasks_are_not_limited_by_overlap(project):
    gold = make_task(project, is_gold=True, gold_answer={"choice": "A"}, required=1)
    project.gold_rate = 1.0
    project.save()
    for _ in range(3):
        assert claim(project, make_rater(project)).task_id == gold.id


def test_database_refuses_overlap_violation(project):
    task = make_task(project, required=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(id=task.id).update(slots_taken=2)


def test_database_refuses_same_task_twice_for_a_rater(project, rater):
    task = make_task(project)
    a = claim(project, rater)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            task=task,
            rater=rater,
            project=project,
            display_order=[],
            claimed_at=a.claimed_at,
            expires_at=a.expires_at,
        )


def _claim_and_submit_query_counts(project, key):
    rater = make_rater(project)
    first = claim(project, rater)
    judgment_submit(assignment_id=first.id, rater=rater, body={"choice": "tie"})
    with CaptureQueriesContext(connection) as claim_queries:
        second = claim(project, rater)
    with CaptureQueriesContext(connection) as submit_queries:
        judgment_submit(
            assignment_id=second.id,
            rater=rater,
            body={"choice": "A", "strength": 2},
            idempotency_key=key,
        )
    return _statements(claim_queries), _statements(submit_queries)


def _statements(captured) -> int:
    """Queries the service made, leaving out the savepoints the test's own transaction adds."""
    return sum(1 for q in captured if "SAVEPOINT" not in q["sql"])


def test_claim_and_submit_query_counts_do_not_grow_with_tasks(project, write_path):
    for i in range(10):
        make_task(project, priority=i % 7)
    small = _claim_and_submit_query_counts(project, "small")
    for i in range(300):
        make_task(project, priority=i % 7)
    large = _claim_and_submit_query_counts(project, "large")
    assert small == large
    claims, submits = large
    if write_path == "statement":  # expiry probe + claim; lease read + write
        assert (claims, submits) == (2, 2)
    else:
        assert claims <= 12
        assert submits <= 12


def _field_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_claimed_assignment_is_the_stored_row(project, rater):
    """On both paths the caller's instance is what the database holds, every field."""
    make_task(project)
    claimed = assignment_claim_next(project=project, rater=rater).assignment
    assert _field_values(claimed) == _field_values(Assignment.objects.get(id=claimed.id))
    assert claimed._state.adding is False


@pytest.mark.parametrize("model", [Assignment, Judgment])
def test_single_statements_insert_every_column(model):
    """The claim's and the submit's INSERT take their columns from the model: a field added to
    the model is written by the statement too (with the ORM's value for it), never left out."""
    from annotation.services import pg_statements

    insert = {Assignment: pg_statements.NEW_ASSIGNMENT, Judgment: pg_statements.NEW_JUDGMENT}
    statement = {Assignment: pg_statements.CLAIM_OPEN, Judgment: pg_statements.SUBMIT_LIVE}
    columns = {f.column for f in model._meta.concrete_fields if not f.primary_key}
    written = {c.strip().strip('"') for c in insert[model].columns.split(",")}
    assert written == columns
    assert f"INSERT INTO {model._meta.db_table} ({insert[model].columns})" in statement[model]
