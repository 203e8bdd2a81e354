"""Project scoping for every API view, checked before the method handler runs.

DRF runs permission checks in ``APIView.initial``, before it looks up the handler for the HTTP
method, so a rater of project 1 asking anything (any method, even one the view does not support)
about project 2, or about another rater's assignment or judgment, gets the same 404 as for an id
that does not exist: another project's data is invisible, not forbidden.

Membership is read on every request, never remembered: a member removed from a project keeps
the ids of their leases and judgments, and those routes answer 404 to them as well (the
services check the rater's standing for the methods the views have).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from annotation.errors import NotFound
from annotation.models import Assignment, Judgment
from annotation.selectors import MANAGER_ROLES, project_get_for_user, require_manager


class ProjectScopePermission(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        kwargs = getattr(view, "kwargs", {}) or {}
        user = request.user
        if not user or not user.is_authenticated:
            return True  # IsAuthenticated answers 401/403 for anonymous callers
        if "project_id" in kwargs:
            # Kept on the request so the view does not look the project up again.
            request.scoped_project = project_get_for_user(  # type: ignore[attr-defined]
                project_id=kwargs["project_id"], user=user
            )
        if hasattr(view, request.method.lower()):
            # The handler scopes assignments and judgments by their owner itself (404 too);
            # only methods the view lacks need the check here, to answer 404 rather than 405.
            return True
        if "assignment_id" in kwargs and not _assignment_visible(kwargs["assignment_id"], user):
            raise NotFound(f"Assignment {kwargs['assignment_id']} not found.")
        if "judgment_id" in kwargs and not _judgment_visible(kwargs["judgment_id"], user):
            raise NotFound(f"Judgment {kwargs['judgment_id']} not found.")
        return True


def scoped_project(request: Request, project_id: int) -> tuple[Any, str]:
    """The (project, role) the permission check already resolved for this request."""
    cached = getattr(request, "scoped_project", None)
    if cached is not None and cached[0].id == int(project_id):
        return cached
    return project_get_for_user(project_id=project_id, user=request.user)


def scoped_manager_project(request: Request, project_id: int) -> Any:
    """The project, for its managers; other members get 403 (they may know it exists)."""
    return require_manager(*scoped_project(request, project_id))


def _assignment_visible(assignment_id: int, user: Any) -> bool:
    """The caller's own assignment in a project they still belong to."""
    rows = Assignment.objects.filter(id=assignment_id, rater=user)
    if not user.is_superuser:
        rows = rows.filter(project__memberships__user=user)
    return rows.exists()


def _judgment_visible(judgment_id: int, user: Any) -> bool:
    """The caller's own judgment, or any judgment of a project they manage, in a project they
    still belong to (membership is read now: a former member keeps the ids)."""
    if user.is_superuser:
        return Judgment.objects.filter(id=judgment_id).exists()
    return (
        Judgment.objects.filter(
            id=judgment_id, rater=user, project__memberships__user=user
        ).exists()
        or Judgment.objects.filter(
            id=judgment_id,
            project__memberships__user=user,
            project__memberships__role__in=MANAGER_ROLES,
        ).exists()
    )
