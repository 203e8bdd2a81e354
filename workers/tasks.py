"""Celery tasks: thin, named, ids only. Queues are assigned in ``config/celery.py``.

``run_cycle`` retries transient errors (database/broker connection) with exponential backoff; a
permanent error is recorded on the run by the pipeline; after the last retry the run is failed.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import celeryd_after_setup

from config.celery import TASK_ROUTES, app

MAX_RETRIES = 5
# The import task's hard limit: annotation.services.import_jobs.TIME_LIMIT (a test checks), which
# treats a job running longer than this as dead.
IMPORT_SECONDS = 2 * 3600
logger = logging.getLogger(__name__)


@celeryd_after_setup.connect
def preload_analytics(sender: str, instance: Any, **kwargs: Any) -> None:
    """A worker that refreshes dashboards imports the statistics libraries once, at start (in
    the parent, before the pool forks, so every child has them): otherwise each child's first
    dashboard would pay about a second of imports. Other workers stay lean."""
    queue = TASK_ROUTES["insight.refresh_stale"]["queue"]
    if queue in instance.app.amqp.queues.consume_from:
        from annotation.metrics import preload

        logger.info("analytics libraries imported in %.2f s", preload())


@app.task(name="loop.run_cycle", bind=True, max_retries=MAX_RETRIES)
def run_cycle(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    from workers import pipelines

    try:
        return pipelines.cycle_execute(run_id=run_id)
    except pipelines.TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            pipelines.cycle_fail(run_id=run_id, error=f"gave up after retries: {exc!r}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries)) from exc


@app.task(name="loop.policy_tick", soft_time_limit=50, time_limit=60)
def policy_tick() -> list[int]:
    from annotation.services.ai_passes import ai_pass_requeue_stale
    from annotation.services.import_jobs import import_requeue_stale
    from workers.schedules import retrain_tick

    started = retrain_tick()
    import_requeue_stale()  # import jobs whose message was lost (broker down at commit)
    ai_pass_requeue_stale()  # AI passes likewise
    return started


@app.task(name="leases.expire_stale", soft_time_limit=50, time_limit=60)
def expire_stale_leases() -> int:
    """Give back the slots of leases that ran out in every project, a batch at a time. Claims
    already do this for their own project; this covers projects nobody is labeling right now,
    whose held slots would otherwise show as taken until the next claim."""
    from annotation.services.assignment import assignment_expire_stale

    total = 0
    while returned := assignment_expire_stale(project_id=None, limit=500):
        total += returned
    return total


@app.task(name="imports.run_job", soft_time_limit=IMPORT_SECONDS - 60, time_limit=IMPORT_SECONDS)
def run_import_job(job_id: int) -> str:
    """A large JSONL upload (annotation/services/import_jobs.py); the outcome is on the job."""
    from annotation.services.import_jobs import import_job_run

    return import_job_run(job_id=job_id)


@app.task(name="insight.refresh_stale", soft_time_limit=600, time_limit=660)
def refresh_stale_dashboards() -> list[int]:
    """Recompute the cached dashboard of every project whose judgments changed (big projects
    are served from this cache, see annotation/insight/dashboard.py)."""
    from annotation.insight.dashboard import insight_needs_refresh, insight_refresh
    from annotation.models import Project

    stale = [
        pid for pid in Project.objects.values_list("id", flat=True) if insight_needs_refresh(pid)
    ]
    for project_id in stale:
        insight_refresh(project_id)
    return stale
