"""bench/train.py keeps running in its real-data mode: chat-format HH pairs through ours and
TRL's DPO with LoRA, and the sampling row, on a tiny chat model (the real run uses SmolLM2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.tiny import write_tiny_causal_lm

ROOT = Path(__file__).resolve().parents[2]
HH_SAMPLE = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HH_SAMPLE.exists(), reason="needs ../shared/data/hh-rlhf"),
]


def test_real_mode_prints_dpo_and_generation_rows_for_both_sides(tmp_path):
    model = tmp_path / "tiny"
    write_tiny_causal_lm(model, chat_template=True, n_positions=2048)
    args = ["--real", f"--model={model}", "--pairs=4", "--batch_size=2", "--trainers=dpo"]
    args += ["--lora_r=4", "--generation", "--gen_prompts=2", "--gen_k=2", "--gen_tokens=4"]
    args += ["--threads=1", "--max_length=1536", "--max_prompt_length=1024"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "failed" not in out, out
    assert "LoRA r 4" in out
    assert "gradient checkpointing on (both)" in out
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if line[:4] in ("dpo ", "gen ")
    }
    assert set(rows) == {"dpo", "gen"}, out
    for cells in rows.values():
        ours, trl, speed = (float(x) for x in cells[1:4])
        assert ours > 0
        assert trl > 0
        assert speed == pytest.approx(ours / trl, rel=0.02)
