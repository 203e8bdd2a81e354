"""Every project-scoped endpoint and every method answers 404 to a member of another project,
and changes nothing. The routes are discovered from the URLconf, so new endpoints are covered
without editing this test."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from annotation.models import Judgment
from annotation.services.assignment import assignment_claim_next
from annotation.services.judgments import judgment_submit
from tests.factories import ProjectFactory, make_rater, make_task

pytestmark = pytest.mark.django_db
SCOPED_KWARGS = {"project_id", "assignment_id", "judgment_id"}
METHODS = ["get", "post", "put", "patch", "delete"]


def url_routes():
    """(route template with <name> placeholders, kwarg names) for every URL pattern."""

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), list(p.pattern.converters)

    return list(walk(get_resolver().url_patterns, ""))


def api_routes():
    """The /api/ patterns that take a project, assignment or judgment id."""
    return [
        (r, names)
        for r, names in url_routes()
        if r.startswith("api/") and SCOPED_KWARGS & set(names)
    ]


def row_counts():
    return {m.__name__: m.objects.count() for m in apps.get_app_config("annotation").get_models()}


@pytest.fixture
def foreign_world():
    """Project 2 with a task, a lease and a judgment; the outsider belongs to project 1 only."""
    home = ProjectFactory()
    outsider = make_rater(home, role="manager")
    make_task(home)
    away = ProjectFactory(overlap=2)
    make_task(away)
    make_task(away)
    owner = make_rater(away)
    judged = assignment_claim_next(project=away, rater=owner).assignment
    judgment = judgment_submit(assignment_id=judged.id, rater=owner, body={"choice": "tie"})
    held = assignment_claim_next(project=away, rater=owner).assignment
    ids = {
        "project_id": away.id,
        "assignment_id": held.id,
        "judgment_id": judgment.judgment.id,
    }
    return outsider, ids


def fill(route, names, ids):
    url = "/" + route
    for name in names:
        url = url.replace(f"<int:{name}>", str(ids.get(name, 1))).replace(
            f"<{name}>", str(ids.get(name, 1))
        )
    return url


def test_routes_are_discovered():
    routes = [r for r, _ in api_routes()]
    assert "api/projects/<int:project_id>/next/" in routes
    assert "api/assignments/<int:assignment_id>/judgment/" in routes
    assert len(routes) >= 12


def test_every_scoped_endpoint_and_method_is_404_across_projects(api, foreign_world):
    outsider, ids = foreign_world
    client = api(outsider)
    before = row_counts()
    failures = []
    for route, names in api_routes():
        url = fill(route, names, ids)
        for method in METHODS:
            response = getattr(client, method)(url, {"choice": "tie"}, format="json")
            if response.status_code != 404:
                failures.append(f"{method.upper()} {url} -> {response.status_code}")
    assert not failures
    assert row_counts() == before


def test_a_rater_sees_only_their_own_judgments(api, project):
    make_task(project)
    make_task(project)
    alice, bob = make_rater(project), make_rater(project)
    for rater in (alice, bob):
        a = assignment_claim_next(project=project, rater=rater).assignment
        judgment_submit(assignment_id=a.id, rater=rater, body={"choice": "tie"})
    listing = api(alice).get(f"/api/projects/{project.id}/judgments/").json()
    assert [j["rater"] for j in listing["results"]] == [alice.id]
    bobs = Judgment.objects.get(rater=bob)
    assert api(alice).get(f"/api/judgments/{bobs.id}/").status_code == 404


def test_labeler_cannot_use_manager_endpoints(api, project, rater):
    response = api(rater).get(f"/api/projects/{project.id}/tasks/")
    assert response.status_code == 403
    assert "managers" in response.json()["error"]


def test_anonymous_is_refused(api, project):
    assert api().get(f"/api/projects/{project.id}/").status_code in (401, 403)
