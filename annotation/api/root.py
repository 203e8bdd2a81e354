"""The API's front door: ``GET /api/`` (a map of the endpoints), the schema and the docs page.

- ``/api/`` is public: it holds links only, the same ones the schema and the source show, and a
  client needs it (the token endpoint) before it has a token.
- ``/api/schema/`` and ``/api/docs/`` are public while ``API_DOCS_PUBLIC`` is on (the default: the
  schema describes this open-source code, never anyone's data); with it off they need a logged-in
  user or a token, and the docs page sends a browser to the login page.
- The docs page is Swagger UI started from a script file (drf-spectacular's split view) and a
  template without the inline style, so it runs under the site's Content-Security-Policy with no
  exception (annotation/middleware.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# (key, URL name, placeholders): what /api/ lists. Placeholders stay as {name} in the answer.
ENDPOINTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("token", "api-token", ()),
    ("schema", "api-schema", ()),
    ("docs", "api-docs", ()),
    ("projects", "api-projects", ()),
    ("project", "api-project", ("project_id",)),
    ("members", "api-members", ("project_id",)),
    ("prompts", "api-prompts", ("project_id",)),
    ("tasks", "api-tasks", ("project_id",)),
    ("import", "api-import", ("project_id",)),
    ("next_task", "api-next", ("project_id",)),
    ("judgments", "api-judgments", ("project_id",)),
    ("model_versions", "api-model-versions", ("project_id",)),
    ("training_runs", "api-training-runs", ("project_id",)),
    ("constitution", "api-constitution", ("project_id",)),
    ("ai_passes", "api-ai-passes", ("project_id",)),
    ("submit", "api-submit", ("assignment_id",)),
]


def _url(request: Request, name: str, placeholders: tuple[str, ...]) -> str:
    """Absolute URL of ``name`` with ``{placeholder}`` where its ids go."""
    stand_ins = {p: 900_000_001 + i for i, p in enumerate(placeholders)}
    url = request.build_absolute_uri(reverse(name, kwargs=stand_ins))
    for placeholder, number in stand_ins.items():
        url = url.replace(str(number), "{" + placeholder + "}")
    return url


class ApiRootApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Map of the API",
        description="Links to the main endpoints ({placeholders} mark ids), the schema, the "
        "docs, and how to authenticate.",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        links = {key: _url(request, name, ids) for key, name, ids in ENDPOINTS}
        return Response(
            {
                **links,
                "authentication": (
                    "POST {username, password} to the token URL, then send "
                    "'Authorization: Token <token>' with every request."
                ),
                "docs_public": settings.API_DOCS_PUBLIC,
            }
        )


class DocsAccess(BasePermission):
    """The schema and the docs page: anyone while ``API_DOCS_PUBLIC``, else logged-in users."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(settings.API_DOCS_PUBLIC or request.user.is_authenticated)


class ApiSchemaView(SpectacularAPIView):
    permission_classes = [DocsAccess]


class ApiDocsView(SpectacularSwaggerSplitView):
    permission_classes = [DocsAccess]
    template_name = "api/swagger_ui.html"

    def handle_exception(self, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
