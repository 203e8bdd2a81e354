"""Projects, members and the JSONL upload over HTTP."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.api.serializers import ProjectIn, ProjectOut, ProjectUpdateIn
from annotation.models import Membership, Project, Prompt, Task
from annotation.services.projects import EDITABLE_FIELDS, PROJECT_SETTINGS
from tests.factories import UserFactory, make_rater

pytestmark = pytest.mark.django_db


def upload(client, project, content: bytes, **extra):
    file = SimpleUploadedFile("data.jsonl", content, content_type="application/jsonl")
    return client.post(
        f"/api/projects/{project.id}/import/", {"file": file, **extra}, format="multipart"
    )


def test_staff_creates_project_and_becomes_admin(api):
    staff = UserFactory(is_staff=True)
    response = api(staff).post(
        "/api/projects/",
        {"name": "Helpfulness v2", "overlap": 3, "task_kinds": ["pairwise"]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["overlap"], body["role"]) == ("helpfulness-v2", 3, "admin")
    assert Membership.objects.get(project_id=body["id"]).user == staff


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "task_kinds": ["essay"]}, "task_kinds"),
        ({"name": "x", "overlap": 0}, "overlap"),
        ({"name": "x", "gold_rate": 1.5}, "gold_rate"),
        ({"name": "x", "trainers": ["no-such-trainer"]}, "trainers"),
        ({"overlap": 2}, "name"),
    ],
)
def test_bad_project_settings_are_400(api, body, message):
    staff = UserFactory(is_staff=True)
    response = api(staff).post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Project.objects.count() == 0


def test_project_settings_are_one_list():
    """Every field of Project but its identity is a setting in PROJECT_SETTINGS, and the API's
    input and output serializers and the service's check all come from that list."""
    identity = {"id", "name", "slug", "created_at"}
    assert {f.name for f in Project._meta.concrete_fields} == identity | set(PROJECT_SETTINGS)
    assert set(ProjectIn().fields) == {"name", "slug", *PROJECT_SETTINGS}
    assert set(ProjectUpdateIn().fields) == {"name", *PROJECT_SETTINGS}
    assert set(ProjectOut().fields) == identity | {"role", *PROJECT_SETTINGS}
    assert {"name", *PROJECT_SETTINGS} == EDITABLE_FIELDS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (name, s.high * 2 + 1 if s.high is not None else s.low - 1)
        for name, s in PROJECT_SETTINGS.items()
        if s.high is not None or s.low is not None
    ],
)
def test_each_setting_keeps_its_bounds(api, project, manager, name, value):
    response = api(manager).patch(f"/api/projects/{project.id}/", {name: value}, format="json")
    assert response.status_code == 400
    assert name in response.json()["error"]


def test_non_staff_cannot_create_projects(api):
    assert (
        api(UserFactory()).post("/api/projects/", {"name": "x"}, format="json").status_code == 403
    )


def test_manager_updates_settings_and_adds_members(api, project, manager):
    client = api(manager)
    changed = client.patch(f"/api/projects/{project.id}/", {"overlap": 5}, format="json")
    assert changed.json()["overlap"] == 5
    newbie = UserFactory(username="newbie")
    added = client.post(
        f"/api/projects/{project.id}/members/",
        {"username": "newbie", "role": "labeler"},
        format="json",
    )
    assert added.status_code == 200
    assert Membership.objects.filter(project=project, user=newbie, role="labeler").exists()
    unknown = client.post(
        f"/api/projects/{project.id}/members/",
        {"username": "ghost", "role": "labeler"},
        format="json",
    )
    assert unknown.status_code == 400


def test_upload_imports_and_reports(api, project, manager):
    lines = b"\n".join(
        json.dumps({"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad"}).encode()
        for i in range(5)
    )
    response = upload(api(manager), project, lines)
    assert response.status_code == 201
    assert response.json()["prompts_created"] == 5
    assert response.json()["labels_imported"] == 5
    assert Task.objects.filter(project=project).count() >= 5


def test_upload_with_a_bad_line_changes_nothing(api, project, manager):
    content = b'{"prompt": "q", "responses": ["a", "b"]}\n{"prompt": "q2", "chosen": "x"}\n'
    response = upload(api(manager), project, content)
    assert response.status_code == 400
    assert "line 2" in response.json()["error"]
    assert Prompt.objects.count() == 0


def test_upload_needs_a_file_and_a_manager(api, project, manager):
    missing = api(manager).post(f"/api/projects/{project.id}/import/", {}, format="multipart")
    assert missing.status_code == 400
    assert "file" in missing.json()["error"]
    labeler = make_rater(project)
    denied = upload(api(labeler), project, b'{"prompt": "q", "responses": ["a", "b"]}')
    assert denied.status_code == 403
