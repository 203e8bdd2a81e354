"""The shared loop: accumulation invariance, exact resume, multi-process equality, and the
step-driven session an on-policy loop uses directly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import synthetic_pairs
from training.config import DPOConfig, SFTConfig, TrainConfig
from training.loop import Progress, RunResult, TrainingSession
from training.records import SFTExample, load_jsonl
from training.trainers import dpo, sft

ROOT = Path(__file__).resolve().parents[2]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def assert_same_weights(a: Path, b: Path, atol: float = 1e-6) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=atol, rtol=1e-5, msg=k)


def test_dpo_batch8_equals_batch2_times_accum4(tiny_lm, train_pairs, tmp_path) -> None:
    """Same examples per step; Adam hides gradient scale, so the gradient norm is compared too."""
    common = {
        "model": str(tiny_lm),
        "ref_cache_dir": str(tmp_path / "c"),
        "learning_rate": 1e-3,
        "max_steps": 2,
        "max_grad_norm": 1e9,
        "adam_epsilon": 1e-5,
    }
    a = dpo.run(
        DPOConfig(output_dir=str(tmp_path / "a"), batch_size=8, grad_accum=1, **common), train_pairs
    )
    b = dpo.run(
        DPOConfig(output_dir=str(tmp_path / "b"), batch_size=2, grad_accum=4, **common), train_pairs
    )
    for ha, hb in zip(a.history, b.history, strict=True):
        assert ha["loss"] == pytest.approx(hb["loss"], abs=1e-6)
        assert ha["grad_norm"] == pytest.approx(hb["grad_norm"], rel=1e-5)
    assert_same_weights(a.artifact_path, b.artifact_path)
    # a token budget splits the step into more forward passes; the update must not change
    c = dpo.run(
        DPOConfig(
            output_dir=str(tmp_path / "budget"), batch_size=8, max_batch_tokens=120, **common
        ),
        train_pairs,
    )
    for ha, hc in zip(a.history, c.history, strict=True):
        assert ha["loss"] == pytest.approx(hc["loss"], abs=1e-6)
        assert ha["grad_norm"] == pytest.approx(hc["grad_norm"], rel=1e-5)
    assert_same_weights(a.artifact_path, c.artifact_path)


def test_sft_token_weighting_is_accumulation_invariant(tiny_lm, train_pairs, tmp_path) -> None:
    """Responses of different lengths: the loss is a token mean over the whole step.

    A larger Adam epsilon keeps parameters whose true gradient is 0 (GPT-2's key bias: softmax
    ignores it) from amplifying float round-off noise into different updates.
    """
    examples = [SFTExample(p.prompt, p.chosen * (1 + i % 3)) for i, p in enumerate(train_pairs)]
    common = {
        "model": str(tiny_lm),
        "learning_rate": 1e-3,
        "max_steps": 2,
        "max_grad_norm": 1e9,
        "adam_epsilon": 1e-5,
    }
    a = sft.run(SFTConfig(output_dir=str(tmp_path / "a"), batch_size=8, **common), examples)
    b = sft.run(
        SFTConfig(output_dir=str(tmp_path / "b"), batch_size=2, grad_accum=4, **common), examples
    )
    for ha, hb in zip(a.history, b.history, strict=True):
        assert ha["loss"] == pytest.approx(hb["loss"], abs=1e-6)
        assert ha["grad_norm"] == pytest.approx(hb["grad_norm"], rel=1e-5)
    assert_same_weights(a.artifact_path, b.artifact_path)


def test_resume_gives_identical_loss_curve(tiny_lm_dropout, train_pairs, tmp_path) -> None:
    """Dropout is on, so this also checks that the RNG state is restored."""
    common = {
        "model": str(tiny_lm_dropout),
        "ref_cache_dir": str(tmp_path / "c"),
        "batch_size": 8,
        "learning_rate": 1e-3,
        "max_steps": 8,
        "warmup_steps": 2,
    }
    full = dpo.run(
        DPOConfig(output_dir=str(tmp_path / "full"), save_every=4, **common), train_pairs
    )
    checkpoint = tmp_path / "full.checkpoints" / "step-4"
    assert (checkpoint / "model.safetensors").is_file()
    resumed = dpo.run(
        DPOConfig(output_dir=str(tmp_path / "resumed"), resume_from=str(checkpoint), **common),
        train_pairs,
    )
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert_same_weights(full.artifact_path, resumed.artifact_path, atol=0)


def _rollout_loop(config: TrainConfig, seen: list[Progress]) -> tuple[TrainingSession, Any]:
    """An on-policy-shaped loop: each step draws fresh samples from the RNG (a "rollout"), no
    records and no plan; what it counts across steps lives in ``session.extra``."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    target = torch.arange(4.0)
    session = TrainingSession(
        config=config,
        model=model,
        total_steps=6,
        evaluate=lambda m: {"weight_sum": float(m[0].weight.detach().sum())},
        progress=seen.append,
        phase="rollout",
    )
    with session:
        for _ in session.steps():
            x = torch.randn(16, 4)
            loss = ((session.model(x).squeeze(-1) - x @ target) ** 2).mean()
            loss.backward()
            session.extra["samples"] = session.extra.get("samples", 0) + 16
            session.end_step(
                {"loss": loss.item(), "tokens": 16.0}, grad_norm=session.optimizer_step()
            )
    return session, model


