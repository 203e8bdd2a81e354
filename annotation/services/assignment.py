"""Handing out tasks: claim, skip, expire.

Design (see docs/architecture.md, "Assignment"):

* ``Task.slots_taken`` counts live leases + submitted judgments. The database refuses
  ``slots_taken > required_judgments`` (a CHECK constraint), so overlap can never be exceeded even
  by a bug here; ``UNIQUE(task, rater)`` on assignments means a rater never gets a task twice
  (judged, skipped or expired alike).
* The claim is one short transaction: pick the best open task this rater has not seen with
  ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL) walking the partial index
  ``(project, priority DESC, id) WHERE status='open' AND NOT is_gold``, bump its slot counter,
  insert the assignment. Cost does not grow with the number of tasks: no counts, no scans. On
  PostgreSQL the held-lease check, the pick, the bump and the insert are one prepared statement
  (``pg_statements.py``); the ORM version below serves SQLite.
* On SQLite the settings open every transaction with ``BEGIN IMMEDIATE``: claims serialize on the
  database's write lock, which gives the same guarantees with one writer at a time.
* Expired leases are returned in small batches at the start of each claim, and every minute by
  the ``leases.expire_stale`` beat task (for projects nobody is labeling), so an abandoned slot
  comes back without a sweep over the whole table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation.errors import (
    Conflict,
    NoTaskAvailable,
    NotFound,
    RaterExcluded,
    ValidationFailed,
)
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Project,
    Prompt,
    Task,
    TaskResponse,
    TaskStatus,
)
from annotation.precompiled import has_expired_leases
from annotation.selectors import EXCLUDED_MESSAGE, is_excluded, require_labeling_standing
from annotation.services import pg_statements

EXPIRE_BATCH = 50
MAX_HELD_LEASES = 2  # the current task plus one prefetched
_rng = random.SystemRandom()


@dataclass(frozen=True)
class Claim:
    assignment: Assignment
    resumed: bool
    # Response texts by id, read with the display order on a fresh claim (saves the caller a
    # query); None when a held lease is handed back.
    response_texts: dict[int, str] | None = None


def assignment_expire_stale(*, project_id: int | None = None, limit: int = EXPIRE_BATCH) -> int:
    """Return the slots of expired leases. Locks the expired assignment rows (skipping rows
    another process holds) and then their tasks. Returns how many leases expired."""
    now = timezone.now()
    if not has_expired_leases(project_id=project_id, now=now):
        return 0  # the common case: one index probe, no transaction
    stale = Assignment.objects.filter(status=AssignmentStatus.ACTIVE, expires_at__lt=now)
    if project_id is not None:
        stale = stale.filter(project_id=project_id)
    with transaction.atomic():
        rows = list(
            stale.select_for_update(skip_locked=True)
            .order_by("expires_at")
            .values_list("id", "task_id")[:limit]
        )
        if not rows:
            return 0
        _end_leases(rows, now=now)
    return len(rows)


def _end_leases(rows: list[tuple[int, int]], *, now: datetime) -> None:
    """Mark these (assignment id, task id) leases expired and give their slots back. The caller
    holds the assignment rows' locks; tasks are updated in id order (no deadlock between two
    callers)."""
    Assignment.objects.filter(id__in=[r[0] for r in rows]).update(
        status=AssignmentStatus.EXPIRED, finished_at=now
    )
    for task_id in sorted(r[1] for r in rows):
        Task.objects.filter(id=task_id, slots_taken__gt=0).update(slots_taken=F("slots_taken") - 1)


def assignment_release_for_rater(*, project_id: int, rater_id: int) -> int:
    """End every live lease the rater holds in the project and return their slots, so tasks a
    removed or excluded rater held go to others now, not when the leases run out. Locks the
    rater's active assignment rows, then their tasks (the order of submit, skip and expiry).
    Returns how many leases ended. Runs inside the caller's transaction when there is one."""
    with transaction.atomic():
        rows = list(
            Assignment.objects.filter(
                project_id=project_id, rater_id=rater_id, status=AssignmentStatus.ACTIVE
            )
            .select_for_update()
            .order_by("id")
            .values_list("id", "task_id")
        )
        if rows:
            _end_leases(rows, now=timezone.now())
    return len(rows)


