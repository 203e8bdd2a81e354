"""Importing prompts, responses and (optionally) known preferences from JSONL.

All or nothing, in two passes over the stream so memory does not grow with the file:

1. **check**: every line is parsed and checked (``annotation/importers.py``) and thrown away;
   one bad line fails the import with every bad line's number and reason (the first
   ``MAX_LINE_ERRORS`` are listed, the rest counted), and nothing is written;
2. **write**: the stream is read again and written in batches of ``BATCH_LINES`` records, all in
   one transaction, so a failure half-way (the database, a time limit) leaves nothing behind.

What the import holds across batches is the set of prompt ids it touched (to count created and
reused prompts): a few dozen bytes per distinct prompt, never the file. Prompts are deduplicated
by content within the project, so re-importing a file adds responses, not duplicate prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO

from django.conf import settings
from django.db import transaction

from annotation.errors import ValidationFailed
from annotation.importers import MAX_LINE_ERRORS, ImportRecord, Limits, iter_parsed
from annotation.models import (
    Judgment,
    JudgmentSource,
    Origin,
    PairwiseChoice,
    Project,
    Prompt,
    Response,
    Task,
    TaskKind,
)
from annotation.services.prompts import messages_hash, split_for
from annotation.services.tasks import TaskSpec, task_specs_for_prompt, tasks_create

BATCH_LINES = 1000
# progress(phase, lines done, bytes done); phase is "checking" or "writing"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImportSummary:
    lines: int
    prompts_created: int
    prompts_reused: int
    responses_created: int
    tasks_created: int
    labels_imported: int


@dataclass
class CheckResult:
    records: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # the first MAX_LINE_ERRORS
    error_count: int = 0


class ImportRejected(ValidationFailed):
    """Bad lines: nothing was written. ``errors`` holds (line, reason) for the first ones."""

    def __init__(self, check: CheckResult) -> None:
        shown = "; ".join(f"line {n}: {why}" for n, why in check.errors)
        more = check.error_count - len(check.errors)
        suffix = f"; and {more} more bad lines" if more > 0 else ""
        super().__init__(
            f"Import rejected, nothing was changed. {check.error_count} bad line(s): "
            f"{shown}{suffix}",
            field="file",
        )
        self.errors = check.errors
        self.error_count = check.error_count


def import_limits() -> Limits:
    """The caps from settings (README "Working with data")."""
    return Limits(
        prompt_chars=settings.PROMPT_MAX_CHARS,
        response_chars=settings.RESPONSE_MAX_CHARS,
        line_bytes=settings.IMPORT_MAX_LINE_BYTES,
    )


def _quiet(phase: str, lines: int, offset: int) -> None:
    return None


def import_check(*, stream: IO[bytes], limits: Limits, progress: Progress = _quiet) -> CheckResult:
    """Pass 1: parse every line and keep only the counts and the first errors. No database."""
    result = CheckResult()
    for parsed in iter_parsed(stream, limits):
        if parsed.error is not None:
            result.error_count += 1
            if len(result.errors) < MAX_LINE_ERRORS:
                result.errors.append((parsed.number, parsed.error))
        else:
            result.records += 1
        progress("checking", parsed.number, parsed.offset)
    return result


@dataclass
class _Totals:
    created: set[int] = field(default_factory=set)  # prompt ids this import created
    reused: set[int] = field(default_factory=set)  # prompt ids that existed before
    lines: int = 0
    responses: int = 0
    tasks: int = 0
    labels: int = 0

    def summary(self) -> ImportSummary:
        return ImportSummary(
            lines=self.lines,
            prompts_created=len(self.created),
            prompts_reused=len(self.reused),
            responses_created=self.responses,
            tasks_created=self.tasks,
            labels_imported=self.labels,
        )


def _prompts_for(project: Project, records: list[ImportRecord], totals: _Totals) -> dict[str, int]:
    """Prompt id per messages hash for a batch, creating the missing prompts."""
    hashes = {messages_hash(r.messages): r for r in records}
    existing = dict(
        Prompt.objects.filter(project=project, content_hash__in=list(hashes)).values_list(
            "content_hash", "id"
        )
    )
    totals.reused.update(i for i in existing.values() if i not in totals.created)
    new = [
        Prompt(
            project=project,
            messages=record.messages,
            content_hash=digest,
            source=record.source,
            metadata=record.metadata,
            split=split_for(digest, project.eval_share),
        )
        for digest, record in hashes.items()
        if digest not in existing
    ]
    Prompt.objects.bulk_create(new, batch_size=2000)
    totals.created.update(p.id for p in new)
    existing.update({p.content_hash: p.id for p in new})
    return existing


def _write_batch(
    *,
    project: Project,
    records: list[ImportRecord],
    create_tasks: bool,
    store_labels: bool,
    rng: random.Random,
    totals: _Totals,
) -> None:
    """Write one batch. Caller holds the transaction."""
    prompts = _prompts_for(project, records, totals)
    written: list[tuple[ImportRecord, int, list[Response]]] = []
    for record in records:
        prompt_id = prompts[messages_hash(record.messages)]
        rows = [
            Response(
                prompt_id=prompt_id,
                text=text,
                origin=Origin.IMPORTED,
                source=record.source or "import",
            )
            for text in record.responses
        ]
        written.append((record, prompt_id, rows))
    Response.objects.bulk_create([r for _, _, rs in written for r in rs], batch_size=2000)
    specs: list[TaskSpec] = []
    if create_tasks:
        for _record, prompt_id, rs in written:
            specs += task_specs_for_prompt(
                project=project, prompt_id=prompt_id, response_ids=[r.id for r in rs], rng=rng
            )
    tasks = tasks_create(project=project, specs=specs) if specs else []
    labels = _imported_labels(written, tasks, specs) if store_labels else []
    Judgment.objects.bulk_create(labels, batch_size=2000)
    totals.lines += len(records)
    totals.responses += sum(len(rs) for _, _, rs in written)
    totals.tasks += len(tasks)
    totals.labels += len(labels)


def _batches(records: Iterable[ImportRecord]) -> Iterator[list[ImportRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, BATCH_LINES)):
        yield batch


def import_records(
    *,
    project: Project,
    records: Iterable[ImportRecord],
    create_tasks: bool = True,
    store_labels: bool = True,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Write checked records in one transaction, in batches; ``progress(lines written)`` after
    each batch. The caller validated the records (``import_check`` or its own code)."""
    rng = random.Random(seed)
    totals = _Totals()
    with transaction.atomic():
        for batch in _batches(records):
            _write_batch(
                project=project,
                records=batch,
                create_tasks=create_tasks,
                store_labels=store_labels,
                rng=rng,
                totals=totals,
            )
            if progress is not None:
                progress(totals.lines)
    return totals.summary()


