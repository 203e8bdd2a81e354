"""training/ is a plain ML library: importing all of it pulls in no Django and no platform code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import pkgutil, importlib, sys, training, training.trainers
for m in pkgutil.walk_packages(training.__path__, "training."):
    if m.name != "training.__main__":
        importlib.import_module(m.name)
import training.__main__
banned = {"django", "rest_framework", "annotation", "workers", "trl"}
bad = sorted(n for n in sys.modules if n.split(".")[0] in banned)
print(bad)
"""


def test_training_imports_no_django_platform_or_trl() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
