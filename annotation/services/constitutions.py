"""A project's constitution: the ordered principles an AI judge is prompted with.

A :class:`Constitution` row never changes. Saving an edit inserts version + 1, so every AI
judgment keeps pointing at the exact principles it was judged under (``AIJudgment.constitution``,
and the principle's text copied onto the judgment). The current constitution is the highest
version; a project has none until a manager saves the first. Saving the same principles again is a
no-op that returns the current version (a double submit makes no new version).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from annotation.errors import ValidationFailed
from annotation.models import Constitution, Project
from annotation.textcheck import text_problem

MAX_PRINCIPLES = 50
MAX_PRINCIPLE_CHARS = 500


def constitution_current(*, project: Project) -> Constitution | None:
    """The project's highest version, or None before the first edit."""
    return Constitution.objects.filter(project=project).order_by("-version").first()


def constitution_versions(*, project: Project) -> QuerySet[Constitution]:
    """Every version of the project's constitution, newest first."""
    return Constitution.objects.filter(project=project).order_by("-version")


def principles_clean(principles: Any) -> list[str]:
    """The principles stripped, or ValidationFailed naming the first problem (field
    ``principles``): a list of 1..50 strings, each non-blank and at most 500 characters."""
    if not isinstance(principles, list | tuple):
        raise ValidationFailed("principles must be a list of strings.", field="principles")
    if not 1 <= len(principles) <= MAX_PRINCIPLES:
        raise ValidationFailed(
            f"A constitution has 1 to {MAX_PRINCIPLES} principles; got {len(principles)}.",
            field="principles",
        )
    cleaned: list[str] = []
    for number, value in enumerate(principles, start=1):
        if not isinstance(value, str):
            raise ValidationFailed(
                f"Principle {number} must be a string, not {type(value).__name__}.",
                field="principles",
            )
        text = value.strip()
        if not text:
            raise ValidationFailed(f"Principle {number} is blank.", field="principles")
        if len(text) > MAX_PRINCIPLE_CHARS:
            raise ValidationFailed(
                f"Principle {number} has {len(text)} characters; the limit is "
                f"{MAX_PRINCIPLE_CHARS}.",
                field="principles",
            )
        problem = text_problem(text)
        if problem:
            raise ValidationFailed(f"Principle {number} {problem}.", field="principles")
        cleaned.append(text)
    return cleaned


def constitution_save(*, project: Project, principles: Any, user: Any) -> Constitution:
    """Save ``principles`` as the project's constitution: a new version (current + 1), or the
    current one unchanged when the principles are the same after stripping.

    Locks: the project row (``SELECT ... FOR UPDATE``), so two managers saving at once get
    versions n + 1 and n + 2 instead of one of them failing on ``constitution_version``.
    """
    cleaned = principles_clean(principles)
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project.id).first()
        current = constitution_current(project=project)
        if current is not None and current.principles == cleaned:
            return current
        return Constitution.objects.create(
            project=project,
            version=(current.version if current else 0) + 1,
            principles=cleaned,
            created_by=user if getattr(user, "pk", None) else None,
        )
