"""bench/gpu_check.py keeps working: its CPU smoke run on a tiny model prints every row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "reward model (full FT)",
    "DPO (full FT)",
    "KTO (full FT)",
    "GRPO (full FT, new RM)",
    "PPO (full FT, new RM)",
    "generate (base)",
    "generate (new DPO policy)",
    "score samples (new RM)",
]


def test_smoke_run_on_cpu_prints_every_step(tiny_lm, tmp_path):
    out = tmp_path / "rows.json"
    args = ["--model", str(tiny_lm), "--device", "cpu", "--pairs", "4", "--steps", "1"]
    args += ["--batch", "2", "--prompts", "2", "--k", "2", "--new-tokens", "8"]
    args += ["--max-length", "64", "--json", str(out)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["step"] for r in rows] == ROWS
    assert all(r["tokens"] > 0 and r["seconds"] > 0 for r in rows)
    assert "GPU check on CPU" in result.stdout
