"""Large imports in the background: the upload is stored, the ``cpu`` worker imports it.

The web request only copies the upload to ``settings.IMPORT_DIR`` and inserts an
:class:`ImportJob` (``queued``); the job id goes to the broker when that row is committed
(``transaction.on_commit``), by task *name*, so the web process imports no worker code. The
worker (``imports.run_job``) claims the job with a conditional update (``queued`` → ``running``,
row count checked: a duplicate message does nothing), runs :func:`import_jsonl` on the file — the
same two passes, the same checks and the same all-or-nothing transaction as a small import in the
request — and records the outcome: the summary, or every bad line's number and reason.

Progress (phase, lines, bytes) is written to the job row at most twice a second while the file is
checked, which happens outside any transaction. The writing pass is one transaction, so its
progress is published through the cache (shared by web and workers) and read back by
:func:`import_job_progress`; the row gets it when the transaction has committed.

A worker that dies mid-import rolled its transaction back; the broker redelivers the message
(``acks_late``) and the job, ``running`` since longer than the task's hard time limit, is claimed
again (``attempts`` + 1, at most ``MAX_ATTEMPTS``).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.errors import DomainError, ValidationFailed
from annotation.models import ImportJob, ImportStatus, Project
from annotation.services.imports import ImportRejected, import_jsonl
from annotation.textcheck import text_problem

logger = logging.getLogger(__name__)
RUN_IMPORT_TASK = "imports.run_job"
# The task's hard time limit (workers/tasks.py IMPORT_SECONDS): a job running longer is dead.
TIME_LIMIT = timedelta(hours=2)
MAX_ATTEMPTS = 3
WRITE_EVERY = 0.5  # seconds between progress writes


class UploadTooLarge(ValidationFailed):
    status_code = 413


def import_file_path(job: ImportJob) -> Path:
    return Path(settings.IMPORT_DIR) / job.file_name


def _progress_key(job_id: int) -> str:
    return f"import-progress:{job_id}"


def enqueue_import(job_id: int) -> None:
    """Send the job to the ``cpu`` queue (by name; routing: ``config/celery.py``)."""
    from config.celery import send

    send(RUN_IMPORT_TASK, job_id)


def _enqueue_after_commit(job_id: int) -> None:
    try:
        enqueue_import(job_id)
    except Exception:  # the broker is down: the job stays queued; see import_requeue_stale
        logger.exception("could not enqueue import job %s", job_id)


def import_job_create(
    *,
    project: Project,
    user: Any,
    upload: UploadedFile,
    create_tasks: bool = True,
    store_labels: bool = True,
) -> ImportJob:
    """Store ``upload`` under ``IMPORT_DIR`` and queue its import; enqueued on commit.

    Locks: none. The file is written (under a temporary name, then renamed) before the row is
    inserted; if the insert fails the file is removed, so a file without a job never stays.
    """
    original = upload.name or ""
    reason = text_problem(original)
    if reason:
        raise ValidationFailed(f"file name {reason}", field="file")
    directory = Path(settings.IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.jsonl"
    final = directory / name
    partial = directory / f".{name}.part"
    size = 0
    try:
        with partial.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
                size += len(chunk)
        partial.replace(final)
        with transaction.atomic():
            job = ImportJob.objects.create(
                project=project,
                created_by=user if getattr(user, "pk", None) else None,
                file_name=name,
                original_name=original[-255:],
                create_tasks=create_tasks,
                store_labels=store_labels,
                total_bytes=size,
            )
            transaction.on_commit(lambda: _enqueue_after_commit(job.id))
    except BaseException:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise
    return job


def _claim(job_id: int) -> bool:
    """queued → running, or a running job whose worker died (older than the time limit)."""
    stale = timezone.now() - TIME_LIMIT
    claimed = ImportJob.objects.filter(
        Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.RUNNING, started_at__lt=stale),
        id=job_id,
        attempts__lt=MAX_ATTEMPTS,
    ).update(
        status=ImportStatus.RUNNING,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
        phase="checking",
        lines_done=0,
        bytes_done=0,
    )
    return claimed == 1


class _Reporter:
    """Throttled progress: to the row while checking, to the cache while writing."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.last = 0.0

    def __call__(self, phase: str, lines: int, offset: int) -> None:
        now = time.monotonic()
        if now - self.last < WRITE_EVERY:
            return
        self.last = now
        offset = min(offset, self.job.total_bytes)
        if phase == "writing":
            state = {"phase": phase, "lines_done": lines, "bytes_done": offset}
            cache.set(_progress_key(self.job.id), state, timeout=int(TIME_LIMIT.total_seconds()))
        else:
            ImportJob.objects.filter(id=self.job.id).update(
                phase=phase, lines_done=lines, bytes_done=offset
            )


