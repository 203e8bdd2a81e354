"""The leaderboard answers its question on hand-made data: one system (and why there is no
ranking), two systems with known judgments (known Bradley-Terry order, win rate and Wilson
interval), the reward model's view of policy versions, and what a run did not record."""

from __future__ import annotations

import math

import pytest
from django.core.cache import cache
from django.test import Client

from annotation.insight.dashboard import insight_refresh
from annotation.models import ModelVersion, TrainingRun
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def rows(data, name):
    t = data["tables"][name]
    return [dict(zip(t["columns"], r, strict=True)) for r in t["rows"]]


def wilson(k: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def page(project, manager) -> str:
    client = Client()
    client.force_login(manager)
    response = client.get(f"/manage/projects/{project.id}/leaderboard/")
    assert response.status_code == 200
    return response.content.decode()


def test_one_system_says_so_and_what_would_make_a_second(project, manager) -> None:
    raters = make_raters(project, 2)
    judge_pairwise(project, make_pairwise_tasks(project, 29, systems=("demo", "demo")), raters)
    data = insight_refresh(project.id)
    assert data["tables"]["leaderboard"]["rows"] == []
    (only,) = rows(data, "systems")
    assert only["system"] == "demo"
    assert only["same_system_judgments"] == 58
    assert only["games"] == 0
    body = page(project, manager)
    assert 'data-leaderboard-state="one-system"' in body
    assert "Only one system so far: demo." in body
    assert "All 58 pairwise judgments compare two responses of that same system" in body
    assert "a retrain" in body
    assert "importing responses with another <code>source</code>" in body
    assert "No data yet" in body  # the empty tables still say so, below the answer


def test_two_systems_known_order_win_rate_and_interval(project, manager) -> None:
    raters = make_raters(project, 2)  # overlap 2: both judge every task
    # 30 tasks where "new" (first) always wins, 10 where "base" (second) always wins, 4 ties x 2
    wins_new = make_pairwise_tasks(project, 30, systems=("new", "base"))
    wins_base = make_pairwise_tasks(project, 10, systems=("new", "base"), start=30)
    ties = make_pairwise_tasks(project, 4, systems=("new", "base"), start=40)
    judge_pairwise(project, wins_new, raters, first_wins_prob=1.0)
    judge_pairwise(project, wins_base, raters, first_wins_prob=0.0)
    judge_pairwise(project, ties, raters, tie_prob=1.0)
    data = insight_refresh(project.id)

    board = rows(data, "leaderboard")
    assert [r["system"] for r in board] == ["new", "base"]
    # Two systems: the MM fixed point is p_new / p_base = W_new / W_base, with the 0.1 prior's
    # half-games on each side; ties add half a win to each. W_new = 60 + 4, W_base = 20 + 4.
    gap = 400 * math.log10((64 + 0.05) / (24 + 0.05))
    assert board[0]["rating"] - board[1]["rating"] == pytest.approx(gap, abs=0.2)
    assert board[0]["rating"] + board[1]["rating"] == pytest.approx(2000, abs=0.2)
    for r in board:
        assert r["low"] <= r["rating"] <= r["high"]
        assert r["comparisons"] == 88
    assert board[0]["low"] > board[1]["high"]  # 64 of 88: clearly separated

    (h2h,) = rows(data, "head_to_head")
    assert (h2h["system_a"], h2h["system_b"]) == ("new", "base")
    assert (h2h["games"], h2h["a_wins"], h2h["b_wins"], h2h["ties"]) == (88, 60, 20, 8)
    assert h2h["a_win_rate"] == pytest.approx(64 / 88, abs=1e-4)
    low, high = wilson(64, 88)
    assert h2h["low"] == pytest.approx(low, abs=1e-4)
    assert h2h["high"] == pytest.approx(high, abs=1e-4)

    body = page(project, manager)
    assert "data-leaderboard-state" not in body
    assert 'data-chart="chart-ratings"' in body
    assert 'data-chart="chart-head-to-head"' in body
    assert body.count("<canvas data-chart=") == body.count('type="application/json"')


def test_two_systems_without_a_game_between_them(project, manager) -> None:
    raters = make_raters(project, 2)
    judge_pairwise(project, make_pairwise_tasks(project, 5, systems=("a", "a")), raters)
    judge_pairwise(project, make_pairwise_tasks(project, 5, systems=("b", "b"), start=5), raters)
    data = insight_refresh(project.id)
    assert data["tables"]["leaderboard"]["rows"] == []
    assert {r["system"]: r["games"] for r in rows(data, "systems")} == {"a": 0, "b": 0}
    body = page(project, manager)
    assert "2 systems, but no judgment compares two of them." in body


def test_reward_model_view_and_missing_curves(project, manager) -> None:
    base = ModelVersion.objects.create(
        project=project, name="base", kind="policy", trainer="base", status="ready"
    )
    rm = ModelVersion.objects.create(
        project=project, name="rm-1", kind="reward", trainer="rm", status="ready"
    )
    run = TrainingRun.objects.create(
        project=project,
        status="succeeded",
        metrics={"evaluate": {"judge": rm.id, "prompts": 16}},
        curve=[{"phase": "policy", "model": "dpo", "i": i, "of": 4, "loss": 0.7} for i in (1, 2)],
    )
    ModelVersion.objects.create(
        project=project,
        name="dpo-1",
        kind="policy",
        trainer="dpo",
        status="ready",
        parent=base,
        training_run=run,
        metrics={
            "loss": 0.5,
            "eval/win_rate": 0.75,
            "eval/mean_reward": 1.2,
            "eval/parent_mean_reward": 0.4,
            "eval/mean_length": 80.0,
            "eval/parent_mean_length": 40.0,
            "eval/kl": 3.5,
            "eval/prompts": 16.0,
        },
    )
    skipped = TrainingRun.objects.create(
        project=project,
        status="succeeded",
        metrics={"evaluate": {"skipped": "no reward model to judge the policy"}},
    )
    ModelVersion.objects.create(
        project=project,
        name="kto-2",
        kind="policy",
        trainer="kto",
        status="ready",
        parent=base,
        training_run=skipped,
        metrics={"eval/kl": 9.0},  # KTO's own held-out figure, not the evaluate step's
    )
    data = insight_refresh(project.id)
    versions = {r["version"]: r for r in rows(data, "policy_versions")}
    dpo = versions["dpo-1"]
    assert (dpo["rm_win_rate"], dpo["mean_length"], dpo["parent_mean_length"]) == (0.75, 80, 40)
    assert (dpo["kl"], dpo["judge"], dpo["parent"], dpo["note"]) == (3.5, "rm-1", "base", "")
    kto = versions["kto-2"]
    assert kto["rm_win_rate"] is None
    assert kto["kl"] is None
    assert kto["note"] == "no reward model to judge the policy"
    assert versions["base"]["note"].startswith("the base model")

    body = page(project, manager)
    assert 'data-chart="chart-rm-view"' in body
    assert 'data-chart="chart-reward-length"' in body
    assert "Reward-model scores of the candidates raters judged are not stored" in body
    assert (
        f"Run {run.id} recorded no rewards/margins or rewards/chosen, no kl or eval/kl for dpo "
        "(its curve has: loss)."
    ) in body
    assert "Over-optimization curve" in body


def test_policy_curve_with_reward_and_kl_is_drawn(project, manager) -> None:
    TrainingRun.objects.create(
        project=project,
        status="succeeded",
        curve=[
            {
                "phase": "policy",
                "model": "dpo",
                "i": i,
                "loss": 0.7,
                "rewards/margins": i / 10,
                "kl": i / 5,
            }
            for i in range(1, 5)
        ],
    )
    body = page(project, manager)
    run = TrainingRun.objects.get()
    assert f'data-chart="chart-hack-{run.id}-dpo-rewards-margins"' in body
    assert f'data-chart="chart-hack-{run.id}-dpo-kl"' in body
    assert "data-hacking-missing" not in body.replace('data-hacking-missing="all"', "")
