"""Project scoping for every API view, checked before the method handler runs.

DRF runs permission checks in ``APIView.initial``, before it looks up the handler for the HTTP
method, so a rater of project 1 asking anything (any method, even one the view does not support)
about project 2, or about another rater's assignment or judgment, gets the same 404 as for an id
that does not exist: another project's data is invisible, not forbidden.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from annotation.errors import NotFound
from annotation.models import Assignment, Judgment
from annotation.selectors import MANAGER_ROLES, project_get_for_user


class ProjectScopePermission(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        kwargs = getattr(view, "kwargs", {}) or {}
        user = request.user
        if not user or not user.is_authenticated:
            return True  # IsAuthenticated answers 401/403 for anonymous callers
        if "project_id" in kwargs:
            project_get_for_user(project_id=kwargs["project_id"], user=user)
        if (
            "assignment_id" in kwargs
            and not Assignment.objects.filter(id=kwargs["assignment_id"], rater=user).exists()
        ):
            raise NotFound(f"Assignment {kwargs['assignment_id']} not found.")
        if "judgment_id" in kwargs and not _judgment_visible(kwargs["judgment_id"], user):
            raise NotFound(f"Judgment {kwargs['judgment_id']} not found.")
        return True


def _judgment_visible(judgment_id: int, user: Any) -> bool:
    if user.is_superuser:
        return Judgment.objects.filter(id=judgment_id).exists()
    return (
        Judgment.objects.filter(id=judgment_id, rater=user).exists()
        or Judgment.objects.filter(
            id=judgment_id,
            project__memberships__user=user,
            project__memberships__role__in=MANAGER_ROLES,
        ).exists()
    )
