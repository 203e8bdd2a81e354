"""annotation/services/runs.py: each state change of a run and of a model version, and the races
the database decides (threads with their own connections, on PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, connections, transaction

from annotation.errors import Conflict
from annotation.models import ModelVersion, RunStep, TrainingRun
from annotation.services import runs
from tests.factories import ProjectFactory


def make_run(project=None, **fields) -> TrainingRun:
    return TrainingRun.objects.create(project=project or ProjectFactory(), **fields)


def make_version(project, *, kind="policy", trainer="dpo", status="ready", **fields):
    n = ModelVersion.objects.count()
    return ModelVersion.objects.create(
        project=project, name=f"v{n}", kind=kind, trainer=trainer, status=status, **fields
    )


def write_artifact(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "metadata.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def race(*calls):
    """Run each call in its own thread and connection, all released at once; their results."""
    barrier, results, errors = threading.Barrier(len(calls)), [None] * len(calls), []

    def target(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # reported by the test
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    return results


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("races between connections need PostgreSQL")


# ---------------------------------------------------------------- runs


@pytest.mark.django_db
def test_claim_starts_a_queued_run_and_counts_every_claim():
    run = make_run()

    assert runs.run_claim(run_id=run.id)
    run.refresh_from_db()
    first_start = run.started_at
    assert (run.status, run.attempts) == ("running", 1)
    assert first_start is not None

    TrainingRun.objects.filter(id=run.id).update(error="worker lost")
    assert runs.run_claim(run_id=run.id)  # a redelivered message resumes the running run
    run.refresh_from_db()
    assert (run.status, run.attempts, run.started_at, run.error) == (
        "running",
        2,
        first_start,
        "",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_a_finished_run_is_never_claimed_again(status):
    run = make_run(status=status, attempts=1, error="kept")

    assert not runs.run_claim(run_id=run.id)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == (status, 1, "kept")


@pytest.mark.django_db(transaction=True)
def test_claims_racing_on_one_run_lose_no_attempt(postgres):
    run = make_run()

    assert race(*[lambda: runs.run_claim(run_id=run.id)] * 4) == [True] * 4
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 4)


@pytest.mark.django_db(transaction=True)
def test_succeed_and_fail_racing_have_one_winner(postgres):
    run = make_run(status="running")

    won = race(
        lambda: runs.run_succeed(run_id=run.id),
        lambda: runs.run_fail(run_id=run.id, error="boom"),
    )

    assert sorted(won) == [False, True]
    run.refresh_from_db()
    assert run.status == ("succeeded" if won[0] else "failed")


@pytest.mark.django_db
def test_fail_records_the_end_of_the_error_and_fails_unfinished_versions():
    project = ProjectFactory()
    active = make_version(project, is_active=True)
    run = make_run(project, status="running")
    ready = make_version(project, trainer="rm", kind="reward", training_run=run)
    training = make_version(project, trainer="dpo", status="training", training_run=run)
    error = "x" * 6000 + "ValueError: the last line says why"

    assert runs.run_fail(run_id=run.id, error=error)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == error[-runs.ERROR_CHARS :]
    assert run.error.endswith("the last line says why")
    assert run.finished_at is not None
    statuses = dict(ModelVersion.objects.values_list("id", "status"))
    assert statuses == {active.id: "ready", ready.id: "ready", training.id: "failed"}
    assert ModelVersion.objects.get(is_active=True) == active  # the active model stays

    assert not runs.run_fail(run_id=run.id, error="a late second failure")
    run.refresh_from_db()
    assert run.error.endswith("the last line says why")


@pytest.mark.django_db
def test_succeed_finishes_a_running_run_only():
    run = make_run(status="running", progress=0.4, current_step="select")

    assert runs.run_succeed(run_id=run.id)
    run.refresh_from_db()
    assert (run.status, run.progress, run.step_progress, run.current_step) == (
        "succeeded",
        1.0,
        1.0,
        "done",
    )
    assert run.finished_at is not None

    failed = make_run(status="failed")
    assert not runs.run_succeed(run_id=failed.id)
    failed.refresh_from_db()
    assert failed.status == "failed"


@pytest.mark.django_db
def test_progress_keeps_the_last_curve_points_and_stamps_a_new_step():
    run = make_run(status="running")
    curve = [{"phase": "reward", "i": i} for i in range(runs.CURVE_POINTS + 20)]

    runs.run_progress_write(
        run_id=run.id, current_step="reward", progress=0.1, step_progress=0.25, curve=curve
    )
    run.refresh_from_db()
    assert (run.current_step, run.progress, run.step_progress) == ("reward", 0.1, 0.25)
    assert run.curve == curve[-runs.CURVE_POINTS :]
    assert run.step_started_at is None

    runs.run_progress_write(
        run_id=run.id,
        current_step="policy",
        progress=0.3,
        step_progress=0.0,
        curve=[],
        step_started=True,
    )
    run.refresh_from_db()
    assert run.step_started_at is not None


@pytest.mark.django_db
def test_a_finished_step_is_recorded_once_with_its_own_writes():
    run = make_run(status="running", timings={"snapshot": 0.5})
    project = run.project

    assert runs.run_step_result(run_id=run.id, name="reward") is None
    runs.run_step_finish(
        run_id=run.id,
        name="reward",
        result={"pairs": 12, "accuracy": 0.75, "nested": {"not": "a scalar"}},
        seconds=1.23456,
        progress=0.25,
        commit=lambda: make_version(project, kind="reward", trainer="rm"),
    )

    assert runs.run_step_result(run_id=run.id, name="reward")["pairs"] == 12
    run.refresh_from_db()
    assert run.timings == {"snapshot": 0.5, "reward": 1.235}
    assert run.metrics == {"reward": {"pairs": 12, "accuracy": 0.75}}
    assert (run.progress, run.step_progress) == (0.25, 1.0)
    assert ModelVersion.objects.count() == 1

    # a second copy of the step meets the unique index, and its writes roll back with it
    with pytest.raises(IntegrityError), transaction.atomic():
        runs.run_step_finish(
            run_id=run.id,
            name="reward",
            result={"pairs": 99},
            seconds=9.0,
            progress=0.25,
            commit=lambda: make_version(project, kind="reward", trainer="rm"),
        )
    assert ModelVersion.objects.count() == 1
    assert RunStep.objects.get(run=run, name="reward").result["pairs"] == 12


@pytest.mark.django_db
def test_a_step_whose_writes_fail_leaves_nothing():
    run = make_run(status="running")

    def commit():
        make_version(run.project)
        raise RuntimeError("the step's own write failed")

    with pytest.raises(RuntimeError):
        runs.run_step_finish(
            run_id=run.id, name="tasks", result={}, seconds=0.1, progress=1.0, commit=commit
        )
    assert runs.run_step_result(run_id=run.id, name="tasks") is None
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_snapshot_is_written_on_the_run():
    run = make_run(status="running")

    runs.run_snapshot_set(run_id=run.id, judgment_ids=[3, 5, 8], max_judgment_id=8)

    run.refresh_from_db()
    assert (run.snapshot_judgment_ids, run.snapshot_max_judgment_id) == ([3, 5, 8], 8)


# ---------------------------------------------------------------- model versions


@pytest.mark.django_db
def test_a_run_has_one_version_per_trainer():
    run = make_run(status="running")

    first = runs.version_for_run(run=run, trainer="dpo", kind="policy", parent=None)
    again = runs.version_for_run(run=run, trainer="dpo", kind="policy", parent=None)

    assert first == again
    assert (first.status, first.name) == ("training", f"{run.project.slug}-r{run.id}-dpo")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_version(run.project, trainer="dpo", training_run=run)


@pytest.mark.django_db
def test_a_version_is_ready_only_with_a_complete_artifact(tmp_path):
    run = make_run(status="running")
    version = runs.version_for_run(run=run, trainer="rm", kind="reward", parent=None)
    half = tmp_path / "half"
    half.mkdir()
    (half / "metadata.json").write_text("{}")  # no weights yet: a save that crashed midway

    with pytest.raises(Conflict, match="incomplete"):
        runs.version_mark_ready(version_id=version.id, artifact_path=half, metrics={}, config={})
    version.refresh_from_db()
    assert version.status == "training"

    whole = write_artifact(tmp_path / "whole")
    runs.version_mark_ready(
        version_id=version.id, artifact_path=whole, metrics={"acc": 0.8}, config={"lr": 1e-5}
    )
    version.refresh_from_db()
    assert (version.status, version.artifact_path, version.metrics, version.config) == (
        "ready",
        str(whole),
        {"acc": 0.8},
        {"lr": 1e-5},
    )


@pytest.mark.django_db
def test_activate_supersedes_the_active_version_of_the_same_kind_only():
    project = ProjectFactory()
    old_policy = make_version(project, is_active=True)
    reward = make_version(project, kind="reward", trainer="rm", is_active=True)
    new_policy = make_version(project)

    runs.version_activate(version_id=new_policy.id)

    active = set(ModelVersion.objects.filter(is_active=True).values_list("id", flat=True))
    assert active == {new_policy.id, reward.id}
    old_policy.refresh_from_db()
    assert old_policy.status == "ready"  # superseded, not failed: it can be activated again
    assert runs.version_active(project=project, kind="policy") == new_policy


@pytest.mark.django_db
def test_a_version_that_is_not_ready_cannot_be_active():
    project = ProjectFactory()
    active = make_version(project, is_active=True)
    training = make_version(project, status="training")

    with pytest.raises(Conflict, match="not ready"):
        runs.version_activate(version_id=training.id)
    assert runs.version_active(project=project, kind="policy") == active
    # and the database refuses it even without the service
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(id=training.id).update(is_active=True)


@pytest.mark.django_db
def test_the_database_admits_one_active_version_per_kind():
    project = ProjectFactory()
    make_version(project, is_active=True)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_version(project, is_active=True)


@pytest.mark.django_db(transaction=True)
def test_racing_promotions_leave_exactly_one_active_per_kind(postgres):
    project = ProjectFactory()
    versions = [make_version(project) for _ in range(4)]

    race(*[lambda v=v: runs.version_activate(version_id=v.id) for v in versions])

    assert ModelVersion.objects.filter(project=project, kind="policy", is_active=True).count() == 1


@pytest.mark.django_db
def test_metrics_merge_keeps_the_versions_own_metrics():
    version = make_version(ProjectFactory(), metrics={"loss": 0.3})

    runs.version_metrics_merge(version_id=version.id, metrics={"eval/win_rate": 0.6})

    version.refresh_from_db()
    assert version.metrics == {"loss": 0.3, "eval/win_rate": 0.6}


@pytest.mark.django_db
def test_without_an_active_policy_the_base_model_becomes_it(tmp_path):
    project = ProjectFactory(base_model=str(tmp_path / "base"))

    base = runs.version_ensure_active_policy(project=project)

    assert (base.trainer, base.status, base.is_active) == ("base", "ready", True)
    assert runs.version_base(project=project) == base  # created once
    trained = make_version(project)
    runs.version_activate(version_id=trained.id)
    assert runs.version_ensure_active_policy(project=project) == trained
    assert runs.version_policy_parent(project=project) == trained


@pytest.mark.django_db
def test_a_project_without_a_base_model_cannot_train():
    with pytest.raises(Conflict, match="no base_model"):
        runs.version_base(project=ProjectFactory(base_model=""))


@pytest.mark.django_db
def test_the_judge_is_the_runs_own_reward_model_else_the_active_one():
    project = ProjectFactory()
    active = make_version(project, kind="reward", trainer="rm", is_active=True)
    run = make_run(project, status="running")
    assert runs.run_judge(run=run) == active

    own = make_version(project, kind="reward", trainer="rm", status="training", training_run=run)
    assert runs.run_judge(run=run) == active  # not ready yet
    ModelVersion.objects.filter(id=own.id).update(status="ready")
    assert runs.run_judge(run=run) == own
    assert runs.run_versions_ready(run=run, kind="reward") == [own]


@pytest.mark.django_db
def test_the_active_run_is_the_queued_or_running_one():
    project = ProjectFactory()
    make_run(project, status="succeeded")
    assert runs.run_active(project=project) is None

    queued = make_run(project)
    assert runs.run_active(project=project) == queued
    runs.run_claim(run_id=queued.id)
    assert runs.run_active(project=project) == queued
    runs.run_fail(run_id=queued.id, error="boom")
    assert runs.run_active(project=project) is None
    # the database admits one active run per project
    make_run(project)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_run(project, status="running")
