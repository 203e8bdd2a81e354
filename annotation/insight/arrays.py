"""Judgments and tasks as numpy arrays, fetched by SQL (one round trip per array set).

Pairwise codes used throughout:

- ``shown``: the choice as displayed: 0 = A (first/left), 1 = B, 2 = tie, 3 = both bad;
- ``canon``: the choice in the task's own response order (position 0 / 1), which is what raters
  agree or disagree on (each rater may have seen a different display order): 0 = the task's first
  response won, 1 = the second won, 2 = tie, 3 = both bad;
- ``scale``: the signed strength on one ordinal scale of 9 points: 0..3 = second response much ..
  negligibly better, 4 = tie, 5..8 = first response negligibly .. much better; both-bad is not on
  the scale (missing, -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Case, Func, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from annotation.models import (
    Judgment,
    JudgmentSource,
    ModelVersion,
    Response,
    Task,
    TaskKind,
    TaskResponse,
)

SHOWN_CODES = {"A": 0, "B": 1, "tie": 2, "both_bad": 3}
CANON_LABELS = ["first", "second", "tie", "both_bad"]
N_SCALE = 9
MISSING = -1


def fetch_int_matrix(queryset: QuerySet, n_cols: int) -> np.ndarray:
    """Run a ``values_list`` queryset of non-null integer columns: an int64 array (rows, n_cols).

    On PostgreSQL the rows come as one binary ``COPY``: with every column cast to ``bigint`` each
    row has the same size, so numpy reads the buffer directly (no Python object per value).
    Elsewhere the cursor's tuples are converted in blocks."""
    sql, params = queryset.query.sql_with_params()
    return fetch_int_matrix_sql(sql, params, n_cols)


def fetch_int_matrix_sql(sql: str, params: tuple | list, n_cols: int) -> np.ndarray:
    """``fetch_int_matrix`` for a SQL string whose columns are all non-null integers."""
    if connection.vendor == "postgresql":
        return _copy_int_matrix(sql, params, n_cols)
    blocks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(100_000):
            blocks.append(np.array(rows, dtype=np.int64))
    if not blocks:
        return np.zeros((0, n_cols), dtype=np.int64)
    return np.concatenate(blocks)


PGCOPY_HEADER = 19  # signature (11), flags (4), header extension length (4)


def _copy_int_matrix(sql: str, params: tuple | list, n_cols: int) -> np.ndarray:
    names = ", ".join(f"c{i}" for i in range(n_cols))
    casts = ", ".join(f"c{i}::bigint" for i in range(n_cols))
    statement = f"COPY (SELECT {casts} FROM ({sql}) AS q({names})) TO STDOUT (FORMAT BINARY)"
    connection.ensure_connection()
    buffer = bytearray()
    with connection.connection.cursor() as cursor, cursor.copy(statement, params) as copy:
        for block in copy:
            buffer += block
    row = np.dtype(
        [("n", ">i2"), *[(f"x{i}", [("len", ">i4"), ("v", ">i8")]) for i in range(n_cols)]]
    )
    body = memoryview(buffer)[PGCOPY_HEADER : len(buffer) - 2]  # trailer: int16 -1
    records = np.frombuffer(body, dtype=row)
    if len(records) and not (records["n"] == n_cols).all():
        raise ValueError("unexpected COPY layout (a NULL column?)")
    out = np.empty((len(records), n_cols), dtype=np.int64)
    for i in range(n_cols):
        out[:, i] = records[f"x{i}"]["v"]
    return out


def _int(expr, default: int = MISSING):
    return Coalesce(expr, Value(default), output_field=IntegerField())


@dataclass
class PairwiseTasks:
    """The project's two-response tasks, sorted by id."""

    task_ids: np.ndarray
    first: np.ndarray  # response id at position 0
    second: np.ndarray
    first_len: np.ndarray  # characters
    second_len: np.ndarray
    is_gold: np.ndarray  # bool
    first_sys: np.ndarray  # system code of the first response (see ``system_names``)
    second_sys: np.ndarray
    system_names: dict[int, str]  # code -> name: model version name, else the response's source

    def index_of(self, task_ids: np.ndarray) -> np.ndarray:
        """Row of each task id (-1 when the task is not a two-response pairwise task).

        A project's task ids are mostly a dense range: then a lookup table over that range (a few
        bytes per id) answers in one gather, several times faster than a binary search."""
        n = len(self.task_ids)
        if n and self.task_ids[-1] - self.task_ids[0] < 4 * n + DENSE_LOOKUP_SLACK:
            lo, hi = int(self.task_ids[0]), int(self.task_ids[-1])
            table = np.full(hi - lo + 2, -1, dtype=np.int64)  # last slot: ids outside the range
            table[self.task_ids - lo] = np.arange(n)
            offset = task_ids - lo
            return table[np.where((offset >= 0) & (offset <= hi - lo), offset, hi - lo + 1)]
        pos = np.searchsorted(self.task_ids, task_ids)
        pos = np.minimum(pos, max(len(self.task_ids) - 1, 0))
        found = len(self.task_ids) > 0
        ok = (self.task_ids[pos] == task_ids) if found else np.zeros(len(task_ids), bool)
        return np.where(ok, pos, -1)


