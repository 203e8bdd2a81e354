"""The Celery app, wired to Django settings (``CELERY_*`` names in ``config/settings.py``).

It lives in ``config/`` (the standard Django layout, ``celery -A config``) because both sides use
it: the web side (``annotation``) only *sends* tasks, by name, and never imports ``workers``; the
worker loads the task modules listed in ``include`` when it starts. So a process that only sends
(gunicorn, ``manage.py``) never imports ``workers.tasks`` or anything behind it.

Routing lives in one place: :data:`TASK_ROUTES` maps every task name to its queue. ``gpu`` holds
training, generation and scoring (its worker runs one task at a time, ``--pool solo``, so CUDA is
never initialised in a forked parent); ``cpu`` holds bookkeeping (the retrain policy tick,
dashboards, large imports, returning expired leases).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TASK_ROUTES = {
    "loop.policy_tick": {"queue": "cpu"},
    "insight.refresh_stale": {"queue": "cpu"},
    "imports.run_job": {"queue": "cpu"},
    "leases.expire_stale": {"queue": "cpu"},
    "loop.run_cycle": {"queue": "gpu"},
    # An AI labeling pass goes to the queue its starter chose (annotation/services/ai_passes.py).
    "ai.run_pass.cpu": {"queue": "cpu"},
    "ai.run_pass.gpu": {"queue": "gpu"},
    # A Constitutional AI batch likewise (start_cai_pass; workers/cai.py).
    "ai.run_cai.cpu": {"queue": "cpu"},
    "ai.run_cai.gpu": {"queue": "gpu"},
}

# The task modules a worker imports at start (by name: config never imports workers).
TASK_MODULES = ["workers.tasks", "workers.ai_feedback", "workers.cai"]

app = Celery("prefloop", include=TASK_MODULES)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = TASK_ROUTES


@app.on_after_configure.connect
def _ensure_filesystem_broker(sender: Celery, **kwargs: Any) -> None:
    """The embedded default's file broker needs its folders before the first message (sender and
    worker alike); runs once, when the settings are first read."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        if key in options:
            Path(str(options[key])).mkdir(parents=True, exist_ok=True)


def send(task_name: str, *args: Any) -> None:
    """Send ``task_name`` (a key of :data:`TASK_ROUTES`) with ``args`` (ids, never objects) to
    its queue. What the web side calls; it needs no task module."""
    if task_name not in TASK_ROUTES:
        raise KeyError(f"{task_name!r} is not a routed task; add it to TASK_ROUTES")
    app.send_task(task_name, args=list(args))
