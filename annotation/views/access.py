"""The manager pages' one access check: the service errors as Django's 404 and 403 pages."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest

from annotation.errors import NotFound, PermissionDenied
from annotation.models import Project
from annotation.selectors import project_get_for_manager


class AuthedRequest(HttpRequest):
    """A request behind ``@login_required``: its user is a real ``User`` (for the type checker)."""

    user: User


def manager_project(request: HttpRequest, project_id: int) -> Project:
    """The project for its managers: 404 for anyone outside it, 403 for its labelers."""
    try:
        return project_get_for_manager(project_id=project_id, user=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
