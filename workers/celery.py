"""The Celery app, wired to Django settings (``CELERY_*`` names in ``config/settings.py``).

Routing lives in one place: :data:`TASK_ROUTES` maps every task name to its queue. ``gpu`` holds
training, generation and scoring (its worker runs one task at a time, ``--pool solo``, so CUDA is
never initialised in a forked parent); ``cpu`` holds bookkeeping (the retrain policy tick,
dashboards, large imports, returning expired leases).
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TASK_ROUTES = {
    "loop.policy_tick": {"queue": "cpu"},
    "insight.refresh_stale": {"queue": "cpu"},
    "imports.run_job": {"queue": "cpu"},
    "leases.expire_stale": {"queue": "cpu"},
    "loop.run_cycle": {"queue": "gpu"},
}

app = Celery("prefloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = TASK_ROUTES


def _ensure_filesystem_broker() -> None:
    """The embedded default's file broker needs its folders before the first message."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        if key in options:
            Path(str(options[key])).mkdir(parents=True, exist_ok=True)


_ensure_filesystem_broker()
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
