"""Importing prompts, responses and (optionally) known preferences from JSONL.

All or nothing: the whole file is parsed first; one bad line fails the import with every bad
line's number and reason, and nothing is written. Prompts are deduplicated by content within the
project, so re-importing a file adds responses, not duplicate prompts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from annotation.errors import ValidationFailed
from annotation.importers import MAX_LINE_ERRORS, ImportRecord, parse_jsonl
from annotation.models import (
    Judgment,
    JudgmentSource,
    Origin,
    PairwiseChoice,
    Project,
    Prompt,
    Response,
    TaskKind,
)
from annotation.services.prompts import messages_hash, split_for
from annotation.services.tasks import TaskSpec, task_specs_for_prompt, tasks_create


@dataclass(frozen=True)
class ImportSummary:
    lines: int
    prompts_created: int
    prompts_reused: int
    responses_created: int
    tasks_created: int
    labels_imported: int


def _prompts_for(project: Project, records: list[ImportRecord]) -> tuple[dict[str, Prompt], int]:
    hashes = {messages_hash(r.messages): r for r in records}
    existing = {
        p.content_hash: p
        for p in Prompt.objects.filter(project=project, content_hash__in=list(hashes))
    }
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
    existing.update({p.content_hash: p for p in new})
    return existing, len(new)


def import_records(
    *,
    project: Project,
    records: list[ImportRecord],
    create_tasks: bool = True,
    store_labels: bool = True,
    seed: int = 0,
) -> ImportSummary:
    """Write parsed records. Runs in one transaction; the caller validated the records."""
    rng = random.Random(seed)
    with transaction.atomic():
        prompts, prompts_created = _prompts_for(project, records)
        responses: list[tuple[ImportRecord, list[Response]]] = []
        for record in records:
            prompt = prompts[messages_hash(record.messages)]
            responses.append(
                (
                    record,
                    [
                        Response(
                            prompt=prompt,
                            text=text,
                            origin=Origin.IMPORTED,
                            source=record.source or "import",
                        )
                        for text in record.responses
                    ],
                )
            )
        Response.objects.bulk_create([r for _, rs in responses for r in rs], batch_size=2000)
        specs: list[TaskSpec] = []
        for _record, rs in responses:
            if create_tasks:
                specs += task_specs_for_prompt(
                    project=project,
                    prompt_id=rs[0].prompt_id,
                    response_ids=[r.id for r in rs],
                    rng=rng,
                )
        tasks = tasks_create(project=project, specs=specs) if specs else []
        labels = _imported_labels(responses, tasks, specs) if store_labels else []
        Judgment.objects.bulk_create(labels, batch_size=2000)
    return ImportSummary(
        lines=len(records),
        prompts_created=prompts_created,
        prompts_reused=len(prompts) - prompts_created,
        responses_created=sum(len(rs) for _, rs in responses),
        tasks_created=len(tasks),
        labels_imported=len(labels),
    )


def _imported_labels(responses, tasks, specs) -> list[Judgment]:  # type: ignore[no-untyped-def]
    """A known preference becomes an 'imported' judgment on the pairwise task of that pair."""
    preferred = {}
    for record, rs in responses:
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
    lines: Iterable[bytes | str],
    create_tasks: bool = True,
    store_labels: bool = True,
) -> ImportSummary:
    """Parse and import; raises ValidationFailed listing bad lines (nothing is written then)."""
    parsed = parse_jsonl(lines)
    if parsed.errors:
        shown = "; ".join(f"line {n}: {why}" for n, why in parsed.errors[:MAX_LINE_ERRORS])
        more = len(parsed.errors) - MAX_LINE_ERRORS
        suffix = f"; and {more} more bad lines" if more > 0 else ""
        raise ValidationFailed(
            f"Import rejected, nothing was changed. {len(parsed.errors)} bad line(s): "
            f"{shown}{suffix}",
            field="file",
        )
    if not parsed.records:
        raise ValidationFailed("The file has no records.", field="file")
    return import_records(
        project=project,
        records=parsed.records,
        create_tasks=create_tasks,
        store_labels=store_labels,
    )
