"""The labeling endpoints over HTTP: next, submit with Idempotency-Key, skip, revise, errors."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token

from annotation.models import Judgment, Task
from tests.factories import make_rater, make_task

pytestmark = pytest.mark.django_db


def next_task(client, project, **body):
    return client.post(f"/api/projects/{project.id}/next/", body, format="json")


def test_next_returns_task_in_display_order_without_gold_details(api, project, rater):
    task = make_task(project, kind="ranking", n_responses=3)
    body = next_task(api(rater), project).json()
    assert body["task"]["id"] == task.id
    assert body["task"]["kind"] == "ranking"
    assert [r["label"] for r in body["responses"]] == ["A", "B", "C"]
    assert "is_gold" not in json.dumps(body)
    assert "gold_answer" not in json.dumps(body)


def test_next_is_204_when_nothing_is_left(api, project, rater):
    assert next_task(api(rater), project).status_code == 204


def test_submit_with_retries_and_key_reuse(api, project, rater):
    make_task(project)
    client = api(rater)
    assignment = next_task(client, project).json()
    url = f"/api/assignments/{assignment['id']}/judgment/"
    body = {"choice": "A", "strength": 2}
    codes = [
        client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="key-1").status_code
        for _ in range(10)
    ]
    assert codes == [201] + [200] * 9
    assert Judgment.objects.count() == 1
    other = client.post(url, {"choice": "tie"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["error"]
    assert Judgment.objects.get().choice == "A"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"choice": "A"}, "strength"),
        ({"choice": "maybe"}, "choice"),
        ({"choice": "tie", "flags": ["<script>"]}, "Unknown flag"),
        ({"ranking": [[1]]}, "Unknown field"),
    ],
)
def test_bad_payloads_are_400_with_a_message_and_change_nothing(api, project, rater, body, message):
    task = make_task(project)
    client = api(rater)
    assignment = next_task(client, project).json()
    response = client.post(f"/api/assignments/{assignment['id']}/judgment/", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]
    task.refresh_from_db()
    assert task.judgments_done == 0
    assert Judgment.objects.count() == 0


def test_ranking_that_is_not_a_permutation_is_rejected(api, project, rater):
    make_task(project, kind="ranking", n_responses=3)
    client = api(rater)
    assignment = next_task(client, project).json()
    ids = [r["id"] for r in assignment["responses"]]
    url = f"/api/assignments/{assignment['id']}/judgment/"
    assert client.post(url, {"ranking": [ids[:2]]}, format="json").status_code == 400
    bad = client.post(url, {"ranking": [[ids[0]], [ids[1]], [ids[2]], [999999]]}, format="json")
    assert bad.status_code == 400
    assert "999999" in bad.json()["error"]
    assert client.post(url, {"ranking": [[ids[2]], ids[:2]]}, format="json").status_code == 201


def test_malformed_json_and_oversized_bodies(api, project, rater):
    make_task(project)
    client = api(rater)
    assignment = next_task(client, project).json()
    url = f"/api/assignments/{assignment['id']}/judgment/"
    broken = client.post(url, data="{not json", content_type="application/json")
    assert broken.status_code == 400
    assert "JSON" in broken.json()["error"]
    huge = {"choice": "tie", "rationale": "x" * 2_000_000}
    too_big = client.post(url, data=json.dumps(huge), content_type="application/json")
    assert too_big.status_code == 413
    assert "too large" in too_big.json()["error"]
    assert Judgment.objects.count() == 0


def test_skip_then_next_gives_another_task(api, project, rater):
    first, second = make_task(project, priority=1), make_task(project)
    client = api(rater)
    assignment = next_task(client, project).json()
    assert assignment["task"]["id"] == first.id
    missing = client.post(f"/api/assignments/{assignment['id']}/skip/", {}, format="json")
    assert missing.status_code == 400
    skipped = client.post(
        f"/api/assignments/{assignment['id']}/skip/",
        {"reason": "foreign language"},
        format="json",
    )
    assert skipped.json()["status"] == "skipped"
    assert next_task(client, project).json()["task"]["id"] == second.id


def test_revise_over_http_keeps_history(api, project, rater):
    make_task(project)
    client = api(rater)
    assignment = next_task(client, project).json()
    first = client.post(
        f"/api/assignments/{assignment['id']}/judgment/", {"choice": "tie"}, format="json"
    ).json()
    revised = client.post(
        f"/api/judgments/{first['id']}/revise/", {"choice": "B", "strength": 3}, format="json"
    )
    assert revised.status_code == 201
    assert revised.json()["revision"] == 2
    current = client.get(f"/api/projects/{project.id}/judgments/").json()["results"]
    assert [j["choice"] for j in current] == ["B"]
    everything = client.get(f"/api/projects/{project.id}/judgments/?all_revisions=1").json()
    assert [j["revision"] for j in everything["results"]] == [1, 2]
    assert Task.objects.get().judgments_done == 1


def test_token_authentication(client, project):
    rater = make_rater(project, username="tokenuser")
    token = Token.objects.create(user=rater)
    response = client.get("/api/projects/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [project.id]


def test_openapi_schema_and_docs_page(api, project, rater):
    schema = api(rater).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/projects/{project_id}/next/" in paths
    assert "/api/assignments/{assignment_id}/judgment/" in paths
    docs = api(rater).get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
