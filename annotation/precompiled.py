"""Reads made on every API request, as SQL written once instead of compiled per request.

Why: the token check and the project membership lookup run on every labeling request; built by
the ORM they cost more Python time than the claim itself (query compilation). These are plain
SELECTs with joins, valid on PostgreSQL and SQLite alike, and they return ordinary model
instances (``Model.from_db`` after the same value converters the ORM applies: JSON, SQLite
datetimes), so callers cannot tell the difference.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

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


def _one_row(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def user_for_token(key: str) -> Any | None:
    """The user who owns this API token, or None."""
    reader, sql = _user_by_token()
    row = _one_row(sql, [key])
    return None if row is None else reader.build(row)


def has_expired_leases(*, project_id: int | None, now: datetime) -> bool:
    """Whether any lease (of this project, or any) has run out: one probe of the expiry index."""
    sql = "SELECT 1 FROM annotation_assignment WHERE status = 'active' AND expires_at < %s"
    params: list[Any] = [now]
    if project_id is not None:
        sql += " AND project_id = %s"
        params.append(project_id)
    return _one_row(sql + " LIMIT 1", params) is not None


def membership_project(*, project_id: int, user_id: int) -> tuple[Project, str] | None:
    """(project, role) when the user is a member of the project, else None."""
    reader, sql = _membership()
    row = _one_row(sql, [project_id, user_id])
    if row is None:
        return None
    return reader.build(row[1:]), row[0]
