"""The assignment and submit guarantees under real concurrency: many raters, each a thread with
its own database connection, racing over the same tasks.

Runs on whatever database the suite uses (PostgreSQL in CI: FOR UPDATE SKIP LOCKED) and, from a
PostgreSQL run, once more in a subprocess on the SQLite embedded default (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection, connections

from annotation.errors import NoTaskAvailable
from annotation.models import Assignment, Judgment, Task
from annotation.services.assignment import assignment_claim_next, assignment_skip
from annotation.services.judgments import judgment_submit
from tests.factories import ProjectFactory, make_rater, make_task

ROOT = Path(__file__).resolve().parents[2]


def rater_loop(project, rater, barrier, acknowledged, errors, seed):
    rng = random.Random(seed)
    try:
        barrier.wait()
        while True:
            try:
                assignment = assignment_claim_next(project=project, rater=rater).assignment
            except NoTaskAvailable:
                return
            if rng.random() < 0.05:
                assignment_skip(assignment_id=assignment.id, rater=rater, reason="race test")
                continue
            key = uuid.uuid4().hex
            body = {"choice": rng.choice(["A", "B"]), "strength": rng.randint(1, 4)}
            retries = 2 if rng.random() < 0.2 else 1  # some clients retry an acknowledged submit
            for _ in range(retries):
                result = judgment_submit(
                    assignment_id=assignment.id, rater=rater, body=body, idempotency_key=key
                )
                acknowledged.append(result.judgment.id)
    except Exception as exc:  # reported by the test, never swallowed
        errors.append(repr(exc))
    finally:
        connections.close_all()


def run_race(*, raters: int, tasks: int, overlap: int) -> None:
    project = ProjectFactory(overlap=overlap, lease_seconds=600)
    for i in range(tasks):
        make_task(project, priority=i % 5)
    users = [make_rater(project) for _ in range(raters)]
    barrier = threading.Barrier(raters)
    acknowledged: list[int] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=rater_loop, args=(project, user, barrier, acknowledged, errors, n))
        for n, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a rater thread hung"
    assert not errors, errors[:5]

    judgments = list(
        Judgment.objects.filter(project=project).values_list("id", "task_id", "rater_id")
    )
    # Every acknowledged submit is stored, exactly once (retries returned the same row).
    assert set(acknowledged) == {j[0] for j in judgments}
    assert len(judgments) == len({j[0] for j in judgments})
    # No (task, rater) twice, no task above its overlap.
    assert len({(j[1], j[2]) for j in judgments}) == len(judgments)
    per_task = Counter(j[1] for j in judgments)
    assert max(per_task.values()) <= overlap
    pairs = Assignment.objects.filter(project=project).values_list("task_id", "rater_id")
    assert len(set(pairs)) == len(pairs)
    # Counters agree with the rows, and with enough raters every task got its full overlap.
    for task in Task.objects.filter(project=project):
        assert task.judgments_done == per_task[task.id]
        live = task.assignments.filter(status__in=["active", "submitted"]).count()
        assert task.slots_taken == live
        assert task.judgments_done <= task.required_judgments
    assert Task.objects.filter(project=project, status="complete").count() >= tasks // 2


@pytest.mark.django_db(transaction=True)
def test_raters_racing_never_exceed_overlap_or_lose_a_judgment():
    raters = 50 if connection.vendor == "postgresql" else 16
    run_race(raters=raters, tasks=120, overlap=3)


@pytest.mark.django_db(transaction=True)
def test_one_rater_in_many_tabs_never_judges_a_task_twice():
    project = ProjectFactory(overlap=1)
    for _ in range(30):
        make_task(project)
    rater = make_rater(project)
    barrier = threading.Barrier(8)
    acknowledged: list[int] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=rater_loop, args=(project, rater, barrier, acknowledged, errors, n))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors or all("Conflict" in e for e in errors), errors[:3]
    tasks = list(Judgment.objects.filter(rater=rater).values_list("task_id", flat=True))
    assert len(tasks) == len(set(tasks))


@pytest.mark.skipif(
    connection.vendor != "postgresql" or os.environ.get("PREFLOOP_RACE_CHILD") == "1",
    reason="the SQLite run is started from a PostgreSQL run (a SQLite run already covers it)",
)
def test_same_guarantees_on_the_sqlite_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_NAME")}
    env.update(PREFLOOP_RACE_CHILD="1", PREFLOOP_VAR_DIR=str(tmp_path))
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{Path(__file__)}::test_raters_racing_never_exceed_overlap_or_lose_a_judgment",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    assert "1 passed" in child.stdout
