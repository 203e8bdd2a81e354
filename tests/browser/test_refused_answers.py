"""An answer the server refuses, or keeps failing on, is shown to the rater and never blocks the
answers queued behind it (label.js "queue", label-notices.js)."""

from __future__ import annotations

import re

import pytest

from annotation.models import Judgment
from tests.browser.helpers import PLAIN_ANSWERS, task_with_text
from tests.factories import ProjectFactory, make_rater

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SUBMIT_URL = "**/api/assignments/*/judgment/"
HOSTILE_PROMPT = '<img src=x onerror="window.__xss = 1"> How do I square the numbers 0 to 9?'


@pytest.fixture
def project():
    return ProjectFactory(overlap=1)


@pytest.fixture
def rater(project):
    return make_rater(project, username="rita")


def answer(s, *keys: str) -> int:  # type: ignore[no-untyped-def]
    """Press ``keys`` on the task on screen, submit, and return that task's assignment id."""
    shown = s.shown_assignment()
    for key in keys:
        s.page.keyboard.press(key)
    s.page.keyboard.press("Enter")
    return shown


def test_refused_answer_is_shown_and_the_rest_are_stored(open_session, project, rater):
    hostile = [{"role": "user", "content": HOSTILE_PROMPT}]
    tasks = [task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2], messages=hostile)]
    tasks += [
        task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[i : i + 2]) for i in range(3)
    ]
    s = open_session(rater)
    s.label(project.id)
    s.wait_for_prefetch()
    # The API is unreachable; the pages (and so the prefetched next task) still load.
    s.page.route("**/api/**", lambda route: route.abort("internetdisconnected"))

    # 1: a rationale with a NUL pasted in (from a PDF, a terminal...).
    first = s.shown_assignment()
    s.page.keyboard.press("a")
    s.page.keyboard.press("4")
    s.page.locator("#rationale").fill("Clearer <b>code</b>\x00 and shorter")
    assert "\x00" in s.page.input_value("#rationale")
    s.page.keyboard.press("Control+Enter")
    s.wait_for_next(first)
    # 2: the prefetched task, answered while the first is still queued.
    second = answer(s, "b", "2")
    s.page.wait_for_selector(".loading")
    assert "Sending 2 answers" in s.page.inner_text("#net")
    assert Judgment.objects.count() == 0

    s.page.unroute("**/api/**")  # the connection returns
    s.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    notice = s.page.locator("#notices .notice.refused")
    notice.wait_for()
    text = notice.inner_text()
    assert f"Not saved: your answer to Pairwise task #{tasks[0].id}" in text
    assert "rationale: contains a NUL character (U+0000) at position 19" in text
    assert "A is better (much better)" in text
    assert re.search(r"Prompt\s+" + re.escape(HOSTILE_PROMPT), text)  # which prompt, as text
    # The rater's words as typed, the NUL made visible as a marked chip; no markup is live.
    assert "Clearer <b>code</b>NUL and shorter" in text
    assert notice.locator("dd mark.bad-char").inner_text() == "NUL"
    assert notice.locator("b, img").count() == 0
    assert s.page.evaluate("() => window.__xss") is None
    assert s.page.locator("#notices .notice.refused").count() == 1
    s.wait_for_queue_empty()
    # Nothing of the refused answer was stored; the one behind it was.
    assert not Judgment.objects.filter(task=tasks[0]).exists()
    assert Judgment.objects.get(task=tasks[1]).choice == "B"
    # The refused task comes back (its lease is still the rater's), to be answered again.
    s.page.wait_for_selector(f'form.task[data-assignment="{first}"]')
    assert s.page.locator("#alert").is_hidden()
    s.screenshot("refused-answer")

    # 3 and 4 (and the first again, now without the NUL) go through as usual.
    assert answer(s, "t") == first
    s.wait_for_next(first)
    third = answer(s, "x")
    s.wait_for_next(third)
    fourth = answer(s, "a", "1")
    s.wait_for_next(fourth)
    s.wait_for_queue_empty()
    assert second != third != fourth
    rows = {j.task_id: (j.choice, j.strength, j.rationale) for j in Judgment.objects.all()}
    assert rows == {
        tasks[0].id: ("tie", None, ""),
        tasks[1].id: ("B", 2, ""),
        tasks[2].id: ("both_bad", None, ""),
        tasks[3].id: ("A", 1, ""),
    }
    # The notice stays until the rater dismisses it (keyboard: Tab to it, Enter).
    dismiss = s.page.locator("#notices button[data-action=dismiss]")
    dismiss.focus()
    s.page.keyboard.press("Enter")
    s.page.wait_for_selector("#notices", state="hidden")
    assert s.errors == []
    assert s.dialogs == []


