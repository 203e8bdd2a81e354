"""Small reads for the rater's pages: what is left for them and what they did today."""

from __future__ import annotations

from datetime import datetime, time

from django.contrib.auth.models import User
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation.models import Assignment, Judgment, Project, Task, TaskStatus


def _start_of_today() -> datetime:
    now = timezone.localtime()
    return timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)


def judged_today(*, project: Project, rater: User) -> int:
    """Tasks this rater judged today (first revisions only: an undo is not a second task)."""
    return Judgment.objects.filter(
        project=project, rater=rater, revision=1, created_at__gte=_start_of_today()
    ).count()


def tasks_left(*, project: Project, rater: User) -> int:
    """Open tasks with a free slot that this rater has never been given."""
    seen = Assignment.objects.filter(task=OuterRef("pk"), rater=rater)
    return (
        Task.objects.filter(
            project=project,
            status=TaskStatus.OPEN,
            is_gold=False,
            slots_taken__lt=F("required_judgments"),
        )
        .exclude(Exists(seen))
        .count()
    )
