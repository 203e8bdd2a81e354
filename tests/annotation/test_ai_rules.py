"""The rules AI feedback keeps (docs/ai-feedback.md): AI verdicts never take a task's slots,
never complete a task, never reach raters (next task, labeling pages, their judgments), never
count as training judgments by default; a project with AI verdicts labels exactly like the same
project without them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from annotation import models
from annotation.selectors import eligible_judgments
from annotation.services.constitutions import constitution_save
from tests.factories import ProjectFactory, make_rater, make_task
from training.judges import load_judge
from workers import ai_feedback

pytestmark = pytest.mark.django_db
SECRET_PRINCIPLE = "Prefer the response a zebra-marker judge would pick."


def label_everything(project, api, raters):
    """Both raters ask for work and answer "A" until nothing is left; the counters after each
    step and the tasks served, in order."""
    trace = []
    for rater in raters:
        client = api(rater)
        while (
            answer := client.post(f"/api/projects/{project.id}/next/", {}, format="json")
        ).status_code == 200:
            body = answer.json()
            text = json.dumps(body)
            assert SECRET_PRINCIPLE not in text
            assert "confidence" not in text
            assert "ai_" not in text
            submitted = client.post(
                f"/api/assignments/{body['id']}/judgment/",
                {"choice": "A", "strength": 2},
                format="json",
            )
            assert submitted.status_code == 201
            task = models.Task.objects.get(id=body["task"]["id"])
            trace.append(
                (
                    body["task"]["id"] - base_id(project),
                    task.slots_taken,
                    task.judgments_done,
                    task.status,
                )
            )
    return trace


def base_id(project) -> int:
    return (
        models.Task.objects.filter(project=project).order_by("id").values_list("id", flat=True)[0]
    )


def twin(project_kwargs):
    project = ProjectFactory(**project_kwargs)
    tasks = [make_task(project, required=2) for _ in range(3)]
    raters = [make_rater(project), make_rater(project)]
    return project, tasks, raters


def judge_all(project, monkeypatch):
    manager = make_rater(project, role="manager")
    constitution_save(project=project, principles=[SECRET_PRINCIPLE], user=manager)
    monkeypatch.setattr(
        ai_feedback, "load_judge", lambda method, model, device: load_judge("fake", "bias=0")
    )
    from annotation.services.ai_passes import ai_pass_start

    ai_pass = ai_pass_start(project=project, user=manager, method="llm_judge", model="/fake")
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "succeeded"
    return ai_pass


def test_a_project_with_ai_verdicts_labels_exactly_like_one_without(api, monkeypatch):
    human_only, _, human_raters = twin({"overlap": 2})
    with_ai, _tasks, ai_raters = twin({"overlap": 2})
    before = list(
        models.Task.objects.filter(project=with_ai).values_list(
            "slots_taken", "judgments_done", "status"
        )
    )
    judge_all(with_ai, monkeypatch)
    assert models.AIJudgment.objects.filter(project=with_ai).count() == 3
    after = list(
        models.Task.objects.filter(project=with_ai).values_list(
            "slots_taken", "judgments_done", "status"
        )
    )
    assert after == before == [(0, 0, "open")] * 3
    # Every task still has both of its human slots, and the humans fill them exactly as in the
    # project without AI verdicts: same tasks served, same counters, same completions.
    assert label_everything(with_ai, api, ai_raters) == label_everything(
        human_only, api, human_raters
    )
    assert set(models.Task.objects.filter(project=with_ai).values_list("status", flat=True)) == {
        "complete"
    }
    # Training data by default (ai_training "human"): the human judgments only.
    assert with_ai.ai_training == "human"
    assert eligible_judgments(project_id=with_ai.id).count() == 6
    assert models.Judgment.objects.filter(project=with_ai).count() == 6


def test_raters_see_no_ai_verdict_on_their_pages_or_in_their_judgments(api, monkeypatch):
    project, _tasks, raters = twin({"overlap": 2})
    judge_all(project, monkeypatch)
    client = Client()
    client.force_login(raters[0])
    page = client.get(f"/projects/{project.id}/label/")
    served = client.post(f"/projects/{project.id}/label/next/")
    assert (page.status_code, served.status_code) == (200, 200)
    for response in (page, served):
        html = response.content.decode()
        assert SECRET_PRINCIPLE not in html
        assert "confidence" not in html.lower()
    assert models.Task.objects.filter(slots_taken=1).count() == 1  # the human lease, only
    mine = api(raters[0]).get(f"/api/projects/{project.id}/judgments/")
    assert mine.status_code == 200
    assert mine.json()["count"] == 0
    # Raters cannot read the passes either (managers only).
    assert api(raters[0]).get(f"/api/projects/{project.id}/ai-passes/").status_code == 403
