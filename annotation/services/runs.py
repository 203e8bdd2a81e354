"""Training runs and the model registry: every write to a run, its steps and its model versions.

A run's life (the row is inserted by ``retrain_claim`` in ``services/loop.py``, which decides *when*
a cycle starts; this module owns what happens to it after):

    queued ──run_claim──► running ──run_progress_write / run_step_finish──► …
                             │                                              │
                             └──run_fail──► failed         run_succeed──► succeeded

A model version's life:

    training (version_for_run) ──version_mark_ready──► ready ──version_activate──► active
                                                                 (the previous active one of
                                                                  its kind is superseded)

The database does the guarding, not Python: a partial unique index admits one queued/running run
per project (``one_active_run_per_project``), one version per (run, trainer)
(``one_version_per_run_trainer``), one active version per (project, kind)
(``one_active_model_per_kind``), and a CHECK keeps a version that is not ready from being active;
a step is recorded once (``run_step_unique``). Claims are conditional updates whose row count is
the answer, so a redelivered message or a second worker changes nothing.

Pure Django: the worker (``workers/``) calls these; ``annotation`` never imports ``workers``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.errors import Conflict
from annotation.models import (
    ACTIVE_RUN_STATUSES,
    ModelKind,
    ModelVersion,
    Project,
    RunStatus,
    RunStep,
    TrainingRun,
    VersionStatus,
)

ERROR_CHARS = 5000  # the end of a traceback is what says what went wrong
CURVE_POINTS = 500  # points of the metrics curve kept on the run row


# ---------------------------------------------------------------- runs


def run_active(*, project: Project) -> TrainingRun | None:
    """The project's queued or running run (at most one, by ``one_active_run_per_project``)."""
    return TrainingRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES).first()


def run_claim(*, run_id: int) -> bool:
    """queued/running -> running (attempts + 1, started_at kept from the first attempt, error
    cleared); False when the run is finished (succeeded or failed), so nothing is redone.

    Locks: none beyond the row the conditional update writes; its row count decides. A running
    run can be claimed again on purpose (a redelivered message after the worker died resumes it);
    the worker's advisory lock keeps two live workers from running one run at once.
    """
    return bool(
        TrainingRun.objects.filter(id=run_id, status__in=ACTIVE_RUN_STATUSES).update(
            status=RunStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), timezone.now()),
            error="",
        )
    )


def run_progress_write(
    *,
    run_id: int,
    current_step: str,
    progress: float,
    step_progress: float,
    curve: list[dict[str, Any]],
    step_started: bool = False,
) -> None:
    """Live progress of a running run (0..1 overall and within ``current_step``) and the last
    points of its metrics curve; ``step_started`` stamps the step's start time. Outside any
    transaction on purpose: the run page shows it while the step still works. Locks: none."""
    fields: dict[str, Any] = {
        "progress": progress,
        "current_step": current_step,
        "step_progress": step_progress,
        "curve": curve[-CURVE_POINTS:],
    }
    if step_started:
        fields["step_started_at"] = timezone.now()
    TrainingRun.objects.filter(id=run_id).update(**fields)


def run_step_result(*, run_id: int, name: str) -> dict[str, Any] | None:
    """The recorded result of step ``name`` of the run, or None when it has not finished."""
    return RunStep.objects.filter(run_id=run_id, name=name).values_list("result", flat=True).first()


