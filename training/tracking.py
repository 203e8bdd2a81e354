"""Experiment tracking: a run's curve, also written where ML users already look.

The loop (:func:`training.loop.fit`) records one dict of metrics per logged step — the same
TRL-named keys as ``RunResult.history`` and the workers' curves (``loss``, ``rewards/chosen``,
``rewards/margins``, ``grad_norm``, ``lr``, ``eval/...``). With ``report_to`` set in the trainer
config, each of those dicts also goes to the enabled sinks:

- ``"tensorboard"``: event files written by ``tensorboardX`` (3 MB with protobuf; the
  ``tensorboard`` package itself pulls grpc, a data server and pillow, ~80 MB, and is only needed
  to *view* the files) in ``logging_dir`` (default ``<output_dir>.tensorboard``);
- ``"mlflow"``: a run in an MLflow tracking store through ``mlflow-skinny``'s client; the default
  store is the local file store ``./mlruns`` (or ``$MLFLOW_TRACKING_URI``). MLflow 3 refuses the
  file store unless ``MLFLOW_ALLOW_FILE_STORE=true``; for a ``file:`` URI this module sets that
  (it is the store we asked for, not a silent fallback).

Both packages are imported only when a sink is opened, so ``import training`` works without
them; a config naming a sink whose package is missing is refused when it is built
(``TrainConfig.__post_init__`` calls :func:`missing_package`). Only rank 0 tracks.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

SINK_PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow"}
SINK_INSTALL = {"tensorboard": "tensorboardX", "mlflow": "mlflow-skinny"}
MLFLOW_PARAM_CHARS = 6000  # MLflow's limit on a parameter value


class Sink(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def close(self, *, failed: bool) -> None: ...


def missing_package(sink: str) -> str | None:
    """The pip package ``sink`` needs when it is not installed, else None (no import)."""
    module = SINK_PACKAGES[sink]
    return None if importlib.util.find_spec(module) else SINK_INSTALL[sink]


def run_name(config: Any) -> str:
    """``config.run_name``, else the last two parts of ``output_dir`` (``run-12-dpo``)."""
    return config.run_name or "-".join(Path(config.output_dir).parts[-2:])


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }


class TensorBoardSink:
    def __init__(self, config: Any) -> None:
        from tensorboardX import SummaryWriter

        self.logdir = config.logging_dir or f"{config.output_dir}.tensorboard"
        self.writer = SummaryWriter(self.logdir)
        self.writer.add_text("config", json.dumps(dataclasses.asdict(config), default=str), 0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self, *, failed: bool) -> None:
        self.writer.close()


class MlflowSink:
    def __init__(self, config: Any, trainer: str) -> None:
        uri = config.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "./mlruns")
        if "://" not in uri and not uri.startswith("file:"):
            uri = Path(uri).resolve().as_uri()
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(config.mlflow_experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(config.mlflow_experiment)
        )
        run = self.client.create_run(
            experiment_id, run_name=run_name(config), tags={"trainer": trainer}
        )
        self.run_id = run.info.run_id
        params = [
            Param(
                k, json.dumps(v, default=str)[:MLFLOW_PARAM_CHARS] if not isinstance(v, str) else v
            )
            for k, v in dataclasses.asdict(config).items()
        ]
        self.client.log_batch(self.run_id, params=params)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()]
        )

    def close(self, *, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class Tracker:
    """The enabled sinks; with none, every call does nothing."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        values = _scalars(metrics)
        if values:
            for sink in self.sinks:
                sink.log(step, values)

    def close(self, *, failed: bool = False) -> None:
        for sink in self.sinks:
            sink.close(failed=failed)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(failed=exc_type is not None)  # an MLflow run that crashed says FAILED


def open_tracker(config: Any, *, main_process: bool = True) -> Tracker:
    """Open the sinks ``config.report_to`` names (none on other ranks than 0)."""
    if not main_process:
        return Tracker([])
    trainer = type(config).__name__.removesuffix("Config").lower()
    sinks: list[Sink] = [
        TensorBoardSink(config) if name == "tensorboard" else MlflowSink(config, trainer)
        for name in config.report_to
    ]
    return Tracker(sinks)
