"""Manager pages render with their charts and tables; CSV downloads; exclusion toggle."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.cache import cache
from django.test import Client

from annotation.models import RaterExclusion, TrainingRun
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = pytest.mark.django_db

TABLES = [
    "agreement",
    "kendall",
    "cohen_pairs",
    "raters",
    "per_day",
    "per_hour",
    "by_rater",
    "burndown",
    "leases",
    "bias",
    "reward_length",
    "leaderboard",
    "win_rates",
    "runs",
]


@pytest.fixture
def client_for_manager(project, manager):
    cache.clear()
    raters = make_raters(project, 3)
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 20, systems=("<b>evil</b>", "=cmd()")),
        raters,
        seed=1,
    )
    TrainingRun.objects.create(
        project=project,
        status="succeeded",
        curve=[
            {"step": i, "loss": 1.0 / (i + 1), "rewards/accuracies": 0.5 + i / 40}
            for i in range(10)
        ],
        metrics={"eval/accuracy": 0.7},
    )
    client = Client()
    client.force_login(manager)
    return client, raters


@pytest.mark.parametrize("page", ["", "raters/", "leaderboard/", "exports/"])
def test_pages_render(project, client_for_manager, page) -> None:
    client, _ = client_for_manager
    response = client.get(f"/manage/projects/{project.id}/{page}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Content-Security-Policy" in response.headers
    assert "<script>" not in body
    assert " style=" not in body
    if page in ("", "raters/"):
        # charts.js specs: a canvas per chart and its JSON (no inline script: json_script is
        # type="application/json"), and no hand-drawn SVG left.
        assert body.count("<canvas data-chart=") >= (7 if page == "" else 1)
        assert body.count('type="application/json"') == body.count("<canvas data-chart=")
        assert "<svg" not in body
    if page == "leaderboard/":
        assert "&lt;b&gt;evil&lt;/b&gt;" in body
        assert "<b>evil</b>" not in body
        assert "Run " in body


@pytest.mark.parametrize("name", TABLES)
def test_every_table_downloads_as_csv(project, client_for_manager, name) -> None:
    client, _ = client_for_manager
    response = client.get(f"/manage/projects/{project.id}/csv/{name}/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    api = client.get(f"/api/projects/{project.id}/insight/").json()["tables"][name]
    assert rows[0] == api["columns"]
    assert len(rows) == 1 + len(api["rows"])


def test_csv_neutralises_formulas(project, client_for_manager) -> None:
    client, _ = client_for_manager
    text = client.get(f"/manage/projects/{project.id}/csv/leaderboard/").content.decode()
    assert "'=cmd()" in text


def test_exclusion_toggle_from_page(project, client_for_manager, manager) -> None:
    client, raters = client_for_manager
    url = f"/manage/projects/{project.id}/raters/{raters[0].id}/exclusion/"
    assert client.post(url, {"action": "exclude", "reason": "spam"}).status_code == 302
    live = RaterExclusion.objects.get(rater=raters[0], lifted_at__isnull=True)
    assert live.reason == "spam"
    assert live.excluded_by == manager
    page = client.get(f"/manage/projects/{project.id}/raters/").content.decode()
    assert "Restore" in page
    assert client.post(url, {"action": "restore"}).status_code == 302
    assert not RaterExclusion.objects.filter(lifted_at__isnull=True).exists()
    assert RaterExclusion.objects.get(rater=raters[0]).lifted_by == manager


@pytest.mark.parametrize("page", ["", "raters/", "leaderboard/", "exports/"])
def test_pages_render_for_an_empty_project(project, manager, page) -> None:
    cache.clear()
    client = Client()
    client.force_login(manager)
    response = client.get(f"/manage/projects/{project.id}/{page}")
    assert response.status_code == 200
    assert "No data yet" in response.content.decode() or page == "exports/"
    export = client.get(f"/api/projects/{project.id}/exports/manifest/").json()
    assert export["counts"]["rows"] == 0


def test_every_table_column_has_a_human_name(project, client_for_manager) -> None:
    """A page shows each column's human name with its explanation, never the bare CSV name.
    The win-rate matrix is the exception: its columns are the systems' own names."""
    from annotation.insight.columns import column_header
    from annotation.insight.dashboard import dashboard_get

    tables = dashboard_get(project.id)["tables"]
    bare = [
        f"{name}.{column}"
        for name, t in tables.items()
        if name != "win_rates"
        for column in t["columns"]
        if column_header(name, column)["help"].startswith("CSV column")
    ]
    assert not bare