DENSE_LOOKUP_SLACK = 1_000_000  # index_of's table may span this many ids beyond 4 per task
MAX_SOURCES = 500  # distinct import sources named on the leaderboard (others: "other")


def pairwise_tasks(project_id: int) -> PairwiseTasks:
    """One integer row per two-response task. A response's system code is its model version id
    (> 0), or minus the position of its source among the project's import sources (< 0)."""
    responses = Response.objects.filter(prompt__project_id=project_id).order_by()
    sources = sorted(
        responses.filter(model_version__isnull=True)
        .values_list("source", flat=True)
        .distinct()[:MAX_SOURCES]
    )
    names = {-(i + 1): (src or "imported") for i, src in enumerate(sources)}
    names[-(len(sources) + 1)] = "other"
    names.update(ModelVersion.objects.filter(project_id=project_id).values_list("id", "name"))

    # One row per (task, response), paired up in numpy: the database only joins each task
    # response to its task and response (grouping or self-joining the positions there costs it
    # twice as much). Lengths come from the stored ``text_chars``, so no text is read.
    whens = " ".join(f"WHEN %s THEN {-(i + 1)}" for i in range(len(sources)))
    other = -(len(sources) + 1)
    by_source = f"CASE r.source {whens} ELSE {other} END" if sources else str(other)
    sql = f"""
        SELECT tr.task_id, tr.position, tr.response_id, r.text_chars,
            COALESCE(r.model_version_id, {by_source}), CASE WHEN t.is_gold THEN 1 ELSE 0 END
        FROM {TaskResponse._meta.db_table} tr
        JOIN {Task._meta.db_table} t ON t.id = tr.task_id
        JOIN {Response._meta.db_table} r ON r.id = tr.response_id
        WHERE t.project_id = %s AND t.kind = %s
    """
    m = fetch_int_matrix_sql(sql, [*sources, project_id, TaskKind.PAIRWISE.value], 6)
    m = m[np.lexsort((m[:, 1], m[:, 0]))]  # by task, then position
    task = m[:, 0]
    starts = np.flatnonzero(np.r_[True, task[1:] != task[:-1]]) if len(m) else task
    sizes = np.diff(np.r_[starts, len(m)])
    a = starts[sizes == 2]  # tasks with exactly two responses, at positions 0 and 1
    a = a[(m[a, 1] == 0) & (m[a + 1, 1] == 1)]
    b = a + 1
    return PairwiseTasks(
        task_ids=task[a],
        first=m[a, 2],
        second=m[b, 2],
        first_len=m[a, 3],
        second_len=m[b, 3],
        is_gold=m[a, 5].astype(bool),
        first_sys=m[a, 4],
        second_sys=m[b, 4],
        system_names=names,
    )


@dataclass
class PairwiseJudgments:
    """Current pairwise judgments joined to their task (one entry per judgment)."""

    ids: np.ndarray
    task_row: np.ndarray  # index into PairwiseTasks
    rater: np.ndarray  # -1 for imported labels without a rater
    shown: np.ndarray
    canon: np.ndarray
    scale: np.ndarray
    strength: np.ndarray  # 0 when none
    preferred: np.ndarray  # response id, -1 when none
    time_ms: np.ndarray  # -1 when unknown
    human: np.ndarray  # bool: submitted by a rater here (imported labels have no display order)
    gold: np.ndarray  # bool
    chose_longer: np.ndarray  # 1 / 0; -1 when no winner or equal lengths


def pairwise_judgments(project_id: int, tasks: PairwiseTasks) -> PairwiseJudgments:
    return pairwise_join(judgment_matrix(project_id), tasks)


