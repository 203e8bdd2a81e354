"""What a screen-reader or keyboard-only rater relies on, checked on every task kind."""

from __future__ import annotations

import pytest

from tests.browser.helpers import CONVERSATION, PLAIN_ANSWERS, task_with_text
from tests.factories import ProjectFactory, make_rater

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), textarea, select, button')).filter(el =>
    !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
    !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim())
  ).map(el => el.outerHTML)"""


@pytest.mark.parametrize(
    ("kind", "n"), [("pairwise", 2), ("ranking", 4), ("rating", 3), ("demonstration", 1)]
)
def test_labels_landmarks_and_focus_order(open_session, kind, n):
    project = ProjectFactory(overlap=1, guidelines="Be *fair*.")
    rater = make_rater(project)
    task_with_text(project, kind=kind, texts=PLAIN_ANSWERS[:n], messages=CONVERSATION)
    s = open_session(rater)
    s.label(project.id)
    page = s.page
    assert page.evaluate(UNLABELLED) == []
    # Every group of radios or checkboxes sits in a fieldset with a legend.
    assert (
        page.evaluate(
            """() => Array.from(document.querySelectorAll('form.task input[type=radio],'
             + 'form.task input[type=checkbox]'))
           .filter(el => { const f = el.closest('fieldset');
                           return !f || !f.querySelector('legend'); }).length"""
        )
        == 0
    )
    assert page.locator("h1").count() == 1
    assert page.locator("[tabindex]:not([tabindex='0']):not([tabindex='-1'])").count() == 0
    # A new task puts focus on its heading, so a screen reader announces it.
    assert page.evaluate("document.activeElement.id") == "task-title"
    assert page.get_attribute("#status", "aria-live") == "polite"
    assert page.get_attribute("#alert", "role") == "alert"
    # Tab walks the task in reading order and reaches Submit.
    order = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const el = document.activeElement;"
            " return [el.tagName, el.getAttribute('type'),"
            " el.compareDocumentPosition(document.getElementById('task-title'))]; }"
        )
        order.append(focused)
        if focused[0] == "BUTTON" and focused[1] == "submit":
            break
    assert order[-1][:2] == ["BUTTON", "submit"]
    # Everything tabbed through follows the heading in the document (2 = heading precedes).
    assert all(pos & 2 for _, _, pos in order)