def test_session_drives_a_rollout_loop_and_resumes_it_exactly(tmp_path) -> None:
    common = {"model": "unused", "learning_rate": 1e-2, "warmup_steps": 1, "eval_every": 3}
    seen: list[Progress] = []
    full, model = _rollout_loop(
        TrainConfig(output_dir=str(tmp_path / "full"), save_every=2, **common), seen
    )
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]
    assert {p.total_steps for p in seen} == {6}
    assert {p.phase for p in seen} == {"rollout"}
    assert seen[-1].eta_seconds == 0
    assert all(p.eta_seconds >= 0 for p in seen)
    assert [h["step"] for h in full.history] == [0, 1, 2, 3, 4, 5, 6]
    assert "eval/weight_sum" in full.history[0]
    assert "eval/weight_sum" in full.history[3]
    assert full.tokens == 96
    assert full.extra == {"samples": 96}
    assert full.history[-1]["loss"] < full.history[1]["loss"]
    checkpoints = sorted(p.name for p in (tmp_path / "full.checkpoints").iterdir())
    assert checkpoints == ["step-2", "step-4"]  # every save_every steps, never after the last

    resumed, resumed_model = _rollout_loop(
        TrainConfig(
            output_dir=str(tmp_path / "resumed"),
            resume_from=str(tmp_path / "full.checkpoints" / "step-4"),
            **common,
        ),
        [],
    )
    assert resumed.start_step == 4
    assert resumed.extra == {"samples": 96}
    assert resumed.tokens == 96
    assert resumed.history == full.history  # dropout and the samples: the RNG was restored
    for a, b in zip(model.parameters(), resumed_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)

    result = RunResult.from_fit(full.fitted(), counts={"prompts": 3}, seconds=2.0)
    assert result.steps == 6
    assert result.train_tokens == 96
    assert result.tokens_per_second == 48
    assert result.metrics["loss"] == full.history[-1]["loss"]
    assert result.metrics["eval/weight_sum"] == full.eval_metrics["eval/weight_sum"]
    assert "step" not in result.metrics
    assert result.artifact_path is None


def test_two_process_ddp_equals_single_process(tiny_lm, tmp_path) -> None:
    """torchrun, 2 CPU processes on gloo with batch 4 each == 1 process with batch 8."""
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        for p in synthetic_pairs(32, seed=5)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    common = {
        "model": str(tiny_lm),
        "train_file": str(data),
        "ref_cache_dir": str(tmp_path / "c"),
        "learning_rate": 1e-3,
        "max_steps": 3,
        "seed": 3,
    }
    single = dpo.run(DPOConfig(output_dir=str(tmp_path / "single"), batch_size=8, **common))
    with socket.socket() as sock:  # torchrun's static rendezvous needs a concrete free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        "-m",
        "training",
        "dpo",
        f"--output_dir={tmp_path / 'ddp'}",
        "--batch_size=4",
        *(f"--{k}={v}" for k, v in common.items()),
    ]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_weights(single.artifact_path, tmp_path / "ddp", atol=1e-5)
    assert len(load_jsonl(data, "preference")[0]) == 32
