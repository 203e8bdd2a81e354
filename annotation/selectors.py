"""Reads. Every project-scoped read goes through ``project_get_for_user`` so that another
project's data is indistinguishable from data that does not exist (404, never 403)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from annotation.errors import NotFound, PermissionDenied, RaterExcluded
from annotation.models import Judgment, Membership, Project, RaterExclusion, Role
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


def is_current_member(*, project_id: int, user: UserLike) -> bool:
    """Whether the user belongs to the project right now (superusers belong to every project)."""
    if getattr(user, "is_superuser", False):
        return True
    return user.is_authenticated and (
        Membership.objects.filter(project_id=project_id, user_id=user.pk).exists()
    )


def is_excluded(*, project_id: int, rater_id: int) -> bool:
    """Whether a manager has excluded this rater from the project (a live exclusion)."""
    return RaterExclusion.objects.filter(
        project_id=project_id, rater_id=rater_id, lifted_at__isnull=True
    ).exists()


def eligible_judgments(
    *,
    project_id: int,
    max_id: int | None = None,
    include_excluded: bool = False,
    gold: str = "exclude",
) -> QuerySet[Judgment]:
    """The judgments that count as training data: current (not revised), not on gold tasks (they
    are quality checks), not by raters with a live exclusion. The retrain cycle's snapshot, the
    retrain policy's count of new judgments and the exports all read this queryset.

    ``max_id``: only judgments up to that id. The exports' options: ``include_excluded`` keeps
    excluded raters' judgments, ``gold`` is ``"exclude"``, ``"include"`` or ``"only"``.
    """
    rows = Judgment.objects.filter(project_id=project_id, is_current=True)
    if gold == "exclude":
        rows = rows.filter(task__is_gold=False)
    elif gold == "only":
        rows = rows.filter(task__is_gold=True)
    elif gold != "include":
        raise ValueError(f"gold must be 'exclude', 'include' or 'only', got {gold!r}")
    if not include_excluded:
        live = RaterExclusion.objects.filter(project_id=project_id, lifted_at__isnull=True)
        rows = rows.exclude(rater_id__in=live.values("rater_id"))
    if max_id is not None:
        rows = rows.filter(id__lte=max_id)
    return rows


EXCLUDED_MESSAGE = (
    "A manager has excluded you from labeling this project: you cannot take or answer its "
    "tasks. Your earlier judgments stay readable."
)


def require_labeling_standing(
    *, project_id: int, rater: User, member: bool | None = None, not_found: str = ""
) -> None:
    """The rater may label this project *now*: still a member and not excluded. Row ownership
    alone is not enough, since a removed member keeps the ids of their leases and judgments.

    NotFound (404) for a former member, as for another project's data; RaterExcluded (403) for
    an excluded rater. ``member``: what the caller already read of the membership; ``not_found``:
    the 404's message (the id the caller asked for).
    """
    if member is None:
        member = is_current_member(project_id=project_id, user=rater)
    if not (member or rater.is_superuser):
        raise NotFound(not_found or f"Project {project_id} not found.")
    if is_excluded(project_id=project_id, rater_id=rater.id):
        raise RaterExcluded(EXCLUDED_MESSAGE)
