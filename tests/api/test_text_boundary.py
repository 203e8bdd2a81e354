"""Text PostgreSQL cannot store (NUL, lone surrogates) and absurd nesting are refused at the
boundary: every JSON, form and multipart body, query string and stored header gets a 400 that
names the field, and nothing is written (``annotation/api/parsers.py``, ``annotation/boundary.py``).

The bodies are sent as raw JSON text, the way a browser's ``JSON.stringify`` spells them: a NUL as
``\\u0000`` and a lone surrogate as ``\\udc00``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from annotation.models import (
    Assignment,
    Judgment,
    Membership,
    Project,
    Prompt,
    RaterExclusion,
    Task,
)
from tests.factories import UserFactory, make_rater, make_task

pytestmark = pytest.mark.django_db

NUL = "x\x00y"
SURROGATE = "x\udc00y"
BAD = pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])


def snapshot() -> dict[str, Any]:
    """Every row a refused request could have touched, as counts and values."""
    return {
        "judgments": Judgment.objects.count(),
        "assignments": sorted(Assignment.objects.values_list("id", "status", "skip_reason")),
        "tasks": sorted(Task.objects.values_list("id", "slots_taken", "judgments_done")),
        "memberships": Membership.objects.count(),
        "exclusions": RaterExclusion.objects.count(),
        "projects": sorted(
            Project.objects.values_list("id", "name", "guidelines", "flag_choices", "base_model")
        ),
    }


def post_json(client: Client, url: str, body: object, **headers: str) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def assert_refused(response: Any, field: str, before: dict[str, Any]) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["field"] == field
    assert body["error"].startswith(f"{field}: ")
    assert "NUL" in body["error"] or "surrogate" in body["error"]
    assert snapshot() == before


def claim(client: Client, project: Project) -> int:
    response = client.post(f"/api/projects/{project.id}/next/", {}, format="json")
    assert response.status_code == 200
    return int(response.json()["id"])


# ---------------------------------------------------------------- the rater's answers


def _submit(kind: str, body: Callable[[str], dict[str, Any]], field: str):  # type: ignore[no-untyped-def]
    return pytest.param(kind, body, field, id=f"submit-{field}")


@BAD
@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        _submit("pairwise", lambda bad: {"choice": "tie", "rationale": bad}, "rationale"),
        _submit("demonstration", lambda bad: {"text": bad}, "text"),
        _submit("pairwise", lambda bad: {"choice": "tie", "flags": [bad]}, "flags[0]"),
        _submit("rating", lambda bad: {"ratings": [], "rationale": "ok", bad: 1}, "body"),
    ],
)
def test_submit_refuses_unstorable_text(api, project, rater, bad, kind, body, field):
    make_task(project, kind=kind)
    client = api(rater)
    assignment_id = claim(client, project)
    before = snapshot()
    response = post_json(client, f"/api/assignments/{assignment_id}/judgment/", body(bad))
    assert_refused(response, field, before)


@BAD
def test_skip_refuses_unstorable_reason(api, project, rater, bad):
    make_task(project)
    client = api(rater)
    assignment_id = claim(client, project)
    before = snapshot()
    response = post_json(client, f"/api/assignments/{assignment_id}/skip/", {"reason": bad})
    assert_refused(response, "reason", before)


@BAD
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (lambda bad: {"choice": "A", "strength": 2, "rationale": bad}, "rationale"),
        (lambda bad: {"choice": "tie", "flags": ["unsafe", bad]}, "flags[1]"),
    ],
    ids=["rationale", "flags"],
)
def test_revise_refuses_unstorable_text(api, project, rater, bad, body, field):
    make_task(project)
    client = api(rater)
    assignment_id = claim(client, project)
    first = post_json(client, f"/api/assignments/{assignment_id}/judgment/", {"choice": "tie"})
    assert first.status_code == 201
    before = snapshot()
    response = post_json(client, f"/api/judgments/{first.json()['id']}/revise/", body(bad))
    assert_refused(response, field, before)


# ---------------------------------------------------------------- the manager's side


@BAD
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (lambda bad: {"guidelines": f"# Rules\n\n{bad}"}, "guidelines"),
        (lambda bad: {"name": bad}, "name"),
        (lambda bad: {"flag_choices": ["unsafe", bad]}, "flag_choices[1]"),
        (lambda bad: {"base_model": bad}, "base_model"),
    ],
    ids=["guidelines", "name", "flag_choices", "base_model"],
)
def test_project_settings_refuse_unstorable_text(api, project, manager, bad, body, field):
    before = snapshot()
    response = api(manager).patch(
        f"/api/projects/{project.id}/", data=json.dumps(body(bad)), content_type="application/json"
    )
    assert_refused(response, field, before)


@BAD
def test_project_create_refuses_unstorable_name(api, bad):
    staff = UserFactory(is_staff=True)
    before = snapshot()
    response = post_json(api(staff), "/api/projects/", {"name": bad})
    assert_refused(response, "name", before)


@BAD
def test_member_username_is_checked(api, project, manager, bad):
    before = snapshot()
    body = {"username": bad, "role": "labeler"}
    response = post_json(api(manager), f"/api/projects/{project.id}/members/", body)
    assert_refused(response, "username", before)


def test_member_username_in_a_form_body_is_checked(api, project, manager):
    before = snapshot()
    url = f"/api/projects/{project.id}/members/"
    for fmt in ("multipart", "urlencoded"):
        client = api(manager)
        if fmt == "multipart":
            response = client.post(url, {"username": NUL, "role": "labeler"}, format="multipart")
        else:
            response = client.post(
                url,
                data="username=x%00y&role=labeler",
                content_type="application/x-www-form-urlencoded",
            )
        assert_refused(response, "username", before)


@BAD
def test_exclusion_reason_is_checked(api, project, manager, bad):
    target = make_rater(project)
    before = snapshot()
    url = f"/api/projects/{project.id}/raters/{target.id}/exclusion/"
    response = post_json(api(manager), url, {"reason": bad})
    assert_refused(response, "reason", before)


def test_exclusion_reason_from_the_page_form_is_checked(project, manager):
    target = make_rater(project)
    client = Client()
    client.force_login(manager)
    before = snapshot()
    response = client.post(
        f"/manage/projects/{project.id}/raters/{target.id}/exclusion/",
        {"action": "exclude", "reason": NUL},
    )
    assert response.status_code == 400
    assert response.content.decode().startswith("reason: contains a NUL character")
    assert snapshot() == before


# ---------------------------------------------------------------- query strings


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/projects/{p}/tasks/", "status"),
        ("/api/projects/{p}/judgments/", "all_revisions"),
        ("/api/projects/{p}/prompts/", "limit"),
        ("/api/projects/{p}/exports/", "kinds"),
        ("/api/projects/{p}/exports/manifest/", "date_from"),
        ("/api/projects/{p}/insight/", "refresh"),
    ],
)
def test_api_query_parameters_are_checked(api, project, manager, path, param):
    make_task(project)
    before = snapshot()
    response = api(manager).get(path.format(p=project.id) + f"?{param}=x%00y")
    assert_refused(response, param, before)


@pytest.mark.parametrize(
    "path",
    [
        "/manage/projects/{p}/exports/download/?dataset=x%00y",
        "/manage/projects/{p}/?tab=x%00y",
        "/admin/annotation/project/?q=x%00y",
    ],
)
def test_page_query_parameters_are_checked(project, manager, path):
    manager.is_staff = manager.is_superuser = True
    manager.save()
    client = Client()
    client.force_login(manager)
    response = client.get(path.format(p=project.id))
    assert response.status_code == 400
    assert "contains a NUL character" in response.content.decode()


@pytest.mark.parametrize("escape", ["\\u0000", "\\udc00"], ids=["nul", "surrogate"])
def test_admin_json_fields_are_checked(project, escape):
    """In the admin, the JSON text itself is clean; the NUL appears once it is decoded."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    prompt = make_task(project).prompt
    before = list(Prompt.objects.values_list("id", "messages", "metadata"))
    client = Client()
    client.force_login(staff)
    response = client.post(
        f"/admin/annotation/prompt/{prompt.id}/change/",
        {
            "project": project.id,
            "messages": '[{"role": "user", "content": "a' + escape + 'b"}]',
            "content_hash": prompt.content_hash,
            "source": "",
            "metadata": "{}",
            "split": "train",
            "_save": "Save",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "[0].content: contains a" in response.content.decode()
    assert list(Prompt.objects.values_list("id", "messages", "metadata")) == before


# ---------------------------------------------------------------- headers and nesting


def test_idempotency_key_is_checked(api, project, rater):
    make_task(project)
    client = api(rater)
    assignment_id = claim(client, project)
    before = snapshot()
    url = f"/api/assignments/{assignment_id}/judgment/"
    response = post_json(client, url, {"choice": "tie"}, HTTP_IDEMPOTENCY_KEY="k\x00ey")
    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"
    assert "NUL" in response.json()["error"]
    assert snapshot() == before


def test_token_with_a_nul_is_401_not_500(project, rater):
    Token.objects.create(user=rater)
    response = Client().get("/api/projects/", HTTP_AUTHORIZATION="Token ab\x00cd")
    assert response.status_code == 401


def test_session_cookie_with_a_nul_is_ignored_not_looked_up(project, rater):
    client = Client()
    client.force_login(rater)
    client.cookies["sessionid"] = client.cookies["sessionid"].value + "\x00"
    response = client.get("/")
    assert response.status_code == 302  # anonymous: to the login page
    assert response["Location"].startswith("/login/")


def test_absurdly_nested_body_is_400(api, project, rater):
    make_task(project)
    client = api(rater)
    assignment_id = claim(client, project)
    before = snapshot()
    url = f"/api/assignments/{assignment_id}/judgment/"
    deep = '{"choice": "tie", "flags": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(url, data=deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["error"]
    nested: Any = "x"
    for _ in range(40):
        nested = [nested]
    response = post_json(client, url, {"choice": "tie", "flags": nested})
    assert response.status_code == 400
    assert response.json()["field"].startswith("flags[0]")
    assert "nested deeper than 32" in response.json()["error"]
    assert snapshot() == before


def test_good_text_still_goes_through(api, project, rater):
    """The check refuses only what cannot be stored: emoji, CJK, RTL and U+FFFD are fine."""
    make_task(project)
    client = api(rater)
    assignment_id = claim(client, project)
    text = "👍 好 שלום \ufffd tab\tnewline\n"
    response = post_json(
        client, f"/api/assignments/{assignment_id}/judgment/", {"choice": "tie", "rationale": text}
    )
    assert response.status_code == 201
    assert Judgment.objects.get().rationale == text


def test_token_endpoint_refuses_absurd_nesting(db):
    deep = '{"username": ' + "[" * 100_000 + "]" * 100_000 + ', "password": "x"}'
    response = Client().post("/api/token/", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["error"]


def test_import_form_fields_are_checked(api, project, manager):
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = snapshot()
    upload = SimpleUploadedFile("a.jsonl", b'{"prompt": "hi", "responses": ["a", "b"]}\n')
    response = api(manager).post(
        f"/api/projects/{project.id}/import/",
        {"file": upload, "source": "bad\x00"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]
    assert snapshot() == before


def test_text_in_the_path_is_checked(api, project, manager):
    before = snapshot()
    response = api(manager).delete(f"/api/projects/{project.id}/members/a%00b/")
    assert response.status_code == 400
    assert response.json()["field"] == "username"
    assert snapshot() == before
