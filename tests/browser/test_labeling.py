"""A rater completes each task kind with the keyboard only; the database holds what was done."""

from __future__ import annotations

import pytest

from annotation.models import Assignment, AssignmentStatus, Judgment, Origin, Response
from tests.browser.conftest import NARROW, SCREENSHOTS
from tests.browser.helpers import CONVERSATION, PLAIN_ANSWERS, task_with_text
from tests.factories import ProjectFactory, make_rater

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GUIDELINES = "# Guidelines\n\nPrefer **correct** answers. Then `short` ones."


@pytest.fixture
def project():
    return ProjectFactory(guidelines=GUIDELINES, overlap=1)


@pytest.fixture
def rater(project):
    return make_rater(project, username="rita")


def _screens(session, name: str) -> None:
    """Desktop and narrow screenshots of the page as it is now."""
    session.screenshot(f"{name}-desktop")
    desktop = session.page.viewport_size
    session.page.set_viewport_size(NARROW)
    session.screenshot(f"{name}-narrow")
    session.page.set_viewport_size(desktop)


def test_pairwise_with_keyboard_only(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2], messages=CONVERSATION)
    s = open_session(rater)
    s.label(project.id)
    assignment = Assignment.objects.get(task=task, rater=rater)
    assert s.shown_assignment() == assignment.id
    assert s.shown_response_ids() == assignment.display_order
    assert s.page.locator(".conversation.multi .turn").count() == 3
    assert s.page.locator(".pair pre.highlight").count() == 2  # code is highlighted
    # Side by side on a desktop, stacked on a phone.
    a, b = s.page.locator("#resp-A").bounding_box(), s.page.locator("#resp-B").bounding_box()
    assert a["y"] == b["y"]
    assert a["x"] < b["x"]
    _screens(s, "pairwise")
    s.page.set_viewport_size(NARROW)
    a, b = s.page.locator("#resp-A").bounding_box(), s.page.locator("#resp-B").bounding_box()
    assert a["x"] == b["x"]
    assert b["y"] > a["y"]
    s.page.set_viewport_size({"width": 1366, "height": 900})

    kb = s.page.keyboard
    kb.press("d")  # diff view on
    assert s.page.locator("#resp-A .diff").is_visible()
    assert s.page.locator("#resp-B .diff ins").count() > 0
    s.screenshot("pairwise-diff-desktop")
    kb.press("d")
    kb.press("b")
    kb.press("3")
    kb.press("Shift+Digit2")  # second flag
    kb.press("r")
    kb.type("B explains the loop.")
    kb.press("Escape")
    kb.press("Enter")
    s.wait_for_next(assignment.id)
    s.wait_for_queue_empty()

    judgment = Judgment.objects.get(task=task, rater=rater)
    assert judgment.choice == "B"
    assert judgment.strength == 3
    assert judgment.preferred_response_id == assignment.display_order[1]
    assert judgment.display_order == assignment.display_order
    assert judgment.flags == [project.flag_choices[1]]
    assert judgment.rationale == "B explains the loop."
    assert judgment.time_spent_ms > 0
    assert s.page.locator("#task-empty").is_visible()
    assert s.page.inner_text("#today-count") == "1"
    assert s.errors == []


def test_ranking_with_keyboard_only_and_ties(open_session, project, rater):
    task = task_with_text(project, kind="ranking", texts=PLAIN_ANSWERS)
    s = open_session(rater)
    s.label(project.id)
    shown = s.shown_response_ids()
    assert shown == Assignment.objects.get(task=task, rater=rater).display_order
    kb = s.page.keyboard

    kb.press("Enter")  # nothing ranked yet: refused, with the reason
    assert "incomplete" in s.page.inner_text("#alert")
    kb.press("2")  # A -> 2, focus moves to B
    kb.press("1")  # B -> 1
    kb.press("1")  # C -> 1 (tie with B)
    kb.press("Enter")  # D unranked: refused, and says which
    assert "give D a rank" in s.page.inner_text("#alert")
    assert not Judgment.objects.filter(task=task).exists()
    kb.press("3")  # focus went to D
    assert s.page.locator('.slot[data-rank="1"] .chip').count() == 2
    _screens(s, "ranking")
    kb.press("Enter")
    s.wait_for_queue_empty()

    judgment = Judgment.objects.get(task=task, rater=rater)
    a, b, c, d = shown
    assert judgment.payload == {"ranking": [[b, c], [a], [d]]}
    assert judgment.display_order == shown


def test_ranking_by_drag_and_drop(open_session, project, rater):
    task = task_with_text(project, kind="ranking", texts=PLAIN_ANSWERS[:3])
    s = open_session(rater)
    s.label(project.id)
    a, b, c = s.shown_response_ids()
    for rid, rank in ((c, 1), (a, 2), (b, 2)):
        s.page.drag_and_drop(f'.chip[data-response="{rid}"]', f'.slot[data-rank="{rank}"]')
    assert s.page.is_checked(f'input[name="rank-{c}"][value="1"]')
    s.page.click("form.task button[type=submit]")
    s.wait_for_queue_empty()
    assert Judgment.objects.get(task=task).payload == {"ranking": [[c], [a, b]]}