class EpochSeconds(Func):
    """A timestamp as whole seconds since 1970 (UTC)."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return self.as_sql(
            compiler, connection, template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS bigint)"
        )

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        # '%%%%s' -> '%%s' (template) -> '%s' (the backend's placeholder rewrite).
        return self.as_sql(
            compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)"
        )


# Bits of the ``flags`` column of :func:`judgment_matrix`.
HUMAN, PAIRWISE, FIRST_REVISION, CURRENT, RANKING, RATING = 1, 2, 4, 8, 16, 32
(
    COL_ID,
    COL_TASK,
    COL_RATER,
    COL_CHOICE,
    COL_STRENGTH,
    COL_PREFERRED,
    COL_TIME,
    COL_FLAGS,
    COL_EPOCH,
) = range(9)


def _flag(condition: Q, bit: int) -> Case:
    return Case(When(condition, then=Value(bit)), default=Value(0), output_field=IntegerField())


def judgment_matrix(project_id: int) -> np.ndarray:
    """Every judgment row the dashboard reads, in one query (one scan of the project's
    judgments): current ones (statistics) and first revisions (throughput). Columns: ``COL_*``;
    ``flags`` holds the ``HUMAN | PAIRWISE | FIRST_REVISION | CURRENT | RANKING | RATING`` bits."""
    choice_code = Case(
        *[When(choice=label, then=Value(code)) for label, code in SHOWN_CODES.items()],
        default=Value(MISSING),
        output_field=IntegerField(),
    )
    flags = (
        _flag(Q(source=JudgmentSource.HUMAN), HUMAN)
        + _flag(Q(kind=TaskKind.PAIRWISE), PAIRWISE)
        + _flag(Q(revision=1), FIRST_REVISION)
        + _flag(Q(is_current=True), CURRENT)
        + _flag(Q(kind=TaskKind.RANKING), RANKING)
        + _flag(Q(kind=TaskKind.RATING), RATING)
    )
    qs = (
        Judgment.objects.filter(Q(is_current=True) | Q(revision=1), project_id=project_id)
        .order_by()
        .values_list(
            "id",
            "task_id",
            _int("rater_id"),
            choice_code,
            _int("strength", 0),
            _int("preferred_response_id"),
            _int("time_spent_ms"),
            flags,
            EpochSeconds("created_at"),
        )
    )
    return fetch_int_matrix(qs, 9)


def pairwise_join(m: np.ndarray, tasks: PairwiseTasks) -> PairwiseJudgments:
    """Judgment columns joined to their tasks, with the derived codes (see module docstring)."""
    wanted = PAIRWISE | CURRENT
    row = tasks.index_of(m[:, COL_TASK])
    keep = ((m[:, COL_FLAGS] & wanted) == wanted) & (row >= 0) & (m[:, COL_CHOICE] >= 0)
    m, row = m[keep], row[keep]
    shown, strength, preferred = m[:, 3], m[:, 4], m[:, 5]
    first, second = tasks.first[row], tasks.second[row]
    canon = np.where(preferred == first, 0, np.where(preferred == second, 1, shown))
    canon = np.where((canon < 2) & (preferred < 0), MISSING, canon)
    s = np.clip(strength, 1, 4)
    scale = np.select([canon == 0, canon == 1, canon == 2], [4 + s, 4 - s, 4], default=MISSING)
    len_pref = np.where(canon == 0, tasks.first_len[row], tasks.second_len[row])
    len_other = np.where(canon == 0, tasks.second_len[row], tasks.first_len[row])
    decided = (canon < 2) & (canon >= 0) & (len_pref != len_other)
    chose_longer = np.where(decided, (len_pref > len_other).astype(int), MISSING)
    return PairwiseJudgments(
        ids=m[:, 0],
        task_row=row,
        rater=m[:, 2],
        shown=shown,
        canon=canon,
        scale=scale,
        strength=strength,
        preferred=preferred,
        time_ms=m[:, 6],
        human=(m[:, COL_FLAGS] & HUMAN).astype(bool),
        gold=tasks.is_gold[row],
        chose_longer=chose_longer,
    )


def current_kinds(m: np.ndarray) -> set[str]:
    """The task kinds with current judgments, from :func:`judgment_matrix`'s flags."""
    flags = np.bitwise_or.reduce(m[(m[:, COL_FLAGS] & CURRENT) > 0, COL_FLAGS]) if len(m) else 0
    bits = {TaskKind.PAIRWISE: PAIRWISE, TaskKind.RANKING: RANKING, TaskKind.RATING: RATING}
    return {str(kind) for kind, bit in bits.items() if flags & bit}


def payload_rows(project_id: int, kind: str, *, gold: bool | None = False) -> list[tuple]:
    """(task_id, rater_id, payload) of current judgments of ``kind`` (rankings, ratings).

    These kinds keep their answer in JSON, so they are parsed in Python; they are a small share
    of a project's judgments (each one already covers k responses)."""
    qs = Judgment.objects.filter(project_id=project_id, kind=kind, is_current=True)
    if gold is not None:
        qs = qs.filter(task__is_gold=gold)
    return list(qs.order_by("task_id", "rater_id").values_list("task_id", "rater_id", "payload"))
