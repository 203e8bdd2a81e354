"""Claim and submit as single PostgreSQL statements (the labeling loop's hot path).

Why: measured on the serving benchmark, building these steps with the ORM cost about 6 ms of
Python per request, most of it compiling queries, plus a round trip per statement and two for
BEGIN/COMMIT. Here each step is one precompiled statement: data-modifying CTEs do the pick, the
slot bump and the insert together, and a single statement is a transaction of its own. They are
prepared once per connection (``annotation.precompiled.fetch_one``).

The semantics are those of the ORM paths in ``assignment.py`` and ``judgments.py`` (SQLite runs
those; the tests run both): same lock (``FOR UPDATE OF t SKIP LOCKED`` on the claim index), same
counters, same constraints as the last line of defence. Anything unusual (no row: a held lease,
a replayed or raced submit, an expired lease, a demonstration) goes back to the ORM path.

The rows these statements insert are model instances the caller builds as for the ORM: the
column list is every concrete field of the model (``_Insert``) and the values are what the ORM
itself would send for that instance (``pre_save`` + ``get_db_prep_save``), so a field added to
``Assignment`` or ``Judgment`` is written here with no change to this file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model

from annotation.models import Assignment, Judgment
from annotation.precompiled import fetch_one


class _Insert:
    """The columns and values of an INSERT of every concrete field of ``model`` but its primary
    key. Columns named in ``computed`` (by attname) take that SQL expression; every other one a
    named placeholder ``%(new_<attname>)s`` that ``params`` fills from an instance."""

    def __init__(self, model: type[Model], computed: Mapping[str, str]) -> None:
        self.fields: list[Field] = [
            f
            for f in model._meta.concrete_fields
            if not f.primary_key and f.attname not in computed
        ]
        values = {f.attname: f"%(new_{f.attname})s" for f in self.fields} | dict(computed)
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        self.table = model._meta.db_table
        self.columns = ", ".join(f'"{by_attname[name].column}"' for name in values)
        self.values = ", ".join(values.values())

    def params(self, instance: Model) -> dict[str, Any]:
        """What the ORM's INSERT would send for this instance (defaults, ``auto_now_add``)."""
        return {
            f"new_{f.attname}": f.get_db_prep_save(f.pre_save(instance, True), connection)
            for f in self.fields
        }


NEW_ASSIGNMENT = _Insert(
    Assignment,
    {
        "task_id": "b.id",
        "display_order": "(SELECT coalesce(jsonb_agg(tr.response_id ORDER BY random()), "
        "'[]'::jsonb) FROM annotation_taskresponse tr WHERE tr.task_id = b.id)",
    },
)
NEW_JUDGMENT = _Insert(Judgment, {"task_id": "counted.id"})

# A claim of the best open task this rater has not seen, unless they already hold
# ``max_held`` live leases or a manager has excluded them (each checked once, as an InitPlan).
# ``{task_filter}`` and ``{order}`` are constants below, never user input: the open-task variant
# must spell out the claim index's predicate (status = 'open' AND NOT is_gold) so that the
# planner walks that index.
_CLAIM = """
WITH held AS (
    SELECT count(*) AS n FROM annotation_assignment
    WHERE rater_id = %(rater)s AND project_id = %(project)s AND status = 'active'
      AND expires_at >= %(now)s
), barred AS (
    SELECT EXISTS (
        SELECT 1 FROM annotation_raterexclusion e
        WHERE e.project_id = %(project)s AND e.rater_id = %(rater)s AND e.lifted_at IS NULL
    ) AS yes
), picked AS (
    SELECT t.id FROM annotation_task t
    WHERE t.project_id = %(project)s AND t.status = 'open' AND {task_filter}
      AND NOT EXISTS (
          SELECT 1 FROM annotation_assignment a WHERE a.task_id = t.id AND a.rater_id = %(rater)s
      )
      AND (SELECT n FROM held) < %(max_held)s AND NOT (SELECT yes FROM barred)
    ORDER BY {order}
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
), bumped AS (
    UPDATE annotation_task t SET slots_taken = t.slots_taken + 1
    FROM picked WHERE t.id = picked.id
    RETURNING t.id, t.kind, t.prompt_id
), created AS (
    INSERT INTO {NEW_ASSIGNMENT.table} ({NEW_ASSIGNMENT.columns})
    SELECT {NEW_ASSIGNMENT.values}
    FROM bumped b
    RETURNING id, task_id, display_order
)
SELECT c.id, c.task_id, b.kind, b.prompt_id, p.messages, c.display_order,
       (SELECT json_agg(json_build_array(r.id, r.text))
          FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id
         WHERE tr.task_id = c.task_id)
FROM created c
JOIN bumped b ON b.id = c.task_id
JOIN annotation_prompt p ON p.id = b.prompt_id
"""
CLAIM_OPEN = _CLAIM.format(
    task_filter="NOT t.is_gold AND t.slots_taken < t.required_judgments",
    order="t.priority DESC, t.id",
    NEW_ASSIGNMENT=NEW_ASSIGNMENT,
)
# Gold tasks are shown to every rater once; they have no overlap limit.
CLAIM_GOLD = _CLAIM.format(task_filter="t.is_gold", order="t.id", NEW_ASSIGNMENT=NEW_ASSIGNMENT)

