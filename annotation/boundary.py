"""The site's one gate for text it cannot store: query strings, form bodies, stored headers.

PostgreSQL refuses a NUL in ``text`` and ``jsonb``, so a pasted ``%00`` used to reach the driver
and come back as a 500. ``TextBoundaryMiddleware`` answers every such request with a 400 that
names the parameter, before any view runs (the check itself is :mod:`annotation.textcheck`):

* query strings, on every page and API endpoint (``?status=%00``, an admin search), and text
  parts of the path (``/api/projects/1/members/a%00b/``);
* form and multipart bodies of the HTML pages (the manager's exclusion form, the admin, login).
  API views parse their own bodies: ``annotation.api.parsers`` checks JSON, form and multipart
  there, so the API keeps its 413 for oversized bodies;
* headers whose value is stored (``Idempotency-Key``);
* cookies: a session cookie with a NUL would make the session lookup fail on every page, so such
  a cookie is ignored (the request is anonymous) rather than looked up.

gunicorn already refuses a NUL in any header, and URL decoding turns invalid UTF-8 into U+FFFD,
so in production the query string and form bodies are where a NUL gets through; the header and
cookie checks cover other servers (runserver, the test client).

API views get ``{"error": ..., "field": ...}`` as JSON (the shape of ``annotation/api/exceptions``);
pages get the same message as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict

from annotation.textcheck import TextProblem, text_problem

STORED_HEADERS = ("Idempotency-Key",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def querydict_problem(data: QueryDict) -> TextProblem | None:
    """The first parameter (name or value) of a query string or form that cannot be stored."""
    for name, values in data.lists():
        reason = text_problem(name)
        if reason:
            return TextProblem("parameter name", reason)
        for value in values:
            reason = text_problem(value)
            if reason:
                return TextProblem(name, reason)
    return None


def path_problem(view_kwargs: dict[str, Any]) -> TextProblem | None:
    """A text part of the URL (``members/<str:username>/``) that cannot be stored or looked up."""
    for name, value in view_kwargs.items():
        reason = text_problem(value) if isinstance(value, str) else None
        if reason:
            return TextProblem(name, reason)
    return None


def header_problem(request: HttpRequest) -> TextProblem | None:
    for name in STORED_HEADERS:
        reason = text_problem(request.headers.get(name, ""))
        if reason:
            return TextProblem(name, reason)
    return None


def _is_api_view(view_func: Callable[..., Any]) -> bool:
    """DRF views (``APIView.as_view()``) carry their class; their parsers check the body."""
    return hasattr(view_func, "cls")


def refusal(problem: TextProblem, *, api: bool) -> HttpResponse:
    if api:
        return JsonResponse({"error": problem.message(), "field": problem.path}, status=400)
    return HttpResponse(problem.message(), status=400, content_type="text/plain; charset=utf-8")


class TextBoundaryMiddleware:
    """Goes before ``SessionMiddleware`` (it drops unusable cookies before the session reads
    them); its ``process_view`` then checks parameters, form bodies and stored headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cookies = request.COOKIES
        request.COOKIES = {k: v for k, v in cookies.items() if not text_problem(k + v)}
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        api = _is_api_view(view_func)
        problem = (
            path_problem(view_kwargs) or querydict_problem(request.GET) or header_problem(request)
        )
        if (
            problem is None
            and not api
            and request.method == "POST"
            and request.content_type in FORM_TYPES
        ):
            problem = querydict_problem(request.POST)
        return refusal(problem, api=api) if problem else None
