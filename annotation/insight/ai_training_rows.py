"""AI verdicts as training data: which ones may train, read task by task for the contract's mixing
(:mod:`training.contract.mixing` holds the rules; the retrain cycle and the exports both read
here, so they select the same verdicts).

Eligible AI verdicts: on a pairwise task of the project, not a gold task (gold tasks are quality
checks, as for humans), or a Constitutional AI verdict without a task (its item is the prompt of
its responses); consistent (a chosen and a rejected response), with a confidence >= the floor
(0: every consistent verdict). Only :mod:`annotation.insight.ai_agreement` and this module
read ``AIJudgment``; no human figure does.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from django.db.models import Q, QuerySet

from annotation.models import (
    AIJudgment,
    AIMethod,
    Project,
    Prompt,
    Response,
    Task,
    TaskKind,
    TaskResponse,
)
from training.contract.mixing import AIItem, AIPairRow, Mixing


def project_mixing(project: Project) -> Mixing:
    return Mixing(
        mode=project.ai_training,
        weight=project.ai_weight,
        min_confidence=project.ai_min_confidence,
    )


def eligible_ai_judgments(
    *,
    project_id: int,
    min_confidence: float = 0.0,
    gold: str = "exclude",
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> QuerySet[AIJudgment]:
    on_task = Q(task__kind=TaskKind.PAIRWISE)
    if gold == "exclude":
        on_task &= Q(task__is_gold=False)
    elif gold == "only":
        on_task &= Q(task__is_gold=True)
    where = on_task if gold == "only" else on_task | Q(task__isnull=True, method=AIMethod.CAI)
    rows = AIJudgment.objects.filter(
        where,
        project_id=project_id,
        consistent=True,
        chosen_response__isnull=False,
        rejected_response__isnull=False,
    )
    if min_confidence:
        rows = rows.filter(Q(confidence__gte=min_confidence))
    if date_from:
        rows = rows.filter(created_at__gte=date_from)
    if date_to:
        rows = rows.filter(created_at__lt=date_to)
    return rows


_COLUMNS = ("task_id", "id", "chosen_response_id", "rejected_response_id", "confidence", "method")


def _pair_row(row: Sequence[Any]) -> AIPairRow:
    task_id, id_, chosen, rejected, confidence, method = row
    return AIPairRow(task_id, id_, chosen, rejected, confidence, cai=method == AIMethod.CAI)


def ai_items(verdicts: QuerySet[AIJudgment], tasks: Collection[int] | None = None) -> list[AIItem]:
    """The verdicts (of ``tasks`` only, when given) grouped by task, with prompts and texts;
    without ``tasks``, then the CAI verdicts without a task, one item per prompt."""
    rows = [
        _pair_row(r)
        for r in verdicts.filter(task__isnull=False)
        .order_by("task_id", "id")
        .values_list(*_COLUMNS)
        if tasks is None or r[0] in tasks
    ]
    task_ids = {r.task_id for r in rows}
    texts: dict[int, dict[int, str]] = defaultdict(dict)
    for task_id, response_id, text in (
        TaskResponse.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "position")
        .values_list("task_id", "response_id", "response__text")
    ):
        texts[task_id][response_id] = text
    prompts = dict(Task.objects.filter(id__in=task_ids).values_list("id", "prompt__messages"))
    items = [
        AIItem(task_id, prompts[task_id], texts[task_id], list(group))
        for task_id, group in itertools.groupby(rows, key=itemgetter(0))
    ]
    if tasks is None:
        items += cai_prompt_items(verdicts)
    return items


def cai_prompt_items(verdicts: QuerySet[AIJudgment]) -> list[AIItem]:
    """The CAI verdicts among ``verdicts`` that have no task, grouped by the prompt of their
    responses (both belong to it: the original and its revision), in prompt id order."""
    found = list(
        verdicts.filter(task__isnull=True, method=AIMethod.CAI)
        .order_by("chosen_response__prompt_id", "id")
        .values_list("chosen_response__prompt_id", *_COLUMNS)
    )
    response_ids = {i for r in found for i in (r[3], r[4])}
    by_id = {
        rid: (prompt_id, text)
        for rid, prompt_id, text in Response.objects.filter(id__in=response_ids).values_list(
            "id", "prompt_id", "text"
        )
    }
    prompt_ids = {r[0] for r in found}
    prompts = dict(Prompt.objects.filter(id__in=prompt_ids).values_list("id", "messages"))
    items = []
    for prompt_id, group in itertools.groupby(found, key=itemgetter(0)):
        pairs = [_pair_row(r[1:]) for r in group]
        texts = {
            rid: by_id[rid][1]
            for v in pairs
            for rid in (v.chosen, v.rejected)
            if rid in by_id and by_id[rid][0] == prompt_id
        }
        items.append(AIItem(None, prompts[prompt_id], texts, pairs))
    return items


def ai_snapshot_items(ai_judgment_ids: Sequence[int]) -> list[AIItem]:
    """The AI items of a recorded snapshot (the ids a retrain cycle pinned)."""
    return ai_items(AIJudgment.objects.filter(id__in=ai_judgment_ids))
