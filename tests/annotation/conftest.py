from __future__ import annotations

import pytest
from django.db import connection

from annotation.services import pg_statements


@pytest.fixture(params=["statement", "orm"])
def write_path(request, monkeypatch):
    """Run a test through both implementations of claim and submit: the single PostgreSQL
    statements and the ORM path (the one SQLite uses, and PostgreSQL's fallback)."""
    if request.param == "statement":
        if connection.vendor != "postgresql":
            pytest.skip("the single-statement path is PostgreSQL only")
    else:
        monkeypatch.setattr(pg_statements, "enabled", lambda: False)
    return request.param
