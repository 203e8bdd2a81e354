"""The retrain policy's schedule: Celery beat sends ``loop.policy_tick`` every minute.

The schedule itself is ``CELERY_BEAT_SCHEDULE`` in ``config/settings.py``; the decision ("enough
new judgments since the last snapshot, and the minimum interval passed") is
``annotation.services.loop.retrain_due`` and the claim that makes two ticks start one cycle is
``retrain_claim`` (a unique partial index on active runs).
"""

from __future__ import annotations

from annotation.services.loop import retrain_due, retrain_tick

POLICY_TICK_SECONDS = 60.0

__all__ = ["POLICY_TICK_SECONDS", "retrain_due", "retrain_tick"]
