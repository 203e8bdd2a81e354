"""GET/PUT /api/projects/<id>/constitution/ and its versions: members read, managers edit."""

from __future__ import annotations

import pytest

from annotation.models import Constitution

pytestmark = pytest.mark.django_db


def url(project):
    return f"/api/projects/{project.id}/constitution/"


def test_members_read_an_empty_constitution_before_the_first_save(project, rater, api):
    answer = api(rater).get(url(project))
    assert answer.status_code == 200
    assert answer.json() == {
        "version": None,
        "principles": [],
        "created_by": None,
        "created_at": None,
    }


def test_a_manager_saves_versions_and_members_read_the_history(project, manager, rater, api):
    one = api(manager).put(url(project), {"principles": ["Be helpful."]}, format="json")
    assert one.status_code == 200
    assert one.json()["version"] == 1
    assert one.json()["created_by"] == manager.username
    two = api(manager).put(url(project), {"principles": ["Be helpful.", "Be kind."]}, format="json")
    assert two.json()["version"] == 2
    same = api(manager).put(
        url(project), {"principles": ["Be helpful.", " Be kind. "]}, format="json"
    )
    assert same.json()["version"] == 2
    current = api(rater).get(url(project)).json()
    assert current["principles"] == ["Be helpful.", "Be kind."]
    history = api(rater).get(url(project) + "versions/").json()
    assert [v["version"] for v in history["results"]] == [2, 1]


def test_a_rater_cannot_edit(project, rater, api):
    answer = api(rater).put(url(project), {"principles": ["mine"]}, format="json")
    assert answer.status_code == 403
    assert not Constitution.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"principles": []}, "principles", "1 to 50"),
        ({"principles": ["ok", ""]}, "principles", "Principle 2 is blank"),
        ({"principles": ["y" * 501]}, "principles", "limit is 500"),
        ({}, "principles", "required"),
        ({"principles": ["ok"], "extra": 1}, "extra", "Unknown field"),
        (["ok"], None, "JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem_and_changes_nothing(
    project, manager, api, body, field, message
):
    answer = api(manager).put(url(project), body, format="json")
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert answer.json().get("field") == field
    assert not Constitution.objects.exists()
