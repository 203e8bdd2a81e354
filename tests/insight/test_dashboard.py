"""Dashboard sections on simulated projects: planted biases, agreement, quality, caching."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.cache import cache
from django.utils import timezone

from annotation.insight import dashboard
from annotation.insight.dashboard import dashboard_get, insight_refresh
from annotation.models import Judgment, RaterExclusion
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters


def _row(data, table, key, col="monitor"):
    t = data["tables"][table]
    i = t["columns"].index(col)
    return dict(zip(t["columns"], next(r for r in t["rows"] if r[i] == key), strict=True))


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.mark.django_db
def test_planted_position_bias_detected(project) -> None:
    raters = make_raters(project, 4)
    tasks = make_pairwise_tasks(project, 200)
    judge_pairwise(project, tasks, raters, left_prob=0.7, seed=1)
    data = insight_refresh(project.id)
    pos = _row(data, "bias", "position: chose left/first shown")
    assert pos["n"] == 800
    assert pos["share"] == pytest.approx(0.7, abs=0.04)
    assert pos["low"] > 0.5
    assert pos["biased"] is True
    per_rater = data["tables"]["raters"]
    biased_col = per_rater["columns"].index("position_biased")
    assert sum(r[biased_col] for r in per_rater["rows"]) >= 3  # 200 judgments each


@pytest.mark.django_db
def test_unbiased_raters_show_no_bias(project) -> None:
    raters = make_raters(project, 4)
    # Equal lengths would hide length bias; here the first response (the usual winner) is
    # shorter half the time so content preference is not length preference.
    tasks = make_pairwise_tasks(project, 100, lengths=(40, 40))
    tasks += make_pairwise_tasks(project, 100, lengths=(30, 50), start=100)
    tasks += make_pairwise_tasks(project, 100, lengths=(50, 30), start=200)
    judge_pairwise(project, tasks, raters, first_wins_prob=0.8, seed=2)
    data = insight_refresh(project.id)
    pos = _row(data, "bias", "position: chose left/first shown")
    assert pos["n"] == 1200
    assert pos["low"] < 0.5 < pos["high"]
    assert pos["biased"] is False
    length = _row(data, "bias", "length: chose longer")
    assert length["n"] == 800  # equal-length tasks have no longer response
    assert length["biased"] is False


@pytest.mark.django_db
def test_agreement_and_rater_quality(project) -> None:
    raters = make_raters(project, 4)
    tasks = make_pairwise_tasks(project, 150)
    # The careful raters agree: the first response wins half the tasks, the second the rest.
    judge_pairwise(project, tasks[:75], raters[:3], first_wins_prob=1.0, seed=3)
    judge_pairwise(project, tasks[75:], raters[:3], first_wins_prob=0.0, seed=14)
    # The fourth rater answers at random and far too fast. Expected alpha: D_o = 1/4 (half the
    # items have one dissenting value out of four), D_e = 1/2, alpha = 1/2.
    judge_pairwise(project, tasks, raters[3:], first_wins_prob=0.5, seed=4, time_ms=1000)
    data = insight_refresh(project.id)
    choice = _row(data, "agreement", "pairwise", col="kind")
    assert choice["items"] == 150
    assert choice["krippendorff_alpha"] == pytest.approx(0.5, abs=0.12)
    assert choice["alpha_low"] < choice["krippendorff_alpha"] < choice["alpha_high"]
    assert choice["fleiss_kappa"] is not None
    q = data["tables"]["raters"]
    by_name = {r[1]: dict(zip(q["columns"], r, strict=True)) for r in q["rows"]}
    good = by_name[raters[0].username]
    bad = by_name[raters[3].username]
    assert good["loo_majority_agreement"] == 1.0
    assert good["loo_items"] == 150
    assert bad["loo_majority_agreement"] == pytest.approx(0.5, abs=0.15)
    assert bad["too_fast_share"] == 1.0
    assert good["too_fast_share"] == 0.0
    assert bad["median_seconds"] == 1.0
    pairs = data["tables"]["cohen_pairs"]
    assert len(pairs["rows"]) == 6
    kappa_col = pairs["columns"].index("kappa")
    assert pairs["rows"][-1][kappa_col] == pytest.approx(1.0)  # the three careful raters agree


@pytest.mark.django_db
def test_gold_accuracy(project) -> None:
    raters = make_raters(project, 2)
    gold = make_pairwise_tasks(project, 40, is_gold=True)
    judge_pairwise(project, gold, raters[:1], first_wins_prob=1.0, seed=5)
    judge_pairwise(project, gold, raters[1:], first_wins_prob=0.0, seed=6)
    data = insight_refresh(project.id)
    q = data["tables"]["raters"]
    by_name = {r[1]: dict(zip(q["columns"], r, strict=True)) for r in q["rows"]}
    assert by_name[raters[0].username]["gold_accuracy"] == 1.0
    assert by_name[raters[1].username]["gold_accuracy"] == 0.0
    assert by_name[raters[1].username]["gold_items"] == 40


@pytest.mark.django_db
def test_leaderboard_orders_systems(project) -> None:
    raters = make_raters(project, 3)
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 100, systems=("good", "bad")),
        raters,
        seed=7,
        first_wins_prob=0.85,
    )
    judge_pairwise(
        project,
        make_pairwise_tasks(project, 100, systems=("good", "mid"), start=100),
        raters,
        seed=8,
        first_wins_prob=0.6,
    )
    data = insight_refresh(project.id)
    board = data["tables"]["leaderboard"]
    assert [r[1] for r in board["rows"]] == ["good", "mid", "bad"]
    for row in board["rows"]:
        assert row[3] <= row[2] <= row[4]
    rates = data["tables"]["win_rates"]
    good_row = next(r for r in rates["rows"] if r[0] == "good")
    bad_col = rates["columns"].index("bad")
    assert good_row[bad_col] == pytest.approx(0.85, abs=0.07)


@pytest.mark.django_db
def test_throughput_and_burndown(project) -> None:
    raters = make_raters(project, 2)
    tasks = make_pairwise_tasks(project, 30)  # overlap 2 -> 60 required
    judge_pairwise(project, tasks[:10], raters, seed=9)
    from annotation.models import Task

    Task.objects.filter(id__in=[t.id for t, _ in tasks[:10]]).update(
        judgments_done=2, status="complete"
    )
    data = insight_refresh(project.id)
    s = data["summary"]
    assert s["remaining_judgments"] == 40
    assert s["judgments_last_24h"] == 20
    # All 20 judgments are seconds old: the rate is over the project's first 5 minutes
    # (the shortest span a rate stands on), not a 24 h average.
    assert s["rate_window"] == "last hour"
    assert s["rate_span_seconds"] == 300
    assert s["rate_per_hour"] == 20 * 12
    assert s["eta_hours"] == pytest.approx(40 / (20 * 12), abs=0.01)
    assert s["active_raters_24h"] == 2
    burn = data["tables"]["burndown"]["rows"]
    assert burn[-1][1:] == [60, 20, 40]
    today = timezone.now().date().isoformat()
    assert data["tables"]["per_day"]["rows"] == [[today, 20, 2]]
    assert [r[1:] for r in data["tables"]["per_hour"]["rows"]] == [[20, 2]]
    assert sorted(data["tables"]["by_rater"]["rows"]) == sorted(
        [today, r.username, 10] for r in raters
    )
    q = data["tables"]["raters"]
    per_hour_col = q["columns"].index("judgments_per_hour")
    assert [row[per_hour_col] for row in q["rows"]] == [10.0, 10.0]


@pytest.mark.django_db
def test_cache_warm_and_invalidated(project, django_assert_max_num_queries) -> None:
    raters = make_raters(project, 2)
    tasks = make_pairwise_tasks(project, 20)
    judge_pairwise(project, tasks[:10], raters, seed=10)
    first = dashboard_get(project.id)
    with django_assert_max_num_queries(5):
        warm = dashboard_get(project.id)
    assert warm["computed_at"] == first["computed_at"]
    judge_pairwise(project, tasks[10:], raters, seed=11)
    fresh = dashboard_get(project.id)
    assert fresh["summary"]["pairwise_judgments"] == 40
    RaterExclusion.objects.create(project=project, rater=raters[0])
    assert dashboard.insight_needs_refresh(project.id)


@pytest.mark.django_db
def test_large_project_served_stale(project, monkeypatch) -> None:
    raters = make_raters(project, 2)
    tasks = make_pairwise_tasks(project, 20)
    judge_pairwise(project, tasks[:10], raters, seed=12)
    monkeypatch.setattr(dashboard, "LARGE_PROJECT_JUDGMENTS", 5)
    dashboard_get(project.id)
    judge_pairwise(project, tasks[10:], raters, seed=13)
    stale = dashboard_get(project.id)
    assert stale["stale"] is True
    assert stale["summary"]["pairwise_judgments"] == 20
    insight_refresh(project.id)
    assert dashboard_get(project.id)["summary"]["pairwise_judgments"] == 40
    assert Judgment.objects.filter(project=project).count() == 40
    assert np.isfinite(1.0)


@pytest.mark.django_db
def test_ranking_and_rating_agreement(project) -> None:
    from annotation.models import Judgment
    from tests.factories import make_task

    raters = make_raters(project, 3)
    for i in range(6):
        task = make_task(project, kind="ranking", n_responses=3)
        ids = list(task.task_responses.values_list("response_id", flat=True))
        order = ids if i % 2 else ids[::-1]
        for k, rater in enumerate(raters):
            # Raters 0 and 1 agree exactly; rater 2 swaps the last two.
            ranking = [[r] for r in order] if k < 2 else [[order[0]], [order[2]], [order[1]]]
            Judgment.objects.create(
                task=task,
                project=project,
                rater=rater,
                kind="ranking",
                payload={"ranking": ranking},
                display_order=ids,
            )
        rating = make_task(project, kind="rating", n_responses=2)
        a, b = rating.task_responses.values_list("response_id", flat=True)
        for rater in raters:
            Judgment.objects.create(
                task=rating,
                project=project,
                rater=rater,
                kind="rating",
                display_order=[a, b],
                payload={
                    "ratings": [{"response": a, "thumb": "up"}, {"response": b, "thumb": "down"}]
                },
            )
    data = insight_refresh(project.id)
    kendall = data["tables"]["kendall"]
    row = dict(zip(kendall["columns"], kendall["rows"][0], strict=True))
    # Per task: tau(0,1) = 1, tau(0,2) = tau(1,2) = 1/3 (one discordant pair of three).
    assert row["mean_tau"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3, abs=1e-4)
    assert row["tasks"] == 6
    assert row["rater_pairs"] == 18
    rows = {
        r[1]: dict(zip(data["tables"]["agreement"]["columns"], r, strict=True))
        for r in data["tables"]["agreement"]["rows"]
    }
    assert rows["thumb (up/down)"]["percent"] == 1.0
    assert rows["thumb (up/down)"]["krippendorff_alpha"] == 1.0
    ranks = rows["rank of each response"]
    assert ranks["items"] == 18
    assert 0 < ranks["krippendorff_alpha"] < 1


@pytest.mark.django_db
def test_json_answers_are_read_only_for_kinds_with_judgments(
    project, django_assert_num_queries
) -> None:
    from annotation.insight import arrays, sections
    from tests.factories import make_task

    raters = make_raters(project, 2)
    judge_pairwise(project, make_pairwise_tasks(project, 12), raters, seed=3)
    m = arrays.judgment_matrix(project.id)
    assert arrays.current_kinds(m) == {"pairwise"}
    pw = arrays.pairwise_join(m, arrays.pairwise_tasks(project.id))
    with django_assert_num_queries(1):  # the raters' names; no ranking or rating query
        sections.agreement_section(project.id, pw, arrays.current_kinds(m))
    with django_assert_num_queries(3):  # unknown kinds: both JSON kinds are looked up
        sections.agreement_section(project.id, pw)
    task = make_task(project, kind="rating", n_responses=2)
    Judgment.objects.create(
        task=task, project=project, rater=raters[0], kind="rating", payload={"ratings": []}
    )
    assert arrays.current_kinds(arrays.judgment_matrix(project.id)) == {"pairwise", "rating"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_queries_give_the_same_dashboard(on_postgres) -> None:
    """In autocommit on PostgreSQL the independent queries run on their own connections."""
    if not on_postgres:
        pytest.skip("the concurrent path runs on PostgreSQL only")
    from django.db import transaction

    from tests.factories import ProjectFactory

    project = ProjectFactory(overlap=3)
    raters = make_raters(project, 3)
    judge_pairwise(project, make_pairwise_tasks(project, 30), raters, seed=15, tie_prob=0.1)
    parallel = dashboard.dashboard_compute(project.id)
    cache.clear()
    with transaction.atomic():  # forces the one-connection path
        sequential = dashboard.dashboard_compute(project.id)
    assert parallel["tables"] == sequential["tables"]
    assert parallel["summary"] == sequential["summary"]
    assert parallel["summary"]["pairwise_judgments"] == 90


@pytest.mark.django_db
def test_reward_model_length_correlation_from_training_metrics(project) -> None:
    from annotation.models import ModelKind, ModelVersion

    made = [
        ModelVersion.objects.create(
            project=project, name=name, kind=ModelKind.REWARD, trainer="rm", metrics=metrics
        )
        for name, metrics in [
            (
                "rm-v1",
                {
                    "eval/length_correlation": 0.42,
                    "eval/accuracy": 0.7,
                    "eval/length_balanced_accuracy": 0.55,
                    "eval/accuracy_longer_preferred": 0.3,
                    "eval/accuracy_shorter_preferred": 0.8,
                    "eval/shorter_wins_agreement": 0.75,
                    "eval/temperature": 3.5,
                },
            ),
            ("rm-v2", {"eval/accuracy": 0.6}),  # too few held-out pairs: no figure
        ]
    ]
    make_pairwise_tasks(project, 2)
    table = insight_refresh(project.id)["tables"]["reward_length"]
    rows = {r[0]: r[2:] for r in table["rows"]}
    assert table["columns"][2:] == [
        "length_correlation",
        "accuracy",
        "length_balanced_accuracy",
        "accuracy_longer_preferred",
        "accuracy_shorter_preferred",
        "shorter_wins_agreement",
        "temperature",
    ]
    assert rows == {
        made[0].id: [0.42, 0.7, 0.55, 0.3, 0.8, 0.75, 3.5],
        made[1].id: [None, 0.6, None, None, None, None, None],
    }


@pytest.mark.django_db
def test_burndown_ends_at_the_summary_remaining_with_gold_and_imported_labels(project) -> None:
    from annotation.models import Judgment, JudgmentSource, Task

    raters = make_raters(project, 2)
    tasks = make_pairwise_tasks(project, 12)  # overlap 2 -> 24 required
    judge_pairwise(project, tasks[:4], raters, seed=3)  # 8 counted judgments
    Task.objects.filter(id__in=[t.id for t, _ in tasks[:4]]).update(
        judgments_done=2, status="complete"
    )
    gold_task = tasks[4][0]
    Task.objects.filter(id=gold_task.id).update(is_gold=True, gold_answer={"choice": "A"})
    judge_pairwise(project, tasks[4:5], raters, seed=4)  # gold: work, but not in the queue
    Judgment.objects.create(  # an imported label: does not count against the quota either
        task=tasks[5][0],
        project=project,
        source=JudgmentSource.IMPORTED,
        kind="pairwise",
        choice="A",
        strength=2,
        preferred_response_id=tasks[5][1][0].id,
    )
    data = insight_refresh(project.id)
    remaining = data["summary"]["remaining_judgments"]
    assert remaining == 14  # 7 open non-gold tasks x 2
    assert data["tables"]["burndown"]["rows"][-1][1:] == [22, 8, remaining]
