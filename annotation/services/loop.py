"""Starting retrain cycles: the policy's automatic trigger and the manager's "retrain now".

A cycle is a :class:`TrainingRun`. "Never two cycles of one project at once" is held by the
database: the partial unique index ``one_active_run_per_project`` admits one queued/running run per
project, so two beat ticks, two managers or a tick and a manager racing each other insert one row
and the loser gets an ``IntegrityError`` (turned into ``None`` or a 409 here). No Python lock.

The worker is told only after the run row is committed (``transaction.on_commit``): a rolled-back
trigger never reaches the broker, and a worker never sees an id it cannot read. The message holds
the run id only. This module sends by task *name* through the Celery app in ``config/`` so the web
process never imports ``workers`` or the training stack (``annotation`` must not import either).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.errors import Conflict, ValidationFailed
from annotation.models import (
    ACTIVE_RUN_STATUSES,
    Project,
    Prompt,
    RunStatus,
    TrainingRun,
)
from annotation.run_options import run_config_problem
from annotation.selectors import eligible_judgments
from annotation.services.runs import run_active
from training.contract.trainers import TRAINER_NAMES, in_training_order

logger = logging.getLogger(__name__)
RUN_CYCLE_TASK = "loop.run_cycle"
KNOWN_TRAINERS = frozenset(TRAINER_NAMES)  # the registry: training/contract/trainers.py
STALE_QUEUED = timedelta(minutes=10)


def enqueue_cycle(run_id: int) -> None:
    """Send the cycle to the ``gpu`` queue (by name; routing: ``config/celery.py``)."""
    from config.celery import send

    send(RUN_CYCLE_TASK, run_id)


def _enqueue_after_commit(run_id: int) -> None:
    """The run row is committed already; if the broker is unreachable now, the next policy tick
    re-sends the message (``requeue_stale``), so the caller still gets its answer."""
    try:
        enqueue_cycle(run_id)
    except Exception:  # the broker is down: logged, retried by the tick
        logger.exception("could not enqueue cycle %s; the policy tick will retry", run_id)


def requeue_stale(*, now: Any = None) -> list[int]:
    """Re-send runs still ``queued`` (never started) after ``STALE_QUEUED``: their message was
    lost (broker down at commit time, or a broker that lost its data). Claiming is conditional,
    so a duplicate message is harmless."""
    cutoff = (now or timezone.now()) - STALE_QUEUED
    stale = list(
        TrainingRun.objects.filter(
            status=RunStatus.QUEUED, attempts=0, created_at__lt=cutoff
        ).values_list("id", flat=True)
    )
    for run_id in stale:
        enqueue_cycle(run_id)
    return stale


def last_snapshot_max(*, project: Project) -> int:
    """Highest judgment id consumed by the project's last successful cycle (0 if none)."""
    last = (
        TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values_list("snapshot_max_judgment_id", flat=True)
        .first()
    )
    return last or 0


def new_judgment_count(*, project: Project) -> int:
    """Current judgments, from raters not excluded, that arrived after the last snapshot."""
    after = last_snapshot_max(project=project)
    return eligible_judgments(project_id=project.id).filter(id__gt=after).count()


def retrain_due(*, project: Project, now: Any = None) -> tuple[bool, str]:
    """Whether the automatic policy wants a cycle now, and why (or why not)."""
    if not project.auto_retrain:
        return False, "auto_retrain is off"
    now = now or timezone.now()
    last = TrainingRun.objects.filter(project=project).order_by("-id").first()
    if last is not None and last.status in ACTIVE_RUN_STATUSES:
        return False, f"run {last.id} is {last.status}"
    if last is not None and now - last.created_at < timedelta(minutes=project.min_interval_minutes):
        return False, f"last run started less than {project.min_interval_minutes} min ago"
    fresh = new_judgment_count(project=project)
    if fresh < project.min_new_judgments:
        return False, f"{fresh} new judgments < {project.min_new_judgments}"
    return True, f"{fresh} new judgments"


