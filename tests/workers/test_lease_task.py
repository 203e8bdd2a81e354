"""The beat task that returns expired leases in every project (claims only sweep their own)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.models import Assignment, AssignmentStatus, Task
from annotation.services.assignment import assignment_claim_next
from config.celery import TASK_ROUTES
from tests.factories import ProjectFactory, make_rater, make_task
from workers.tasks import expire_stale_leases

pytestmark = pytest.mark.django_db


def test_expired_leases_of_idle_projects_come_back():
    projects = [ProjectFactory(overlap=1) for _ in range(2)]
    held = []
    for project in projects:
        make_task(project)
        rater = make_rater(project)
        held.append(assignment_claim_next(project=project, rater=rater).assignment)
    live = make_task(projects[0])
    live_lease = assignment_claim_next(project=projects[0], rater=make_rater(projects[0]))
    assert live_lease.assignment.task_id == live.id
    Assignment.objects.filter(id__in=[a.id for a in held]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert expire_stale_leases() == 2
    for lease in held:
        lease.refresh_from_db()
        assert lease.status == AssignmentStatus.EXPIRED
        assert Task.objects.get(id=lease.task_id).slots_taken == 0
    assert Task.objects.get(id=live.id).slots_taken == 1  # a live lease keeps its slot
    assert expire_stale_leases() == 0


def test_the_task_is_scheduled_and_routed():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "leases.expire_stale" in scheduled
    assert TASK_ROUTES["leases.expire_stale"] == {"queue": "cpu"}
