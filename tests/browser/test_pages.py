"""The rater's pages without a browser: access, fragments, headers, counts."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Assignment, AssignmentStatus
from tests.browser.helpers import PLAIN_ANSWERS, task_with_text
from tests.factories import ProjectFactory, make_rater, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(overlap=1, guidelines="<script>alert(1)</script> **bold**")


@pytest.fixture
def rater(project):
    return make_rater(project)


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_login(project):
    response = Client().get(f"/projects/{project.id}/label/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_other_projects_are_not_found(project, rater):
    other = ProjectFactory()
    make_task(other)
    client = client_for(rater)
    assert client.get(f"/projects/{other.id}/label/").status_code == 404
    assert client.post(f"/projects/{other.id}/label/next/").status_code == 404
    assert not Assignment.objects.filter(project=other).exists()


def test_page_renders_first_task_with_sanitised_guidelines_and_csp(project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    response = client_for(rater).get(f"/projects/{project.id}/label/")
    assert response.status_code == 200
    html = response.content.decode()
    assignment = Assignment.objects.get(task=task, rater=rater)
    assert f'data-assignment="{assignment.id}"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <strong>bold</strong>" in html
    assert "<script>alert" not in html
    assert "script-src 'self'" in response["Content-Security-Policy"]
    # Every script is an external file (the CSP would refuse anything inline).
    assert html.count("<script") == html.count('<script src="/static/')


def test_reload_resumes_the_same_task(project, rater):
    task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[2:4])
    client = client_for(rater)
    first = client.get(f"/projects/{project.id}/label/").context["assignment"].id
    nxt = client.post(f"/projects/{project.id}/label/next/", {"prefetch": "1"})
    assert nxt.status_code == 200
    assert int(nxt["X-Assignment-Id"]) != first
    assert nxt["Cache-Control"] == "no-store"
    assert client.get(f"/projects/{project.id}/label/").context["assignment"].id == first
    # Asking again for the prefetched one gives the same lease, not a third task.
    again = client.post(f"/projects/{project.id}/label/next/", {"prefetch": "1"})
    assert again["X-Assignment-Id"] == nxt["X-Assignment-Id"]
    assert Assignment.objects.filter(rater=rater, status=AssignmentStatus.ACTIVE).count() == 2


def test_next_is_204_when_nothing_is_left(project, rater):
    client = client_for(rater)
    assert client.post(f"/projects/{project.id}/label/next/", {"prefetch": "1"}).status_code == 204
    page = client.get(f"/projects/{project.id}/label/")
    assert "No task for you right now" in page.content.decode()


def test_next_requires_post_and_csrf(project, rater):
    make_task(project)
    client = Client(enforce_csrf_checks=True)
    client.force_login(rater)
    assert client.get(f"/projects/{project.id}/label/next/").status_code == 405
    assert client.post(f"/projects/{project.id}/label/next/").status_code == 403


def test_home_lists_projects_with_tasks_left_and_today(project, rater):
    for _ in range(3):
        make_task(project)
    ProjectFactory(name="Not mine")
    response = client_for(rater).get("/")
    rows = response.context["rows"]
    assert [(r["project"].id, r["left"], r["today"]) for r in rows] == [(project.id, 3, 0)]
    assert "Not mine" not in response.content.decode()


def test_home_links_managers_to_the_dashboard(project, rater):
    manager = make_rater(project, role="manager")
    make_task(project)
    assert f"/manage/projects/{project.id}/" in client_for(manager).get("/").content.decode()
    assert "/manage/" not in client_for(rater).get("/").content.decode()
