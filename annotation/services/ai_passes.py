"""AI labeling passes: start one (the web side), and every write the worker makes to it.

A pass is an :class:`AIPass` row over a fixed list of pairwise tasks. Its life::

    queued ──ai_pass_claim──► running ──ai_judgments_store (batch by batch)──► …
                                 │                                          │
                                 └──ai_pass_fail──► failed    ai_pass_succeed──► succeeded

What judges is decided when the pass starts and stored on the row: ``reward_model`` uses the
project's active reward model version (its artifact), ``llm_judge`` a local model folder (by
default the SmolLM2-135M-Instruct that ``manage.py base_model install`` puts under
``settings.MODELS_DIR``) prompted with the guidelines and one principle of the project's current
constitution at a time (every principle, or the ones chosen). The worker
(``workers/ai_feedback.py``) runs the judge through ``training.judges``; this module stays pure
Django (``annotation`` never imports ``workers`` or torch) and sends the pass by task *name*.

Idempotent: verdicts go in with ``ignore_conflicts`` against the unique (pass, task, principle)
indexes, and the worker asks :func:`ai_pass_pending` what is still missing, so a retried or
redelivered pass judges only the pairs not stored yet. ``done``, ``progress`` and the stats are
recounted from the stored rows after every batch, never added up, so a duplicate batch cannot
inflate them (``seconds`` is the one sum: the judge time every attempt spent).

AI verdicts are written to ``AIJudgment`` only: nothing here touches a task's slots, judgments or
status, so human assignment, overlap and agreement never see them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import (
    AIJudgment,
    AIMethod,
    AIPass,
    AIPassStatus,
    ModelKind,
    ModelVersion,
    Project,
    Task,
    TaskKind,
    TaskResponse,
)
from annotation.services.constitutions import constitution_current
from annotation.textcheck import text_problem

logger = logging.getLogger(__name__)
# One task name per queue (routing: config/celery.py): the queue is the pass's choice.
RUN_PASS_TASKS = {"cpu": "ai.run_pass.cpu", "gpu": "ai.run_pass.gpu"}
QUEUES = tuple(RUN_PASS_TASKS)
STARTABLE_METHODS = (AIMethod.REWARD_MODEL, AIMethod.LLM_JUDGE)
# The packaged base model the LLM judge defaults to (training/base_models.py installs it as
# MODELS_DIR/<name>; annotation may not import that module).
DEFAULT_JUDGE_MODEL = "smollm2-135m-instruct"
MAX_TASKS = 100_000
ERROR_CHARS = 5000
ACTIVE_STATUSES = (AIPassStatus.QUEUED, AIPassStatus.RUNNING)


def default_judge_model() -> str:
    """The installed SmolLM2-135M-Instruct folder (``settings.MODELS_DIR``)."""
    return str(Path(settings.MODELS_DIR) / DEFAULT_JUDGE_MODEL)


def _pairwise_tasks(project: Project) -> Any:
    return Task.objects.filter(project=project, kind=TaskKind.PAIRWISE, is_gold=False)


def _select_tasks(project: Project, task_ids: Any, limit: Any) -> list[int]:
    """The pass's tasks: the given ids (each a pairwise, non-gold task of the project), or all
    such tasks in id order; at most ``limit`` of them."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TASKS
    ):
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_TASKS}.", field="limit")
    if task_ids is None or task_ids == []:
        rows = _pairwise_tasks(project).order_by("id").values_list("id", flat=True)
        chosen = list(rows[: limit or MAX_TASKS])
    else:
        if not isinstance(task_ids, list | tuple) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in task_ids
        ):
            raise ValidationFailed("task_ids must be a list of task ids.", field="task_ids")
        if len(task_ids) > MAX_TASKS:
            raise ValidationFailed(f"At most {MAX_TASKS} task ids.", field="task_ids")
        wanted = list(dict.fromkeys(task_ids))
        known = set(_pairwise_tasks(project).filter(id__in=wanted).values_list("id", flat=True))
        unknown = [t for t in wanted if t not in known]
        if unknown:
            shown = ", ".join(str(t) for t in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValidationFailed(
                f"Not pairwise, non-gold tasks of this project: {shown}{more}.", field="task_ids"
            )
        chosen = wanted[:limit] if limit else wanted
    if not chosen:
        raise ValidationFailed(
            "This project has no pairwise (non-gold) tasks to judge.", field="task_ids"
        )
    return chosen


def _principle_indexes(principles: list[str], chosen: Any) -> list[int]:
    if chosen is None or chosen == []:
        return list(range(len(principles)))
    if not isinstance(chosen, list | tuple) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in chosen
    ):
        raise ValidationFailed(
            "principles must be a list of principle indexes (0-based).", field="principles"
        )
    bad = [i for i in chosen if not 0 <= i < len(principles)]
    if bad:
        raise ValidationFailed(
            f"No principle {bad[0]}: the constitution has {len(principles)} (0 to "
            f"{len(principles) - 1}).",
            field="principles",
        )
    return sorted(set(chosen))


