"""bench/rl.py keeps running: one step of our RLOO (plain and as a sweep cell with evaluation)
and of TRL's GRPOTrainer on a tiny random GPT-2, in process, and the tables print."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from training.tiny import write_tiny_causal_lm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_rl", ROOT / "bench" / "rl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_rl"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cfg(tmp_path):
    model = tmp_path / "tiny"
    write_tiny_causal_lm(model, chat_template=True)
    return {
        "model": str(model),
        "prompts": 2,
        "k": 2,
        "new_tokens": 4,
        "steps": 1,
        "batch_size": 2,
        "learning_rate": 1e-4,
        "beta": 0.05,
        "ppo_epochs": 1,
        "last": 1,
        "eval_prompts": 2,
        "eval_samples": 1,
        "device": "cpu",
        "threads": 1,
        "gradient_checkpointing": True,
        "seed": 0,
    }


def test_brevity_reward(bench):
    assert bench.Brevity(limit=10)(None, ["", "abcde", "x" * 30]) == [1.0, 0.5, 0.0]
    completions = [[{"role": "assistant", "content": "abcde"}]]
    assert bench.brevity(None, completions) == [1 - 5 / 120]


def test_ours_and_trl_cells_report_figures(bench, cfg, tmp_path, monkeypatch, capsys):
    import training.rl.engine as engine
    import training.rl.rollout as rollout

    # the cells patch module functions with timers; undo that for the other tests
    monkeypatch.setattr(engine, "collect", engine.collect)
    monkeypatch.setattr(rollout, "generate", rollout.generate)
    ours = bench.run_ours("rloo", tmp_path, cfg, evaluate=False)
    assert ours["generated_tokens"] > 0
    assert ours["trained_tokens"] > ours["generated_tokens"]  # prompts are trained on too
    assert 0 < ours["generation_s"] <= ours["rollout_s"] <= ours["loop_s"]
    assert len(ours["rewards"]) == 1
    sweep = bench.run_ours("rloo", tmp_path / "sweep", {**cfg, "beta": 0.0}, evaluate=True)
    assert {"eval_start", "eval_end", "eval_kl"} <= set(sweep)
    trl = bench.run_trl("grpo", tmp_path, cfg)
    assert trl["generated_tokens"] > 0
    assert 0 < trl["generation_s"] <= trl["rollout_s"] <= trl["loop_s"]
    assert len(trl["rewards"]) == 1
    for r, impl in ((ours, "ours"), (trl, "trl")):
        r.update(peak_mb=1.0, gain_per_min=0.0, impl=impl)
    slower = {**ours, "total_tok_s": ours["total_tok_s"] / 2, "peak_mb": 3.0}
    bench.print_table(
        {("grpo", "ours"): [ours, slower, ours], ("grpo", "trl"): [trl] * 3}, ["grpo"]
    )
    sweep.update(beta=0.0, reward_gain=0.0)
    bench.print_frontier([sweep])
    out = capsys.readouterr().out
    assert "grpo   ours      3" in out  # three runs, their medians
    ratio = ours["total_tok_s"] / trl["total_tok_s"]
    assert f"{ratio:8.2f}{1.0:7.2f}" in out  # the median pair's ratios, not the slow one's
    assert "0.00" in out
