"""Manager dashboards in headless Chromium, wide (1400 px) and narrow (420 px): every page renders
its charts (Chart.js, through charts.js) and tables without widening the page, without console
errors or CSP violations, and the exclusion toggle works; screenshots are saved to
test-artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache

from annotation.models import RaterExclusion, TrainingRun
from tests.browser.conftest import SCREENSHOTS
from tests.factories import make_rater
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    ("", "overview", ["agreement", "bias", "rates", "per_day", "burndown", "leases"]),
    ("raters/", "raters", ["raters", "cohen_pairs"]),
    ("leaderboard/", "leaderboard", ["leaderboard", "win_rates", "runs"]),
    ("exports/", "exports", []),
]
WIDTHS = {"wide": {"width": 1400, "height": 900}, "narrow": {"width": 420, "height": 900}}

# Recorded before any page script runs (Playwright's init scripts are not subject to the CSP).
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", e => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

CHARTS = """() => [...document.querySelectorAll("canvas[data-chart]")].map(c => {
  const chart = window.Chart && window.Chart.getChart(c);
  const box = c.getBoundingClientRect();
  return {
    id: c.dataset.chart, title: c.dataset.chartTitle || "", x: c.dataset.chartX || "",
    y: c.dataset.chartY || "", drawn: Boolean(chart), type: chart ? chart.config.type : null,
    points: chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0,
    width: box.width, height: box.height, right: box.right,
  };
})"""


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


CASES = [(*page, width) for page in PAGES for width in WIDTHS]


@pytest.mark.parametrize(("path", "name", "tables", "width"), CASES)
def test_dashboard_pages_render(open_session, dashboard_project, path, name, tables, width) -> None:
    """At 1400 and 420 px: no horizontal page scroll; every chart has a title and labelled axes
    and was drawn by Chart.js; tables have their CSV link; no console error, page error or CSP
    violation. The project is minutes old (all judgments just now): one day of data."""
    project, _ = dashboard_project
    manager = make_rater(project, role="manager")
    session = open_session(manager, viewport=WIDTHS[width])
    console: list[str] = []
    session.page.on(
        "console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None
    )
    session.page.add_init_script(CSP_LISTENER)
    session.goto(f"/manage/projects/{project.id}/{path}")
    page = session.page
    page.wait_for_selector("nav.manage-nav")
    page.wait_for_load_state("load")
    for table in tables:
        assert page.locator(f"#table-{table}").count() == 1, table
        assert page.locator(f"#table-{table} a.csv").count() == 1
    charts = page.evaluate(CHARTS)
    if name in ("overview", "raters"):
        assert len(charts) >= (7 if name == "overview" else 1), charts
    for c in charts:
        assert c["drawn"], c
        assert c["title"], c
        assert c["x"], c
        assert c["y"], c
        assert c["width"] > 200, c
        assert c["height"] > 150, c
        assert c["right"] <= WIDTHS[width]["width"], c
    if name == "overview":
        by_id = {c["id"]: c for c in charts}
        # One day (and one hour) of data: a point, not a bar filling the plot.
        assert by_id["chart-per-day"]["type"] == "scatter"
        assert by_id["chart-per-day"]["points"] == 1
        assert by_id["chart-per-hour"]["type"] == "scatter"
        assert by_id["chart-agreement"]["type"] == "scatterWithErrorBars"
        assert by_id["chart-bias"]["type"] == "scatterWithErrorBars"
        assert "Krippendorff" in by_id["chart-agreement"]["y"]
        assert "last hour" in page.inner_text("dl.cards")
        # Column names are human, and explain themselves.
        header = page.locator("#table-agreement th abbr").first
        assert header.get_attribute("title")
        assert "_" not in "".join(page.locator("#table-agreement th").all_inner_texts())
    if name == "leaderboard":
        systems = page.locator("#table-leaderboard tbody tr td:nth-child(2)").all_inner_texts()
        assert sorted(systems) == ["imported-ref", "policy-v1", "policy-v2"]
        assert systems[0] == "policy-v2"
    if name == "raters":
        # The Exclude buttons are on screen without scrolling anything sideways.
        button = page.locator("form.exclusion button").first.bounding_box()
        assert button is not None
        assert button["x"] + button["width"] <= WIDTHS[width]["width"]
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= page.evaluate(
        "() => window.innerWidth"
    ), "the page scrolls sideways"
    # The stylesheet applied (no CSP block): cards/tables are styled by manage.css.
    assert page.eval_on_selector("nav.manage-nav", "e => getComputedStyle(e).display") == "flex"
    assert page.evaluate("() => window.__csp") == []
    assert not [c for c in console if "Content Security Policy" in c], console
    assert not [c for c in console if c], console
    assert not session.errors
    session.screenshot(f"dashboard-{name}-{width}")
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}-{width}-top.png"))


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