def _check_model_path(model: Any) -> str:
    if not isinstance(model, str):
        raise ValidationFailed("model must be a folder path (a string).", field="model")
    model = model.strip()
    if len(model) > 500:
        raise ValidationFailed("model: a path of at most 500 characters.", field="model")
    problem = text_problem(model)
    if problem:
        raise ValidationFailed(f"model {problem}", field="model")
    if not model:
        model = default_judge_model()
        if not Path(model).is_dir():
            raise ValidationFailed(
                f"The default judge model is not installed at {model}: run "
                f"`manage.py base_model install {DEFAULT_JUDGE_MODEL}`, or name a model folder.",
                field="model",
            )
    return model


def enqueue_pass(ai_pass: AIPass) -> None:
    """Send the pass to its queue (by name; routing: ``config/celery.py``); a CAI batch has its
    own task (``workers/cai.py``)."""
    from config.celery import send

    tasks = RUN_CAI_TASKS if ai_pass.method == AIMethod.CAI else RUN_PASS_TASKS
    send(tasks[ai_pass.queue], ai_pass.id)


def _enqueue_after_commit(ai_pass: AIPass) -> None:
    try:
        enqueue_pass(ai_pass)
    except Exception:  # the broker is down: the pass stays queued; ai_pass_requeue_stale resends
        logger.exception("could not enqueue AI pass %s", ai_pass.id)


def ai_pass_start(
    *,
    project: Project,
    user: Any,
    method: Any,
    model: Any = "",
    queue: Any = "cpu",
    task_ids: Any = None,
    limit: Any = None,
    principles: Any = None,
    enqueue: bool = True,
) -> AIPass:
    """Queue an AI labeling pass over the project's pairwise tasks (all of them, ``task_ids``,
    at most ``limit``); ``principles`` picks principle indexes for ``llm_judge`` (default all).
    Bad input is a :class:`ValidationFailed` naming the field, and nothing is written.

    Locks: none; the pass is sent to its queue when the outermost transaction commits (unless
    ``enqueue`` is false: the caller runs it itself, ``manage.py ai_pass start --here``).
    """
    if method not in STARTABLE_METHODS:
        raise ValidationFailed(
            f"method must be one of {', '.join(STARTABLE_METHODS)}.", field="method"
        )
    if queue not in QUEUES:
        raise ValidationFailed(f"queue must be one of {', '.join(QUEUES)}.", field="queue")
    fields: dict[str, Any] = {}
    if method == AIMethod.REWARD_MODEL:
        if model not in ("", None):
            raise ValidationFailed(
                "The reward_model method uses the project's active reward model; leave model "
                "empty.",
                field="model",
            )
        version = ModelVersion.objects.filter(
            project=project, kind=ModelKind.REWARD, is_active=True
        ).first()
        if version is None:
            raise ValidationFailed(
                "This project has no active reward model: train one first, or use llm_judge.",
                field="method",
            )
        fields = {"model_version": version, "model_path": version.artifact_path}
        if principles not in (None, []):
            raise ValidationFailed(
                "A reward model judges without principles; leave principles empty.",
                field="principles",
            )
        per_task = 1
    else:
        path = _check_model_path(model if model is not None else "")
        constitution = constitution_current(project=project)
        if constitution is None:
            raise ValidationFailed(
                "The LLM judge needs a constitution: save the project's principles first.",
                field="constitution",
            )
        indexes = _principle_indexes(constitution.principles, principles)
        fields = {"model_path": path, "constitution": constitution, "principle_indexes": indexes}
        per_task = len(indexes)
    chosen = _select_tasks(project, task_ids, limit)
    with transaction.atomic():
        ai_pass = AIPass.objects.create(
            project=project,
            method=method,
            queue=queue,
            task_ids=chosen,
            total=len(chosen) * per_task,
            created_by=user if getattr(user, "pk", None) else None,
            **fields,
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue_after_commit(ai_pass))
    return ai_pass


