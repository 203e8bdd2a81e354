"""The cpu task that keeps dashboards warm (called directly: its logic, not Celery's)."""

from __future__ import annotations

import pytest

from annotation.insight.dashboard import insight_needs_refresh
from annotation.services.assignment import assignment_claim_next
from annotation.services.judgments import judgment_submit
from tests.factories import make_rater, make_task
from workers.tasks import refresh_stale_dashboards

pytestmark = pytest.mark.django_db


def test_refreshes_only_stale_projects(project):
    make_task(project)
    rater = make_rater(project)
    assert refresh_stale_dashboards() == [project.id]
    assert not insight_needs_refresh(project.id)
    assert refresh_stale_dashboards() == []
    a = assignment_claim_next(project=project, rater=rater).assignment
    judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"})
    assert insight_needs_refresh(project.id)
    assert refresh_stale_dashboards() == [project.id]
