"""Reads. Every project-scoped read goes through ``project_get_for_user`` so that another
project's data is indistinguishable from data that does not exist (404, never 403)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from annotation.errors import NotFound, PermissionDenied
from annotation.models import Membership, Project, Role
from annotation.precompiled import membership_project

MANAGER_ROLES = (Role.MANAGER, Role.ADMIN)

UserLike = User | AnonymousUser


def projects_for_user(*, user: UserLike) -> QuerySet[Project]:
    if isinstance(user, AnonymousUser):
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def membership_get(*, project: Project, user: UserLike) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(project=project, user=user).first()


def project_get_for_user(*, project_id: int, user: UserLike) -> tuple[Project, str]:
    """The project and the user's role in it; NotFound when the user is not a member.
    One precompiled query (membership joined to its project): every API request makes it."""
    if getattr(user, "is_superuser", False):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise NotFound(f"Project {project_id} not found.")
        return project, Role.ADMIN
    if not user.is_authenticated:
        raise NotFound(f"Project {project_id} not found.")
    found = membership_project(project_id=project_id, user_id=user.pk)
    if found is None:
        raise NotFound(f"Project {project_id} not found.")
    return found


def project_get_for_manager(*, project_id: int, user: UserLike) -> Project:
    """Members who are not managers get 403: they may know the project exists."""
    return require_manager(*project_get_for_user(project_id=project_id, user=user))


def require_manager(project: Project, role: str) -> Project:
    """``project`` when ``role`` manages it; PermissionDenied (403) otherwise."""
    if role not in MANAGER_ROLES:
        raise PermissionDenied("Only the project's managers may do this.")
    return project


def is_manager(*, project: Project, user: UserLike) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    membership = membership_get(project=project, user=user)
    return membership is not None and membership.role in MANAGER_ROLES