# The rater's standing is read with the lease: a former member still holds the lease's id.
SUBMIT_CONTEXT = """
SELECT a.status, a.task_id, a.project_id, a.display_order, t.kind, p.flag_choices,
       EXISTS (SELECT 1 FROM annotation_membership m
               WHERE m.project_id = a.project_id AND m.user_id = a.rater_id),
       EXISTS (SELECT 1 FROM annotation_raterexclusion e
               WHERE e.project_id = a.project_id AND e.rater_id = a.rater_id
                 AND e.lifted_at IS NULL)
FROM annotation_assignment a
JOIN annotation_task t ON t.id = a.task_id
JOIN annotation_project p ON p.id = a.project_id
WHERE a.id = %s AND a.rater_id = %s
"""

# The common submit: the lease is live. Marks it submitted, counts the judgment on the task
# (completing it at its last judgment, gold tasks never complete) and inserts the row. No row
# back means the lease was not active; a reused Idempotency-Key fails the insert's unique index
# and, the statement being atomic, changes nothing.
SUBMIT_LIVE = f"""
WITH taken AS (
    UPDATE annotation_assignment SET status = 'submitted', finished_at = %(now)s
    WHERE id = %(assignment)s AND rater_id = %(rater)s AND status = 'active'
    RETURNING task_id
), counted AS (
    UPDATE annotation_task t SET
        judgments_done = t.judgments_done + 1,
        status = CASE WHEN NOT t.is_gold AND t.judgments_done >= t.required_judgments - 1
                      THEN 'complete' ELSE t.status END
    FROM taken WHERE t.id = taken.task_id
    RETURNING t.id
)
INSERT INTO {NEW_JUDGMENT.table} ({NEW_JUDGMENT.columns})
SELECT {NEW_JUDGMENT.values}
FROM counted
RETURNING id
"""


def enabled() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class ClaimedRow:
    assignment_id: int
    task_id: int
    kind: str
    prompt_id: int
    messages: list[dict[str, Any]]
    display_order: list[int]
    response_texts: dict[int, str]


@dataclass(frozen=True)
class SubmitContext:
    status: str
    task_id: int
    project_id: int
    display_order: list[int]
    kind: str
    flag_choices: list[str]
    is_member: bool
    is_excluded: bool


def _json(value: Any) -> Any:
    """Django's psycopg setup hands json/jsonb back as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _run(sql: str, params: Any) -> tuple[Any, ...] | None:
    """One statement, one row. A statement is atomic on its own; inside a caller's transaction
    it gets a savepoint so that a constraint error leaves the outer transaction usable."""
    if connection.in_atomic_block:
        with transaction.atomic():
            return fetch_one(sql, params)
    return fetch_one(sql, params)


def claim(*, assignment: Assignment, gold: bool, max_held: int) -> ClaimedRow | None:
    """Claim a task for ``assignment`` (an unsaved instance with its rater, project, lease times
    and status; the statement picks its task and display order) in one statement; None when
    nothing is left or a lease is held."""
    row = _run(
        CLAIM_GOLD if gold else CLAIM_OPEN,
        {
            "project": assignment.project_id,
            "rater": assignment.rater_id,
            "max_held": max_held,
            "now": assignment.claimed_at,
            **NEW_ASSIGNMENT.params(assignment),
        },
    )
    if row is None:
        return None
    assignment_id, task_id, kind, prompt_id, messages, order, texts = row
    return ClaimedRow(
        assignment_id=assignment_id,
        task_id=task_id,
        kind=kind,
        prompt_id=prompt_id,
        messages=_json(messages),
        display_order=_json(order),
        response_texts=dict(_json(texts) or []),
    )


def submit_context(*, assignment_id: int, rater_id: int) -> SubmitContext | None:
    """What validating a submit needs, in one read; None when the rater has no such lease."""
    row = fetch_one(SUBMIT_CONTEXT, (assignment_id, rater_id))
    if row is None:
        return None
    status, task_id, project_id, order, kind, flags, is_member, excluded = row
    return SubmitContext(
        status=status,
        task_id=task_id,
        project_id=project_id,
        display_order=_json(order),
        kind=kind,
        flag_choices=_json(flags),
        is_member=is_member,
        is_excluded=excluded,
    )


def submit_live(*, judgment: Judgment) -> int | None:
    """Store ``judgment`` (an unsaved instance, as ``Judgment.objects.create`` would take it)
    for its live lease: its id, or None when the lease is not active. Raises IntegrityError on a
    reused key."""
    params = NEW_JUDGMENT.params(judgment)  # sets created_at (auto_now_add)
    params |= {
        "assignment": judgment.assignment_id,
        "rater": judgment.rater_id,
        "now": judgment.created_at,  # the lease's finished_at
    }
    row = _run(SUBMIT_LIVE, params)
    return None if row is None else row[0]
