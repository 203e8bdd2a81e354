"""Judgments -> training rows in the TRL dataset formats, read task by task in constant memory.

Formats (``dataset``) and the judgments that feed them:

- ``preference`` ``{"prompt", "chosen", "rejected", "margin"}`` from pairwise A/B choices
  (``margin = strength - 1``) and rankings (every two responses in different groups, so k
  responses without ties give C(k, 2) pairs; ``margin = group distance - 1``);
- ``unpaired`` ``{"prompt", "completion", "label"}`` (KTO) from rating thumbs (up = true) and
  pairwise both-bad (both responses false);
- ``sft`` ``{"messages"}`` (conversational) or ``{"prompt", "completion"}`` (standard) from
  demonstrations.

Ties give no training row. The rules and the aggregation are the data contract's
(:mod:`training.contract.judgments`): this module reads the rows (:func:`eligible_judgments`,
task by task) and writes what the rules give as TRL rows, so an export and a retrain cycle from
the same judgments hold the same records. ``style="conversational"`` writes the prompt as the
task's messages and completions as one assistant message; ``"standard"`` writes strings (a single
user turn is its text; longer conversations are rendered ``"\\n\\nHuman: ...\\n\\nAssistant:
..."``, ending with ``"\\n\\nAssistant:"``: :func:`training.contract.render.standard_prompt`).

Source (``source``): ``human`` (the default) = the rows above, nothing else; ``ai`` = only the
AI pairs (:mod:`training.contract.mixing`: consistent verdicts with a confidence >= the project's
``ai_min_confidence``, margin 0, weight 1); ``all`` = both, AI pairs weighted by the project's
``ai_weight``: the records a retrain cycle with that ``ai_training`` choice trains on. With AI
rows every row also has ``weight`` and ``source`` (``"human"``/``"ai"``); within a chunk of tasks
the human rows come first. AI rows give preference pairs only; ``min_agreement`` applies to human
items (an AI verdict has no inter-rater agreement).

Aggregation: ``every`` = one row per judgment (per pair for rankings); ``majority`` = one row per
item where the raters' strict majority decides. Item agreement (for ``min_agreement``) = share of
the item's judgments equal to its most common answer; items with a single judgment have none and
are dropped when a minimum is set; demonstrations have no agreement and are kept.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from django.db.models import Case, QuerySet, TextField, Value, When
from django.db.models.functions import Cast

from annotation.insight.ai_training_rows import (
    ai_items,
    cai_prompt_items,
    eligible_ai_judgments,
)
from annotation.models import Judgment, Project, Task, TaskKind, TaskResponse
from annotation.selectors import eligible_judgments
from training.contract import AGGREGATIONS as RULES
from training.contract import DATASETS, Item, JudgmentRow, Message, agreement, item_records
from training.contract.mixing import AIItem, Mixing, ai_pairs
from training.contract.render import standard_prompt

STYLES = ("standard", "conversational")
AGGREGATIONS = tuple(RULES)
GOLD_MODES = ("exclude", "include", "only")
TASK_CHUNK = 5000
NO_PAYLOAD: Any = MappingProxyType({})


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
    source: str = "human"  # human | ai | all (module docstring)

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
            "source": self.source,
        }


@dataclass
class RowCounts:
    tasks: int = 0
    judgments: int = 0
    rows: int = 0
    ai_rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class _Writer:
    """The export's sink (:class:`training.contract.Sink`) for one task: TRL rows in one style,
    as dict literals. Records of another dataset than the export's come back as ``None``."""

    def __init__(self, dataset: str, style: str, messages: Sequence[Message]) -> None:
        self.pairs = dataset == "preference"
        self.thumbs = dataset == "unpaired"
        self.demos = dataset == "sft"
        self.conv = style == "conversational"
        self.messages = messages
        self.prompt: Any = messages if self.conv else standard_prompt(messages)
        self._texts: dict[str, list[dict[str, str]]] = {}

    def text(self, value: str) -> Any:
        if not self.conv:
            return value
        # One list per response, reused by every row of the task (the encoder memoizes by id).
        cached = self._texts.get(value)
        if cached is None:
            cached = self._texts[value] = [{"role": "assistant", "content": value}]
        return cached

    def pair(self, chosen: str, rejected: str, margin: float) -> dict[str, Any] | None:
        if not self.pairs:
            return None
        return {
            "prompt": self.prompt,
            "chosen": self.text(chosen),
            "rejected": self.text(rejected),
            "margin": margin,
        }

    def unpaired(self, completion: str, desirable: bool) -> dict[str, Any] | None:
        if not self.thumbs:
            return None
        return {"prompt": self.prompt, "completion": self.text(completion), "label": desirable}

    def sft(self, completion: str) -> dict[str, Any] | None:
        if not self.demos:
            return None
        if self.conv:
            return {"messages": [*self.messages, {"role": "assistant", "content": completion}]}
        return {"prompt": self.prompt, "completion": completion}


