"""The whole dashboard of a project: computed once, cached, refreshed by fingerprint.

``dashboard_get`` serves the cached result when the project's fingerprint (newest judgment,
assignment, task, exclusion change and run) has not moved. When it has moved, small projects are
recomputed on the spot; big ones (over ``LARGE_PROJECT_JUDGMENTS``) get the stale result with
``stale: True`` and are refreshed by the ``cpu`` worker, which calls :func:`insight_refresh`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache
from django.db import connection, connections
from django.db.models import Count, Max
from django.utils import timezone

from annotation.insight import sections
from annotation.insight.arrays import (
    PairwiseTasks,
    current_kinds,
    judgment_matrix,
    pairwise_join,
    pairwise_tasks,
)
from annotation.models import Assignment, Judgment, RaterExclusion, Task, TrainingRun

CACHE_SECONDS = 24 * 3600
LARGE_PROJECT_JUDGMENTS = 200_000
SCHEMA = 2  # bump when the dashboard's shape changes


def _key(project_id: int) -> str:
    return f"insight:v{SCHEMA}:{project_id}"


def fingerprint(project_id: int) -> list[Any]:
    """Cheap (index-only) summary that changes whenever the dashboard could."""
    j = Judgment.objects.filter(project_id=project_id).aggregate(m=Max("id"))
    a = Assignment.objects.filter(project_id=project_id).aggregate(
        m=Max("id"), f=Max("finished_at"), e=Max("expires_at")
    )
    t = Task.objects.filter(project_id=project_id).aggregate(m=Max("id"))
    x = RaterExclusion.objects.filter(project_id=project_id).aggregate(
        n=Count("id"), m=Max("lifted_at")
    )
    r = TrainingRun.objects.filter(project_id=project_id).aggregate(
        m=Max("id"), f=Max("finished_at")
    )
    values = [j["m"], a["m"], a["f"], t["m"], x["n"], x["m"], r["m"], r["f"]]
    return [v.isoformat() if hasattr(v, "isoformat") else v for v in values]


def pairwise_tasks_cached(project_id: int) -> PairwiseTasks:
    """Tasks, their responses, lengths and systems never change once created: cache them by the
    project's task count and newest task, so a recompute after new judgments skips re-reading
    every response text."""
    agg = Task.objects.filter(project_id=project_id).aggregate(n=Count("id"), m=Max("id"))
    key = f"insight:v{SCHEMA}:{project_id}:tasks:{agg['n']}:{agg['m']}"
    tasks = cache.get(key)
    if tasks is None:
        tasks = pairwise_tasks(project_id)
        cache.set(key, tasks, CACHE_SECONDS)
    return tasks


PARALLEL_QUERIES = 5
ANALYTICS_WORK_MEM = "64MB"


def _in_thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``fn`` on its own database connection, closed when done (connections are per thread)."""

    def run() -> Any:
        try:
            with connection.cursor() as cursor:
                # Grouping 1M rows wants more than the default 4 MB of sort/hash memory; the
                # setting dies with this connection, closed below.
                cursor.execute(f"SET work_mem = '{ANALYTICS_WORK_MEM}'")
            return fn()
        finally:
            connections.close_all()

    return run


@contextmanager
def _jobs(
    jobs: dict[str, Callable[[], Any]], timings: dict[str, float]
) -> Iterator[Callable[[str], Any]]:
    """The independent queries of the dashboard, concurrently on PostgreSQL in autocommit (the
    database does the work; threads only wait on it). Inside a transaction (tests) or on SQLite
    they run one after the other on the caller's connection, which sees the same data.

    Yields ``result(name)``, which waits for that job alone: the caller works on what has
    arrived while the rest is still being fetched."""

    def timed(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            t0 = time.perf_counter()
            out = fn()
            timings[name] = round(time.perf_counter() - t0, 3)
            return out

        return run

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        done = {name: timed(name, fn)() for name, fn in jobs.items()}
        yield done.__getitem__
        return
    with ThreadPoolExecutor(max_workers=PARALLEL_QUERIES) as pool:
        futures = {name: pool.submit(_in_thread(timed(name, fn))) for name, fn in jobs.items()}
        yield lambda name: futures[name].result()


def dashboard_compute(project_id: int) -> dict[str, Any]:
    """Every section from scratch (SQL aggregation + numpy).

    ``timings``: seconds per step; the judgment-only steps (activity, throughput, rater_facts)
    run while the task arrays may still be arriving, so the steps overlap."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    now = timezone.now()

    def timed(name: str, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args)
        timings[name] = round(time.perf_counter() - t0, 3)
        return out

    jobs = {
        "fetch_tasks": lambda: pairwise_tasks_cached(project_id),
        "fetch_judgments": lambda: judgment_matrix(project_id),
        "queue_facts": lambda: sections.queue_facts(project_id),
        "rater_db_facts": lambda: sections.rater_db_facts(project_id),
    }
    with _jobs(jobs, timings) as fetched:
        m = fetched("fetch_judgments")
        activity = timed("activity", sections.judgment_hours, m)
        queue = fetched("queue_facts")
        queue["recent"] = sections.recent_activity(m, now)
        queue["done_by_day"] = sections.queue_done_by_day(m, queue["uncounted_tasks"])
        throughput = timed("throughput", sections.throughput_section, now, activity, queue)
        facts = timed("rater_facts", sections.rater_facts, activity, fetched("rater_db_facts"))
        tasks = fetched("fetch_tasks")
    pw = timed("join", pairwise_join, m, tasks)
    tables: dict[str, dict] = {}
    kinds = current_kinds(m)
    tables.update(timed("agreement", sections.agreement_section, project_id, pw, kinds))
    tables.update(timed("raters", sections.rater_section, pw, facts))
    throughput_tables, summary = throughput
    tables.update(throughput_tables)
    tables.update(timed("bias", sections.bias_section, project_id, pw))
    tables.update(timed("leaderboard", sections.leaderboard_section, pw, tasks))
    run_tables, curves = timed("runs", sections.runs_section, project_id)
    tables.update(run_tables)
    summary["pairwise_judgments"] = len(pw.ids)
    return {
        "project_id": project_id,
        "computed_at": now.isoformat(),
        "compute_seconds": round(time.perf_counter() - started, 3),
        "timings": timings,
        "summary": summary,
        "tables": tables,
        "curves": curves,
    }


def insight_refresh(project_id: int) -> dict[str, Any]:
    """Recompute and cache the dashboard (the ``cpu`` worker's entry point). Returns it."""
    fp = fingerprint(project_id)
    data = dashboard_compute(project_id)
    cache.set(_key(project_id), {"fingerprint": fp, "data": data}, CACHE_SECONDS)
    return data


def insight_needs_refresh(project_id: int) -> bool:
    cached = cache.get(_key(project_id))
    return cached is None or cached["fingerprint"] != fingerprint(project_id)


def dashboard_get(project_id: int, *, refresh: bool = False) -> dict[str, Any]:
    """The cached dashboard; recomputed when stale unless the project is large (see module doc)."""
    cached = None if refresh else cache.get(_key(project_id))
    if cached is not None:
        if cached["fingerprint"] == fingerprint(project_id):
            return {**cached["data"], "stale": False}
        if cached["data"]["summary"].get("pairwise_judgments", 0) > LARGE_PROJECT_JUDGMENTS:
            return {**cached["data"], "stale": True}
    return {**insight_refresh(project_id), "stale": False}
