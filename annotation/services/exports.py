"""Training-data exports: JSONL or Parquet, streamed in constant memory, with a manifest.

The rows come from :mod:`annotation.insight.training_rows` (formats, aggregation and filters are
documented there and in docs/insight.md; the rules are the data contract's,
:mod:`training.contract`). This module only encodes them:

- JSONL: one ``json.dumps`` line per row, flushed in ~256 KB blocks;
- Parquet: ``pyarrow.parquet.ParquetWriter`` writing one row group per ``PARQUET_BATCH`` rows into
  a buffer that is drained after every row group, so neither format ever holds the whole file.

The manifest (``export_manifest``) counts tasks, judgments and rows, records the filters and the
sha256 of the exact bytes of the file. Rows come out in task-id order, so the same data and the
same filters always give the same bytes and the same hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from annotation.errors import ValidationFailed
from annotation.insight.training_rows import (
    AGGREGATIONS,
    DATASETS,
    GOLD_MODES,
    STYLES,
    ExportFilters,
    RowCounts,
    training_rows,
)
from annotation.models import Project, TaskKind
from training.contract.mixing import SOURCES

FILE_FORMATS = ("jsonl", "parquet")
PARQUET_BATCH = 5000
JSONL_BLOCK = 256 * 1024


def _parse_when(value: str, name: str, *, end: bool) -> datetime:
    try:
        day = parse_date(value)
        dt = None if day else parse_datetime(value)
    except ValueError:
        day = dt = None
    if day is None and dt is None:
        raise ValidationFailed(
            f"{name} must be a date (YYYY-MM-DD) or an ISO date-time, got {value!r}.",
            field=name,
        )
    if day is not None:
        dt = datetime.combine(day, time.min)
        if end:  # a date as the end of the range includes that whole day
            dt = dt + timedelta(days=1)
    assert dt is not None
    if timezone.is_naive(dt):
        dt = timezone.make_aware(dt, UTC)
    return dt


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {list(allowed)}, got {value!r}.", field=name)
    return value


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = str(params.get(name, "")).strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValidationFailed(f"{name} must be true or false, got {value!r}.", field=name)


def export_options(params: Mapping[str, Any]) -> tuple[ExportFilters, str]:
    """Validate query parameters (or command options) into filters and a file format."""
    dataset = _choice(params, "dataset", tuple(DATASETS), "preference")
    file_format = _choice(params, "file", FILE_FORMATS, "jsonl")
    kinds_raw = params.get("kinds") or ""
    kinds = tuple(
        k for k in (kinds_raw.split(",") if isinstance(kinds_raw, str) else kinds_raw) if k
    )
    bad = [k for k in kinds if k not in TaskKind.values]
    if bad:
        raise ValidationFailed(f"kinds must be among {TaskKind.values}, got {bad}.", field="kinds")
    if kinds and not set(kinds) & set(DATASETS[dataset]):
        raise ValidationFailed(
            f"kinds: a {dataset} export is built from "
            f"{[str(k) for k in DATASETS[dataset]]} judgments; none of {list(kinds)} can be used.",
            field="kinds",
        )
    min_agreement = params.get("min_agreement")
    if min_agreement in (None, ""):
        min_agreement = None
    else:
        try:
            min_agreement = float(min_agreement)
        except (TypeError, ValueError):
            min_agreement = -1.0
        if not 0.0 <= min_agreement <= 1.0:
            raise ValidationFailed(
                "min_agreement must be a number from 0 to 1.", field="min_agreement"
            )
    date_from = params.get("date_from") or None
    date_to = params.get("date_to") or None
    filters = ExportFilters(
        dataset=dataset,
        style=_choice(params, "style", STYLES, "standard"),
        aggregation=_choice(params, "aggregation", AGGREGATIONS, "every"),
        kinds=kinds,
        date_from=_parse_when(date_from, "date_from", end=False) if date_from else None,
        date_to=_parse_when(date_to, "date_to", end=True) if date_to else None,
        min_agreement=min_agreement,
        include_excluded=_flag(params, "include_excluded"),
        gold=_choice(params, "gold", GOLD_MODES, "exclude"),
        source=_choice(params, "source", SOURCES, "human"),
    )
    if filters.source != "human" and dataset != "preference":
        raise ValidationFailed(
            f"source={filters.source}: AI judgments give preference pairs only; export the "
            f"{dataset} dataset with source=human.",
            field="source",
        )
    if filters.date_from and filters.date_to and filters.date_from >= filters.date_to:
        raise ValidationFailed("date_from must be before date_to.", field="date_from")
    return filters, file_format


# -- encoders ---------------------------------------------------------------------------------


MEMO_LIMIT = 2_000  # rows of one task are consecutive: a small memo is enough


def _jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """``json.dumps(row, ensure_ascii=False)`` per line, byte for byte, but each prompt and
    response is encoded once: the rows of one task share those objects, so the encoder memoizes
    them by identity (holding a reference, so an id is never reused while memoized)."""
    dumps = json.dumps
    memo: dict[int, tuple[Any, str]] = {}

    def enc(value: Any) -> str:
        if isinstance(value, str | list):
            hit = memo.get(id(value))
            if hit is not None and hit[0] is value:
                return hit[1]
            text = dumps(value, ensure_ascii=False)
            memo[id(value)] = (value, text)
            return text
        if value is True or value is False:
            return "true" if value else "false"
        if type(value) is float and math.isfinite(value):
            return float.__repr__(value)
        return dumps(value)

    block: list[str] = []
    size = 0
    names: tuple[str, ...] = ()
    prefixes: list[str] = []
    for row in rows:
        if tuple(row) != names:  # every row of one export has the same keys: built once
            names = tuple(row)
            prefixes = [("{" if i == 0 else ", ") + dumps(k) + ": " for i, k in enumerate(names)]
        line = "".join([p + enc(v) for p, v in zip(prefixes, row.values(), strict=True)]) + "}"
        block.append(line)
        size += len(line)
        if size >= JSONL_BLOCK:
            yield ("\n".join(block) + "\n").encode()
            block, size = [], 0
            if len(memo) > MEMO_LIMIT:
                memo.clear()
    if block:
        yield ("\n".join(block) + "\n").encode()


def parquet_schema(f: ExportFilters) -> Any:
    """The pyarrow schema of a Parquet export (pyarrow is imported here, not at start-up)."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    text = pa.list_(message) if f.style == "conversational" else pa.string()
    prompt = pa.list_(message) if f.style == "conversational" else pa.string()
    if f.dataset == "preference":
        fields = [
            ("prompt", prompt),
            ("chosen", text),
            ("rejected", text),
            ("margin", pa.float64()),
        ]
        if f.source != "human":
            fields += [("weight", pa.float64()), ("source", pa.string())]
    elif f.dataset == "unpaired":
        fields = [("prompt", prompt), ("completion", text), ("label", pa.bool_())]
    elif f.style == "conversational":
        fields = [("messages", pa.list_(message))]
    else:
        fields = [("prompt", pa.string()), ("completion", pa.string())]
    return pa.schema(fields)


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken out by the generator after each row group."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