def _give_up_if_dead(job_id: int) -> None:
    """A job whose worker died ``MAX_ATTEMPTS`` times is failed (each death rolled back)."""
    job = ImportJob.objects.filter(
        id=job_id,
        status=ImportStatus.RUNNING,
        started_at__lt=timezone.now() - TIME_LIMIT,
        attempts__gte=MAX_ATTEMPTS,
    ).first()
    if job is not None:
        message = (
            f"The worker stopped during this import {job.attempts} times; nothing was written."
        )
        _finish(job, status=ImportStatus.FAILED, error=message)


def _finish(job: ImportJob, **fields: Any) -> None:
    ImportJob.objects.filter(id=job.id).update(finished_at=timezone.now(), **fields)
    cache.delete(_progress_key(job.id))
    import_file_path(job).unlink(missing_ok=True)


def import_job_run(*, job_id: int) -> str:
    """Run a queued job to its end (the worker's task). Returns the final status, or "skipped"
    when the job was not claimable (done, or running elsewhere)."""
    if not _claim(job_id):
        _give_up_if_dead(job_id)
        return "skipped"
    job = ImportJob.objects.select_related("project").get(id=job_id)
    try:
        with import_file_path(job).open("rb") as stream:
            summary = import_jsonl(
                project=job.project,
                stream=stream,
                create_tasks=job.create_tasks,
                store_labels=job.store_labels,
                progress=_Reporter(job),
            )
    except ImportRejected as exc:
        _finish(
            job,
            status=ImportStatus.FAILED,
            errors=[{"line": n, "reason": why} for n, why in exc.errors],
            error_count=exc.error_count,
            error=exc.message,
        )
        return ImportStatus.FAILED
    except DomainError as exc:
        _finish(job, status=ImportStatus.FAILED, error=exc.message)
        return ImportStatus.FAILED
    except FileNotFoundError:
        _finish(job, status=ImportStatus.FAILED, error="The uploaded file is gone; upload again.")
        return ImportStatus.FAILED
    except Exception as exc:  # recorded on the job; nothing was written (one transaction)
        logger.exception("import job %s failed", job_id)
        message = f"The import failed, nothing was changed: {type(exc).__name__}: {exc}"
        _finish(job, status=ImportStatus.FAILED, error=message[:2000])
        return ImportStatus.FAILED
    _finish(
        job,
        status=ImportStatus.SUCCEEDED,
        phase="done",
        summary=asdict(summary),
        lines_done=summary.lines,
        bytes_done=job.total_bytes,
    )
    return ImportStatus.SUCCEEDED


def import_job_progress(job: ImportJob) -> dict[str, Any]:
    """The job's live progress: the cache's while it writes, otherwise the row's."""
    state: dict[str, Any] = {
        "phase": job.phase,
        "lines_done": job.lines_done,
        "bytes_done": job.bytes_done,
    }
    if job.status == ImportStatus.RUNNING:
        state.update(cache.get(_progress_key(job.id)) or {})
    total = job.total_bytes or 1
    # checking is the first half of the bar, writing the second
    share = state["bytes_done"] / total / 2 + (0.5 if state["phase"] == "writing" else 0.0)
    state["progress"] = 1.0 if job.status == ImportStatus.SUCCEEDED else round(min(share, 1.0), 4)
    return state


def import_requeue_stale(*, now: Any = None) -> list[int]:
    """Re-send jobs still queued after ten minutes (their message was lost: the broker was down
    when the row was committed). Claiming is conditional, so a duplicate message is harmless."""
    cutoff = (now or timezone.now()) - timedelta(minutes=10)
    stale = list(
        ImportJob.objects.filter(
            status=ImportStatus.QUEUED, attempts=0, created_at__lt=cutoff
        ).values_list("id", flat=True)
    )
    for job_id in stale:
        enqueue_import(job_id)
    return stale