def _live_assignments(*, project: Project, rater: User) -> list[Assignment]:
    return list(
        Assignment.objects.filter(
            project=project,
            rater=rater,
            status=AssignmentStatus.ACTIVE,
            expires_at__gte=timezone.now(),
        )
        .select_related("task__prompt")
        .order_by("claimed_at", "id")
    )


def _unseen_by(rater: User) -> Exists:
    return Exists(Assignment.objects.filter(task=OuterRef("pk"), rater=rater))


def _pick_task(*, project: Project, rater: User, gold: bool) -> Task | None:
    candidates = (
        Task.objects.filter(project=project, status=TaskStatus.OPEN, is_gold=gold)
        .exclude(_unseen_by(rater))
        .select_related("prompt")
    )
    if gold:
        # Gold tasks are shown to every rater once; they have no overlap limit.
        return candidates.order_by("id").select_for_update(skip_locked=True, of=("self",)).first()
    return (
        candidates.filter(slots_taken__lt=F("required_judgments"))
        .order_by("-priority", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def _take(*, project: Project, rater: User, task: Task) -> Claim:
    Task.objects.filter(id=task.id).update(slots_taken=F("slots_taken") + 1)
    texts = dict(
        TaskResponse.objects.filter(task_id=task.id)
        .order_by("position")
        .values_list("response_id", "response__text")
    )
    order = list(texts)
    _rng.shuffle(order)
    now = timezone.now()
    assignment = Assignment.objects.create(
        task=task,
        rater=rater,
        project=project,
        display_order=order,
        claimed_at=now,
        expires_at=now + timedelta(seconds=project.lease_seconds),
    )
    return Claim(assignment=assignment, resumed=False, response_texts=texts)


def assignment_claim_next(
    *,
    project: Project,
    rater: User,
    prefetch: bool = False,
    gold_roll: float | None = None,
) -> Claim:
    """The rater's next task under a lease.

    Without ``prefetch`` a rater who already holds a live lease gets it back (resume). With
    ``prefetch`` the rater may hold one more lease, so a client can load the next task while the
    current one is on screen. Locks: the chosen task row (FOR UPDATE SKIP LOCKED). Raises
    NoTaskAvailable when nothing is left for this rater, RaterExcluded (403) when a manager has
    excluded them. The caller has checked that the rater is a member (project scoping).
    """
    assignment_expire_stale(project_id=project.id)
    roll = _rng.random() if gold_roll is None else gold_roll
    want_gold = project.gold_rate > 0 and roll < project.gold_rate
    max_held = MAX_HELD_LEASES if prefetch else 1
    live: list[Assignment] | None = None  # read once; a claim that returns None added none
    try:
        if pg_statements.enabled():
            claim = _claim_in_one_statement(
                project=project, rater=rater, want_gold=want_gold, max_held=max_held
            )
        else:
            if is_excluded(project_id=project.id, rater_id=rater.id):
                raise RaterExcluded(EXCLUDED_MESSAGE)
            live = _live_assignments(project=project, rater=rater)
            claim = None
            if len(live) < max_held:
                claim = _claim_with_orm(project=project, rater=rater, want_gold=want_gold)
    except IntegrityError:
        # The same rater claimed the same task from another tab at this instant: their other
        # request holds it; hand that lease back instead of a second one.
        live = _live_assignments(project=project, rater=rater)
        if live:
            return Claim(assignment=live[-1], resumed=True)
        raise Conflict("Your claim raced with another of your requests; try again.") from None
    if claim is not None:
        return claim
    if live is None:
        # The statement claims nothing for an excluded rater; say why rather than "none left".
        if is_excluded(project_id=project.id, rater_id=rater.id):
            raise RaterExcluded(EXCLUDED_MESSAGE)
        live = _live_assignments(project=project, rater=rater)
    if len(live) >= max_held:
        return Claim(assignment=live[-1] if prefetch else live[0], resumed=True)
    raise NoTaskAvailable("No task is available for you in this project right now.")


def _claim_with_orm(*, project: Project, rater: User, want_gold: bool) -> Claim | None:
    """None when nothing is left (the caller has checked the rater's held leases)."""
    with transaction.atomic():
        task = None
        if want_gold:
            task = _pick_task(project=project, rater=rater, gold=True)
        if task is None:
            task = _pick_task(project=project, rater=rater, gold=False)
        if task is None:
            return None
        return _take(project=project, rater=rater, task=task)


def _claim_in_one_statement(
    *, project: Project, rater: User, want_gold: bool, max_held: int
) -> Claim | None:
    """The same claim as ``_claim_with_orm`` in one PostgreSQL statement per pick."""
    now = timezone.now()
    assignment = Assignment(
        rater=rater,
        project=project,
        status=AssignmentStatus.ACTIVE,
        claimed_at=now,
        expires_at=now + timedelta(seconds=project.lease_seconds),
    )
    row = None
    for gold in (True, False) if want_gold else (False,):
        row = pg_statements.claim(assignment=assignment, gold=gold, max_held=max_held)
        if row is not None:
            break
    if row is None:
        return None
    prompt = Prompt(id=row.prompt_id, messages=row.messages)
    assignment.id = row.assignment_id
    assignment.task = Task(id=row.task_id, kind=row.kind, prompt=prompt, project=project)
    assignment.display_order = row.display_order
    assignment._state.adding = False
    assignment._state.db = "default"
    return Claim(assignment=assignment, resumed=False, response_texts=row.response_texts)


def assignment_get_for_rater(*, assignment_id: int, rater: User) -> Assignment:
    """The rater's own assignment, while they may still label its project (404 for a former
    member, 403 for an excluded rater)."""
    missing = f"Assignment {assignment_id} not found."
    try:
        assignment = Assignment.objects.select_related("task", "project").get(
            id=assignment_id, rater=rater
        )
    except Assignment.DoesNotExist:
        raise NotFound(missing) from None
    require_labeling_standing(project_id=assignment.project_id, rater=rater, not_found=missing)
    return assignment


def assignment_skip(*, assignment_id: int, rater: User, reason: str) -> Assignment:
    """Give the task back with a reason; the rater never gets it again. Locks the assignment
    row, then updates its task's counter (the same order as submit and expiry)."""
    assignment_get_for_rater(assignment_id=assignment_id, rater=rater)  # 404 before anything
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ValidationFailed("A reason is required to skip a task.", field="reason")
    if len(reason) > 500:
        raise ValidationFailed("The skip reason must be at most 500 characters.", field="reason")
    now = timezone.now()
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().get(id=assignment_id)
        if assignment.status not in (AssignmentStatus.ACTIVE, AssignmentStatus.EXPIRED):
            raise Conflict(f"Assignment {assignment_id} is already {assignment.status}.")
        held_slot = assignment.status == AssignmentStatus.ACTIVE
        assignment.status = AssignmentStatus.SKIPPED
        assignment.skip_reason = reason
        assignment.finished_at = now
        assignment.save(update_fields=["status", "skip_reason", "finished_at"])
        if held_slot:
            Task.objects.filter(id=assignment.task_id, slots_taken__gt=0).update(
                slots_taken=F("slots_taken") - 1
            )
    return assignment


def assignment_renew(*, assignment_id: int, rater: User) -> Assignment:
    """Extend a live lease by the project's lease length (a heartbeat while the task is open).

    One conditional update: only an active lease of this rater is extended. A lease that was
    already swept as expired is not revived here (its slot may be someone else's); submitting it
    still succeeds if the slot is free.
    """
    assignment = assignment_get_for_rater(assignment_id=assignment_id, rater=rater)
    expires = timezone.now() + timedelta(seconds=assignment.project.lease_seconds)
    renewed = Assignment.objects.filter(
        id=assignment.id, rater=rater, status=AssignmentStatus.ACTIVE
    ).update(expires_at=expires)
    if not renewed:
        raise Conflict(f"Assignment {assignment_id} is {assignment.status}; it cannot be renewed.")
    assignment.expires_at = expires
    return assignment
