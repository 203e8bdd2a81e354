"""Manager dashboards in headless Chromium: every page renders its charts and tables, without
console errors or CSP violations, and the exclusion toggle works; screenshots are saved to
test-artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache

from annotation.models import RaterExclusion, TrainingRun
from tests.factories import make_rater
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    ("", "overview", ["agreement", "bias", "per_day", "burndown", "leases"]),
    ("raters/", "raters", ["raters", "cohen_pairs"]),
    ("leaderboard/", "leaderboard", ["leaderboard", "win_rates", "runs"]),
]


@pytest.fixture
def dashboard_project(project):
    cache.clear()
    raters = make_raters(project, 4)
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 40, systems=("policy-v2", "policy-v1")),
        raters,
        seed=1,
        first_wins_prob=0.7,
        tie_prob=0.1,
    )
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 40, systems=("policy-v2", "imported-ref"), start=40),
        raters,
        seed=2,
        first_wins_prob=0.6,
    )
    TrainingRun.objects.create(
        project=project,
        status="succeeded",
        trainers=["rm", "dpo"],
        curve=[
            {"step": i, "loss": 0.7 - i * 0.02, "rewards/accuracies": 0.5 + i * 0.01}
            for i in range(20)
        ],
        metrics={"eval/accuracy": 0.68},
    )
    return project, raters


@pytest.mark.parametrize(("path", "name", "tables"), PAGES)
def test_dashboard_pages_render(open_session, dashboard_project, path, name, tables) -> None:
    project, _ = dashboard_project
    manager = make_rater(project, role="manager")
    session = open_session(manager)
    console: list[str] = []
    session.page.on(
        "console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None
    )
    session.goto(f"/manage/projects/{project.id}/{path}")
    page = session.page
    page.wait_for_selector("nav.manage-nav")
    for table in tables:
        assert page.locator(f"#table-{table}").count() == 1, table
        assert page.locator(f"#table-{table} a.csv").count() == 1
    if name in ("overview", "leaderboard"):
        charts = page.locator("svg.chart")
        assert charts.count() >= 2
        box = charts.first.bounding_box()
        assert box is not None
        assert box["width"] > 200
        assert box["height"] > 80
    if name == "leaderboard":
        systems = page.locator("#table-leaderboard tbody tr td:nth-child(2)").all_inner_texts()
        assert sorted(systems) == ["imported-ref", "policy-v1", "policy-v2"]
        assert systems[0] == "policy-v2"
    # The stylesheet applied (no CSP block): cards/tables are styled by manage.css.
    assert page.eval_on_selector("nav.manage-nav", "e => getComputedStyle(e).display") == "flex"
    assert not [c for c in console if "Content Security Policy" in c], console
    assert not session.errors
    session.screenshot(f"dashboard-{name}")


def test_exclusion_toggle_in_browser(open_session, dashboard_project) -> None:
    project, raters = dashboard_project
    manager = make_rater(project, role="manager")
    session = open_session(manager)
    session.goto(f"/manage/projects/{project.id}/raters/")
    page = session.page
    target = raters[0]
    page.fill(f"#reason-{target.id}", "clicks too fast")
    page.click(f"form[action$='/raters/{target.id}/exclusion/'] button")
    page.wait_for_selector(".messages li")
    assert RaterExclusion.objects.get(rater=target, lifted_at__isnull=True).reason == (
        "clicks too fast"
    )
    session.screenshot("dashboard-raters-excluded")
    page.click(f"form[action$='/raters/{target.id}/exclusion/'] button")
    page.wait_for_selector(".messages li")
    assert not RaterExclusion.objects.filter(lifted_at__isnull=True).exists()


def test_export_download_in_browser(open_session, dashboard_project) -> None:
    project, _ = dashboard_project
    manager = make_rater(project, role="manager")
    session = open_session(manager)
    session.goto(f"/manage/projects/{project.id}/exports/")
    page = session.page
    session.screenshot("dashboard-exports")
    page.select_option("#aggregation", "majority")
    with page.expect_download() as info:
        page.click("form.export-form button[type=submit]")
    download = info.value
    assert download.suggested_filename.endswith("-preference-standard-majority.jsonl")
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) <= 80
