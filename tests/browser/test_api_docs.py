"""The API docs page (Swagger UI) renders in Chromium under the site's strict CSP, and neither it
nor the login pages trip a single policy violation."""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


def open_page(browser, url: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    return context, page, errors


def test_swagger_ui_renders_under_the_strict_policy(browser, live_server):
    context, page, errors = open_page(browser, live_server.url + "/api/docs/")
    try:
        page.wait_for_selector(".opblock", timeout=20_000)
        operations = page.locator(".opblock").count()
        page.locator(".opblock-summary").first.click()  # expand: more rendering, more chances
        page.wait_for_selector(".opblock-body", timeout=10_000)
        violations = page.evaluate("window.__csp")
    finally:
        context.close()

    assert operations >= 20
    assert violations == []
    assert [e for e in errors if "Content Security Policy" in e] == []


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_login_pages_trip_no_violation(browser, live_server, path):
    context, page, errors = open_page(browser, live_server.url + path)
    try:
        page.wait_for_selector("#id_password")
        violations = page.evaluate("window.__csp")
    finally:
        context.close()

    assert violations == []
    assert [e for e in errors if "Content Security Policy" in e] == []
