"""POST /api/projects/<id>/retrain/ and the run detail: rules, errors, enqueue on commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import models
from annotation.services.loop import requeue_stale, retrain_due
from tests.factories import ProjectFactory, PromptFactory, make_rater, make_task


@pytest.fixture
def project(db):
    """A project that can train: a base model (the API does not load it) and a prompt."""
    trainable = ProjectFactory(overlap=2, base_model="/models/base")
    PromptFactory(project=trainable)
    return trainable


@pytest.mark.django_db
def test_a_project_that_cannot_train_is_refused_saying_what_to_set(manager, api):
    bare = ProjectFactory()
    make_rater(bare, role="manager", username="bare-manager")
    from django.contrib.auth.models import User

    client = api(User.objects.get(username="bare-manager"))
    answer = client.post(f"/api/projects/{bare.id}/retrain/", {}, format="json")
    assert answer.status_code == 409
    assert "no base model" in answer.json()["error"]
    assert "no prompts" in answer.json()["error"]
    assert not models.TrainingRun.objects.filter(project=bare).exists()
    # Bad input is named first, before the project's state.
    bad = client.post(f"/api/projects/{bare.id}/retrain/", {"config": {"seed": -1}}, format="json")
    assert bad.status_code == 400
    assert bad.json()["field"] == "config.seed"


@pytest.mark.django_db
def test_retrain_now_queues_one_run_and_enqueues_after_commit(
    project, manager, api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = api(manager).post(
            f"/api/projects/{project.id}/retrain/",
            {"config": {"pairs_per_cycle": 8}},
            format="json",
        )

    assert answer.status_code == 202, answer.content
    run = models.TrainingRun.objects.get(project=project)
    assert answer.json()["id"] == run.id
    assert run.status == "queued"
    assert run.config == {"pairs_per_cycle": 8}
    assert run.triggered_by == f"manual:{manager.pk}"
    assert len(callbacks) == 1  # the message goes out only when the run row is committed

    again = api(manager).post(f"/api/projects/{project.id}/retrain/", {}, format="json")
    assert again.status_code == 409
    assert f"run {run.id}" in again.json()["error"]
    assert models.TrainingRun.objects.filter(project=project).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"config": {"bogus": 1}}, "config.bogus", "Unknown run option"),
        ({"config": {"random_share": 2}}, "config.random_share", "must be >= 0 and <= 1"),
        ({"config": {"pairs_per_cycle": "many"}}, "config.pairs_per_cycle", "an integer"),
        ({"config": [1]}, "config", "JSON object"),
        # the probe: only the prefix of device was checked
        ({"config": {"device": "cuda; rm -rf /"}}, "config.device", "exactly 'auto', 'cpu'"),
        ({"config": {"device": "cudaX"}}, "config.device", "'cuda:N'"),
        ({"config": {"device": "cuda:0 "}}, "config.device", "'cuda:N'"),
        ({"config": {"device": "mps"}}, "config.device", "'cuda:N'"),
        ({"config": {"device": 0}}, "config.device", "'cuda:N'"),
        ({"config": {"seed": True}}, "config.seed", "an integer"),
        ({"config": {"seed": 1.5}}, "config.seed", "an integer"),
        ({"config": {"seed": -1}}, "config.seed", ">= 0"),
        ({"config": {"seed": 2**40}}, "config.seed", "<= 2147483647"),
        ({"config": {"rm_epochs": 0}}, "config.rm_epochs", ">= 1"),
        ({"config": {"rm_epochs": 10**6}}, "config.rm_epochs", "<= 1000"),
        ({"config": {"beta": 0}}, "config.beta", "> 0"),
        ({"config": {"max_kl": "50"}}, "config.max_kl", "a number"),
        ({"config": {"learning_rate": [0.1]}}, "config.learning_rate", "a number"),
        ({"config": {"min_win_rate": -0.1}}, "config.min_win_rate", ">= 0"),
        ({"config": {"eval_prompts": 5, "device": "gpu"}}, "config.device", "'cuda:N'"),
        ({"config": {"DEVICE": "cpu"}}, "config.DEVICE", "Unknown run option"),
        ({"config": {"x" * 10_000: 1}}, "config." + "x" * 60, "Unknown run option"),
        ({"cfg": {"seed": 1}}, "cfg", "Unknown field"),
    ],
)
def test_bad_run_config_is_400_naming_the_option_and_changes_nothing(
    project, manager, api, body, field, message
):
    answer = api(manager).post(f"/api/projects/{project.id}/retrain/", body, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == field
    assert message in answer.json()["error"]
    assert len(answer.json()["error"]) < 1000
    assert not models.TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "config",
    [
        {"device": "cuda"},
        {"device": "cuda:3"},
        {"device": "cpu"},
        {"device": "auto"},
        {"random_share": 1, "max_kl": 0.5, "learning_rate": 1e-3, "seed": 7, "rm_epochs": 400},
        {},
    ],
)
def test_good_run_configs_are_accepted_as_given(project, manager, api, config):
    answer = api(manager).post(
        f"/api/projects/{project.id}/retrain/", {"config": config}, format="json"
    )
    assert answer.status_code == 202, answer.content
    assert models.TrainingRun.objects.get().config == config


@pytest.mark.django_db
def test_only_managers_of_the_project_may_retrain(project, rater, api):
    assert api(rater).post(f"/api/projects/{project.id}/retrain/").status_code == 403
    stranger = make_rater(ProjectFactory(), role="manager")
    assert api(stranger).post(f"/api/projects/{project.id}/retrain/").status_code == 404
    assert not models.TrainingRun.objects.exists()


@pytest.mark.django_db
def test_policy_needs_new_judgments_and_the_interval(project, manager, api):
    project.auto_retrain = True
    project.min_new_judgments = 2
    project.min_interval_minutes = 30
    project.save()
    rater = make_rater(project)
    assert retrain_due(project=project) == (False, "0 new judgments < 2")
    for _ in range(2):
        task = make_task(project, required=1)
        models.Judgment.objects.create(
            task=task, project=project, rater=rater, kind="pairwise", choice="tie"
        )
    assert retrain_due(project=project) == (True, "2 new judgments")
    status = api(manager).get(f"/api/projects/{project.id}/retrain/").json()
    assert status == {
        "due": True,
        "reason": "2 new judgments",
        "new_judgments": 2,
        "active_run": None,
    }

    done = models.TrainingRun.objects.create(
        project=project, status="succeeded", snapshot_max_judgment_id=10**9
    )
    assert retrain_due(project=project)[0] is False  # interval not passed
    later = timezone.now() + timedelta(minutes=31)
    assert retrain_due(project=project, now=later) == (False, "0 new judgments < 2")
    assert done.id


@pytest.mark.django_db
def test_run_detail_is_project_scoped(project, manager, api):
    run = models.TrainingRun.objects.create(project=project)
    models.RunStep.objects.create(run=run, name="snapshot", result={"judgments": 3}, seconds=0.1)
    other = models.TrainingRun.objects.create(project=ProjectFactory())

    detail = api(manager).get(f"/api/projects/{project.id}/training-runs/{run.id}/")
    assert detail.status_code == 200
    assert detail.json()["steps"][0]["result"] == {"judgments": 3}
    assert (
        api(manager).get(f"/api/projects/{project.id}/training-runs/{other.id}/").status_code == 404
    )


@pytest.mark.django_db
def test_broker_down_at_commit_still_answers_and_the_tick_resends(
    project, manager, api, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(run_id: int) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr("annotation.services.loop.enqueue_cycle", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(manager).post(f"/api/projects/{project.id}/retrain/")
    assert answer.status_code == 202
    run = models.TrainingRun.objects.get(project=project)

    sent: list[int] = []
    monkeypatch.setattr("annotation.services.loop.enqueue_cycle", sent.append)
    assert requeue_stale() == []  # too fresh to be called lost
    assert requeue_stale(now=timezone.now() + timedelta(minutes=11)) == [run.id]
    assert sent == [run.id]


def test_the_run_options_are_listed_once():
    """The worker's defaults come from the schema, every option the worker reads is in it, and
    the operator docs list every one of them."""
    import re
    from pathlib import Path

    from annotation.run_options import RUN_OPTIONS
    from workers.steps import DEFAULTS

    assert {name: option.default for name, option in RUN_OPTIONS.items()} == DEFAULTS
    root = Path(__file__).resolve().parents[2]
    read = set()
    for path in (root / "workers").glob("*.py"):
        read |= set(re.findall(r"cfg\[\"(\w+)\"\]", path.read_text()))
    assert read
    assert read <= set(RUN_OPTIONS)
    docs = (root / "docs" / "loop.md").read_text()
    assert [name for name in RUN_OPTIONS if f"`{name}`" not in docs] == []
    for name, option in RUN_OPTIONS.items():
        assert option.problem(option.default) is None, name
