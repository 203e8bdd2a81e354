"""Experiment tracking: a tiny DPO run with ``report_to = ["tensorboard", "mlflow"]`` writes the
same metric names and values as its own history, readable by each tool's reader."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from training.config import ConfigError, DPOConfig, build_config
from training.trainers import dpo


def tensorboard_scalars(logdir: Path) -> dict[tuple[str, int], float]:
    """(tag, step) -> value from the TFRecord event files (length, crc, Event proto, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[tuple[str, int], float] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out[(value.tag, event.step)] = value.simple_value
    return out


def test_dpo_run_reports_to_tensorboard_and_mlflow(
    tiny_lm, train_pairs, eval_pairs, tmp_path
) -> None:
    from mlflow.tracking import MlflowClient

    config = DPOConfig(
        model=str(tiny_lm),
        output_dir=str(tmp_path / "run-7" / "dpo"),
        ref_cache_dir=str(tmp_path / "c"),
        batch_size=8,
        learning_rate=1e-3,
        max_steps=4,
        eval_every=2,
        report_to=("tensorboard", "mlflow"),
        mlflow_tracking_uri=str(tmp_path / "mlruns"),
        mlflow_experiment="test-exp",
    )
    result = dpo.run(config, train_pairs[:64], eval_pairs[:16])
    expected = {
        (key, int(record["step"])): float(value)
        for record in result.history
        for key, value in record.items()
        if key != "step"
    }
    names = {key for key, _ in expected}
    assert {"loss", "rewards/chosen", "rewards/margins", "rewards/accuracies", "lr"} <= names
    assert {"eval/loss", "eval/rewards/margins", "eval/kl"} <= names
    assert (("eval/rewards/margins", 0)) in expected  # the evaluation before training
    assert (("loss", 4)) in expected

    events = tensorboard_scalars(tmp_path / "run-7" / "dpo.tensorboard")
    assert set(events) == set(expected)
    for key, value in expected.items():
        assert events[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key  # float32 on disk

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("test-exp")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run-7-dpo"
    assert run.info.status == "FINISHED"
    assert run.data.tags["trainer"] == "dpo"
    assert run.data.params["beta"] == "0.1"
    logged = {
        (m.key, m.step): m.value
        for name in names
        for m in client.get_metric_history(run.info.run_id, name)
    }
    assert logged == pytest.approx(expected)


def test_report_to_is_validated() -> None:
    base = {"model": "m", "output_dir": "o"}
    with pytest.raises(ConfigError, match=r"report_to: unknown tracker 'wandb'"):
        build_config(DPOConfig, {**base, "report_to": ["wandb"]})
    with pytest.raises(ConfigError, match="report_to: names a tracker twice"):
        build_config(DPOConfig, {**base, "report_to": "mlflow,mlflow"})
    config = build_config(DPOConfig, {**base, "report_to": "tensorboard,mlflow"})  # CLI form
    assert config.report_to == ("tensorboard", "mlflow")
    assert DPOConfig(**base).report_to == ()  # off by default


def test_a_missing_tracker_package_is_named(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"'mlflow' needs the mlflow-skinny package"):
        DPOConfig(model="m", output_dir="o", report_to=("mlflow",))


def test_training_imports_no_tracker_package_unless_asked() -> None:
    code = (
        "import sys, training.loop, training.trainers.dpo, training.config as c;"
        "c.DPOConfig(model='m', output_dir='o');"
        "bad = [m for m in ('mlflow', 'tensorboardX') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
