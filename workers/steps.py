"""Running a cycle's steps idempotently, and recording progress on the run as it goes.

A step is a function ``(ctx) -> (result, commit)``: the long part (training, generation) runs
outside any transaction so its progress is visible live; ``commit`` (or ``None``) holds the step's
database writes and runs in one transaction together with the step's :class:`RunStep` row
(``annotation.services.runs.run_step_finish``). So a step either happened completely (RunStep
present: a re-run skips it and reuses ``result``) or left no rows behind. Files a step writes are
named by run and step and written atomically, so a re-run overwrites or reuses them (see
``annotation.services.runs.artifact_complete``). Every write to the run goes through
``annotation/services/runs.py``.

This module is what every step module shares (the context, the run's record files), so the step
modules (``pipelines``, ``candidates``) import it and never each other in both directions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotation.models import Project, TrainingRun
from annotation.run_options import run_option_defaults
from annotation.run_steps import STEP_WEIGHTS  # each step's share of the progress bar
from annotation.services.runs import run_progress_write, run_step_finish, run_step_result

Commit = Callable[[], None] | None
Step = Callable[["Context"], tuple[dict[str, Any], Commit]]

# Fine-grained progress inside a step is written at most this often (seconds); a step change is
# written at once.
PROGRESS_INTERVAL = 0.5

# The run options and their defaults are listed once, with their ranges, in
# annotation/run_options.py (the API checks a run's config against the same table).
DEFAULTS: dict[str, Any] = run_option_defaults()


class PermanentError(Exception):
    """The cycle cannot succeed by retrying (bad data, bad config, a broken artifact)."""


@dataclass
class Context:
    run: TrainingRun
    project: Project
    root: Path  # this run's artifact directory
    cfg: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    _last_write: float = 0.0
    _written_step: str = ""

    def progress_base(self, name: str) -> float:
        names = list(STEP_WEIGHTS)
        return sum(STEP_WEIGHTS[n] for n in names[: names.index(name)])

    def report(self, name: str, fraction: float, point: dict[str, Any] | None = None) -> None:
        """Progress inside step ``name`` (0..1). A new step is written at once (with its start
        time), so ``current_step`` names the running step from its first moment; progress within
        a step is written at most twice a second (and always when it reaches 1)."""
        if point is not None:
            self.curve.append({"phase": name, **point})
        now = time.monotonic()
        new_step = name != self._written_step
        if not new_step and now - self._last_write < PROGRESS_INTERVAL and fraction < 1.0:
            return
        self._last_write = now
        fraction = max(0.0, min(1.0, fraction))
        run_progress_write(
            run_id=self.run.id,
            current_step=name,
            progress=round(self.progress_base(name) + STEP_WEIGHTS[name] * fraction, 4),
            step_progress=round(fraction, 4),
            curve=self.curve,
            step_started=new_step,
        )
        self._written_step = name

    def reporter(self, name: str, low: float = 0.0, high: float = 1.0) -> Callable[[float], None]:
        """``report`` for a part of step ``name``: fraction f of the part is low + (high-low)·f."""
        return lambda f: self.report(name, low + (high - low) * f)


def run_step(ctx: Context, name: str, step: Step) -> dict[str, Any]:
    """Run ``step`` once per run: a recorded step is skipped and its result reused."""
    done = run_step_result(run_id=ctx.run.id, name=name)
    if done is not None:
        ctx.results[name] = done
        return done
    ctx.report(name, 0.0)
    t0 = time.perf_counter()
    result, commit = step(ctx)
    run_step_finish(
        run_id=ctx.run.id,
        name=name,
        result=result,
        seconds=time.perf_counter() - t0,
        progress=round(ctx.progress_base(name) + STEP_WEIGHTS[name], 4),
        commit=commit,
    )
    ctx.results[name] = result
    return result


# The run's training records, one JSONL file per kind under ``<run dir>/records/`` (written by
# the ``records`` step, read by the trainers and by candidate selection).
RECORD_FILES = {"preference": "pairs.jsonl", "unpaired": "unpaired.jsonl", "sft": "sft.jsonl"}


def load_records(ctx: Context, kind: str) -> list[Any]:
    from training.records import load_jsonl

    path = ctx.root / "records" / RECORD_FILES[kind]
    return load_jsonl(path, kind)[0] if path.is_file() else []


def clear_partial(path: Path) -> None:
    """Remove temp dirs a crashed save left beside ``path`` (never the final dir)."""
    import shutil

    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