def ai_pass_get(*, project: Project, pass_id: int) -> AIPass:
    ai_pass = AIPass.objects.filter(project=project, id=pass_id).first()
    if ai_pass is None:
        raise NotFound(f"AI pass {pass_id} not found.")
    return ai_pass


def ai_pass_retry(*, project: Project, pass_id: int) -> AIPass:
    """A failed pass (or CAI batch) back to queued, error and finish time cleared, and sent again
    when the outermost transaction commits. The worker resumes where it stopped: verdicts and
    revisions stored before the failure are kept and not redone (``ai_pass_pending``,
    ``workers.cai.cai_pending``). :class:`Conflict` for a pass that has not failed.

    Locks: the row the conditional update writes; its row count decides, so two retries of one
    pass queue it once."""
    with transaction.atomic():
        retried = AIPass.objects.filter(
            project=project, id=pass_id, status=AIPassStatus.FAILED
        ).update(status=AIPassStatus.QUEUED, error="", finished_at=None)
        ai_pass = ai_pass_get(project=project, pass_id=pass_id)
        if not retried:
            raise Conflict(
                f"AI pass {pass_id} is {ai_pass.status}: only a failed pass can be retried."
            )
        transaction.on_commit(lambda: _enqueue_after_commit(ai_pass))
    return ai_pass


def ai_pass_requeue_stale(*, older_than_seconds: int = 600) -> list[int]:
    """Re-send passes (labeling passes and CAI batches, each to its own task) still queued and
    never claimed after ``older_than_seconds`` (their message was lost: broker down at commit).
    Claiming is conditional: a duplicate is harmless."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(
        AIPass.objects.filter(status=AIPassStatus.QUEUED, attempts=0, created_at__lt=cutoff)
    )
    for ai_pass in stale:
        enqueue_pass(ai_pass)
    return [p.id for p in stale]


# ---------------------------------------------------------------- the worker's side


def ai_pass_claim(*, pass_id: int) -> bool:
    """queued/running -> running (attempts + 1, started_at kept from the first attempt, error
    cleared); False for a finished pass, so a duplicate message redoes nothing, and for a CAI
    batch (not a labeling pass). Locks: the row the conditional update writes; its row count
    decides."""
    return bool(
        AIPass.objects.filter(
            id=pass_id, status__in=ACTIVE_STATUSES, method__in=STARTABLE_METHODS
        ).update(
            status=AIPassStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), timezone.now()),
            error="",
        )
    )


@dataclass(frozen=True)
class TaskPair:
    """One pairwise task as the judge sees it: the prompt's messages and the two responses in
    the task's order (position 0 first)."""

    task_id: int
    messages: list[dict[str, str]]
    first_id: int
    first_text: str
    second_id: int
    second_text: str


def ai_pass_principles(ai_pass: AIPass) -> list[tuple[int | None, str]]:
    """The (index, text) of every principle the pass judges under; ``[(None, "")]`` for a
    reward model (no principle)."""
    if ai_pass.method == AIMethod.REWARD_MODEL or ai_pass.constitution is None:
        return [(None, "")]
    principles = ai_pass.constitution.principles
    indexes = ai_pass.principle_indexes or list(range(len(principles)))
    return [(i, principles[i]) for i in indexes]


def ai_pass_pending(*, ai_pass: AIPass, principle_index: int | None) -> list[TaskPair]:
    """The pass's tasks without a stored verdict under ``principle_index``, in the pass's
    order, with their texts (tasks deleted since the pass started are left out)."""
    stored = set(
        AIJudgment.objects.filter(ai_pass=ai_pass, principle_index=principle_index).values_list(
            "task_id", flat=True
        )
    )
    wanted = [t for t in ai_pass.task_ids if t not in stored]
    if not wanted:
        return []
    prompts = dict(Task.objects.filter(id__in=wanted).values_list("id", "prompt__messages"))
    slots: dict[int, dict[int, tuple[int, str]]] = {}
    rows = TaskResponse.objects.filter(task_id__in=wanted, position__in=(0, 1)).values_list(
        "task_id", "position", "response_id", "response__text"
    )
    for task_id, position, response_id, text in rows:
        slots.setdefault(task_id, {})[position] = (response_id, text)
    pairs = []
    for task_id in wanted:
        pair = slots.get(task_id, {})
        if task_id not in prompts or len(pair) != 2:
            continue
        (first_id, first_text), (second_id, second_text) = pair[0], pair[1]
        pairs.append(
            TaskPair(task_id, list(prompts[task_id]), first_id, first_text, second_id, second_text)
        )
    return pairs


