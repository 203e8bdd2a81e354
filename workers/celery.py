"""The Celery app, wired to Django settings (``CELERY_*`` names in ``config/settings.py``).

Routing lives in one place: :data:`TASK_ROUTES` maps every task name to its queue. ``gpu`` holds
training, generation and scoring (its worker runs one task at a time, ``--pool solo``, so CUDA is
never initialised in a forked parent); ``cpu`` holds bookkeeping (the retrain policy tick).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TASK_ROUTES = {
    "loop.policy_tick": {"queue": "cpu"},
    "loop.run_cycle": {"queue": "gpu"},
}

app = Celery("prefloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = TASK_ROUTES
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
