"""A manager starts a retrain from the nav's "Retrain now" and watches it on the run page.

Real parts end to end: the POST form, a real ``celery worker`` subprocess running the cycle on
a tiny model against the test database (PostgreSQL + Redis, as tests/workers/), and the run page
polling its JSON. The test only watches the page: it never reloads it and never writes the run.
Screenshots go to test-artifacts/screenshots/runs-*.png.
"""

from __future__ import annotations

import time

import pytest

from annotation import models
from tests.browser.conftest import SCREENSHOTS
from tests.factories import make_rater
from tests.workers import conftest as loop
from tests.workers.conftest import add_pairwise_judgments, make_loop_project

# The loop tests' fixtures: a real Redis, a real celery worker on the test database, a tiny model.
broker, needs_postgres, start_worker = loop.broker, loop.needs_postgres, loop.start_worker
tiny_base, worker_env = loop.tiny_base, loop.worker_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1400, "height": 1000}
NARROW_420 = {"width": 420, "height": 900}
# Enough work in evaluate and generate (prompts x samples x tokens) that a page polling once a
# second sees them run on this CPU, and a cycle still takes well under a minute.
OPTIONS = {
    "prompts_per_cycle": "16",
    "pairs_per_cycle": "6",
    "eval_prompts": "12",
    "rm_epochs": "40",
    "policy_epochs": "60",
    "device": "cpu",
}
STEP_ORDER = [
    "snapshot",
    "records",
    "reward",
    "policy",
    "evaluate",
    "register",
    "generate",
    "select",
    "tasks",
]


def no_horizontal_scroll(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def viewport_shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """What one screen of a phone shows (the full-page shots are too tall to read)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def test_retrain_now_then_the_run_page_follows_the_cycle_live(
    open_session, broker, start_worker, tiny_base
):
    project = make_loop_project(tiny_base, prompts=16, eval_prompts=12, max_new_tokens=64)
    add_pairwise_judgments(project, 8)
    manager = make_rater(project, role="manager")
    worker = start_worker(broker)
    session = open_session(manager, viewport=WIDE)
    page = session.page
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

    session.goto(f"/manage/projects/{project.id}/exports/")
    page.click("details.retrain-menu > summary")
    page.click("details.retrain-options > summary")
    for name, value in OPTIONS.items():
        page.fill(f"#nav-opt-{name}", value)
    session.screenshot("runs-retrain-form")
    page.click("form.retrain-form button[type=submit]")

    page.wait_for_url(f"**/manage/projects/{project.id}/runs/*/")
    run = models.TrainingRun.objects.get(project=project)
    assert page.url.endswith(f"/runs/{run.id}/")
    assert f"Retrain started: run {run.id}." in page.inner_text("ul.messages")
    page.evaluate("() => { window.__sameDocument = true; }")

    seen: list[str] = []
    shot_running = False
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        state = page.evaluate(
            "() => ({status: document.getElementById('run-app').dataset.status,"
            " step: document.getElementById('run-app').dataset.step})"
        )
        if state["step"] in STEP_ORDER and (not seen or seen[-1] != state["step"]):
            seen.append(state["step"])
        if not shot_running and state["step"] in ("policy", "evaluate"):
            page.wait_for_timeout(300)
            session.screenshot("runs-page-running")
            shot_running = True
        if state["status"] in ("succeeded", "failed"):
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError(f"the page never showed the run finish; saw {seen}\n{worker.tail()}")

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert page.evaluate("() => window.__sameDocument === true")  # no reload happened
    assert page.get_attribute("#run-app", "data-polling") == "0"  # stopped when finished
    # The page walked through the steps in the cycle's order while they ran.
    assert seen == sorted(seen, key=STEP_ORDER.index), seen
    assert {"reward", "policy"} <= set(seen), seen  # several seconds each; shorter steps can
    # fall between two polls (1 s)
    states = page.eval_on_selector_all("#run-steps li", "els => els.map(e => e.dataset.state)")
    assert states == ["done"] * 9 or set(states) <= {"done", "skipped"}
    verdict = page.inner_text("#run-verdict")
    assert verdict.startswith(("Promoted ", "Nothing promoted: "))
    assert page.get_attribute("#run-verdict", "data-state") in ("promoted", "not_promoted")
    assert page.locator("#run-charts canvas").count() >= 2
    assert page.get_attribute("#curve-rm-loss", "data-chart-y") == "training loss (nats)"
    assert page.get_attribute("#curve-rm-loss", "data-chart-x") == "optimizer step"
    assert page.locator("#run-eval table tbody tr").count() == 1
    assert "Judge (reward model)" in page.inner_text("#run-lineage")
    assert no_horizontal_scroll(page)
    session.screenshot("runs-page-finished-1400")

    page.set_viewport_size(NARROW_420)
    page.wait_for_timeout(300)
    assert no_horizontal_scroll(page)
    session.screenshot("runs-page-finished-420")
    viewport_shot(page, "runs-page-finished-420-top")
    page.locator("#run-eval-h").scroll_into_view_if_needed()
    viewport_shot(page, "runs-page-finished-420-eval")

    session.goto(f"/manage/projects/{project.id}/runs/")
    assert no_horizontal_scroll(page)
    session.screenshot("runs-list-420")
    page.set_viewport_size(WIDE)
    page.wait_for_timeout(200)
    assert no_horizontal_scroll(page)
    session.screenshot("runs-list-1400")
    assert session.errors == []
    assert console == []
    assert session.dialogs == []


def test_the_run_page_shows_the_online_rl_monitors_and_alarms(open_session):
    """A finished PPO cycle (as the worker leaves it, tests/annotation/test_run_pages.rl_run):
    the RL charts drawn, both alarms in words, model names as text, never as markup."""
    from tests.annotation.test_run_pages import EVIL, rl_run
    from tests.factories import ProjectFactory

    project = ProjectFactory()
    manager = make_rater(project, role="manager")
    run = rl_run(project)
    session = open_session(manager, viewport=WIDE)
    page = session.page

    session.goto(f"/manage/projects/{project.id}/runs/{run.id}/")
    page.wait_for_selector("#rl-ppo-overoptimization[data-chart-title]")

    assert page.is_visible("#run-rl")
    titles = page.eval_on_selector_all(
        "#run-rl-charts canvas", "cs => cs.map(c => c.dataset.chartTitle)"
    )
    assert titles[:2] == [
        "PPO policy: mean reward per step",
        "PPO policy: KL to the reference (the parent) per step",
    ]
    alarms = page.locator("#run-rl-alarms .rl-alarm")
    assert alarms.count() == 2
    assert alarms.nth(0).get_attribute("data-alarm") == "length"
    assert "reward rose while the mean response length grew" in alarms.nth(0).inner_text()
    assert page.is_hidden("#run-rl-quiet")
    lineage = page.inner_text("#run-lineage")
    assert f"ppo against rm {EVIL}, β 0.042" in lineage  # the name shown as text
    assert page.locator("img[onerror]").count() == 0  # and never parsed as markup
    assert session.errors == []
    assert no_horizontal_scroll(page)
    page.locator("#run-rl").screenshot(path=str(SCREENSHOTS / "runs-rl-monitors.png"))
