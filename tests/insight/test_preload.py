"""The dashboard worker imports the statistics libraries at start; other processes do not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from annotation.metrics import LIBRARIES, preload

ROOT = Path(__file__).resolve().parents[2]

# A worker consuming the given queues: celery's own queue selection (what ``-Q`` does), then the
# signal the worker sends once it is set up, before its pool starts.
WORKER_START = """
import os, sys, types
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from celery.signals import celeryd_after_setup
import workers.tasks
from config.celery import app
app.amqp.queues.select({queues!r})
celeryd_after_setup.send(sender="test@host", instance=types.SimpleNamespace(app=app), conf=None)
print(sorted(m for m in {libraries!r} if m in sys.modules))
"""


@pytest.mark.parametrize(("queues", "loaded"), [(["cpu"], True), (["gpu"], False)])
def test_worker_preloads_libraries_only_where_dashboards_are_computed(queues, loaded) -> None:
    code = WORKER_START.format(queues=queues, libraries=LIBRARIES)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    expected = sorted(LIBRARIES) if loaded else []
    assert result.stdout.strip().splitlines()[-1] == str(expected)


def test_preload_is_free_once_loaded() -> None:
    preload()
    assert all(name in sys.modules for name in LIBRARIES)
    assert preload() < 0.05