def test_server_errors_are_retried_up_to_a_cap_then_shown_with_retry(open_session, project, rater):
    tasks = [
        task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[i : i + 2]) for i in range(3)
    ]
    s = open_session(rater)
    s.label(project.id)
    s.wait_for_prefetch()
    first = s.shown_assignment()
    attempts: list[str] = []

    def broken_for_the_first(route, request):  # type: ignore[no-untyped-def]
        if f"/assignments/{first}/" in request.url:
            attempts.append(request.headers["idempotency-key"])
            route.fulfill(status=500, content_type="text/html", body="<h1>Server Error</h1>")
        else:
            route.continue_()

    s.page.route(SUBMIT_URL, broken_for_the_first)
    assert answer(s, "a", "1") == first
    s.wait_for_next(first)
    answer(s, "b", "3")
    # Five tries with back-off (about 15 s), then the answer is held and shown ...
    notice = s.page.locator("#notices .notice.held")
    notice.wait_for(timeout=40_000)
    assert len(attempts) == 5
    assert len(set(attempts)) == 1  # one Idempotency-Key for every try
    text = notice.inner_text()
    assert f"Not sent yet: your answer to Pairwise task #{tasks[0].id}" in text
    assert "Tried 5 times: the server answered 500." in text
    assert "A is better (negligibly better)" in text
    # ... and the answer behind it goes on.
    s.page.wait_for_function(
        "() => Object.keys(localStorage).filter(k => k.endsWith(':queue'))"
        ".every(k => JSON.parse(localStorage.getItem(k)).every(it => it.held))"
    )
    assert Judgment.objects.get(task=tasks[1]).choice == "B"
    assert not Judgment.objects.filter(task=tasks[0]).exists()
    # The server still holds the first task for the rater: the page waits, Retry in focus.
    s.page.wait_for_selector("#task-waiting")
    assert re.search(r"1 answer not sent", s.page.inner_text("#net"))
    assert s.page.evaluate("() => document.activeElement.dataset.action") == "retry"
    s.page.wait_for_timeout(2500)
    assert len(attempts) == 5  # held: not retried on its own
    s.screenshot("held-answer")

    s.page.unroute(SUBMIT_URL)  # the server is fixed
    s.page.keyboard.press("Enter")  # Retry now
    s.page.wait_for_selector(f'form.task[data-assignment]:not([data-assignment="{first}"])')
    s.wait_for_queue_empty()
    assert Judgment.objects.filter(task=tasks[0]).count() == 1
    stored = Judgment.objects.get(task=tasks[0])
    assert (stored.choice, stored.strength) == ("A", 1)
    assert s.page.locator("#notices").is_hidden()
    assert s.page.get_attribute("form.task", "data-kind") == "pairwise"
    assert s.errors == []


def test_an_excluded_rater_is_told_why_and_the_page_stops_asking(open_session, project, rater):
    """Excluding a rater ends their leases; their queued answer is refused for good (not retried
    as a lost session), the page says why instead of "retrying" forever, and nothing is stored."""
    from annotation.services.exclusions import rater_exclude

    for i in range(3):
        task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[i : i + 2])
    manager = make_rater(project, role="manager", username="mona")
    s = open_session(rater)
    s.label(project.id)
    s.wait_for_prefetch()
    rater_exclude(project=project, rater_id=rater.id, by=manager, reason="random clicking")
    answer(s, "a", "3")
    notice = s.page.locator("#notices .notice.refused")
    notice.wait_for()
    assert "A manager has excluded you from labeling this project" in notice.inner_text()
    refused = s.page.locator("#task-refused")
    refused.wait_for()
    assert "excluded you" in refused.inner_text()
    assert "comes back" not in notice.inner_text()  # it does not: the lease has ended
    assert s.page.locator("#alert").is_hidden()  # said once, in the page, not three times
    assert s.page.locator("#btn-undo").is_hidden()
    assert s.page.locator("#btn-skip").is_hidden()
    s.wait_for_queue_empty()
    requests: list[str] = []
    s.page.on("request", lambda r: requests.append(r.url))
    s.page.wait_for_timeout(3000)
    assert not [u for u in requests if "/next/" in u or "/judgment/" in u]  # it stopped asking
    assert Judgment.objects.count() == 0
    s.screenshot("excluded-rater")
    # A reload shows the same reason as a page, not a bare text response.
    s.page.reload()
    assert "excluded you" in s.page.inner_text("#label-refused")
