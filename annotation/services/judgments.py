"""Submitting and revising judgments.

Rule 1 of the design: an acknowledged judgment is never lost and never duplicated.

* The judgment row, the assignment's state change and the task's counters are written in one
  transaction (on PostgreSQL, for a live lease, one prepared statement: ``pg_statements.py``);
  the HTTP 2xx goes out only after it commits.
* A client sends an ``Idempotency-Key``. ``UNIQUE(rater, idempotency_key)`` makes a retried submit
  (even two racing copies of it) produce one row: the loser of the race rolls back and answers
  with the winner's row. The same key with a different body is a 409.
* Content is immutable; ``judgment_revise`` writes revision n+1 and clears ``is_current`` on the
  old row, which is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Judgment,
    Origin,
    Response,
    Task,
    TaskKind,
    TaskStatus,
)
from annotation.payloads import CleanJudgment, validate_payload
from annotation.selectors import is_current_member, require_labeling_standing
from annotation.services import pg_statements

MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool


def request_fingerprint(*, target: str, body: Any) -> str:
    canonical = json.dumps({"target": target, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(key: str) -> str:
    key = (key or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters.",
            field="Idempotency-Key",
        )
    return key


def _replay(*, rater: User, key: str, fingerprint: str) -> Judgment | None:
    """The judgment an earlier request with this key created, if any (409 if the body differs)."""
    if not key:
        return None
    earlier = Judgment.objects.filter(rater=rater, idempotency_key=key).first()
    if earlier is None:
        return None
    if earlier.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new judgment."
        )
    return earlier


def _judgment_fields(clean: CleanJudgment) -> dict[str, Any]:
    return {
        "kind": clean.kind,
        "choice": clean.choice,
        "strength": clean.strength,
        "preferred_response_id": clean.preferred_response_id,
        "payload": clean.payload,
        "flags": clean.flags,
        "rationale": clean.rationale,
        "time_spent_ms": clean.time_spent_ms,
    }


def _demonstration_response(*, clean: CleanJudgment, task: Task, rater: User) -> dict[str, Any]:
    """Store the written text as a human response; the candidate it edits is kept as parent."""
    response = Response.objects.create(
        prompt_id=task.prompt_id,
        text=clean.demonstration_text,
        origin=Origin.HUMAN,
        source="demonstration",
        parent_id=clean.based_on_id,
        author=rater,
    )
    return {
        "text": clean.demonstration_text,
        "based_on": clean.based_on_id,
        "response": response.id,
    }


def _retake_expired_slot(*, assignment: Assignment) -> None:
    """A lease that expired is still good if its slot was not handed to someone else."""
    if assignment.task.is_gold:
        return
    taken = Task.objects.filter(
        id=assignment.task_id, slots_taken__lt=F("required_judgments")
    ).update(slots_taken=F("slots_taken") + 1)
    if not taken:
        raise Conflict(
            "Your lease on this task expired and the task was given to another rater; "
            "your answer was not stored. Ask for the next task."
        )


def judgment_submit(
    *,
    assignment_id: int,
    rater: User,
    body: Any,
    idempotency_key: str = "",
) -> SubmitResult:
    """Store the rater's judgment for a leased task.

    Locks the assignment row, then updates the task's counters (same order as skip and expiry).
    On PostgreSQL the common case (a live lease, a new key) is one statement; every other case
    takes the ORM path below, which also serves SQLite.
    """
    key = _check_key(idempotency_key)
    fingerprint = request_fingerprint(target=f"assignment:{assignment_id}", body=body)
    if pg_statements.enabled():
        stored = _submit_in_one_statement(
            assignment_id=assignment_id, rater=rater, body=body, key=key, fingerprint=fingerprint
        )
        if stored is not None:
            return stored
    missing = f"Assignment {assignment_id} not found."
    try:
        assignment = Assignment.objects.select_related("task", "project").get(
            id=assignment_id, rater=rater
        )
    except Assignment.DoesNotExist:
        raise NotFound(missing) from None
    # Standing before replay: a former member's retry must not read back their judgment.
    require_labeling_standing(project_id=assignment.project_id, rater=rater, not_found=missing)
    earlier = _replay(rater=rater, key=key, fingerprint=fingerprint)
    if earlier is not None:
        return SubmitResult(judgment=earlier, created=False)
    clean = validate_payload(
        kind=assignment.task.kind,
        raw=body,
        display_order=assignment.display_order,
        flag_choices=assignment.project.flag_choices,
    )
    try:
        with transaction.atomic():
            judgment = _store(
                assignment=assignment, rater=rater, clean=clean, key=key, fingerprint=fingerprint
            )
    except IntegrityError:
        # Lost a race against a copy of this request (same key) or our own other tab.
        earlier = _replay(rater=rater, key=key, fingerprint=fingerprint)
        if earlier is not None:
            return SubmitResult(judgment=earlier, created=False)
        raise Conflict("This task already has your judgment; revise it instead.") from None
    return SubmitResult(judgment=judgment, created=True)


def _submit_in_one_statement(
    *, assignment_id: int, rater: User, body: Any, key: str, fingerprint: str
) -> SubmitResult | None:
    """The common submit in two statements (read the lease, then write everything); None hands
    the request to the ORM path (not a live lease, a demonstration, a replayed or reused key)."""
    context = pg_statements.submit_context(assignment_id=assignment_id, rater_id=rater.id)
    missing = f"Assignment {assignment_id} not found."
    if context is None:
        raise NotFound(missing)
    if not context.is_member or context.is_excluded:
        require_labeling_standing(
            project_id=context.project_id, rater=rater, member=context.is_member, not_found=missing
        )
    if context.status != AssignmentStatus.ACTIVE or context.kind == TaskKind.DEMONSTRATION:
        return None
    try:
        clean = validate_payload(
            kind=context.kind,
            raw=body,
            display_order=context.display_order,
            flag_choices=context.flag_choices,
        )
    except ValidationFailed:
        # A replay with a different body is a conflict before it is a bad payload.
        _replay(rater=rater, key=key, fingerprint=fingerprint)
        raise
    judgment = Judgment(
        task_id=context.task_id,
        project_id=context.project_id,
        rater=rater,
        assignment_id=assignment_id,
        display_order=context.display_order,
        idempotency_key=key,
        request_hash=fingerprint,
        **_judgment_fields(clean),
    )
    try:
        judgment_id = pg_statements.submit_live(judgment=judgment)
    except IntegrityError:
        return None  # a reused key (replay or 409) or our own other tab: the ORM path decides
    if judgment_id is None:
        return None
    judgment.id = judgment_id
    judgment._state.adding = False
    judgment._state.db = "default"
    return SubmitResult(judgment=judgment, created=True)


def _store(
    *,
    assignment: Assignment,
    rater: User,
    clean: CleanJudgment,
    key: str,
    fingerprint: str,
) -> Judgment:
    now = timezone.now()
    # The common case in one statement: the lease is live, mark it submitted (this locks the row).
    taken = Assignment.objects.filter(id=assignment.id, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.SUBMITTED, finished_at=now
    )
    if not taken:
        locked = Assignment.objects.select_for_update().get(id=assignment.id)
        if locked.status == AssignmentStatus.SUBMITTED:
            raise Conflict("This task already has your judgment; revise it instead.")
        if locked.status == AssignmentStatus.SKIPPED:
            raise Conflict("You skipped this task; it can no longer be judged.")
        _retake_expired_slot(assignment=assignment)  # status is expired
        Assignment.objects.filter(id=locked.id).update(
            status=AssignmentStatus.SUBMITTED, finished_at=now
        )
    task = assignment.task
    Task.objects.filter(id=task.id).update(
        judgments_done=F("judgments_done") + 1,
        status=Case(
            When(
                Q(is_gold=False) & Q(judgments_done__gte=F("required_judgments") - 1),
                then=Value(TaskStatus.COMPLETE),
            ),
            default=F("status"),
        ),
    )
    fields = _judgment_fields(clean)
    if clean.kind == TaskKind.DEMONSTRATION:
        fields["payload"] = _demonstration_response(clean=clean, task=task, rater=rater)
    return Judgment.objects.create(
        task=task,
        project_id=assignment.project_id,
        rater=rater,
        assignment=assignment,
        display_order=assignment.display_order,
        idempotency_key=key,
        request_hash=fingerprint,
        **fields,
    )


def judgment_get_for_rater(*, judgment_id: int, rater: User) -> Judgment:
    """The rater's own judgment while they still belong to its project (an excluded rater may
    read it; a former member gets 404)."""
    missing = f"Judgment {judgment_id} not found."
    try:
        judgment = Judgment.objects.select_related("task", "project").get(
            id=judgment_id, rater=rater
        )
    except Judgment.DoesNotExist:
        raise NotFound(missing) from None
    if not is_current_member(project_id=judgment.project_id, user=rater):
        raise NotFound(missing)
    return judgment


def judgment_revise(
    *,
    judgment_id: int,
    rater: User,
    body: Any,
    idempotency_key: str = "",
) -> SubmitResult:
    """Write a new revision of the rater's current judgment; the old row is kept.

    Locks the current judgment row (a stale revision of an already revised judgment is a 409).
    Only while the rater may label the project (404 for a former member, 403 when excluded).
    """
    key = _check_key(idempotency_key)
    fingerprint = request_fingerprint(target=f"judgment:{judgment_id}", body=body)
    old = judgment_get_for_rater(judgment_id=judgment_id, rater=rater)
    require_labeling_standing(project_id=old.project_id, rater=rater, member=True)
    earlier = _replay(rater=rater, key=key, fingerprint=fingerprint)
    if earlier is not None:
        return SubmitResult(judgment=earlier, created=False)
    clean = validate_payload(
        kind=old.kind,
        raw=body,
        display_order=old.display_order,
        flag_choices=old.project.flag_choices,
    )
    try:
        with transaction.atomic():
            cleared = Judgment.objects.filter(id=old.id, is_current=True).update(is_current=False)
            if not cleared:
                raise Conflict(
                    f"Judgment {judgment_id} was already revised; revise the newest revision."
                )
            fields = _judgment_fields(clean)
            if clean.kind == TaskKind.DEMONSTRATION:
                fields["payload"] = _demonstration_response(clean=clean, task=old.task, rater=rater)
            judgment = Judgment.objects.create(
                task=old.task,
                project_id=old.project_id,
                rater=rater,
                assignment_id=old.assignment_id,
                display_order=old.display_order,
                revision=old.revision + 1,
                idempotency_key=key,
                request_hash=fingerprint,
                **fields,
            )
    except IntegrityError:
        earlier = _replay(rater=rater, key=key, fingerprint=fingerprint)
        if earlier is not None:
            return SubmitResult(judgment=earlier, created=False)
        raise Conflict(f"Judgment {judgment_id} was revised concurrently; reload it.") from None
    return SubmitResult(judgment=judgment, created=True)
