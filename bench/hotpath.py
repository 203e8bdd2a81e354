"""What each hand-written part of the hot path buys, measured against the ORM it replaces.

In one process on a scratch PostgreSQL database (``prefloop_bench_hotpath``; ``BENCH_HOTPATH_DB``
overrides it), with the server's settings (DEBUG off, prepared statements on):

* the per-request reads (``annotation/precompiled.py``): the token lookup and the membership +
  project lookup, written once and prepared, against the same lookups through the ORM;
* claim + submit (``annotation/services/pg_statements.py``): one next -> submit loop through the
  services with the single statements, against the ORM path the services take on SQLite;
* the dashboard's integer arrays (``annotation/insight/arrays.py``): N rows x 9 bigint columns as
  one binary COPY read by numpy, against the cursor's tuples converted in blocks.

Each pair runs in alternating blocks; the figures are medians over blocks of wall time and of
this process's CPU time per call (PostgreSQL's own CPU is in the wall time, not in the CPU time).

    python bench/hotpath.py [--loops 400] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_HOTPATH_DB", "prefloop_bench_hotpath")
BLOCKS = 7


def setup() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(
        {
            "DATABASE_URL": ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB_NAME}",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "ERROR",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """(wall ms, CPU ms) per call over ``calls`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return (
        (time.perf_counter() - wall) * 1000 / calls,
        (time.process_time() - cpu) * 1000 / calls,
    )


def compare(label: str, fast: Callable[[], object], orm: Callable[[], object], calls: int) -> None:
    fast(), orm()  # warm: connection, prepared statements, caches
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for _ in range(BLOCKS):
        a.append(timed(fast, calls))
        b.append(timed(orm, calls))
    fw, fc = (statistics.median(x[i] for x in a) for i in (0, 1))
    ow, oc = (statistics.median(x[i] for x in b) for i in (0, 1))
    print(
        f"{label:<34} written once {fw:8.3f} ms wall {fc:8.3f} ms CPU | ORM {ow:8.3f} ms wall "
        f"{oc:8.3f} ms CPU | saves {ow - fw:7.3f} ms wall, {oc - fc:7.3f} ms CPU "
        f"(load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def bench_reads(calls: int) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation import precompiled
    from annotation.models import Membership, Project

    project = Project.objects.create(name="bench", slug="bench")
    user = get_user_model().objects.create(username="rater")
    Membership.objects.create(project=project, user=user, role="labeler")
    key = Token.objects.create(user=user).key

    def token_orm() -> object:
        return Token.objects.select_related("user").get(key=key).user

    def membership_orm() -> object:
        m = Membership.objects.select_related("project").get(project_id=project.id, user=user)
        return m.project, m.role

    compare("token -> user", lambda: precompiled.user_for_token(key), token_orm, calls)
    compare(
        "membership + project",
        lambda: precompiled.membership_project(project_id=project.id, user_id=user.id),
        membership_orm,
        calls,
    )


def bench_loop(calls: int) -> None:
    from django.contrib.auth import get_user_model

    from annotation.models import Membership, Project
    from annotation.services import assignment, judgments, pg_statements

    os.environ["BENCH_SERVE_DB"] = DB_NAME  # bench/serve.py's bulk fill, on this database
    from serve import add_tasks

    project = Project.objects.create(name="loop", slug="loop", overlap=1, lease_seconds=600)
    rater = get_user_model().objects.create(username="looper")
    Membership.objects.create(project=project, user=rater, role="labeler")
    add_tasks(project.id, calls * (2 * BLOCKS + 2) + 100)
    body = {"choice": "A", "strength": 2, "time_spent_ms": 1200}

    def loop() -> None:
        claim = assignment.assignment_claim_next(project=project, rater=rater)
        judgments.judgment_submit(
            assignment_id=claim.assignment.id,
            rater=rater,
            body=body,
            idempotency_key=secrets.token_hex(8),
        )

    statement = pg_statements.enabled

    def orm_loop() -> None:
        pg_statements.enabled = lambda: False  # what the tests' write_path="orm" does
        try:
            loop()
        finally:
            pg_statements.enabled = statement

    compare("next + submit (services)", loop, orm_loop, calls)


def bench_arrays(rows: int) -> None:
    from django.db import connection

    from annotation.insight import arrays

    sql = (
        "SELECT g, g %% 200, g %% 4, g %% 5, g * 3, g %% 7, 1200 + g %% 100, g %% 64, "
        "1700000000 + g FROM generate_series(1, %s) AS g"
    )
    copy = arrays.fetch_int_matrix_sql

    def tuples() -> object:
        connection.vendor = "other"  # takes the cursor path, as on SQLite
        try:
            return copy(sql, [rows], 9)
        finally:
            del connection.vendor

    assert (copy(sql, [rows], 9) == tuples()).all()
    compare(f"{rows:,} x 9 integers", lambda: copy(sql, [rows], 9), tuples, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=300, help="calls per block")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    setup()
    try:
        bench_reads(args.loops * 2)
        bench_loop(args.loops)
        bench_arrays(args.rows)
    finally:
        from django.db import connection

        connection.close()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