def step_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The scalar part of a step result (what the run's live metrics show)."""
    return {k: v for k, v in result.items() if isinstance(v, int | float | str | bool | None)}


def run_step_finish(
    *,
    run_id: int,
    name: str,
    result: dict[str, Any],
    seconds: float,
    progress: float,
    commit: Callable[[], None] | None = None,
) -> None:
    """Record step ``name`` as finished, together with the step's own writes (``commit``), in one
    transaction: either the step happened completely (its RunStep row is there, so a re-run skips
    it) or it left nothing behind.

    Locks: the run row (``SELECT … FOR UPDATE``) while its timings and metrics are merged. A
    second copy of the same step meets ``run_step_unique`` and rolls back with its writes.
    """
    with transaction.atomic():
        if commit is not None:
            commit()
        RunStep.objects.create(run_id=run_id, name=name, result=result, seconds=seconds)
        run = TrainingRun.objects.select_for_update().get(id=run_id)
        run.timings = {**run.timings, name: round(seconds, 3)}
        run.metrics = {**run.metrics, name: step_summary(result)}
        run.progress = progress
        run.step_progress = 1.0
        run.save(update_fields=["timings", "metrics", "progress", "step_progress"])


def run_snapshot_set(*, run_id: int, judgment_ids: list[int], max_judgment_id: int) -> None:
    """The judgments this run trains on (fixed once, by the snapshot step's commit)."""
    TrainingRun.objects.filter(id=run_id).update(
        snapshot_judgment_ids=judgment_ids, snapshot_max_judgment_id=max_judgment_id
    )


def run_ai_snapshot_set(*, run_id: int, mixing: dict[str, Any]) -> None:
    """The mixing choice and the AI judgments this run trains on, pinned in its config under
    ``ai_mixing`` (fixed once, by the snapshot step's commit). Locks the run row."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(id=run_id)
        run.config = {**(run.config or {}), "ai_mixing": mixing}
        run.save(update_fields=["config"])


def run_config_shown(config: dict[str, Any] | None) -> dict[str, Any]:
    """A run's config as the API and the run page show it: the pinned AI judgment ids (possibly
    many thousands; like the snapshot's human judgment ids) become their count."""
    config = dict(config or {})
    mixing = config.get("ai_mixing")
    if isinstance(mixing, dict) and "ai_judgment_ids" in mixing:
        shown = {k: v for k, v in mixing.items() if k != "ai_judgment_ids"}
        config["ai_mixing"] = {**shown, "ai_judgments": len(mixing["ai_judgment_ids"])}
    return config


def run_succeed(*, run_id: int) -> bool:
    """running -> succeeded with full progress; False when the run was not running (a run that
    failed meanwhile stays failed)."""
    return bool(
        TrainingRun.objects.filter(id=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED,
            progress=1.0,
            step_progress=1.0,
            current_step="done",
            finished_at=timezone.now(),
        )
    )


def run_fail(*, run_id: int, error: str) -> bool:
    """queued/running -> failed with (the end of) ``error``; the run's versions that are not
    ready fail with it; ready versions and the active models stay as they are. False (and no
    change) when the run had already finished. Locks: the run row and its versions, one
    transaction."""
    with transaction.atomic():
        failed = TrainingRun.objects.filter(id=run_id, status__in=ACTIVE_RUN_STATUSES).update(
            status=RunStatus.FAILED, error=error[-ERROR_CHARS:], finished_at=timezone.now()
        )
        ModelVersion.objects.filter(training_run_id=run_id).filter(
            ~Q(status=VersionStatus.READY)
        ).update(status=VersionStatus.FAILED)
    return bool(failed)


# ---------------------------------------------------------------- model versions


def artifact_complete(path: Path) -> bool:
    """An artifact dir is complete when it exists under its final name with metadata + weights.

    ``training.artifacts.save_artifact`` renames a finished temp dir into place, so a dir under
    its final name is whole; we still check the two files a loader needs.
    """
    return (path / "metadata.json").is_file() and any(path.glob("*.safetensors"))


def version_active(*, project: Project, kind: str) -> ModelVersion | None:
    """The project's active version of ``kind`` (at most one, by the partial unique index)."""
    return ModelVersion.objects.filter(project=project, kind=kind, is_active=True).first()


def version_base(*, project: Project) -> ModelVersion:
    """The project's base model as a (ready) policy version: the root of every lineage. Created
    on first use; a project has one active run at a time, so two cannot race to create it.
    Raises Conflict when the project names no base model."""
    if not project.base_model:
        raise Conflict("The project has no base_model (a local model path) to train from.")
    base = ModelVersion.objects.filter(
        project=project, trainer="base", artifact_path=project.base_model
    ).first()
    if base is None:
        base = ModelVersion.objects.create(
            project=project,
            name=f"{project.slug}-base",
            kind=ModelKind.POLICY,
            trainer="base",
            artifact_path=project.base_model,
            status=VersionStatus.READY,
            config={"base_model": project.base_model},
        )
    return base


def version_policy_parent(*, project: Project) -> ModelVersion:
    """What a new policy starts from: the active policy, else the base model."""
    return version_active(project=project, kind=ModelKind.POLICY) or version_base(project=project)


def version_for_run(
    *, run: TrainingRun, trainer: str, kind: str, parent: ModelVersion | None
) -> ModelVersion:
    """This run's version for ``trainer``, status ``training`` until marked ready. Unique per
    (run, trainer) in the database, so a re-run after a crash finds the same row."""
    version, _ = ModelVersion.objects.get_or_create(
        training_run=run,
        trainer=trainer,
        defaults={
            "project_id": run.project_id,
            "name": f"{run.project.slug}-r{run.id}-{trainer}",
            "kind": kind,
            "parent": parent,
            "status": VersionStatus.TRAINING,
        },
    )
    return version


def run_versions_ready(*, run: TrainingRun, kind: str) -> list[ModelVersion]:
    """The run's ready versions of ``kind``, oldest first."""
    return list(
        ModelVersion.objects.filter(
            training_run=run, kind=kind, status=VersionStatus.READY
        ).order_by("id")
    )


def run_own_reward(*, run: TrainingRun) -> ModelVersion | None:
    """The reward model this run trained, once ready (one per run: one version per trainer)."""
    return next(iter(run_versions_ready(run=run, kind=ModelKind.REWARD)), None)


def run_judge(*, run: TrainingRun) -> ModelVersion | None:
    """The reward model that judges this run's policies: its own, else the project's active one."""
    return run_own_reward(run=run) or version_active(project=run.project, kind=ModelKind.REWARD)


def version_mark_ready(
    *, version_id: int, artifact_path: Path, metrics: dict[str, Any], config: dict[str, Any]
) -> None:
    """training -> ready with its artifact, metrics and lineage, but only once the artifact dir is
    complete (a crashed save leaves no version marked ready). Raises Conflict otherwise, and the
    version stays as it was. Locks: none beyond the row written."""
    if not artifact_complete(artifact_path):
        name = ModelVersion.objects.filter(id=version_id).values_list("name", flat=True).first()
        raise Conflict(f"artifact {artifact_path} is incomplete; {name} stays not ready")
    ModelVersion.objects.filter(id=version_id).update(
        status=VersionStatus.READY, artifact_path=str(artifact_path), metrics=metrics, config=config
    )


def version_metrics_merge(*, version_id: int, metrics: dict[str, Any]) -> None:
    """Add ``metrics`` (e.g. the evaluation's ``eval/…``) to the version's own. Locks: the version
    row, so two merges never lose each other's keys."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(id=version_id)
        version.metrics = {**version.metrics, **metrics}
        version.save(update_fields=["metrics"])


def version_activate(*, version_id: int) -> ModelVersion:
    """Make a ready version the active one of its kind in its project; the one active before is
    superseded (no longer active) in the same transaction. Raises Conflict for a version that is
    not ready.

    Locks: the project row (``SELECT … FOR UPDATE``), so two promotions in one project take turns;
    the partial unique index ``one_active_model_per_kind`` is what makes "exactly one active per
    kind" hold even if a caller skipped this function.
    """
    with transaction.atomic():
        version = ModelVersion.objects.get(id=version_id)
        Project.objects.select_for_update().filter(id=version.project_id).first()
        version.refresh_from_db()
        if version.status != VersionStatus.READY:
            raise Conflict(f"{version.name} is {version.status}, not ready: it cannot be active.")
        ModelVersion.objects.filter(
            project_id=version.project_id, kind=version.kind, is_active=True
        ).exclude(id=version.id).update(is_active=False)
        ModelVersion.objects.filter(id=version.id).update(is_active=True)
        version.is_active = True
    return version


def version_ensure_active_policy(*, project: Project) -> ModelVersion:
    """The project's active policy; when it has none, the base model becomes it."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project.id).first()
        active = version_active(project=project, kind=ModelKind.POLICY)
        return active or version_activate(version_id=version_base(project=project).id)
