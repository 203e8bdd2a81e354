"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Playwright's sync API runs an asyncio loop in the test thread; Django would then refuse ORM calls
there (SynchronousOnlyOperation), although they are plain synchronous calls. Hence the flag.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
NARROW = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Session:
    """One logged-in browser tab, recording every JS dialog and page error it sees."""

    def __init__(self, context, page, base_url: str) -> None:  # type: ignore[no-untyped-def]
        self.context = context
        self.page = page
        self.base_url = base_url
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _on_dialog(self, dialog) -> None:  # type: ignore[no-untyped-def]
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def label(self, project_id: int) -> None:
        self.goto(f"/projects/{project_id}/label/")
        self.wait_ready()

    def wait_ready(self) -> None:
        """Until the page's script has bound its shortcuts (``defer`` runs after parsing)."""
        self.page.wait_for_selector("#label-app[data-ready]", state="attached")

    def shown_assignment(self) -> int:
        return int(self.page.get_attribute("form.task", "data-assignment") or 0)

    def shown_response_ids(self) -> list[int]:
        ids = self.page.get_attribute("form.task", "data-responses") or ""
        return [int(x) for x in ids.split(",") if x]

    def wait_for_next(self, previous: int) -> None:
        self.page.wait_for_function(
            "prev => { const f = document.querySelector('form.task');"
            " return document.querySelector('#task-empty') ||"
            " (f && f.dataset.assignment !== String(prev)); }",
            arg=previous,
        )

    def wait_for_prefetch(self) -> None:
        """Until the next task (or 'none left') is held in the page's memory."""
        self.page.wait_for_function(
            "() => { const a = document.getElementById('label-app');"
            " const f = document.querySelector('form.task');"
            " return a.dataset.prefetched && f && a.dataset.prefetched !== f.dataset.assignment; }"
        )

    def wait_for_queue_empty(self) -> None:
        self.page.wait_for_function(
            "() => Object.keys(localStorage).filter(k => k.endsWith(':queue'))"
            ".every(k => JSON.parse(localStorage.getItem(k)).length === 0)"
        )

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_session(browser, live_server) -> Iterator[Callable[..., Session]]:  # type: ignore[no-untyped-def]
    contexts = []

    def open_for(user, viewport: dict | None = None) -> Session:  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport=viewport or DESKTOP)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        contexts.append(context)
        return Session(context, context.new_page(), live_server.url)

    yield open_for
    for context in contexts:
        context.close()
