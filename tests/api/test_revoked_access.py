"""A member taken out of a project, or a rater excluded from it, loses access at once: through
project routes and through the lease and judgment ids they already hold.

Found by a probe: after the Membership row was deleted, the former member's token still read a
live lease (prompt and texts), renewed it, submitted a judgment into the project, read and
revised their judgments. The every-route matrix below is discovered from the URLconf (as in
``test_cross_project.py``), uses real token authentication, and runs both write paths (the
PostgreSQL statements and the ORM).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, AssignmentStatus, Judgment, Membership, Response, Task
from annotation.services.assignment import assignment_claim_next
from annotation.services.exclusions import rater_exclude, rater_restore
from annotation.services.judgments import judgment_submit
from annotation.services.projects import membership_remove
from tests.api.test_cross_project import METHODS, api_routes, fill, row_counts, url_routes
from tests.factories import ProjectFactory, make_rater, make_task

pytestmark = pytest.mark.django_db

BODIES = {
    "choice": "tie",
    "strength": 2,
    "text": "A written answer.",
    "reason": "unclear",
    "prefetch": True,
}


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def state() -> dict:
    """Row counts plus every field a write through these routes could change."""
    return {
        **row_counts(),
        "assignments": sorted(
            Assignment.objects.values_list("id", "status", "expires_at", "skip_reason")
        ),
        "tasks": sorted(Task.objects.values_list("id", "slots_taken", "judgments_done", "status")),
        "current": sorted(Judgment.objects.filter(is_current=True).values_list("id", flat=True)),
    }


@pytest.fixture
def world():
    """A rater of one project holding a live lease, a pairwise judgment and a demonstration
    judgment (whose revision would create a Response row), next to an open task."""
    project = ProjectFactory(overlap=1, task_kinds=["pairwise", "demonstration"])
    make_rater(project, role="admin")
    rater = make_rater(project)
    make_task(project)
    make_task(project, kind="demonstration", n_responses=1)
    judged = assignment_claim_next(project=project, rater=rater).assignment
    judgment = judgment_submit(
        assignment_id=judged.id, rater=rater, body={"choice": "A", "strength": 2}
    ).judgment
    demo = assignment_claim_next(project=project, rater=rater).assignment
    demo_judgment = judgment_submit(
        assignment_id=demo.id, rater=rater, body={"text": "My own answer."}
    ).judgment
    make_task(project)
    make_task(project)
    held = assignment_claim_next(project=project, rater=rater).assignment
    return project, rater, held, judgment, demo_judgment


def routes_for(ids: dict) -> list[str]:
    return [fill(route, names, ids) for route, names in api_routes()]


@pytest.mark.parametrize("removal", ["membership row deleted", "membership_remove"])
def test_every_route_is_404_to_a_removed_member(world, write_path, removal):
    project, rater, held, judgment, demo_judgment = world
    if removal == "membership_remove":
        membership_remove(project=project, user=rater)
    else:
        Membership.objects.filter(project=project, user=rater).delete()
    client = token_client(rater)
    before = state()
    failures = []
    for ids in (
        {"project_id": project.id, "assignment_id": held.id, "judgment_id": judgment.id},
        {"project_id": project.id, "assignment_id": held.id, "judgment_id": demo_judgment.id},
    ):
        for url in routes_for(ids):
            for method in METHODS:
                response = getattr(client, method)(url, BODIES, format="json")
                if response.status_code != 404:
                    failures.append(f"{method.upper()} {url} -> {response.status_code}")
    assert not failures
    assert state() == before
    # The lease's id was the way in; the project's list of projects no longer shows it either.
    assert client.get("/api/projects/").json()["count"] == 0


def test_removal_ends_the_members_leases(world):
    project, rater, held, _, _ = world
    taken = Task.objects.get(id=held.task_id).slots_taken
    assert membership_remove(project=project, user=rater) == 1
    held.refresh_from_db()
    assert held.status == AssignmentStatus.EXPIRED
    assert Task.objects.get(id=held.task_id).slots_taken == taken - 1
    # The slot is free for someone else now, not when the lease would have run out.
    other = make_rater(project)
    assert assignment_claim_next(project=project, rater=other).assignment.task_id == held.task_id


def test_excluded_rater_can_read_but_not_label(world, write_path):
    project, rater, held, judgment, demo_judgment = world
    manager = Membership.objects.get(project=project, role="admin").user
    rater_exclude(project=project, rater_id=rater.id, by=manager, reason="random clicking")
    held.refresh_from_db()
    assert held.status == AssignmentStatus.EXPIRED  # the exclusion ended the lease
    client = token_client(rater)
    before = state()
    writes = {
        f"/api/projects/{project.id}/next/": "post",
        f"/api/assignments/{held.id}/": "get",
        f"/api/assignments/{held.id}/renew/": "post",
        f"/api/assignments/{held.id}/skip/": "post",
        f"/api/assignments/{held.id}/judgment/": "post",
        f"/api/judgments/{judgment.id}/revise/": "post",
        f"/api/judgments/{demo_judgment.id}/revise/": "post",
    }
    for url, method in writes.items():
        response = getattr(client, method)(url, BODIES, format="json")
        assert response.status_code == 403, (url, response.status_code)
        assert "excluded you" in response.json()["error"]
        assert response.json()["code"] == "excluded"  # a client must not retry it as a session
    # Every other route and method: nothing is written, and only reads may succeed.
    for url in routes_for(
        {"project_id": project.id, "assignment_id": held.id, "judgment_id": judgment.id}
    ):
        for method in METHODS:
            response = getattr(client, method)(url, BODIES, format="json")
            if method != "get":
                assert response.status_code >= 400, (method, url, response.status_code)
    assert state() == before
    assert client.get(f"/api/judgments/{judgment.id}/").status_code == 200
    assert client.get(f"/api/projects/{project.id}/judgments/").json()["count"] == 2


def test_a_restored_rater_labels_again(world):
    project, rater, _, _, _ = world
    manager = Membership.objects.get(project=project, role="admin").user
    rater_exclude(project=project, rater_id=rater.id, by=manager)
    client = token_client(rater)
    assert client.post(f"/api/projects/{project.id}/next/").status_code == 403
    rater_restore(project=project, rater_id=rater.id, by=manager)
    response = client.post(f"/api/projects/{project.id}/next/")
    assert response.status_code == 200
    assert (
        client.post(
            f"/api/assignments/{response.json()['id']}/judgment/",
            {"choice": "B", "strength": 3},
            format="json",
        ).status_code
        == 201
    )


def test_excluded_rater_labeling_page_says_why(client, world):
    project, rater, _, _, _ = world
    manager = Membership.objects.get(project=project, role="admin").user
    rater_exclude(project=project, rater_id=rater.id, by=manager)
    client.force_login(rater)
    response = client.get(f"/projects/{project.id}/label/")
    assert response.status_code == 403
    assert "excluded you" in response.content.decode()


def test_manager_removes_a_member_through_the_api(world):
    project, rater, held, _, _ = world
    admin = Membership.objects.get(project=project, role="admin").user
    labeler_client = token_client(make_rater(project))
    url = f"/api/projects/{project.id}/members/{rater.username}/"
    assert labeler_client.delete(url).status_code == 403
    client = token_client(admin)
    assert client.delete(f"/api/projects/{project.id}/members/nobody/").status_code == 404
    assert client.delete(url).status_code == 204
    assert not Membership.objects.filter(project=project, user=rater).exists()
    held.refresh_from_db()
    assert held.status == AssignmentStatus.EXPIRED
    assert client.delete(url).status_code == 404
    # The last admin stays: someone must manage the project.
    last = client.delete(f"/api/projects/{project.id}/members/{admin.username}/")
    assert last.status_code == 409
    assert "last admin" in last.json()["error"]


def test_admin_site_deletion_ends_leases_too(client, world):
    project, rater, held, _, _ = world
    superuser = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(superuser)
    membership = Membership.objects.get(project=project, user=rater)
    response = client.post(f"/admin/annotation/membership/{membership.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(id=membership.id).exists()
    held.refresh_from_db()
    assert held.status == AssignmentStatus.EXPIRED
    assert Response.objects.filter(author=rater).count() == 1  # their work stays


def page_routes():
    """(route, kwarg names) for every server-rendered page that takes a project id."""
    return [
        (route, names)
        for route, names in url_routes()
        if not route.startswith(("api/", "admin/")) and "project_id" in names
    ]


def test_every_page_is_404_to_a_removed_member(client, world):
    project, rater, *_ = world
    membership_remove(project=project, user=rater)
    client.force_login(rater)
    before = state()
    routes = page_routes()
    assert any("label" in route for route, _ in routes)
    failures = []
    for route, names in routes:
        url = fill(route, names, {"project_id": project.id, "rater_id": rater.id})
        url = url.replace("<slug:table>", "agreement")
        codes = {method: getattr(client, method)(url).status_code for method in ("get", "post")}
        # 405 for the method a page does not take; the one it takes must say "not found".
        if 404 not in codes.values() or not set(codes.values()) <= {404, 405}:
            failures.append(f"{url} -> {codes}")
    assert not failures
    assert state() == before
