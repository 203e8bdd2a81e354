"""GET /api/projects/<id>/ai-agreement/: managers only, one pass or all, bad ``ai_pass`` refused;
AI verdicts never move the dashboard's human agreement."""

from __future__ import annotations

import pytest

from annotation import models
from annotation.insight.dashboard import dashboard_get
from tests.factories import ProjectFactory, make_rater
from tests.insight import ai_rows
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = pytest.mark.django_db


def _judged(project: models.Project, n: int = 12) -> tuple[list, models.AIPass]:
    tasks = make_pairwise_tasks(project, n)
    judge_pairwise(project, tasks, make_raters(project, 3), seed=4, first_wins_prob=0.75)
    ai = ai_rows.ai_pass(project)
    for i, (task, _) in enumerate(tasks):
        ai_rows.verdict(ai, task, None if i == 0 else (0 if i % 3 else 1), confidence=0.7)
    return tasks, ai


def test_managers_get_the_figures_others_do_not(project, manager, rater, api) -> None:
    _, ai = _judged(project)
    url = f"/api/projects/{project.id}/ai-agreement/"

    body = api(manager).get(url).json()
    [p] = body["passes"]
    assert p["id"] == ai.id
    assert p["overall"]["judged"] == 12
    assert p["overall"]["inconsistent"] == 1
    assert p["overall"]["ai_human"]["pairs"] == 11 * 3
    assert p["overall"]["ceiling"]["human_pairs"] == 11 * 3
    kappa = p["overall"]["ai_human"]["kappa"]
    assert kappa["low"] <= kappa["value"] <= kappa["high"]
    assert [g["principle"] for g in p["principles"]] == ["Be helpful."]
    assert api(manager).get(url, {"ai_pass": ai.id}).json()["passes"][0]["id"] == ai.id

    assert api(rater).get(url).status_code == 403
    outsider = make_rater(ProjectFactory(), role="manager")
    assert api(outsider).get(url).status_code == 404
    assert api().get(url).status_code in (401, 403)


def test_a_cai_batch_has_no_agreement_row(project, manager, api) -> None:
    _, ai = _judged(project)
    cai = ai_rows.ai_pass(project)
    models.AIPass.objects.filter(id=cai.id).update(method=models.AIMethod.CAI)
    url = f"/api/projects/{project.id}/ai-agreement/"
    body = api(manager).get(url).json()
    assert [p["id"] for p in body["passes"]] == [ai.id]
    assert body["total_passes"] == 1
    refused = api(manager).get(url, {"ai_pass": cai.id})
    assert refused.status_code == 400
    assert "Constitutional AI batch" in refused.json()["error"]


def test_a_bad_ai_pass_is_refused(project, manager, api) -> None:
    url = f"/api/projects/{project.id}/ai-agreement/"
    bad = api(manager).get(url, {"ai_pass": "x"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "ai_pass"
    other = ai_rows.ai_pass(ProjectFactory())
    assert api(manager).get(url, {"ai_pass": other.id}).status_code == 404


def test_documented_in_the_schema(api) -> None:
    schema = api().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    op = schema["paths"]["/api/projects/{project_id}/ai-agreement/"]["get"]
    assert "ai_pass" in [p["name"] for p in op["parameters"]]


def test_ai_verdicts_leave_the_human_agreement_unchanged(project) -> None:
    tasks = make_pairwise_tasks(project, 15)
    judge_pairwise(project, tasks, make_raters(project, 3), seed=9, first_wins_prob=0.7)
    before = dashboard_get(project.id, refresh=True)
    slots = list(models.Task.objects.order_by("id").values_list("slots_taken", "status"))
    ai = ai_rows.ai_pass(project)
    for i, (task, _) in enumerate(tasks):
        ai_rows.verdict(ai, task, i % 2, principle_index=0)
        ai_rows.verdict(ai, task, 1 - i % 2, principle_index=1)
    after = dashboard_get(project.id, refresh=True)
    for name in ("agreement", "kendall", "cohen_pairs", "bias"):
        assert after["tables"][name] == before["tables"][name], name
    assert after["summary"]["pairwise_judgments"] == before["summary"]["pairwise_judgments"]
    assert list(models.Task.objects.order_by("id").values_list("slots_taken", "status")) == slots