# Pairwise answers live in columns; only the other kinds need their JSON payload (fetched as text
# and decoded here, so pairwise rows skip the JSON decoder entirely).
_PAYLOAD_TEXT = Case(
    When(kind=TaskKind.PAIRWISE, then=Value("")),
    default=Cast("payload", TextField()),
    output_field=TextField(),
)
_JUDGMENT_COLUMNS = (
    "task_id",
    "id",
    "rater_id",
    "kind",
    "choice",
    "strength",
    "preferred_response_id",
    _PAYLOAD_TEXT,
)


def _judgment_rows(
    judgments: QuerySet[Judgment], tasks: Collection[int] | None = None
) -> list[JudgmentRow]:
    """The contract's rows of ``judgments`` (of ``tasks`` only, when given), by task then id."""
    loads, make = json.loads, tuple.__new__  # the C constructor: no Python-level __new__ call
    return [
        make(
            JudgmentRow,
            (t, jid, rater, kind, choice, strength, pref, loads(p) if p else NO_PAYLOAD),
        )
        for t, jid, rater, kind, choice, strength, pref, p in judgments.order_by(
            "task_id", "id"
        ).values_list(*_JUDGMENT_COLUMNS)
        if tasks is None or t in tasks
    ]


def _items(
    rows: Iterable[JudgmentRow],
    texts: dict[int, dict[int, str]],
    prompts: dict[int, list[dict[str, str]]],
) -> Iterator[Item]:
    """Rows (by task) grouped into the contract's items, with each task's prompt and texts."""
    make = tuple.__new__
    for task_id, group in itertools.groupby(rows, key=attrgetter("task_id")):
        js = list(group)
        yield make(Item, (task_id, js[0].kind, prompts[task_id], texts.get(task_id, {}), js))


def _texts(responses: QuerySet[TaskResponse], keep: Collection[int]) -> dict[int, dict[int, str]]:
    """response id -> text per task, in position order (tasks in ``keep`` only)."""
    texts: dict[int, dict[int, str]] = defaultdict(dict)
    for task_id, response_id, text in responses.order_by("task_id", "position").values_list(
        "task_id", "response_id", "response__text"
    ):
        if task_id in keep:
            texts[task_id][response_id] = text
    return texts


def snapshot_items(judgment_ids: Sequence[int]) -> list[Item]:
    """The items of a recorded snapshot (a retrain cycle's judgments), by task then id."""
    rows = _judgment_rows(Judgment.objects.filter(id__in=judgment_ids))
    task_ids = {r.task_id for r in rows}
    texts = _texts(TaskResponse.objects.filter(task_id__in=task_ids), task_ids)
    prompts = dict(Task.objects.filter(id__in=task_ids).values_list("id", "prompt__messages"))
    return list(_items(rows, texts, prompts))


def _export_judgments(project_id: int, f: ExportFilters) -> QuerySet[Judgment]:
    """The eligible judgments under the export's filters. The gold mode is applied to the task
    chunks (:func:`_task_chunks`), which the judgments are read by: asking the judgment query for
    it too would join every chunk's query with the whole task table."""
    rows = eligible_judgments(
        project_id=project_id, include_excluded=f.include_excluded, gold="include"
    ).filter(kind__in=f.effective_kinds())
    if f.date_from:
        rows = rows.filter(created_at__gte=f.date_from)
    if f.date_to:
        rows = rows.filter(created_at__lt=f.date_to)
    return rows


def _task_chunks(project_id: int, f: ExportFilters) -> Iterator[tuple[int, int, set[int]]]:
    """(first id, last id, ids) of consecutive chunks of the tasks to export (keyset pagination:
    constant memory on any database). Later queries read the id range with index range scans (no
    long IN list) and keep the rows whose task is in ``ids``."""
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