def _imported_labels(
    written: list[tuple[ImportRecord, int, list[Response]]],
    tasks: list[Task],
    specs: list[TaskSpec],
) -> list[Judgment]:
    """A known preference becomes an 'imported' judgment on the pairwise task of that pair."""
    preferred = {}
    for record, _prompt_id, rs in written:
        if record.preferred is not None:
            chosen, rejected = (rs[i].id for i in record.preferred)
            preferred[frozenset((chosen, rejected))] = chosen
    labels = []
    for task, spec in zip(tasks, specs, strict=True):
        winner = preferred.get(frozenset(spec.response_ids))
        if spec.kind != TaskKind.PAIRWISE or winner is None:
            continue
        order = list(spec.response_ids)
        labels.append(
            Judgment(
                task=task,
                project_id=task.project_id,
                rater=None,
                source=JudgmentSource.IMPORTED,
                kind=TaskKind.PAIRWISE,
                choice=PairwiseChoice.A if order[0] == winner else PairwiseChoice.B,
                preferred_response_id=winner,
                display_order=order,
            )
        )
    return labels


def import_jsonl(
    *,
    project: Project,
    stream: IO[bytes],
    create_tasks: bool = True,
    store_labels: bool = True,
    progress: Progress = _quiet,
) -> ImportSummary:
    """Check, then import, a seekable binary JSONL stream (a file, an upload, ``BytesIO``).

    Raises :class:`ImportRejected` listing bad lines, or ``ValidationFailed`` for a file with no
    records; nothing is written then. Locks: none beyond the rows it inserts (one transaction).
    """
    limits = import_limits()
    check = import_check(stream=stream, limits=limits, progress=progress)
    if check.error_count:
        raise ImportRejected(check)
    if not check.records:
        raise ValidationFailed("The file has no records.", field="file")
    stream.seek(0)
    position = {"offset": 0}

    def records() -> Iterator[ImportRecord]:
        for parsed in iter_parsed(stream, limits):
            position["offset"] = parsed.offset
            if parsed.record is None:  # the file changed between the passes
                raise ValidationFailed(
                    f"line {parsed.number} changed while it was imported: {parsed.error}",
                    field="file",
                )
            yield parsed.record

    return import_records(
        project=project,
        records=records(),
        create_tasks=create_tasks,
        store_labels=store_labels,
        progress=lambda lines: progress("writing", lines, position["offset"]),
    )
