"""The retrain cycle's training records: a snapshot's judgments through the data contract.

The rules (documented in docs/loop.md, "Training records", and in
:mod:`training.contract.judgments`) are the same ones the exports use: every current judgment
counts (no majority vote), records come out task by task in id order. The eligible judgments
(current, not gold, rater not excluded) are ``annotation.selectors.eligible_judgments``; the rows
of a recorded snapshot are read by ``annotation.insight.training_rows.snapshot_items``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from annotation.insight.ai_training_rows import (
    ai_snapshot_items,
    eligible_ai_judgments,
    project_mixing,
)
from annotation.insight.training_rows import snapshot_items
from annotation.models import Project, TrainingRun
from annotation.selectors import eligible_judgments
from training.contract import Item, JudgmentRow, Records, build_records
from training.contract.mixing import Mixing, mixed_records

__all__ = [
    "Item",
    "JudgmentRow",
    "Records",
    "ai_snapshot",
    "build_records",
    "eligible_judgments",
    "run_records",
    "snapshot_rows",
]


def snapshot_rows(judgment_ids: Sequence[int]) -> list[Item]:
    """The items (tasks with their judgments, texts resolved) of a recorded snapshot."""
    return snapshot_items(judgment_ids)


def ai_snapshot(project: Project) -> dict[str, Any]:
    """The project's mixing choice now and, unless it is ``human``, the ids of the AI judgments
    that may train under it (docs/ai-feedback.md): what the snapshot step pins on the run."""
    mixing = project_mixing(project)
    ids: list[int] = []
    if mixing.uses_ai:
        ids = list(
            eligible_ai_judgments(project_id=project.id, min_confidence=mixing.min_confidence)
            .order_by("id")
            .values_list("id", flat=True)
        )
    return {
        "ai_training": mixing.mode,
        "ai_weight": mixing.weight,
        "ai_min_confidence": mixing.min_confidence,
        "ai_judgment_ids": ids,
        "ai_max_judgment_id": max(ids, default=0),
    }


def run_records(run: TrainingRun) -> Records:
    """The run's training records: its snapshot's human judgments and the AI judgments it
    pinned, mixed as pinned. A run without a pin (made before AI feedback) is ``human``."""
    pinned = (run.config or {}).get("ai_mixing") or {}
    mixing = Mixing(
        mode=pinned.get("ai_training", "human"),
        weight=float(pinned.get("ai_weight", 0.5)),
        min_confidence=float(pinned.get("ai_min_confidence", 0.0)),
    )
    human = snapshot_rows(run.snapshot_judgment_ids) if mixing.uses_human else []
    ai = ai_snapshot_items(pinned.get("ai_judgment_ids", [])) if mixing.uses_ai else []
    return mixed_records(human, ai, mixing)
