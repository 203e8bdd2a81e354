"""The leaderboard page in headless Chromium: with one system it explains itself; after a retrain
(base vs two policy versions, a reward model's evaluation, a policy curve with reward and KL)
every chart is drawn by Chart.js with a title and labelled axes, with no console error or CSP
violation. Screenshots: test-artifacts/screenshots/leaderboard-*.png."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from annotation.models import ModelVersion, TrainingRun
from tests.browser.test_dashboards import CHARTS, CSP_LISTENER
from tests.factories import make_rater
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open(open_session, project):
    session = open_session(make_rater(project, role="manager"))
    console: list[str] = []
    session.page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    session.page.add_init_script(CSP_LISTENER)
    session.goto(f"/manage/projects/{project.id}/leaderboard/")
    session.page.wait_for_load_state("load")
    return session, console


def test_one_system_explains_itself(open_session, project) -> None:
    cache.clear()
    judge_pairwise(
        project, make_pairwise_tasks(project, 29, systems=("demo", "demo")), make_raters(project, 2)
    )
    session, console = _open(open_session, project)
    answer = session.page.inner_text(".lb-answer")
    assert "Only one system so far: demo." in answer
    assert "58 pairwise judgments" in answer
    assert session.page.evaluate("() => window.__csp") == []
    assert not console
    assert not session.errors
    session.screenshot("leaderboard-one-system")


def test_after_a_retrain_every_chart_is_drawn(open_session, project) -> None:
    cache.clear()
    raters = make_raters(project, 3)
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 30, systems=("r2-dpo", "base")),
        raters,
        seed=1,
        first_wins_prob=0.7,
        tie_prob=0.1,
    )
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 30, systems=("r2-dpo", "r1-dpo"), start=30),
        raters,
        seed=2,
        first_wins_prob=0.6,
    )
    base = ModelVersion.objects.create(
        project=project, name="base", kind="policy", trainer="base", status="ready"
    )
    rm = ModelVersion.objects.create(
        project=project, name="rm-2", kind="reward", trainer="rm", status="ready"
    )
    run = TrainingRun.objects.create(
        project=project,
        status="succeeded",
        trainers=["rm", "dpo"],
        metrics={"evaluate": {"judge": rm.id, "prompts": 16}},
        curve=[
            {
                "phase": "policy",
                "model": "dpo",
                "i": i,
                "of": 20,
                "loss": 0.69 - i * 0.01,
                "rewards/margins": i * 0.05,
                "kl": i * 0.3,
            }
            for i in range(1, 21)
        ],
    )
    ModelVersion.objects.create(
        project=project,
        name="r2-dpo",
        kind="policy",
        trainer="dpo",
        status="ready",
        parent=base,
        training_run=run,
        metrics={
            "eval/win_rate": 0.69,
            "eval/mean_reward": 0.8,
            "eval/parent_mean_reward": 0.1,
            "eval/mean_length": 92.0,
            "eval/parent_mean_length": 61.0,
            "eval/kl": 6.0,
            "eval/prompts": 16.0,
        },
    )
    session, console = _open(open_session, project)
    charts = session.page.evaluate(CHARTS)
    ids = {c["id"] for c in charts}
    assert {
        "chart-ratings",
        "chart-head-to-head",
        "chart-rm-view",
        "chart-reward-length",
        f"chart-hack-{run.id}-dpo-rewards-margins",
        f"chart-hack-{run.id}-dpo-kl",
    } <= ids
    for c in charts:
        assert c["drawn"], c
        assert c["title"], c
        assert c["x"], c
        assert c["y"], c
        assert c["points"] > 0, c
    systems = session.page.locator("#table-leaderboard tbody tr td:nth-child(2)").all_inner_texts()
    assert systems[0] == "r2-dpo"
    assert session.page.evaluate("() => window.__csp") == []
    assert not console
    assert not session.errors
    session.screenshot("leaderboard-after-retrain")