class VerdictLike(Protocol):
    """What the store needs of a verdict (``training.judges.Verdict`` has it)."""

    @property
    def key(self) -> Any: ...
    @property
    def winner(self) -> int | None: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def p_first_order(self) -> float: ...
    @property
    def p_second_order(self) -> float: ...
    @property
    def tokens(self) -> int: ...


def _row(ai_pass: AIPass, pair: TaskPair, verdict: VerdictLike, source: dict[str, Any]) -> Any:
    if verdict.winner not in (0, 1, None):
        raise ValueError(f"verdict for task {pair.task_id}: winner {verdict.winner!r}")
    chosen = rejected = None
    confidence = None
    if verdict.winner is not None:
        chosen, rejected = (pair.first_id, pair.second_id)[:: 1 if verdict.winner == 0 else -1]
        confidence = min(1.0, max(0.5, float(verdict.confidence or 0.5)))
    return AIJudgment(
        ai_pass=ai_pass,
        project_id=ai_pass.project_id,
        task_id=pair.task_id,
        method=ai_pass.method,
        model_version_id=ai_pass.model_version_id,
        constitution_id=ai_pass.constitution_id,
        chosen_response_id=chosen,
        rejected_response_id=rejected,
        consistent=verdict.winner is not None,
        confidence=confidence,
        p_first_order=float(verdict.p_first_order),
        p_second_order=float(verdict.p_second_order),
        tokens=max(0, int(verdict.tokens)),
        **source,
    )


def ai_judgments_store(
    *,
    ai_pass: AIPass,
    principle_index: int | None,
    principle: str,
    model_name: str,
    template_hash: str,
    pairs: Sequence[TaskPair],
    verdicts: Sequence[VerdictLike],
    seconds: float,
) -> int:
    """Store one batch of verdicts (matched to ``pairs`` by task id: ``verdict.key``) and
    recount the pass's done, progress and stats from its stored rows; returns rows inserted.

    Locks: the pass row (``SELECT ... FOR UPDATE``) for the recount, one transaction with the
    insert. A verdict already stored (retry, duplicate worker) is skipped by the unique index.
    """
    by_task = {p.task_id: p for p in pairs}
    source = {
        "principle_index": principle_index,
        "principle": principle,
        "model_name": model_name[:500],
        "template_hash": template_hash[:64],
    }
    rows = [_row(ai_pass, by_task[v.key], v, source) for v in verdicts if v.key in by_task]
    with transaction.atomic():
        before = AIJudgment.objects.filter(ai_pass=ai_pass).count()
        AIJudgment.objects.bulk_create(rows, ignore_conflicts=True)
        locked = AIPass.objects.select_for_update().get(id=ai_pass.id)
        counts = AIJudgment.objects.filter(ai_pass=ai_pass).aggregate(
            pairs=Count("id"),
            inconsistent=Count("id", filter=Q(consistent=False)),
            tokens=Coalesce(Sum("tokens"), 0),
        )
        judged = counts["pairs"]
        locked.done = min(judged, locked.total)
        locked.progress = locked.done / locked.total if locked.total else 1.0
        locked.stats = {
            "pairs": judged,
            "inconsistent": counts["inconsistent"],
            "flip_rate": round(counts["inconsistent"] / judged, 6) if judged else 0.0,
            "tokens": counts["tokens"],
            "seconds": round(float(locked.stats.get("seconds", 0.0)) + seconds, 3),
        }
        locked.save(update_fields=["done", "progress", "stats"])
    return judged - before


def ai_pass_succeed(*, pass_id: int) -> bool:
    """running -> succeeded, progress 1; ``stats.skipped`` counts the (task, principle) pairs
    that could not be judged (tasks deleted, or without two responses, since the pass began).
    False when the pass was not running. Locks: the pass row."""
    with transaction.atomic():
        ai_pass = (
            AIPass.objects.select_for_update()
            .filter(id=pass_id, status=AIPassStatus.RUNNING)
            .first()
        )
        if ai_pass is None:
            return False
        ai_pass.status = AIPassStatus.SUCCEEDED
        ai_pass.progress = 1.0
        ai_pass.finished_at = timezone.now()
        ai_pass.stats = {**ai_pass.stats, "skipped": ai_pass.total - ai_pass.done}
        ai_pass.save(update_fields=["status", "progress", "finished_at", "stats"])
    return True


