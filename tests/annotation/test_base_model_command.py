"""``manage.py base_model``: the web side's front to ``python -m training base-model`` (run in a
subprocess, so the annotation package never imports torch), with models under MODELS_DIR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "smollm2-135m-instruct"


def test_manage_py_base_model_runs_the_training_cli(tmp_path):
    env = {"MODELS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "manage.py", "base_model"]
    listed = subprocess.run(
        [*run, "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["path"] == str(tmp_path / NAME)
    bad = subprocess.run(
        [*run, "install", "nope"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert bad.stderr.count("unknown base model 'nope'; known: smollm2-135m-instruct") == 1
