"""The retrain cycle's training records: a snapshot's judgments through the data contract.

The rules (documented in docs/loop.md, "Training records", and in
:mod:`training.contract.judgments`) are the same ones the exports use: every current judgment
counts (no majority vote), records come out task by task in id order. The eligible judgments
(current, not gold, rater not excluded) are ``annotation.selectors.eligible_judgments``; the rows
of a recorded snapshot are read by ``annotation.insight.training_rows.snapshot_items``.
"""

from __future__ import annotations

from collections.abc import Sequence

from annotation.insight.training_rows import snapshot_items
from annotation.selectors import eligible_judgments
from training.contract import Item, JudgmentRow, Records, build_records

__all__ = ["Item", "JudgmentRow", "Records", "build_records", "eligible_judgments", "snapshot_rows"]


def snapshot_rows(judgment_ids: Sequence[int]) -> list[Item]:
    """The items (tasks with their judgments, texts resolved) of a recorded snapshot."""
    return snapshot_items(judgment_ids)
