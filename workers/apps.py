"""``workers`` is a Django app only so that its management commands (``manage.py simulate``) live
beside the code they drive: it has no models, URLs or templates, and ``annotation`` never imports
it. Importing the app (what ``django.setup()`` does) loads this package's empty ``__init__`` and
nothing else: the task modules load in the Celery worker (``config/celery.py``)."""

from __future__ import annotations

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Retrain loop workers"
