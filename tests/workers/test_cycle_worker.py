"""The loop on real processes: Redis, ``celery worker`` subprocesses, PostgreSQL (no eager mode)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection, transaction

from annotation import models
from annotation.services.loop import enqueue_cycle, retrain_claim, retrain_tick
from annotation.services.runs import artifact_complete
from tests.factories import make_rater
from tests.workers.conftest import (
    GPU_PREFORK,
    add_pairwise_judgments,
    make_loop_project,
    point_app_at,
    redis_flush,
    wait_for,
)
from workers.pipelines import STEPS

SMALL = {"pairs_per_cycle": 4, "prompts_per_cycle": 3, "eval_prompts": 2, "device": "cpu"}


def finished(run: models.TrainingRun) -> bool:
    run.refresh_from_db()
    return run.status in (models.RunStatus.SUCCEEDED, models.RunStatus.FAILED)


def assert_cycle_complete(run: models.TrainingRun) -> None:
    """Succeeded once: every step once, RM + DPO ready with complete artifacts, lineage set."""
    run.refresh_from_db()
    assert run.status == models.RunStatus.SUCCEEDED, run.error
    assert run.progress == 1.0
    assert sorted(run.steps.values_list("name", flat=True)) == sorted(n for n, _ in STEPS)
    assert set(run.timings) == {n for n, _ in STEPS}
    versions = {v.trainer: v for v in run.versions.all()}
    assert set(versions) == {"rm", "dpo"}
    for v in versions.values():
        assert v.status == models.VersionStatus.READY
        assert artifact_complete(Path(v.artifact_path))
        assert v.config["snapshot_run"] == run.id
    base = versions["dpo"].parent
    assert base is not None
    assert base.trainer == "base"
    assert (
        len(run.snapshot_judgment_ids)
        == run.snapshot_max_judgment_id - min(run.snapshot_judgment_ids) + 1
    )
    responses = models.Response.objects.filter(generation_run=run)
    assert responses.count() > 0
    assert set(responses.values_list("model_version_id", flat=True)) == {versions["dpo"].id}
    params = responses.first().generation_params
    assert params["k"] == run.project.samples_per_prompt
    assert "temperature" in params
    tasks = models.Task.objects.filter(generation_run=run)
    compare = run.steps.get(name="select").result["compare"]
    assert compare  # the imported responses are an earlier system to compare with
    assert tasks.count() == SMALL["pairs_per_cycle"] + len(compare)
    comparison = {tuple(sorted((new, old))) for _, new, old in compare}
    for task in tasks:
        pair = sorted(task.task_responses.values_list("response_id", flat=True))
        versions_in = set(
            models.Response.objects.filter(id__in=pair).values_list("model_version_id", flat=True)
        )
        if tuple(pair) in comparison:  # the new policy beside an earlier system
            assert versions["dpo"].id in versions_in
            assert len(versions_in) == 2
        else:  # two candidates of the new policy
            assert versions_in == {versions["dpo"].id}


@pytest.mark.django_db(transaction=True)
def test_trigger_runs_cycle_on_worker(broker, start_worker, tiny_base, api):
    project = make_loop_project(tiny_base)
    judgments = add_pairwise_judgments(project, 8)
    manager = make_rater(project, role="manager")
    worker = start_worker(broker, pool=GPU_PREFORK)

    answer = api(manager).post(
        f"/api/projects/{project.id}/retrain/", {"config": SMALL}, format="json"
    )

    assert answer.status_code == 202, answer.content
    run = models.TrainingRun.objects.get(id=answer.json()["id"])
    wait_for(lambda: finished(run), 180, "the cycle", worker.tail())
    assert_cycle_complete(run)
    assert run.snapshot_judgment_ids == [j.id for j in judgments]
    assert run.attempts == 1
    assert models.ModelVersion.objects.get(project=project, kind="reward", is_active=True)
    detail = api(manager).get(f"/api/projects/{project.id}/training-runs/{run.id}/").json()
    assert [s["name"] for s in detail["steps"]] == [n for n, _ in STEPS]


@pytest.mark.django_db(transaction=True)
def test_kill9_mid_training_is_redelivered_and_finishes_once(broker, start_worker, tiny_base):
    # A short visibility timeout and a fast restore sweep so the test does not wait an hour.
    fast = {
        "CELERY_VISIBILITY_TIMEOUT": "6",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    }
    project = make_loop_project(tiny_base)
    add_pairwise_judgments(project, 8)
    first = start_worker(broker, **fast)
    run = retrain_claim(project=project, triggered_by="test", config={**SMALL, "rm_epochs": 400})
    seen_versions: list[tuple[str, str, bool]] = []

    def training() -> bool:
        run.refresh_from_db()
        seen_versions.extend(
            (v.trainer, v.status, artifact_complete(Path(v.artifact_path or "/nonexistent")))
            for v in run.versions.all()
        )
        return run.current_step == "reward" and any(p["phase"] == "reward" for p in run.curve)

    wait_for(training, 120, "training to start", first.tail())
    first.kill9()

    rm = run.versions.get(trainer="rm")
    assert rm.status == models.VersionStatus.TRAINING  # never ready with a partial artifact
    assert not run.steps.filter(name="reward").exists()
    # Only to keep the test short: the redelivered attempt trains 2 epochs instead of 400.
    models.TrainingRun.objects.filter(id=run.id).update(config={**SMALL, "rm_epochs": 2})
    second = start_worker(broker, **fast)
    wait_for(lambda: finished(run), 180, "the redelivered cycle", second.tail())

    assert_cycle_complete(run)
    assert run.attempts == 2
    assert models.ModelVersion.objects.filter(training_run=run).count() == 2
    assert all(ok for _, status, ok in seen_versions if status == "ready")
    assert "loop.run_cycle" in second.tail(100_000)


@pytest.mark.django_db(transaction=True)
def test_redis_restart_loses_no_judgment_and_worker_resumes(
    needs_postgres, private_redis, start_worker, tiny_base, api
):
    from tests.factories import make_task

    point_app_at(private_redis.url)
    project = make_loop_project(tiny_base, overlap=1)
    rater = make_rater(project)
    for _ in range(6):
        make_task(project, required=1)
    worker = start_worker(private_redis.url)
    client = api(rater)

    def submit_one(i: int) -> None:
        nxt = client.post(f"/api/projects/{project.id}/next/")
        assert nxt.status_code in (200, 201), nxt.content
        assignment = nxt.json()["id"]
        answer = client.post(
            f"/api/assignments/{assignment}/judgment/",
            {"choice": "A", "strength": 2},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k{i}",
        )
        assert answer.status_code == 201, answer.content

    submit_one(0)
    submit_one(1)
    private_redis.stop()
    submit_one(2)  # the broker is down: judgments live in PostgreSQL only
    submit_one(3)
    private_redis.start()
    submit_one(4)
    submit_one(5)
    assert models.Judgment.objects.filter(project=project).count() == 6

    run = retrain_claim(project=project, triggered_by="test", config=SMALL)
    enqueue_cycle(run.id)
    wait_for(lambda: finished(run), 180, "the worker to resume", worker.tail())
    run.refresh_from_db()
    assert run.status == models.RunStatus.SUCCEEDED, run.error
    assert len(run.snapshot_judgment_ids) == 6


@pytest.mark.django_db(transaction=True)
def test_two_triggers_at_once_make_one_cycle(needs_postgres, tiny_base, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("annotation.services.loop.enqueue_cycle", sent.append)
    project = make_loop_project(tiny_base, auto_retrain=True, min_new_judgments=1)
    add_pairwise_judgments(project, 2)
    barrier = threading.Barrier(4)
    results: list[object] = []

    def trigger(kind: str) -> None:
        try:
            barrier.wait()
            if kind == "tick":
                results.append(retrain_tick())
            else:
                with transaction.atomic():
                    results.append(retrain_claim(project=project, triggered_by="manual"))
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger, args=(k,)) for k in ("tick", "tick", "run", "run")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert models.TrainingRun.objects.filter(project=project).count() == 1
    started = [r for r in results if r]
    assert len(started) == 1
    assert sent == [models.TrainingRun.objects.get(project=project).id]  # one message


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_rolled_back_transaction_never_runs(broker, start_worker, tiny_base):
    import redis

    doomed_project = make_loop_project(tiny_base)
    doomed = retrain_claim(project=doomed_project, triggered_by="test", enqueue=False)
    worker = start_worker(broker)

    class Rollback(Exception):
        pass

    def trigger_then_roll_back() -> None:
        with transaction.atomic():
            transaction.on_commit(lambda: enqueue_cycle(doomed.id))
            retrain_claim(project=make_loop_project(tiny_base), triggered_by="test")
            raise Rollback

    with pytest.raises(Rollback):
        trigger_then_roll_back()

    assert redis.Redis.from_url(broker).llen("gpu") == 0
    control = retrain_claim(project=make_loop_project(tiny_base), triggered_by="test", config=SMALL)
    wait_for(lambda: finished(control), 120, "the control cycle", worker.tail())
    doomed.refresh_from_db()
    assert doomed.status == models.RunStatus.QUEUED
    assert doomed.attempts == 0
    assert models.TrainingRun.objects.count() == 2  # the rolled-back run row never existed
    assert worker.tail(100_000).count("Task loop.run_cycle[") == 2  # received + succeeded: one
    redis_flush(broker)
