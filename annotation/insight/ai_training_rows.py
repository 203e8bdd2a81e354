"""AI verdicts as training data: which ones may train, read task by task for the contract's mixing
(:mod:`training.contract.mixing` holds the rules; the retrain cycle and the exports both read
here, so they select the same verdicts).

Eligible AI verdicts: on a pairwise task of the project, not a gold task (gold tasks are quality
checks, as for humans), consistent (a chosen and a rejected response), with a confidence >= the
floor (0: every consistent verdict). Only :mod:`annotation.insight.ai_agreement` and this module
read ``AIJudgment``; no human figure does.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from operator import itemgetter

from django.db.models import Q, QuerySet

from annotation.models import AIJudgment, Project, Task, TaskKind, TaskResponse
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
    rows = AIJudgment.objects.filter(
        project_id=project_id,
        task__kind=TaskKind.PAIRWISE,
        consistent=True,
        chosen_response__isnull=False,
        rejected_response__isnull=False,
    )
    if gold == "exclude":
        rows = rows.filter(task__is_gold=False)
    elif gold == "only":
        rows = rows.filter(task__is_gold=True)
    if min_confidence:
        rows = rows.filter(Q(confidence__gte=min_confidence))
    if date_from:
        rows = rows.filter(created_at__gte=date_from)
    if date_to:
        rows = rows.filter(created_at__lt=date_to)
    return rows


_COLUMNS = ("task_id", "id", "chosen_response_id", "rejected_response_id", "confidence")


def ai_items(verdicts: QuerySet[AIJudgment], tasks: Collection[int] | None = None) -> list[AIItem]:
    """The verdicts (of ``tasks`` only, when given) grouped by task, with prompts and texts."""
    rows = [
        AIPairRow(*r)
        for r in verdicts.order_by("task_id", "id").values_list(*_COLUMNS)
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
    return [
        AIItem(task_id, prompts[task_id], texts[task_id], list(group))
        for task_id, group in itertools.groupby(rows, key=itemgetter(0))
    ]


def ai_snapshot_items(ai_judgment_ids: Sequence[int]) -> list[AIItem]:
    """The AI items of a recorded snapshot (the ids a retrain cycle pinned)."""
    return ai_items(AIJudgment.objects.filter(id__in=ai_judgment_ids))
