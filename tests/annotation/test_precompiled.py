"""The precompiled per-request reads return exactly what the ORM would."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.renderers import JSONRenderer

from annotation.api.serializers import JudgmentOut, judgment_body
from annotation.models import Project
from annotation.precompiled import membership_project, user_for_token
from annotation.services.assignment import assignment_claim_next
from annotation.services.judgments import judgment_submit
from tests.factories import make_rater, make_task

pytestmark = pytest.mark.django_db


def _field_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_user_for_token_is_the_orm_user(project):
    user = make_rater(project, first_name="Ada", is_staff=True)
    user.refresh_from_db()
    token = Token.objects.create(user=user)
    found = user_for_token(token.key)
    assert isinstance(found, get_user_model())
    assert _field_values(found) == _field_values(user)  # incl. datetimes on SQLite
    assert found._state.adding is False
    assert user_for_token("no-such-token") is None


def test_membership_project_is_the_orm_project(project):
    project.flag_choices = ["unsafe", "other"]  # custom list
    project.trainers = ["rm", "kto"]
    project.save()
    manager = make_rater(project, role="manager")
    found = membership_project(project_id=project.id, user_id=manager.id)
    assert found is not None
    got, role = found
    assert role == "manager"
    assert _field_values(got) == _field_values(Project.objects.get(id=project.id))
    assert got.flag_choices == ["unsafe", "other"]  # JSON decoded, not a string


def test_membership_project_none_for_non_members(project):
    other = make_rater(Project.objects.create(name="Other", slug="other"))
    assert membership_project(project_id=project.id, user_id=other.id) is None
    assert membership_project(project_id=10**9, user_id=other.id) is None


def test_inactive_and_unknown_tokens_get_401(api, project, client):
    user = make_rater(project, is_active=False)
    token = Token.objects.create(user=user)
    for key in (token.key, "f" * 40):
        response = client.get("/api/projects/", HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 401
        assert response.json()["error"] in ("User inactive or deleted.", "Invalid token.")


def test_judgment_body_renders_like_the_serializer(project, rater):
    make_task(project)
    claim = assignment_claim_next(project=project, rater=rater)
    result = judgment_submit(
        assignment_id=claim.assignment.id,
        rater=rater,
        body={"choice": "B", "strength": 3, "flags": ["unsafe"], "rationale": "<b>x</b>"},
        idempotency_key="k1",
    )
    stored = type(result.judgment).objects.get(id=result.judgment.id)
    rendered = json.loads(JSONRenderer().render(judgment_body(result.judgment)))
    assert rendered == json.loads(JSONRenderer().render(JudgmentOut(stored).data))


def test_has_expired_leases_probe(project, rater):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.precompiled import has_expired_leases

    make_task(project)
    lease = assignment_claim_next(project=project, rater=rater).assignment
    now = timezone.now()
    assert not has_expired_leases(project_id=project.id, now=now)
    later = lease.expires_at + timedelta(seconds=1)
    assert has_expired_leases(project_id=project.id, now=later)
    assert has_expired_leases(project_id=None, now=later)
    assert not has_expired_leases(project_id=project.id + 1, now=later)


def test_hot_statements_are_prepared_once_per_connection(project, rater, on_postgres):
    if not on_postgres:
        pytest.skip("prepared statements are PostgreSQL's")
    from django.db import connection

    make_task(project)
    make_task(project)
    assignment_claim_next(project=project, rater=rater)
    assignment_claim_next(project=project, rater=rater, prefetch=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    claims = [s for s in prepared if "WITH held AS" in s]
    assert len(claims) == 1  # prepared on first use, reused by the second claim