def test_rating_with_keyboard_only(open_session, project, rater):
    task = task_with_text(project, kind="rating", texts=PLAIN_ANSWERS[:3])
    s = open_session(rater)
    s.label(project.id)
    a, b, c = s.shown_response_ids()
    kb = s.page.keyboard
    kb.press("6")  # Likert for A
    kb.press("y")  # A up, focus moves to B
    kb.press("n")  # B down
    kb.press("Enter")  # C has no thumb yet: refused
    assert "C" in s.page.inner_text("#alert")
    kb.press("2")
    kb.press("y")
    _screens(s, "rating")
    kb.press("Enter")
    s.wait_for_queue_empty()
    judgment = Judgment.objects.get(task=task, rater=rater)
    assert judgment.payload == {
        "ratings": [
            {"response": a, "thumb": "up", "likert": 6},
            {"response": b, "thumb": "down", "likert": None},
            {"response": c, "thumb": "up", "likert": 2},
        ]
    }
    assert judgment.display_order == [a, b, c]


def test_demonstration_edit_keeps_original(open_session, project, rater):
    task = task_with_text(project, kind="demonstration", texts=[PLAIN_ANSWERS[0]])
    (candidate,) = s_ids = [tr.response_id for tr in task.task_responses.all()]
    s = open_session(rater)
    s.label(project.id)
    assert s.shown_response_ids() == s_ids
    kb = s.page.keyboard
    kb.press("e")  # start from candidate A: its text is in the editor, focused
    assert s.page.input_value("#demo-text") == PLAIN_ANSWERS[0]
    kb.press("End")
    kb.type(" Squares are cheap.")
    _screens(s, "demonstration")
    kb.press("Control+Enter")
    s.wait_for_queue_empty()

    judgment = Judgment.objects.get(task=task, rater=rater)
    assert judgment.payload["based_on"] == candidate
    edited = Response.objects.get(id=judgment.payload["response"])
    assert edited.text == PLAIN_ANSWERS[0] + " Squares are cheap."
    assert edited.parent_id == candidate
    assert edited.origin == Origin.HUMAN
    assert Response.objects.get(id=candidate).text == PLAIN_ANSWERS[0]  # original kept


def test_demonstration_written_from_scratch(open_session, project, rater):
    task = task_with_text(project, kind="demonstration", texts=[PLAIN_ANSWERS[3]])
    s = open_session(rater)
    s.label(project.id)
    kb = s.page.keyboard
    kb.press("Control+Enter")  # empty: refused
    kb.press("Escape")
    kb.press("Enter")
    assert "Write the ideal response" in s.page.inner_text("#alert")
    kb.press("w")
    kb.type("Use `[n * n for n in range(10)]`.")
    kb.press("Control+Enter")
    s.wait_for_queue_empty()
    judgment = Judgment.objects.get(task=task, rater=rater)
    assert judgment.payload["based_on"] is None
    assert Response.objects.get(id=judgment.payload["response"]).parent_id is None


def test_skip_with_reason_help_and_guidelines(open_session, project, rater):
    task = task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="rating", texts=PLAIN_ANSWERS[2:3])
    s = open_session(rater)
    s.label(project.id)
    first = s.shown_assignment()
    kb = s.page.keyboard
    assert not s.page.locator("#guidelines").evaluate("d => d.open")
    kb.press("g")
    assert s.page.locator("#guidelines .md h1").inner_text() == "Guidelines"
    kb.press("?")
    assert s.page.locator("#help-dialog").is_visible()
    s.screenshot("shortcuts-desktop")
    kb.press("Escape")
    assert not s.page.locator("#help-dialog").is_visible()
    kb.press("s")
    assert s.page.locator("#skip-dialog").is_visible()
    kb.press("Enter")  # no reason yet: refused inside the dialog
    assert s.page.locator("#skip-error").is_visible()
    kb.press("2")
    kb.press("Enter")
    s.wait_for_next(first)
    s.wait_for_queue_empty()
    skipped = Assignment.objects.get(id=first)
    assert skipped.status == AssignmentStatus.SKIPPED
    assert skipped.skip_reason == "Broken or empty content"
    assert not Judgment.objects.filter(task=task).exists()
    assert s.page.get_attribute("form.task", "data-kind") == "rating"


def test_project_list_shows_tasks_left_and_today(open_session, project, rater):
    task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[:2])
    task_with_text(project, kind="pairwise", texts=PLAIN_ANSWERS[2:4])
    s = open_session(rater)
    s.goto("/")
    assert s.page.get_attribute("td[data-left]", "data-left") == "2"
    assert s.page.get_attribute("td[data-today]", "data-today") == "0"
    s.screenshot("projects-desktop")
    s.page.click("text=Start labeling")
    s.wait_ready()
    first = s.shown_assignment()
    s.page.keyboard.press("t")
    s.page.keyboard.press("Enter")
    s.wait_for_next(first)  # the second task is on screen, so it is held
    s.wait_for_queue_empty()
    s.goto("/")
    assert s.page.get_attribute("td[data-today]", "data-today") == "1"
    # One judged, one held as the prefetched next task: neither is "left" for anyone else.
    assert s.page.get_attribute("td[data-left]", "data-left") == "0"


def test_login_with_the_keyboard(browser, live_server, project, rater):
    rater.set_password("correct horse battery")
    rater.save()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.goto(live_server.url + "/login/")
        assert page.evaluate("document.activeElement.id") == "id_username"
        page.keyboard.type("rita")
        page.keyboard.press("Tab")
        page.keyboard.type("wrong")
        page.keyboard.press("Enter")
        page.wait_for_selector("[role=alert]")
        page.screenshot(path=str(SCREENSHOTS / "login-error-desktop.png"), full_page=True)
        page.fill("#id_password", "")
        page.focus("#id_password")
        page.keyboard.type("correct horse battery")
        page.keyboard.press("Enter")
        page.wait_for_url(live_server.url + "/")
        assert "Your projects" in page.inner_text("h1")
    finally:
        context.close()
