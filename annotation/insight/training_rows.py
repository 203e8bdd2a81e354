"""Judgments -> training rows in the TRL dataset formats, read task by task in constant memory.

Formats (``dataset``) and the judgments that feed them:

- ``preference`` ``{"prompt", "chosen", "rejected", "margin"}`` from pairwise A/B choices
  (``margin = strength - 1``) and rankings (every two responses in different groups, so k
  responses without ties give C(k, 2) pairs; ``margin = group distance - 1``);
- ``unpaired`` ``{"prompt", "completion", "label"}`` (KTO) from rating thumbs (up = true) and
  pairwise both-bad (both responses false);
- ``sft`` ``{"messages"}`` (conversational) or ``{"prompt", "completion"}`` (standard) from
  demonstrations.

Ties give no training row. ``style="conversational"`` writes the prompt as the task's messages and
completions as one assistant message; ``"standard"`` writes strings (a single user turn is its
text; longer conversations are rendered ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``, ending with
``"\\n\\nAssistant:"``). The rules match ``workers/records.py`` so exported files and the loop's
own snapshots train the same way.

Aggregation: ``every`` = one row per judgment (per pair for rankings); ``majority`` = one row per
item where the raters' strict majority decides (pairwise: the winning response, margin averaged
over its voters; ranking: each response pair's majority direction; rating: each response's
majority thumb; demonstrations are all kept). Item agreement (for ``min_agreement``) = share of the
item's judgments equal to its most common answer; items with a single judgment have none and are
dropped when a minimum is set; demonstrations have no agreement and are kept.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Case, Q, TextField, Value, When
from django.db.models.functions import Cast

from annotation.models import Judgment, PairwiseChoice, Task, TaskKind, TaskResponse

DATASETS = {
    "preference": (TaskKind.PAIRWISE.value, TaskKind.RANKING.value),
    "unpaired": (TaskKind.RATING.value, TaskKind.PAIRWISE.value),
    "sft": (TaskKind.DEMONSTRATION.value,),
}
STYLES = ("standard", "conversational")
AGGREGATIONS = ("every", "majority")
GOLD_MODES = ("exclude", "include", "only")
TASK_CHUNK = 5000


@dataclass(frozen=True)
class ExportFilters:
    dataset: str = "preference"
    style: str = "standard"
    aggregation: str = "every"
    kinds: tuple[str, ...] = ()  # empty: every kind the dataset can use
    date_from: datetime | None = None
    date_to: datetime | None = None
    min_agreement: float | None = None
    include_excluded: bool = False
    gold: str = "exclude"

    def effective_kinds(self) -> tuple[str, ...]:
        usable = DATASETS[self.dataset]
        return tuple(k for k in usable if not self.kinds or k in self.kinds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "style": self.style,
            "aggregation": self.aggregation,
            "kinds": list(self.effective_kinds()),
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "min_agreement": self.min_agreement,
            "include_excluded": self.include_excluded,
            "gold": self.gold,
        }


@dataclass
class RowCounts:
    tasks: int = 0
    judgments: int = 0
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def render_prompt(messages: list[dict[str, str]]) -> str:
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0]["content"]
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    turns = "".join(f"\n\n{names.get(m['role'], m['role'])}: {m['content']}" for m in messages)
    return turns + "\n\nAssistant:"


class _Writer:
    """Builds rows in one style (so the per-row work is a dict literal)."""

    def __init__(self, style: str, messages: list[dict[str, str]]) -> None:
        self.conv = style == "conversational"
        self.messages = messages
        self.prompt: Any = messages if self.conv else render_prompt(messages)
        self._texts: dict[str, list[dict[str, str]]] = {}

    def text(self, value: str) -> Any:
        if not self.conv:
            return value
        # One list per response, reused by every row of the task (the encoder memoizes by id).
        cached = self._texts.get(value)
        if cached is None:
            cached = self._texts[value] = [{"role": "assistant", "content": value}]
        return cached

    def pair(self, chosen: str, rejected: str, margin: float) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "chosen": self.text(chosen),
            "rejected": self.text(rejected),
            "margin": float(margin),
        }

    def unpaired(self, completion: str, label: bool) -> dict[str, Any]:
        return {"prompt": self.prompt, "completion": self.text(completion), "label": label}

    def sft(self, completion: str) -> dict[str, Any]:
        if self.conv:
            return {"messages": [*self.messages, {"role": "assistant", "content": completion}]}
        return {"prompt": self.prompt, "completion": completion}


def _answer(kind: str, choice: str, preferred: int | None, payload: dict) -> Any:
    if kind == TaskKind.PAIRWISE:
        return preferred if preferred is not None else choice
    if kind == TaskKind.RANKING:
        return tuple(tuple(sorted(g)) for g in payload.get("ranking", []))
    if kind == TaskKind.RATING:
        return tuple(sorted((r["response"], r["thumb"]) for r in payload.get("ratings", [])))
    return None


def item_agreement(kind: str, judgments: list[tuple]) -> float | None:
    if kind == TaskKind.DEMONSTRATION or len(judgments) < 2:
        return None
    answers = Counter(_answer(kind, j[4], j[6], j[7] or {}) for j in judgments)
    return answers.most_common(1)[0][1] / len(judgments)


def _ranking_votes(payload: dict) -> Iterator[tuple[int, int, int]]:
    """(better, worse, group distance) for every two responses in different groups."""
    groups = payload.get("ranking", [])
    for (gi, ga), (gj, gb) in itertools.combinations(enumerate(groups), 2):
        for a in ga:
            for b in gb:
                yield a, b, gj - gi


def _rows_every(kind: str, dataset: str, js: list[tuple], texts: dict, w: _Writer) -> Iterator:
    for j in js:
        choice, strength, preferred, payload = j[4], j[5], j[6], j[7] or {}
        if kind == TaskKind.PAIRWISE:
            others = [r for r in texts if r != preferred]
            if dataset == "preference" and choice in (PairwiseChoice.A, PairwiseChoice.B):
                if preferred in texts and others:
                    yield w.pair(texts[preferred], texts[others[0]], (strength or 1) - 1)
            elif dataset == "unpaired" and choice == PairwiseChoice.BOTH_BAD:
                for text in texts.values():
                    yield w.unpaired(text, False)
        elif kind == TaskKind.RANKING:
            for a, b, dist in _ranking_votes(payload):
                if a in texts and b in texts:
                    yield w.pair(texts[a], texts[b], dist - 1)
        elif kind == TaskKind.RATING:
            for r in payload.get("ratings", []):
                if r["response"] in texts:
                    yield w.unpaired(texts[r["response"]], r["thumb"] == "up")
        elif kind == TaskKind.DEMONSTRATION and payload.get("text"):
            yield w.sft(payload["text"])


def _strict_winner(votes: Counter) -> Any:
    top = votes.most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _rows_majority(kind: str, dataset: str, js: list[tuple], texts: dict, w: _Writer) -> Iterator:
    if kind == TaskKind.PAIRWISE:
        winner = _strict_winner(Counter(j[6] if j[6] is not None else j[4] for j in js))
        if dataset == "preference" and winner in texts:
            others = [r for r in texts if r != winner]
            margins = [(j[5] or 1) - 1 for j in js if j[6] == winner]
            yield w.pair(texts[winner], texts[others[0]], sum(margins) / len(margins))
        elif dataset == "unpaired" and winner == PairwiseChoice.BOTH_BAD:
            for text in texts.values():
                yield w.unpaired(text, False)
    elif kind == TaskKind.RANKING:
        votes: dict[tuple[int, int], list[int]] = defaultdict(list)
        for j in js:
            for a, b, dist in _ranking_votes(j[7] or {}):
                votes[(a, b)].append(dist - 1)
        for a, b in sorted({tuple(sorted(k)) for k in votes}):
            ab, ba = votes.get((a, b), []), votes.get((b, a), [])
            if len(ab) != len(ba) and a in texts and b in texts:
                win, lose, ms = (a, b, ab) if len(ab) > len(ba) else (b, a, ba)
                yield w.pair(texts[win], texts[lose], sum(ms) / len(ms))
    elif kind == TaskKind.RATING:
        thumbs: dict[int, Counter] = defaultdict(Counter)
        for j in js:
            for r in (j[7] or {}).get("ratings", []):
                thumbs[r["response"]][r["thumb"]] += 1
        for rid in sorted(thumbs):
            thumb = _strict_winner(thumbs[rid])
            if thumb is not None and rid in texts:
                yield w.unpaired(texts[rid], thumb == "up")
    else:
        yield from _rows_every(kind, dataset, js, texts, w)


def _judgment_filter(project_id: int, f: ExportFilters, excluded: set[int]) -> Q:
    q = Q(project_id=project_id, is_current=True, kind__in=f.effective_kinds())
    if f.date_from:
        q &= Q(created_at__gte=f.date_from)
    if f.date_to:
        q &= Q(created_at__lt=f.date_to)
    if not f.include_excluded and excluded:
        q &= ~Q(rater_id__in=excluded)
    return q


def _task_chunks(project_id: int, f: ExportFilters) -> Iterator[tuple[int, int, set[int]]]:
    """(first id, last id, ids) of consecutive chunks of the tasks to export (keyset pagination:
    constant memory on any database). Later queries read the id range with single-table index
    scans (no join, no long IN list) and keep the rows whose task is in ``ids``."""
    tasks = Task.objects.filter(project_id=project_id, kind__in=f.effective_kinds())
    if f.gold == "exclude":
        tasks = tasks.filter(is_gold=False)
    elif f.gold == "only":
        tasks = tasks.filter(is_gold=True)
    last = 0
    while True:
        ids = list(
            tasks.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:TASK_CHUNK]
        )
        if not ids:
            return
        yield ids[0], ids[-1], set(ids)
        last = ids[-1]


def training_rows(
    project_id: int, f: ExportFilters, excluded: set[int], counts: RowCounts
) -> Iterator[dict[str, Any]]:
    """Every row of the export, task by task in id order (deterministic), counting in ``counts``."""
    jfilter = _judgment_filter(project_id, f, excluded)
    every = f.aggregation == "every"
    # Pairwise answers live in columns; only the other kinds need their JSON payload (fetched as
    # text and decoded here, so pairwise rows skip the JSON decoder entirely).
    payload = Case(
        When(kind=TaskKind.PAIRWISE, then=Value("")),
        default=Cast("payload", TextField()),
        output_field=TextField(),
    )
    for lo, hi, selected in _task_chunks(project_id, f):
        judgments = list(
            Judgment.objects.filter(jfilter, task_id__gte=lo, task_id__lte=hi)
            .order_by("task_id", "id")
            .values_list(
                "task_id",
                "id",
                "rater_id",
                "kind",
                "choice",
                "strength",
                "preferred_response_id",
                payload,
            )
        )
        judgments = [j for j in judgments if j[0] in selected]
        if not judgments:
            continue
        texts: dict[int, dict[int, str]] = defaultdict(dict)
        for task_id, response_id, text in (
            TaskResponse.objects.filter(task_id__gte=lo, task_id__lte=hi)
            .order_by("task_id", "position")
            .values_list("task_id", "response_id", "response__text")
        ):
            if task_id in selected:
                texts[task_id][response_id] = text
        prompts = dict(
            Task.objects.filter(project_id=project_id, id__gte=lo, id__lte=hi).values_list(
                "id", "prompt__messages"
            )
        )
        for task_id, group in itertools.groupby(judgments, key=lambda j: j[0]):
            js = [j if not j[7] else (*j[:7], json.loads(j[7])) for j in group]
            kind = js[0][3]
            counts.tasks += 1
            counts.judgments += len(js)
            if f.min_agreement is not None and kind != TaskKind.DEMONSTRATION:
                agreement = item_agreement(kind, js)
                if agreement is None or agreement < f.min_agreement:
                    counts.skipped["below_min_agreement"] += len(js)
                    continue
            writer = _Writer(f.style, prompts[task_id])
            build = _rows_every if every else _rows_majority
            for row in build(kind, f.dataset, js, texts[task_id], writer):
                counts.rows += 1
                yield row
