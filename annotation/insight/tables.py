"""Helpers shared by the dashboard's sections: the table shape, number rounding, usernames.

A table is ``{"title", "columns", "rows"}`` (rows are lists of plain JSON values) so that one
code path renders it as HTML, serves it as JSON and downloads it as CSV.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.contrib.auth import get_user_model


def table(title: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows}


def num(x: Any, digits: int = 4) -> Any:
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else round(x, digits)


def n_boot_for(n_items: int) -> int:
    """Fewer resamples on big projects: the interval is already narrow and stable there."""
    return 1000 if n_items <= 20_000 else 200


def usernames(ids: list[int]) -> dict[int, str]:
    users = get_user_model().objects.filter(id__in=ids).values_list("id", "username")
    return dict(users)


def iso(dt: Any) -> str:
    return dt.isoformat() if hasattr(dt, "isoformat") else str(dt)
