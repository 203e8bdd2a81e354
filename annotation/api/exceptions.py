"""One place that turns errors into HTTP answers: {"error": message, "field": name?}."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.errors import DomainError


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out += _flatten(value, "" if key == "non_field_errors" else name)
        return out
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"error": exc.message}
        if exc.field:
            body["field"] = exc.field
        if exc.code:
            body["code"] = exc.code
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"error": f"Request body too large: the limit is {limit} bytes."}, status=413
        )
    if isinstance(exc, DjangoValidationError):
        return Response({"error": "; ".join(exc.messages)}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf.ValidationError):
        response.data = {"error": "; ".join(_flatten(exc.detail)), "fields": exc.detail}
    elif isinstance(exc, drf.APIException):
        response.data = {"error": str(exc.detail)}
    return response