def ai_pass_fail(*, pass_id: int, error: str) -> bool:
    """queued/running -> failed with (the end of) ``error``; the verdicts stored so far stay
    (a later pass may reuse nothing of them, but they are true verdicts). False when finished."""
    return bool(
        AIPass.objects.filter(id=pass_id, status__in=ACTIVE_STATUSES).update(
            status=AIPassStatus.FAILED, error=error[-ERROR_CHARS:], finished_at=timezone.now()
        )
    )


# ---------------------------------------------------------------- Constitutional AI batches

RUN_CAI_TASKS = {"cpu": "ai.run_cai.cpu", "gpu": "ai.run_cai.gpu"}


def start_cai_pass(
    *,
    project: Project,
    user: Any,
    model: Any = "",
    queue: Any = "cpu",
    prompt_ids: Any = None,
    limit: Any = None,
    principles: Any = None,
    verify: Any = False,
    enqueue: bool = True,
) -> AIPass:
    """Queue a Constitutional AI batch (``workers/cai.py``): for each prompt (``prompt_ids`` of
    the project, or its train prompts in id order; at most ``limit``) the model at ``model``
    (default: the installed SmolLM2) answers, critiques its answer against a principle of the
    current constitution (one of ``principles``, default all) and revises it. ``verify`` also
    makes a pairwise task of each (original, revised) pair for humans to check. The prompt ids
    go in ``task_ids``; ``stats.verify_tasks`` keeps the flag. Bad input is a
    :class:`ValidationFailed` naming the field, and nothing is written.

    Locks: none; the batch is sent to its queue when the outermost transaction commits."""
    from annotation.models import Prompt, Split

    if queue not in QUEUES:
        raise ValidationFailed(f"queue must be one of {', '.join(QUEUES)}.", field="queue")
    if not isinstance(verify, bool):
        raise ValidationFailed("verify must be true or false.", field="verify")
    path = _check_model_path(model if model is not None else "")
    constitution = constitution_current(project=project)
    if constitution is None:
        raise ValidationFailed(
            "Constitutional AI needs a constitution: save the project's principles first.",
            field="constitution",
        )
    indexes = _principle_indexes(constitution.principles, principles)
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TASKS
    ):
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_TASKS}.", field="limit")
    prompts = Prompt.objects.filter(project=project)
    if prompt_ids is None or prompt_ids == []:
        chosen = list(
            prompts.filter(split=Split.TRAIN)
            .order_by("id")
            .values_list("id", flat=True)[: limit or MAX_TASKS]
        )
    else:
        if not isinstance(prompt_ids, list | tuple) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in prompt_ids
        ):
            raise ValidationFailed("prompt_ids must be a list of prompt ids.", field="prompt_ids")
        wanted = list(dict.fromkeys(prompt_ids))[: limit or MAX_TASKS]
        known = set(prompts.filter(id__in=wanted).values_list("id", flat=True))
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise ValidationFailed(
                f"Not prompts of this project: {', '.join(map(str, unknown[:10]))}.",
                field="prompt_ids",
            )
        chosen = wanted
    if not chosen:
        raise ValidationFailed("This project has no prompts to revise.", field="prompt_ids")
    with transaction.atomic():
        ai_pass = AIPass.objects.create(
            project=project,
            method=AIMethod.CAI,
            queue=queue,
            model_path=path,
            constitution=constitution,
            principle_indexes=indexes,
            task_ids=chosen,
            total=len(chosen),
            stats={"verify_tasks": verify},
            created_by=user if getattr(user, "pk", None) else None,
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue_after_commit(ai_pass))
    return ai_pass


def cai_pass_claim(*, pass_id: int) -> bool:
    """:func:`ai_pass_claim` for a CAI batch: queued/running -> running (attempts + 1); False
    for a finished batch or another method. Locks: the row the conditional update writes."""
    return bool(
        AIPass.objects.filter(id=pass_id, status__in=ACTIVE_STATUSES, method=AIMethod.CAI).update(
            status=AIPassStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), timezone.now()),
            error="",
        )
    )