def retrain_blockers(*, project: Project) -> list[str]:
    """What keeps a cycle of ``project`` from succeeding, each as what to fix (empty: it can run).

    Without a base model every cycle fails (the reward model and the first policy start from it);
    without prompts there is nothing to generate candidates for. No judgments is fine: the first
    (bootstrap) cycle generates candidates from the base model and creates the first tasks.
    """
    problems = []
    if not project.base_model.strip():
        problems.append(
            "The project has no base model to train from. Set base_model to a local model folder "
            "(or a hub id in the local cache): PATCH /api/projects/"
            f'{project.id}/ with {{"base_model": "/path/to/model"}}, or in the admin.'
        )
    if not Prompt.objects.filter(project=project).exists():
        problems.append(
            "The project has no prompts: import prompts first "
            f"(POST /api/projects/{project.id}/import/)."
        )
    return problems


def _check_trainers(trainers: object) -> list[str]:
    """A run's trainers: a non-empty list of registered trainers (400 otherwise), in the
    registry's order."""
    if (
        not isinstance(trainers, list)
        or not trainers
        or any(not isinstance(t, str) or t not in KNOWN_TRAINERS for t in trainers)
    ):
        raise ValidationFailed(
            f"trainers must be a non-empty list of {', '.join(sorted(KNOWN_TRAINERS))}.",
            field="trainers",
        )
    return in_training_order(trainers)


def _check_config(config: object) -> dict[str, Any]:
    """The run config as given, if every key is a run option with a value in its range
    (``annotation/run_options.py``); otherwise a 400 naming the option."""
    if not isinstance(config, dict):
        raise ValidationFailed("config must be a JSON object of run options.", field="config")
    problem = run_config_problem(config)
    if problem is not None:
        field, message = problem
        raise ValidationFailed(message, field=field)
    return dict(config)


def retrain_claim(
    *,
    project: Project,
    triggered_by: str,
    config: dict[str, Any] | None = None,
    enqueue: bool = True,
    trainers: list[str] | None = None,
) -> TrainingRun | None:
    """Insert a queued run for ``project``; ``None`` when a cycle is already queued or running.
    ``trainers`` (registered trainers, training/contract/trainers.py) defaults to the project's;
    ``config`` is laid over the site's ``LOOP_RUN_DEFAULTS``.

    Locks: none in Python; the unique partial index on active runs decides between racing callers
    (the insert runs in a savepoint so the caller's transaction survives losing). The cycle is
    enqueued when the outermost transaction commits.
    """
    # the site's defaults (settings.LOOP_RUN_DEFAULTS) are written into the run, so its page
    # and lineage show the options it really ran with
    config = {**settings.LOOP_RUN_DEFAULTS, **_check_config(config if config is not None else {})}
    if trainers is not None:
        trainers = _check_trainers(trainers)
    else:
        trainers = in_training_order(project.trainers) or ["rm", "dpo"]
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project,
                trainers=trainers,
                config=config,
                status=RunStatus.QUEUED,
                triggered_by=triggered_by,
            )
    except IntegrityError:
        return None
    if enqueue:
        transaction.on_commit(lambda: _enqueue_after_commit(run.id))
    return run


def retrain_now(
    *,
    project: Project,
    user: Any,
    config: dict[str, Any] | None = None,
    trainers: list[str] | None = None,
) -> TrainingRun:
    """The manager's "retrain now": a cycle regardless of the policy. 409 when the project
    cannot train (``retrain_blockers``: the message says what to set) or a cycle is active."""
    _check_config(config if config is not None else {})  # bad input is a 400 before a 409
    if trainers is not None:
        _check_trainers(trainers)
    problems = retrain_blockers(project=project)
    if problems:
        raise Conflict(" ".join(problems))
    run = retrain_claim(
        project=project,
        triggered_by=f"manual:{getattr(user, 'pk', '')}",
        config=config,
        trainers=trainers,
    )
    if run is None:
        active = run_active(project=project)
        raise Conflict(
            f"A cycle of this project is already {getattr(active, 'status', 'active')} "
            f"(run {getattr(active, 'id', '?')}); wait for it to finish."
        )
    return run


def retrain_tick(*, now: Any = None) -> list[int]:
    """One beat tick: claim a cycle for every project whose policy says so; return run ids."""
    requeue_stale(now=now)
    started = []
    for project in Project.objects.filter(auto_retrain=True).order_by("id"):
        due, _ = retrain_due(project=project, now=now)
        if due:
            run = retrain_claim(project=project, triggered_by="policy")
            if run is not None:
                started.append(run.id)
    return started