def _parquet(rows: Iterator[dict[str, Any]], f: ExportFilters) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(f)
    sink = _Drain()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= PARQUET_BATCH:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            batch = []
            yield sink.take()
    if batch:
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    writer.close()
    yield sink.take()


# -- the service ------------------------------------------------------------------------------


class Export:
    """One export: iterate ``chunks()`` for the bytes; ``manifest()`` afterwards."""

    def __init__(self, *, project: Project, filters: ExportFilters, file_format: str) -> None:
        self.project = project
        self.filters = filters
        self.file_format = file_format
        self.counts = RowCounts()
        self.digest = hashlib.sha256()
        self.bytes = 0
        self.finished = False

    @property
    def filename(self) -> str:
        f = self.filters
        source = "" if f.source == "human" else f"-{f.source}"
        return (
            f"{self.project.slug}-{f.dataset}-{f.style}-{f.aggregation}{source}.{self.file_format}"
        )

    def chunks(self) -> Iterator[bytes]:
        rows = training_rows(self.project.id, self.filters, self.counts)
        encoded = _jsonl(rows) if self.file_format == "jsonl" else _parquet(rows, self.filters)
        for chunk in encoded:
            if chunk:
                self.digest.update(chunk)
                self.bytes += len(chunk)
                yield chunk
        self.finished = True

    def manifest(self) -> dict[str, Any]:
        return {
            "project": self.project.slug,
            "file": self.filename,
            "file_format": self.file_format,
            "filters": self.filters.as_dict(),
            "counts": {
                "rows": self.counts.rows,
                "tasks": self.counts.tasks,
                "judgments": self.counts.judgments,
                **({"ai_rows": self.counts.ai_rows} if self.filters.source != "human" else {}),
                "skipped": dict(self.counts.skipped),
            },
            "bytes": self.bytes,
            "sha256": self.digest.hexdigest(),
            "complete": self.finished,
            "created_at": timezone.now().isoformat(),
        }


def export_start(*, project: Project, params: Mapping[str, Any]) -> Export:
    """Validate ``params`` and prepare an export (nothing is read until ``chunks()`` runs)."""
    filters, file_format = export_options(params)
    return Export(project=project, filters=filters, file_format=file_format)


def export_manifest(*, project: Project, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run the export without keeping its bytes: counts and hash of what a download returns."""
    export = export_start(project=project, params=params)
    for _ in export.chunks():
        pass
    return export.manifest()


def export_write(*, project: Project, params: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Write the export to ``path`` and its manifest to ``path`` + ``.manifest.json``."""
    export = export_start(project=project, params=params)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as fh:
        for chunk in export.chunks():
            fh.write(chunk)
    tmp.replace(path)
    manifest = export.manifest()
    manifest_path = path.with_name(path.name + ".manifest.json")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
