"""Project wiring: settings, URLs, WSGI/ASGI and the Celery app (``config/celery.py``).

``config.celery_app`` is the Celery app, as in the standard Django layout, but loaded on first
use rather than at startup: importing celery costs about 0.4 s and the web process only needs it
when it sends a task (``celery -A config`` finds ``config.celery.app`` either way).
"""

from __future__ import annotations

from typing import Any

__all__ = ["celery_app"]


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from config.celery import app

        return app
    raise AttributeError(f"module 'config' has no attribute {name!r}")
