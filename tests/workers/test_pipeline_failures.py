"""Failure handling of the cycle, in-process: permanent errors fail the run and leave the active
model alone; transient errors propagate (the task retries) and a retry resumes where it stopped."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from annotation import models
from tests.workers.conftest import add_pairwise_judgments, make_loop_project
from workers import pipelines


@pytest.mark.django_db(transaction=True)
def test_permanent_failure_marks_run_failed_and_keeps_active_model(tmp_path, settings):
    settings.LOOP_ARTIFACTS_DIR = tmp_path
    project = make_loop_project(str(tmp_path / "no-such-model"))
    add_pairwise_judgments(project, 4)
    active = models.ModelVersion.objects.create(
        project=project, name="v1", kind="policy", trainer="dpo", status="ready", is_active=True
    )
    run = models.TrainingRun.objects.create(project=project, trainers=["rm", "dpo"])

    assert pipelines.cycle_execute(run_id=run.id) == "failed"

    run.refresh_from_db()
    assert run.status == "failed"
    assert "no-such-model" in run.error
    assert run.finished_at is not None
    assert list(run.steps.order_by("id").values_list("name", flat=True)) == ["snapshot", "records"]
    assert run.versions.get().status == "failed"  # the RM that never finished
    active.refresh_from_db()
    assert active.is_active
    assert pipelines.cycle_execute(run_id=run.id).startswith("skipped")  # a late duplicate


@pytest.mark.django_db(transaction=True)
def test_transient_error_propagates_and_the_retry_resumes(tmp_path, settings, monkeypatch):
    from training.tiny import write_tiny_causal_lm

    settings.LOOP_ARTIFACTS_DIR = tmp_path
    project = make_loop_project(str(write_tiny_causal_lm(tmp_path / "base")), prompts=2)
    run = models.TrainingRun.objects.create(
        project=project, config={"device": "cpu", "pairs_per_cycle": 2}
    )
    real_select = pipelines.candidates.step_select
    steps = dict(pipelines.STEPS)

    def flaky(ctx):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(
        pipelines, "STEPS", [(n, flaky if n == "select" else s) for n, s in steps.items()]
    )
    with pytest.raises(OperationalError):
        pipelines.cycle_execute(run_id=run.id)
    run.refresh_from_db()
    assert run.status == "running"
    done = list(run.steps.order_by("id").values_list("name", "finished_at"))
    assert [n for n, _ in done] == [
        "snapshot",
        "records",
        "reward",
        "policy",
        "evaluate",
        "register",
        "generate",
    ]
    responses = models.Response.objects.filter(generation_run=run).count()

    monkeypatch.setattr(
        pipelines, "STEPS", [(n, real_select if n == "select" else s) for n, s in steps.items()]
    )
    assert pipelines.cycle_execute(run_id=run.id) == "succeeded"

    run.refresh_from_db()
    assert run.attempts == 2
    assert list(run.steps.order_by("id").values_list("name", "finished_at"))[:7] == done
    assert models.Response.objects.filter(generation_run=run).count() == responses == 2 * 3
    assert models.Task.objects.filter(generation_run=run).count() == 2
