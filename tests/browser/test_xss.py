"""Untrusted text in every widget: nothing in it may run.

The corpus goes into prompts, responses, guidelines, flag names, the project name and the user
name. Every page and widget that shows them is opened (each task kind, the diff view, the
guidelines, the shortcut list, the demonstration editor, the project list); a ``dialog`` listener
and a marker global catch any script that runs, and the DOM is checked for live payloads.
"""

from __future__ import annotations

import pytest

from annotation.models import Judgment
from tests.browser.helpers import task_with_text
from tests.factories import ProjectFactory, make_rater

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = [
    "<script>alert('script')</script><script>window.__xss = 1</script>",
    "<img src=x onerror=alert('img')>",
    "<svg><foreignObject><img src=x onerror=alert('svg-fo')></foreignObject></svg>",
    "<svg onload=alert('svg')><script>alert('svg-script')</script></svg>",
    "[click](javascript:alert('link'))",
    "[click](JaVaScRiPt:alert('link-case'))",
    "[click](&#106;avascript:alert('entity'))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pic](javascript:alert('md-img'))",
    "<a href=\"javascript:alert('raw-a')\">raw link</a>",
    "<iframe src=\"javascript:alert('iframe')\"></iframe>",
    "<details open ontoggle=alert('details')>x</details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>",
    '"><script>alert("attr-break")</script>',
    "```html\n<script>alert('in-code')</script>\n```",
    "`<img src=x onerror=alert('inline-code')>`",
    "<style>body{display:none}</style>",
    "[x]: javascript:alert('ref')\n\n[ref link][x]",
]
CORPUS = "\n\n".join(XSS)
LIVE_PAYLOAD = (
    "script:not([src]), iframe, svg, math, img[src='x'], [onerror], [onload], [ontoggle], "
    "a[href^='javascript' i], a[href^='data' i], style:not([data-allowed])"
)


@pytest.fixture
def hostile():
    project = ProjectFactory(
        name="<img src=x onerror=alert('project-name')>",
        guidelines=CORPUS,
        flag_choices=["<script>alert('flag')</script>", "<img src=x onerror=alert('flag2')>"],
        overlap=1,
    )
    rater = make_rater(project, username="<script>alert('user')</script>")
    messages = [
        {"role": "user", "content": CORPUS},
        {"role": "<img src=x onerror=alert('role')>", "content": XSS[1]},
        {"role": "user", "content": XSS[4]},
    ]
    for kind, n in (("pairwise", 2), ("ranking", 3), ("rating", 2), ("demonstration", 1)):
        task_with_text(project, kind=kind, texts=[CORPUS, *XSS[1:n]], messages=messages)
    return project, rater


def _assert_inert(s) -> None:  # type: ignore[no-untyped-def]
    assert s.dialogs == []
    assert s.page.evaluate("window.__xss") is None
    live = s.page.eval_on_selector_all(LIVE_PAYLOAD, "els => els.map(e => e.outerHTML)")
    assert live == []
    assert s.errors == []


def test_corpus_is_shown_as_text_and_never_runs(open_session, hostile):
    project, rater = hostile
    s = open_session(rater)
    s.goto("/")
    assert "<img src=x onerror=alert('project-name')>" in s.page.inner_text("table.projects")
    assert "<script>alert('user')</script>" in s.page.inner_text(".topbar")
    _assert_inert(s)

    s.label(project.id)
    kb = s.page.keyboard
    kb.press("g")  # guidelines open
    guidelines = s.page.inner_text("#guidelines .md")
    assert "<script>alert('script')</script>" in guidelines  # shown as text
    kb.press("?")
    kb.press("Escape")
    seen = []
    for _ in range(4):
        kind = s.page.get_attribute("form.task", "data-kind")
        seen.append(kind)
        shown = s.page.inner_text("form.task")
        assert "<img src=x onerror=alert('img')>" in shown
        assert "<script>alert('flag')</script>" in shown  # flag names as text
        _assert_inert(s)
        current = s.shown_assignment()
        kb.press("Shift+Digit1")
        s.screenshot(f"xss-{kind}-desktop")  # the corpus, visibly shown as text
        if kind == "pairwise":
            kb.press("d")
            diffs = s.page.inner_text("#resp-A .diff") + s.page.inner_text("#resp-B .diff")
            assert "<svg onload" in diffs
            _assert_inert(s)
            kb.press("a")
            kb.press("1")
            kb.press("Enter")
        elif kind == "ranking":
            for key in "123":
                kb.press(key)
            kb.press("Enter")
        elif kind == "rating":
            kb.press("y")
            kb.press("n")
            kb.press("Enter")
        else:
            kb.press("e")  # the raw candidate text goes into the editor, as text
            assert s.page.input_value("#demo-text") == CORPUS
            kb.press("Control+Enter")
        s.wait_for_next(current)
        _assert_inert(s)
    s.wait_for_queue_empty()
    assert sorted(seen) == ["demonstration", "pairwise", "ranking", "rating"]
    stored = Judgment.objects.filter(rater=rater)
    assert stored.count() == 4
    assert all(j.flags == ["<script>alert('flag')</script>"] for j in stored)
    _assert_inert(s)


def test_csp_forbids_inline_script(open_session, hostile):
    project, rater = hostile
    s = open_session(rater)
    response = s.page.goto(f"{s.base_url}/projects/{project.id}/label/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    # Even a script element added at run time with inline code is refused by the browser.
    s.page.evaluate(
        "() => { const el = document.createElement('script');"
        " el.textContent = 'window.__xss = 2'; document.body.appendChild(el); }"
    )
    assert s.page.evaluate("window.__xss") is None