def _ai_rows(
    project_id: int, f: ExportFilters, lo: int, hi: int, selected: set[int], counts: RowCounts
) -> Iterator[dict[str, Any]]:
    """The AI pairs of one chunk of tasks (module docstring), with their weight and source. The
    confidence floor is applied here, not in the query, so the rows it leaves out are counted."""
    mixing = _export_mixing(project_id, f)
    verdicts = eligible_ai_judgments(
        project_id=project_id,
        gold="include",  # the chunks already follow the gold mode
        date_from=f.date_from,
        date_to=f.date_to,
    ).filter(task_id__gte=lo, task_id__lte=hi)
    yield from _ai_item_rows(ai_items(verdicts, selected), mixing, f, counts)


def _cai_prompt_rows(
    project_id: int, f: ExportFilters, counts: RowCounts
) -> Iterator[dict[str, Any]]:
    """The pairs of the Constitutional AI verdicts without a task (after every task chunk; they
    count as pairwise, non-gold): (revised, original), one item per prompt."""
    if f.gold == "only" or "pairwise" not in f.effective_kinds():
        return
    mixing = _export_mixing(project_id, f)
    verdicts = eligible_ai_judgments(
        project_id=project_id, date_from=f.date_from, date_to=f.date_to
    )
    yield from _ai_item_rows(cai_prompt_items(verdicts), mixing, f, counts)


def _ai_item_rows(
    items: list[AIItem], mixing: Mixing, f: ExportFilters, counts: RowCounts
) -> Iterator[dict[str, Any]]:
    for item in items:
        counts.skipped["ai_below_min_confidence"] += sum(
            1 for v in item.verdicts if not mixing.keeps(v)
        )
        writer = _Writer(f.dataset, f.style, item.prompt)
        for chosen, rejected in ai_pairs(item, mixing, aggregation=f.aggregation):
            row = writer.pair(chosen, rejected, 0.0)
            if row is not None:
                counts.ai_rows += 1
                counts.rows += 1
                yield {**row, "weight": mixing.ai_weight, "source": "ai"}


def _export_mixing(project_id: int, f: ExportFilters) -> Mixing:
    project = Project.objects.only("ai_training", "ai_weight", "ai_min_confidence").get(
        id=project_id
    )
    mode = {"human": "human", "ai": "ai", "all": "both"}[f.source]
    return Mixing(mode=mode, weight=project.ai_weight, min_confidence=project.ai_min_confidence)


def training_rows(project_id: int, f: ExportFilters, counts: RowCounts) -> Iterator[dict[str, Any]]:
    """Every row of the export, task by task in id order (deterministic), counting in ``counts``."""
    if f.source != "human":
        yield from _mixed_rows(project_id, f, counts)
        return
    yield from _human_rows(project_id, f, counts)


def _mixed_rows(project_id: int, f: ExportFilters, counts: RowCounts) -> Iterator[dict[str, Any]]:
    for lo, hi, selected in _task_chunks(project_id, f):
        if f.source == "all":
            for row in _human_rows(project_id, f, counts, (lo, hi, selected)):
                yield {**row, "weight": 1.0, "source": "human"}
        yield from _ai_rows(project_id, f, lo, hi, selected, counts)
    yield from _cai_prompt_rows(project_id, f, counts)


def _human_rows(
    project_id: int,
    f: ExportFilters,
    counts: RowCounts,
    chunk: tuple[int, int, set[int]] | None = None,
) -> Iterator[dict[str, Any]]:
    judgments = _export_judgments(project_id, f)
    chunks = [chunk] if chunk is not None else _task_chunks(project_id, f)
    for lo, hi, selected in chunks:
        rows = _judgment_rows(judgments.filter(task_id__gte=lo, task_id__lte=hi), selected)
        if not rows:
            continue
        texts = _texts(TaskResponse.objects.filter(task_id__gte=lo, task_id__lte=hi), selected)
        prompts = dict(
            Task.objects.filter(project_id=project_id, id__gte=lo, id__lte=hi).values_list(
                "id", "prompt__messages"
            )
        )
        for item in _items(rows, texts, prompts):
            counts.tasks += 1
            counts.judgments += len(item.judgments)
            if f.min_agreement is not None and item.kind != TaskKind.DEMONSTRATION:
                share = agreement(item)
                if share is None or share < f.min_agreement:
                    counts.skipped["below_min_agreement"] += len(item.judgments)
                    continue
            writer = _Writer(f.dataset, f.style, item.prompt)
            for row in item_records(item, writer, aggregation=f.aggregation):
                if row is not None:
                    counts.rows += 1
                    yield row
