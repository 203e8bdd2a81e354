"""Statements made on every labeling request, as SQL written once instead of compiled per request.

Why: the token check and the project membership lookup run on every API request; built by the
ORM they cost more Python time than the claim itself (query compilation). These are plain
SELECTs with joins, valid on PostgreSQL and SQLite alike, and they return ordinary model
instances (``Model.from_db`` after the same value converters the ORM applies: JSON, SQLite
datetimes), so callers cannot tell the difference.

``fetch_one`` runs such a statement. On PostgreSQL it binds the parameters on the server and
prepares the statement once per connection (psycopg's ``prepare=True``), so PostgreSQL parses and
plans it once instead of on every request (planning the claim cost more than running it).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model

from annotation.models import Membership, Project


class _ModelReader:
    """Selects a model's concrete columns and builds instances from the rows."""

    def __init__(self, model: type[Model], alias: str) -> None:
        self.model = model
        fields = model._meta.concrete_fields
        qn = connection.ops.quote_name
        self.names = [f.attname for f in fields]
        self.select = ", ".join(f"{alias}.{qn(f.column or f.attname)}" for f in fields)
        self.converters = []
        for field in fields:
            col = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            self.converters.append((col, found))

    def build(self, values: tuple[Any, ...]) -> Any:
        converted = []
        for value, (col, converters) in zip(values, self.converters, strict=True):
            for convert in converters:
                value = convert(value, col, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.names, converted)


@cache
def _user_by_token() -> tuple[_ModelReader, str]:
    user_model = get_user_model()
    reader = _ModelReader(user_model, "u")
    return reader, (
        f"SELECT {reader.select} FROM authtoken_token t "
        f"JOIN {user_model._meta.db_table} u ON u.id = t.user_id WHERE t.key = %s"
    )


@cache
def _membership() -> tuple[_ModelReader, str]:
    reader = _ModelReader(Project, "p")
    return reader, (
        f"SELECT m.role, {reader.select} FROM {Membership._meta.db_table} m "
        f"JOIN {Project._meta.db_table} p ON p.id = m.project_id "
        "WHERE m.project_id = %s AND m.user_id = %s"
    )


def fetch_one(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Run one statement written once (a constant: never built from input) and return its first
    row. Errors are Django's (IntegrityError…); the statement is logged like any other query
    when queries are logged (tests, DEBUG)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- params {params!r}", "time": f"{time.monotonic() - started:.3f}"}
        )
    return row


def user_for_token(key: str) -> Any | None:
    """The user who owns this API token, or None."""
    reader, sql = _user_by_token()
    row = fetch_one(sql, [key])
    return None if row is None else reader.build(row)


def has_expired_leases(*, project_id: int | None, now: datetime) -> bool:
    """Whether any lease (of this project, or any) has run out: one probe of the expiry index."""
    sql = "SELECT 1 FROM annotation_assignment WHERE status = 'active' AND expires_at < %s"
    params: list[Any] = [now]
    if project_id is not None:
        sql += " AND project_id = %s"
        params.append(project_id)
    return fetch_one(sql + " LIMIT 1", params) is not None


def membership_project(*, project_id: int, user_id: int) -> tuple[Project, str] | None:
    """(project, role) when the user is a member of the project, else None."""
    reader, sql = _membership()
    row = fetch_one(sql, [project_id, user_id])
    if row is None:
        return None
    return reader.build(row[1:]), row[0]
