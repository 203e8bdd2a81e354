"""POST/GET /api/projects/<id>/ai-passes/: who may start a pass, what it judges, bad input."""

from __future__ import annotations

import pytest

from annotation import models
from annotation.services import ai_passes
from annotation.services.constitutions import constitution_save
from tests.factories import ProjectFactory, make_rater, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    from config import celery

    messages: list[tuple[str, tuple]] = []
    monkeypatch.setattr(celery, "send", lambda name, *args: messages.append((name, args)))
    return messages


@pytest.fixture
def judge_installed(settings, tmp_path):
    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    return str(tmp_path / ai_passes.DEFAULT_JUDGE_MODEL)


@pytest.fixture
def tasks(project, manager):
    constitution_save(
        project=project, principles=["Helpful.", "Honest.", "Harmless."], user=manager
    )
    pairwise = [make_task(project) for _ in range(4)]
    make_task(project, kind="ranking", n_responses=3)
    make_task(project, is_gold=True, gold_answer={"choice": "A"})
    return pairwise


def url(project):
    return f"/api/projects/{project.id}/ai-passes/"


def test_a_manager_starts_an_llm_judge_pass_sent_after_commit(
    project, manager, api, tasks, judge_installed, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(manager).post(url(project), {"method": "llm_judge"}, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["model_path"] == judge_installed
    assert body["queue"] == "cpu"
    assert body["status"] == "queued"
    assert body["constitution_version"] == 1
    assert body["principle_indexes"] == [0, 1, 2]
    assert body["tasks"] == 4  # pairwise, not gold, not ranking
    assert body["total"] == 12
    assert sent == [("ai.run_pass.cpu", (body["id"],))]
    stored = models.AIPass.objects.get(id=body["id"])
    assert stored.task_ids == [t.id for t in tasks]
    assert stored.created_by == manager


def test_the_pass_takes_chosen_tasks_principles_a_limit_a_model_and_a_queue(
    project, manager, api, tasks, sent
):
    answer = api(manager).post(
        url(project),
        {
            "method": "llm_judge",
            "model": "/models/bigger-judge",
            "queue": "gpu",
            "task_ids": [tasks[3].id, tasks[1].id, tasks[2].id],
            "limit": 2,
            "principles": [2, 0],
        },
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["model_path"], body["queue"], body["total"]) == ("/models/bigger-judge", "gpu", 4)
    assert models.AIPass.objects.get(id=body["id"]).task_ids == [tasks[3].id, tasks[1].id]
    assert body["principle_indexes"] == [0, 2]
    only_limit = api(manager).post(
        url(project), {"method": "llm_judge", "model": "/m", "limit": 3}, format="json"
    )
    assert only_limit.json()["tasks"] == 3


def test_a_reward_model_pass_uses_the_active_reward_model(project, manager, api, tasks, sent):
    refused = api(manager).post(url(project), {"method": "reward_model"}, format="json")
    assert refused.status_code == 400
    assert "no active reward model" in refused.json()["error"]
    version = models.ModelVersion.objects.create(
        project=project,
        name="rm-3",
        kind="reward",
        trainer="rm",
        artifact_path="/artifacts/rm-3",
        status="ready",
        is_active=True,
    )
    answer = api(manager).post(url(project), {"method": "reward_model"}, format="json")
    assert answer.status_code == 202
    assert (answer.json()["model_version"], answer.json()["total"]) == (version.id, 4)
    assert answer.json()["constitution_version"] is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "method", "method is required"),
        ({"method": "judge"}, "method", "method must be one of"),
        ({"method": "llm_judge", "prompt_ids": [1]}, "prompt_ids", "Unknown field"),
        ({"method": "cai", "task_ids": [1]}, "task_ids", "Unknown field"),
        ({"method": "cai", "verify": "yes"}, "verify", "verify must be true or false"),
        ({"method": "cai", "queue": "tpu"}, "queue", "queue must be one of"),
        ({"method": "cai", "limit": 0}, "limit", "limit must be an integer"),
        ({"method": "cai", "prompt_ids": [999999]}, "prompt_ids", "999999"),
        ({"method": "cai", "prompt_ids": "1"}, "prompt_ids", "list of prompt ids"),
        ({"method": "cai", "principles": [7]}, "principles", "No principle 7"),
        ({"method": "cai", "model": 5}, "model", "folder path"),
        ({"method": "llm_judge", "queue": "tpu"}, "queue", "queue must be one of"),
        ({"method": "llm_judge", "limit": 0}, "limit", "limit must be an integer"),
        ({"method": "llm_judge", "limit": "5"}, "limit", "limit must be an integer"),
        ({"method": "llm_judge", "task_ids": [999999]}, "task_ids", "999999"),
        ({"method": "llm_judge", "task_ids": "1,2"}, "task_ids", "list of task ids"),
        ({"method": "llm_judge", "principles": [3]}, "principles", "No principle 3"),
        ({"method": "llm_judge", "model": 5}, "model", "folder path"),
        ({"method": "llm_judge", "model": "a\x00b"}, "model", "NUL"),
        ({"method": "llm_judge", "color": "red"}, "color", "Unknown field"),
        ({"method": "reward_model", "model": "/x"}, "model", "leave model empty"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_starts_nothing(
    project, manager, api, tasks, judge_installed, sent, body, field, message
):
    answer = api(manager).post(url(project), body, format="json")
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert answer.json()["field"] == field
    assert not models.AIPass.objects.exists()
    assert sent == []


def test_a_manager_starts_a_cai_batch_sent_to_its_own_task(
    project, manager, api, tasks, judge_installed, sent, django_capture_on_commit_callbacks
):
    from tests.factories import PromptFactory

    PromptFactory(project=project, split="eval")
    train = list(
        models.Prompt.objects.filter(project=project, split="train")
        .order_by("id")
        .values_list("id", flat=True)
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(manager).post(
            url(project), {"method": "cai", "queue": "gpu", "limit": 3}, format="json"
        )
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["method"], body["queue"], body["model_path"]) == ("cai", "gpu", judge_installed)
    assert (body["tasks"], body["total"], body["status"]) == (3, 3, "queued")
    assert body["principle_indexes"] == [0, 1, 2]
    assert body["stats"] == {"verify_tasks": False}
    assert models.AIPass.objects.get(id=body["id"]).task_ids == train[:3]
    assert sent == [("ai.run_cai.gpu", (body["id"],))]
    chosen = api(manager).post(
        url(project),
        {"method": "cai", "prompt_ids": train[-1:], "principles": [1], "verify": True},
        format="json",
    )
    assert chosen.status_code == 202, chosen.json()
    assert (chosen.json()["total"], chosen.json()["principle_indexes"]) == (1, [1])
    assert chosen.json()["stats"] == {"verify_tasks": True}
    # every train prompt by default (the eval prompt is left out)
    everything = api(manager).post(url(project), {"method": "cai"}, format="json").json()
    assert everything["total"] == len(train)


def test_a_rater_cannot_start_a_cai_batch(project, rater, api, tasks, judge_installed, sent):
    answer = api(rater).post(url(project), {"method": "cai"}, format="json")
    assert answer.status_code == 403
    assert not models.AIPass.objects.exists()


def test_gold_and_non_pairwise_and_foreign_tasks_are_refused(project, manager, api, tasks, sent):
    gold = models.Task.objects.get(project=project, is_gold=True)
    ranking = models.Task.objects.get(project=project, kind="ranking")
    foreign = make_task(ProjectFactory())
    answer = api(manager).post(
        url(project),
        {
            "method": "llm_judge",
            "model": "/m",
            "task_ids": [tasks[0].id, gold.id, ranking.id, foreign.id],
        },
        format="json",
    )
    assert answer.status_code == 400
    assert f"{gold.id}, {ranking.id}, {foreign.id}" in answer.json()["error"]
    assert not models.AIPass.objects.exists()


def test_the_default_judge_must_be_installed_and_the_llm_judge_needs_a_constitution(
    project, manager, api, settings, tmp_path, sent
):
    settings.MODELS_DIR = tmp_path
    make_task(project)
    no_constitution = api(manager).post(
        url(project), {"method": "llm_judge", "model": "/m"}, format="json"
    )
    assert no_constitution.status_code == 400
    assert no_constitution.json()["field"] == "constitution"
    constitution_save(project=project, principles=["Helpful."], user=manager)
    not_installed = api(manager).post(url(project), {"method": "llm_judge"}, format="json")
    assert not_installed.status_code == 400
    assert "base_model install smollm2-135m-instruct" in not_installed.json()["error"]


def test_a_form_body_is_refused_asking_for_json(project, manager, api, tasks, sent):
    answer = api(manager).post(url(project), {"method": "llm_judge", "model": "/m"})
    assert answer.status_code == 400
    assert "as JSON" in answer.json()["error"]


def test_a_project_without_pairwise_tasks_has_nothing_to_judge(project, manager, api, sent):
    constitution_save(project=project, principles=["Helpful."], user=manager)
    answer = api(manager).post(url(project), {"method": "llm_judge", "model": "/m"}, format="json")
    assert answer.status_code == 400
    assert "no pairwise" in answer.json()["error"]


def test_list_and_detail_show_progress_and_cost_to_managers_only(
    project, manager, rater, api, tasks, sent
):
    started = (
        api(manager)
        .post(url(project), {"method": "llm_judge", "model": "/m"}, format="json")
        .json()
    )
    models.AIPass.objects.filter(id=started["id"]).update(
        status="running",
        done=6,
        progress=0.5,
        stats={"pairs": 6, "inconsistent": 3, "flip_rate": 0.5, "tokens": 900, "seconds": 2.5},
    )
    listed = api(manager).get(url(project)).json()["results"]
    assert [p["id"] for p in listed] == [started["id"]]
    detail = api(manager).get(f"{url(project)}{started['id']}/").json()
    assert (detail["status"], detail["done"], detail["total"], detail["progress"]) == (
        "running",
        6,
        12,
        0.5,
    )
    assert detail["stats"]["tokens"] == 900
    assert detail["stats"]["flip_rate"] == 0.5
    assert api(rater).get(url(project)).status_code == 403
    assert (
        api(rater)
        .post(url(project), {"method": "llm_judge", "model": "/m"}, format="json")
        .status_code
        == 403
    )
    assert api(manager).get(f"{url(project)}999999/").status_code == 404
    other = ProjectFactory()
    outsider = make_rater(other, role="manager")
    assert api(outsider).get(f"{url(project)}{started['id']}/").status_code == 404


def test_the_endpoints_are_in_the_openapi_schema(api, manager):
    paths = (
        api(manager)
        .get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        .json()["paths"]
    )
    for path in (
        "/api/projects/{project_id}/constitution/",
        "/api/projects/{project_id}/constitution/versions/",
        "/api/projects/{project_id}/ai-passes/",
        "/api/projects/{project_id}/ai-passes/{pass_id}/",
        "/api/projects/{project_id}/ai-passes/{pass_id}/retry/",
    ):
        assert path in paths


def test_a_cai_batch_s_revisions_read_beside_their_originals(
    project, manager, rater, api, tasks, judge_installed, sent
):
    started = api(manager).post(url(project), {"method": "cai", "limit": 1}, format="json").json()
    ai_pass = models.AIPass.objects.get(id=started["id"])
    prompt = models.Prompt.objects.get(id=ai_pass.task_ids[0])
    original = models.Response.objects.create(
        prompt=prompt, text="<b>first</b>", origin=models.Origin.MODEL
    )
    revised = models.Response.objects.create(
        prompt=prompt, text="better", origin=models.Origin.REVISION, parent=original
    )
    models.AIJudgment.objects.create(
        ai_pass=ai_pass,
        project=project,
        method="cai",
        model_name="m",
        constitution=ai_pass.constitution,
        principle_index=1,
        principle="Honest.",
        chosen_response=revised,
        rejected_response=original,
        consistent=True,
        confidence=1.0,
        critique="too short",
        tokens=12,
    )
    revisions = f"{url(project)}{ai_pass.id}/revisions/"
    [row] = api(manager).get(revisions).json()["results"]
    assert (row["prompt_id"], row["prompt"]) == (prompt.id, prompt.messages)
    assert (row["original"], row["critique"], row["revised"]) == (
        "<b>first</b>",
        "too short",
        "better",
    )
    assert (row["original_id"], row["revised_id"], row["verify_task"]) == (
        original.id,
        revised.id,
        None,
    )
    assert (row["principle_index"], row["principle"], row["tokens"]) == (1, "Honest.", 12)
    assert api(rater).get(revisions).status_code == 403
    labeling = api(manager).post(url(project), {"method": "llm_judge"}, format="json").json()
    assert api(manager).get(f"{url(project)}{labeling['id']}/revisions/").status_code == 404
    assert api(manager).get(f"{url(project)}999999/revisions/").status_code == 404


def test_a_failed_pass_or_cai_batch_is_retried_and_resumes(
    project, manager, rater, api, tasks, judge_installed, sent, django_capture_on_commit_callbacks
):
    started = api(manager).post(url(project), {"method": "cai", "limit": 2}, format="json").json()
    retry = f"{url(project)}{started['id']}/retry/"
    refused = api(manager).post(retry)
    assert refused.status_code == 409
    assert "only a failed pass can be retried" in refused.json()["error"]
    ai_passes.ai_pass_fail(pass_id=started["id"], error="out of memory")
    models.AIPass.objects.filter(id=started["id"]).update(done=1, progress=0.5)
    assert api(rater).post(retry).status_code == 403
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(manager).post(retry)
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["status"], body["error"], body["done"]) == ("queued", "", 1)
    assert sent == [("ai.run_cai.cpu", (started["id"],))]
    assert ai_passes.cai_pass_claim(pass_id=started["id"])  # the worker takes it up again
    assert api(manager).post(f"{url(project)}99999/retry/").status_code == 404
