"""Nothing lost, nothing doubled: drafts survive a reload, answers survive a dropped connection,
an undo writes a revision and keeps the first answer."""

from __future__ import annotations

import pytest

from annotation.models import Assignment, Judgment
from tests.browser.helpers import PLAIN_ANSWERS, task_with_text
from tests.factories import ProjectFactory, make_rater

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SUBMIT_URL = "**/api/assignments/*/judgment/"


@pytest.fixture
def project():
    return ProjectFactory(overlap=1)


@pytest.fixture
def rater(project):
    return make_rater(project, username="rob")


def test_reload_mid_task_keeps_the_draft(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="ranking", texts=PLAIN_ANSWERS[:3])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    kb = s.page.keyboard
    kb.press("a")
    kb.press("4")
    kb.press("Shift+Digit1")
    kb.press("r")
    kb.type("Half-written thought")
    s.page.wait_for_timeout(1100)  # the timer runs on
    s.page.reload()
    s.wait_ready()
    assert s.shown_assignment() == first  # the same task, not the prefetched one
    assert s.page.is_checked('input[name="choice"][value="A"]')
    assert s.page.is_checked('input[name="strength"][value="4"]')
    assert s.page.is_checked('input[name="flag"][data-n="1"]')
    assert s.page.input_value("#rationale") == "Half-written thought"
    assert s.page.inner_text("#timer") != "0:00"
    kb.press("Enter")
    s.wait_for_next(first)
    s.wait_for_queue_empty()
    judgment = Judgment.objects.get(task=task)
    assert (judgment.choice, judgment.strength, judgment.rationale) == (
        "A",
        4,
        "Half-written thought",
    )
    assert judgment.time_spent_ms >= 1000


def test_reload_keeps_ranking_and_demonstration_drafts(open_session, project, rater):
    task_with_text(project, kind="ranking", texts=PLAIN_ANSWERS[:3])
    s = open_session(rater)
    s.label(project.id)
    s.page.keyboard.press("2")
    s.page.keyboard.press("1")
    s.page.reload()
    s.wait_ready()
    a, b, _ = s.shown_response_ids()
    assert s.page.is_checked(f'input[name="rank-{a}"][value="2"]')
    assert s.page.is_checked(f'input[name="rank-{b}"][value="1"]')
    assert s.page.locator('.slot[data-rank="1"] .chip').inner_text() == "B"


def test_response_lost_then_offline_then_back_stores_exactly_one(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="rating", texts=PLAIN_ANSWERS[:1])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    keys: list[str] = []
    attempts = {"n": 0}

    def flaky(route, request):  # type: ignore[no-untyped-def]
        keys.append(request.headers["idempotency-key"])
        attempts["n"] += 1
        if attempts["n"] == 1:
            route.fetch()  # the server stores the judgment...
            route.abort("connectionreset")  # ...and the answer never reaches the browser
        elif attempts["n"] == 2:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    s.page.route(SUBMIT_URL, flaky)
    s.page.keyboard.press("x")
    s.page.keyboard.press("Enter")
    s.wait_for_next(first)  # the next task is on screen at once, from the prefetch
    s.wait_for_queue_empty()
    assert attempts["n"] >= 3
    assert len(set(keys)) == 1  # every retry carried the same Idempotency-Key
    assert Judgment.objects.filter(task=task).count() == 1
    assert Judgment.objects.get(task=task).choice == "both_bad"
    assert s.page.inner_text("#today-count") == "1"
    assert s.page.locator("#alert").is_hidden()


def test_offline_submit_is_sent_when_back_online(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[2:4])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    s.wait_for_prefetch()  # offline, the next task can only come from memory
    s.context.set_offline(True)
    s.page.keyboard.press("b")
    s.page.keyboard.press("2")
    s.page.keyboard.press("Enter")
    s.wait_for_next(first)
    assert "Offline" in s.page.inner_text("#net")
    assert not Judgment.objects.filter(task=task).exists()
    s.context.set_offline(False)
    s.wait_for_queue_empty()
    assert Judgment.objects.filter(task=task).count() == 1


def test_reload_before_the_answer_is_acknowledged(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    second = task_with_text(project, kind="rating", texts=PLAIN_ANSWERS[:1])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    s.wait_for_prefetch()
    s.page.route(SUBMIT_URL, lambda route: route.abort("internetdisconnected"))
    s.page.keyboard.press("t")
    s.page.keyboard.press("Enter")
    s.wait_for_next(first)
    s.page.reload()  # the answer is still only in this browser's queue
    # The page does not show the answered task again: it waits for the answer to be stored.
    s.page.wait_for_selector(".loading")
    assert s.page.locator("form.task").count() == 0
    s.page.wait_for_timeout(300)
    assert not Judgment.objects.filter(task=task).exists()
    s.page.unroute(SUBMIT_URL)
    s.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    s.wait_for_queue_empty()
    s.page.wait_for_selector('form.task[data-kind="rating"]')
    assert Judgment.objects.filter(task=task).count() == 1
    assert Assignment.objects.get(task=second, rater=rater).id == s.shown_assignment()


def test_undo_writes_a_revision_and_keeps_the_first(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="rating", texts=PLAIN_ANSWERS[:1])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    kb = s.page.keyboard
    kb.press("a")
    kb.press("2")
    kb.press("Enter")
    s.wait_for_next(first)
    assert s.page.locator("#btn-undo").is_visible()
    kb.press("z")
    s.page.wait_for_selector(f'form.task[data-assignment="{first}"]')
    assert s.page.locator("form.task .revising").is_visible()
    assert s.page.is_checked('input[name="choice"][value="A"]')  # the answer as submitted
    kb.press("b")
    kb.press("4")
    kb.press("Enter")
    s.wait_for_next(first)
    assert s.page.get_attribute("form.task", "data-kind") == "rating"  # back where we were
    s.wait_for_queue_empty()
    rows = list(Judgment.objects.filter(task=task).order_by("revision"))
    assert [(j.revision, j.choice, j.strength, j.is_current) for j in rows] == [
        (1, "A", 2, False),
        (2, "B", 4, True),
    ]
    assert s.page.inner_text("#today-count") == "1"  # a revision is not a second task


def test_answer_kept_while_logged_out_and_sent_after_login(
    open_session, project, rater, live_server
):
    from django.conf import settings
    from django.test import Client

    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[2:4])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    s.wait_for_prefetch()
    s.context.clear_cookies()  # the session ends (expired, or logged out elsewhere)
    s.page.keyboard.press("a")
    s.page.keyboard.press("1")
    s.page.keyboard.press("Enter")
    s.wait_for_next(first)
    s.page.wait_for_selector("#alert:not([hidden])")
    assert "log in again" in s.page.inner_text("#alert")
    assert not Judgment.objects.filter(task=task).exists()
    # The rater logs in again in another tab; the queued answer goes out with its key.
    client = Client()
    client.force_login(rater)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    s.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )
    other_tab = s.context.new_page()
    other_tab.goto(live_server.url + "/")  # sets a fresh CSRF cookie
    s.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    s.wait_for_queue_empty()
    judgment = Judgment.objects.get(task=task)
    assert (judgment.choice, judgment.strength) == ("A", 1)
