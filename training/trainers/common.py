"""Helpers the trainers share: loading and splitting records, artifact metadata, the run's end."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from training.artifacts import save_artifact
from training.config import TrainConfig
from training.distributed import barrier, is_main
from training.modeling import data_hash, unwrap_for_save
from training.records import LoadReport, filter_records, load_jsonl
from training.session import Fitted, RunResult


class TrainerState(Protocol):
    """What :func:`finish_run` reads from a trainer's ``State``."""

    config: Any
    tokenizer: Any
    model: Any
    counts: dict[str, int]


def load_splits(
    config: TrainConfig,
    kind: str,
    train_records: Sequence[Any] | None,
    eval_records: Sequence[Any] | None,
) -> tuple[list[Any], list[Any], dict[str, int]]:
    """Train and eval records, from memory or ``config.train_file``/``eval_file``, with counts.

    Without eval records, about ``eval_fraction`` of train is held out, whole prompts at a time.
    """
    counts: dict[str, int] = {}
    if train_records is None:
        if not config.train_file:
            raise ValueError("train_file: required when no records are passed in")
        train, report = load_jsonl(config.train_file, kind, strict=config.strict_data)
    else:
        report = LoadReport()
        train = filter_records(train_records, report)
    counts.update({f"train/{k}": v for k, v in report.as_dict().items()})
    if eval_records is None and config.eval_file:
        evals, ereport = load_jsonl(config.eval_file, kind, strict=config.strict_data)
        counts.update({f"eval/{k}": v for k, v in ereport.as_dict().items()})
    elif eval_records is not None:
        evals = filter_records(eval_records)
    elif config.eval_fraction > 0:
        train, evals = hold_out_prompts(train, config.eval_fraction, config.seed)
    else:
        evals = []
    counts["train_records"] = len(train)
    counts["eval_records"] = len(evals)
    if not train:
        raise ValueError("no usable training records (all were skipped or none given)")
    return train, evals, counts


def hold_out_prompts(
    records: Sequence[Any], fraction: float, seed: int
) -> tuple[list[Any], list[Any]]:
    """(train, held out): a seeded random set of prompts whose records make up about ``fraction``.

    Whole prompts, never some of one prompt's records: the pairs of one prompt share responses,
    so a split by record lets held-out accuracy (and the calibration fitted on it) see training
    text. At least one prompt always stays in train, so one prompt alone holds nothing out.
    """
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(json.dumps(record.prompt, sort_keys=True), []).append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    wanted, held = max(1, int(len(records) * fraction)), set[int]()
    for key in keys[:-1]:
        if len(held) >= wanted:
            break
        held.update(groups[key])
    train = [r for i, r in enumerate(records) if i not in held]
    return train, [r for i, r in enumerate(records) if i in held]


def metadata(
    config: TrainConfig, trainer: str, counts: dict[str, int], metrics: dict[str, float], data: Any
) -> dict[str, Any]:
    return {
        "trainer": trainer,
        "config": dataclasses.asdict(config),
        "data_hash": data_hash(data),
        "counts": counts,
        "metrics": metrics,
    }


def save_final(
    model: Any, tokenizer: Any, config: TrainConfig, meta: dict[str, Any]
) -> Path | None:
    """Rank 0 writes the artifact atomically to ``config.output_dir``; others wait."""
    path = None
    if is_main():
        path = save_artifact(unwrap_for_save(model), tokenizer, config.output_dir, meta)
    barrier()
    return path if path is not None else Path(config.output_dir)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def finish_run(
    state: TrainerState, fitted: Fitted, *, trainer: str, started: float, data: Any
) -> RunResult:
    """The end of every trainer's ``run``: the result (the last logged training metrics overlaid
    with the last evaluation; ``seconds`` since ``started``, a ``time.perf_counter()`` taken
    before setup) and the artifact, written by rank 0 with ``data``'s hash in its metadata."""
    result = RunResult.from_fit(fitted, counts=state.counts, seconds=time.perf_counter() - started)
    meta = metadata(state.config, trainer, state.counts, result.metrics, data)
    result.artifact_path = save_final(state.model, state.tokenizer, state.config, meta)
    return result
