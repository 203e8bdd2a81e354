"""The mixing choice as project settings: ai_training, ai_weight, ai_min_confidence."""

from __future__ import annotations

import pytest

from annotation.models import Project

pytestmark = pytest.mark.django_db


def test_a_manager_sets_the_mix(api, project, manager) -> None:
    url = f"/api/projects/{project.id}/"
    body = api(manager).get(url).json()
    assert (body["ai_training"], body["ai_weight"], body["ai_min_confidence"]) == ("human", 0.5, 0)
    changed = api(manager).patch(
        url, {"ai_training": "both", "ai_weight": 0.25, "ai_min_confidence": 0.7}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    project.refresh_from_db()
    assert (project.ai_training, project.ai_weight, project.ai_min_confidence) == (
        "both",
        0.25,
        0.7,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ai_training": "mixed"}, "ai_training"),
        ({"ai_training": ""}, "ai_training"),
        ({"ai_weight": 1.5}, "ai_weight"),
        ({"ai_weight": -0.1}, "ai_weight"),
        ({"ai_weight": "heavy"}, "ai_weight"),
        ({"ai_min_confidence": 0.3}, "ai_min_confidence"),
        ({"ai_min_confidence": 1.2}, "ai_min_confidence"),
    ],
)
def test_bad_values_are_400_and_change_nothing(api, project, manager, change, field) -> None:
    response = api(manager).patch(f"/api/projects/{project.id}/", change, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]
    fresh = Project.objects.get(id=project.id)
    assert (fresh.ai_training, fresh.ai_weight, fresh.ai_min_confidence) == ("human", 0.5, 0)


def test_labelers_cannot_change_it(api, project, rater) -> None:
    response = api(rater).patch(
        f"/api/projects/{project.id}/", {"ai_training": "ai"}, format="json"
    )
    assert response.status_code == 403
