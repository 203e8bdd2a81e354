"""``GET /healthz/``: the container health check (docker-compose.yml).

Plain HTTP is allowed here even when every other page redirects to https
(``SECURE_REDIRECT_EXEMPT``), since the check runs inside the container.
"""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse


def healthz(request: HttpRequest) -> HttpResponse:
    try:
        connection.ensure_connection()
    except DatabaseError:
        return HttpResponse("database unreachable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")
