"""Judgments -> training records (the rules are documented in docs/loop.md, "Training records").

The conversion is a pure function of plain rows (:class:`JudgmentRow`), so it is tested without a
database; :func:`snapshot_rows` is the one place that reads the rows of a snapshot.

Rules, per judgment kind (every current judgment counts; no majority vote):

- pairwise ``A``/``B``: one pair (preferred, other) with ``margin = strength - 1`` (0..3: a
  "negligibly better" choice carries no margin);
- pairwise ``tie``: kept for metrics, no training record (neither side is preferred);
- pairwise ``both_bad``: no pair; both responses become undesirable KTO examples;
- ranking (best group first, a group is a tie): every two responses in different groups give one
  pair, ``margin = group distance - 1``; k responses without ties give C(k, 2) pairs;
- rating: thumbs up -> desirable KTO example, thumbs down -> undesirable;
- demonstration: the written text is an SFT example for the prompt.

Left out: judgments of raters the manager excluded (a live :class:`RaterExclusion`), gold tasks
(they are quality checks, not data), and judgments that are no longer current (revised).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.records import PreferencePair, SFTExample, UnpairedExample


@dataclass(frozen=True)
class JudgmentRow:
    """What the conversion needs of one judgment (texts resolved)."""

    id: int
    kind: str
    prompt: tuple[dict[str, str], ...]
    texts: dict[int, str]  # response id -> text, for the task's responses
    choice: str = ""
    strength: int | None = None
    preferred: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Records:
    pairs: list[PreferencePair] = field(default_factory=list)
    unpaired: list[UnpairedExample] = field(default_factory=list)
    sft: list[SFTExample] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _pairwise(row: JudgmentRow, out: Records) -> None:
    if row.choice in ("A", "B") and row.preferred in row.texts:
        other = next(rid for rid in row.texts if rid != row.preferred)
        margin = float((row.strength or 1) - 1)
        out.pairs.append(
            PreferencePair(row.prompt, row.texts[row.preferred], row.texts[other], margin)
        )
    elif row.choice == "both_bad":
        out.counts["both_bad"] += 1
        out.unpaired += [UnpairedExample(row.prompt, t, False) for t in row.texts.values()]
    else:
        out.counts["tie"] += 1


def _ranking(row: JudgmentRow, out: Records) -> None:
    groups = row.payload.get("ranking", [])
    for (i, better), (j, worse) in itertools.combinations(enumerate(groups), 2):
        for a, b in itertools.product(better, worse):
            out.pairs.append(
                PreferencePair(row.prompt, row.texts[a], row.texts[b], float(j - i - 1))
            )
    out.counts["ranking_ties"] += sum(len(g) * (len(g) - 1) // 2 for g in groups)


def _rating(row: JudgmentRow, out: Records) -> None:
    for item in row.payload.get("ratings", []):
        text = row.texts[item["response"]]
        out.unpaired.append(UnpairedExample(row.prompt, text, item["thumb"] == "up"))


def _demonstration(row: JudgmentRow, out: Records) -> None:
    text = row.payload.get("text", "")
    if text.strip():
        out.sft.append(SFTExample(row.prompt, text))


CONVERTERS = {
    "pairwise": _pairwise,
    "ranking": _ranking,
    "rating": _rating,
    "demonstration": _demonstration,
}


def build_records(rows: Iterable[JudgmentRow]) -> Records:
    """Training records from judgment rows (see the module docstring for the rules)."""
    out = Records()
    for row in rows:
        out.counts[f"judgments/{row.kind}"] += 1
        CONVERTERS[row.kind](row, out)
    out.counts["pairs"] = len(out.pairs)
    out.counts["unpaired"] = len(out.unpaired)
    out.counts["sft"] = len(out.sft)
    return out


def eligible_judgments(*, project_id: int, max_id: int | None = None) -> Any:
    """Current, non-gold judgments of raters not excluded from training (a queryset)."""
    from annotation.models import Judgment, RaterExclusion

    excluded = RaterExclusion.objects.filter(project_id=project_id, lifted_at__isnull=True)
    rows = Judgment.objects.filter(project_id=project_id, is_current=True, task__is_gold=False)
    rows = rows.exclude(rater_id__in=excluded.values("rater_id"))
    if max_id is not None:
        rows = rows.filter(id__lte=max_id)
    return rows


def snapshot_rows(judgment_ids: Sequence[int]) -> list[JudgmentRow]:
    """The rows of a recorded snapshot, texts resolved, in id order."""
    from annotation.models import Judgment, TaskResponse

    judgments = list(
        Judgment.objects.filter(id__in=judgment_ids).select_related("task__prompt").order_by("id")
    )
    task_ids = {j.task_id for j in judgments}
    texts: dict[int, dict[int, str]] = {}
    for tr in TaskResponse.objects.filter(task_id__in=task_ids).select_related("response"):
        texts.setdefault(tr.task_id, {})[tr.response_id] = tr.response.text
    return [
        JudgmentRow(
            id=j.id,
            kind=j.kind,
            prompt=tuple(j.task.prompt.messages),
            texts=texts.get(j.task_id, {}),
            choice=j.choice,
            strength=j.strength,
            preferred=j.preferred_response_id,
            payload=j.payload,
        )
        for j in judgments
    ]
