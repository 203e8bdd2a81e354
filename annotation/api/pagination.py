from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response


def paginate(
    request: Request,
    queryset: QuerySet[Any],
    serializer: type,
    context: dict[str, Any] | None = None,
) -> Response:
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request)
    data = serializer(page, many=True, context=context or {}).data
    return paginator.get_paginated_response(data)
