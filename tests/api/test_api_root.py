"""``GET /api/``: a public map of the API whose every link leads somewhere."""

from __future__ import annotations

import pytest
from django.urls import resolve
from rest_framework.test import APIClient

from annotation.api.root import ENDPOINTS

pytestmark = pytest.mark.django_db

MAIN = {"token", "schema", "docs", "projects", "project", "next_task", "judgments", "submit"}


def test_the_api_root_lists_the_main_endpoints_for_anyone():
    response = APIClient().get("/api/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= MAIN
    assert body["token"] == "http://testserver/api/token/"
    assert body["schema"] == "http://testserver/api/schema/"
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["projects"] == "http://testserver/api/projects/"
    assert body["project"] == "http://testserver/api/projects/{project_id}/"
    assert body["submit"] == "http://testserver/api/assignments/{assignment_id}/judgment/"
    assert "Authorization: Token" in body["authentication"]
    assert body["docs_public"] is True


def test_every_link_resolves_to_its_view():
    body = APIClient().get("/api/").json()

    for key, name, _ in ENDPOINTS:
        path = body[key].removeprefix("http://testserver")
        path = path.replace("{project_id}", "7").replace("{assignment_id}", "8")
        assert resolve(path).url_name == name, key


def test_a_logged_in_client_and_a_stale_token_get_the_same_map(api, rater):
    assert api(rater).get("/api/").status_code == 200
    stale = APIClient(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert stale.get("/api/").status_code == 200


def test_the_root_is_read_only():
    assert APIClient().post("/api/", {}).status_code == 405
