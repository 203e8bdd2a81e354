"""The AI labeling pass worker (workers/ai_feedback.py) with the deterministic fake judge.

Runs ``pass_execute`` in the test process (no broker): both orders judged, inconsistent pairs
stored as such, sources recorded, progress and cost counted, a retry judges only what is missing,
a permanent error fails the pass with the error stored, and no task's human counters move.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError

from annotation import models
from annotation.services import ai_passes
from annotation.services.constitutions import constitution_save
from tests.factories import make_task
from training.judges import load_judge
from workers import ai_feedback

pytestmark = pytest.mark.django_db
PRINCIPLES = ["Prefer the more helpful response.", "Prefer the more honest response."]


def task_with(project, first: str, second: str) -> models.Task:
    task = make_task(project)
    for tr, text in zip(task.task_responses.order_by("position"), (first, second), strict=True):
        models.Response.objects.filter(id=tr.response_id).update(text=text)
    return task


@pytest.fixture
def world(project, manager, monkeypatch, settings, tmp_path):
    """Three tasks: the first response better, the second better, a tie (inconsistent for the
    fake judge's position bias); a two-principle constitution; the fake judge in the worker."""
    calls: list[int] = []
    fake = load_judge("fake", "marker=good,bias=0.5,scale=2")

    class Counting:
        name = fake.name
        template_hash = fake.template_hash

        def judge(self, pairs, **kwargs):
            calls.append(len(pairs))
            return fake.judge(pairs, **kwargs)

    monkeypatch.setattr(ai_feedback, "load_judge", lambda method, model, device: Counting())
    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    tasks = [
        task_with(project, "good good answer", "plain answer"),
        task_with(project, "plain answer", "a good answer"),
        task_with(project, "same", "same too"),
    ]
    constitution_save(project=project, principles=PRINCIPLES, user=manager)
    return {"tasks": tasks, "calls": calls, "manager": manager}


def start(project, user, **kwargs):
    return ai_passes.ai_pass_start(project=project, user=user, method="llm_judge", **kwargs)


def human_counters(project):
    return list(
        models.Task.objects.filter(project=project)
        .order_by("id")
        .values_list("slots_taken", "judgments_done", "status")
    )


def test_a_pass_judges_every_task_under_every_principle_and_records_sources(project, world):
    before = human_counters(project)
    ai_pass = start(project, world["manager"])
    assert ai_pass.total == 6
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "succeeded"
    ai_pass.refresh_from_db()
    assert (ai_pass.status, ai_pass.progress, ai_pass.done, ai_pass.attempts) == (
        "succeeded",
        1.0,
        6,
        1,
    )
    stats = ai_pass.stats
    assert (stats["pairs"], stats["inconsistent"], stats["skipped"]) == (6, 2, 0)
    assert stats["flip_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert stats["tokens"] > 0
    assert stats["seconds"] >= 0
    rows = models.AIJudgment.objects.filter(ai_pass=ai_pass).order_by("principle_index", "task_id")
    assert rows.count() == 6
    first, second, _tie = world["tasks"]
    for row in rows:
        assert row.method == "llm_judge"
        assert row.project_id == project.id
        assert row.principle == PRINCIPLES[row.principle_index]
        assert row.constitution.version == 1
        assert row.model_name.startswith("fake:")
        assert len(row.template_hash) == 64
        positions = dict(row.task.task_responses.values_list("position", "response_id"))
        if row.task_id == first.id:
            assert (row.chosen_response_id, row.rejected_response_id) == (
                positions[0],
                positions[1],
            )
            assert row.consistent
            assert row.confidence > 0.5
            assert row.p_first_order > 0.5
            assert row.p_second_order > 0.5
        elif row.task_id == second.id:
            assert (row.chosen_response_id, row.rejected_response_id) == (
                positions[1],
                positions[0],
            )
            assert row.p_first_order < 0.5
            assert row.p_second_order < 0.5
        else:  # both orders disagree: recorded as inconsistent, never as a choice
            assert not row.consistent
            assert row.chosen_response_id is None
            assert row.rejected_response_id is None
            assert row.confidence is None
            assert row.p_first_order > 0.5 > row.p_second_order
    # AI verdicts are not human judgments and move no human counter.
    assert not models.Judgment.objects.exists()
    assert human_counters(project) == before
    # A duplicate message for the finished pass does nothing.
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "skipped"


def test_a_retried_pass_judges_only_the_pairs_not_stored(project, world, monkeypatch):
    monkeypatch.setenv("AI_JUDGE_BATCH", "2")
    ai_pass = start(project, world["manager"], principles=[0])
    real = ai_passes.ai_judgments_store
    stored = []

    def store_then_lose_the_database(**kwargs):
        if stored:
            raise OperationalError("connection lost")
        stored.append(real(**kwargs))
        return stored[-1]

    monkeypatch.setattr(ai_passes, "ai_judgments_store", store_then_lose_the_database)
    with pytest.raises(OperationalError):
        ai_feedback.pass_execute(pass_id=ai_pass.id)
    ai_pass.refresh_from_db()
    assert (ai_pass.status, ai_pass.done, ai_pass.total) == ("running", 2, 3)
    assert ai_pass.progress == pytest.approx(2 / 3)
    monkeypatch.setattr(ai_passes, "ai_judgments_store", real)
    world["calls"].clear()
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "succeeded"
    assert world["calls"] == [1]  # the one pair left
    ai_pass.refresh_from_db()
    assert (ai_pass.done, ai_pass.attempts, ai_pass.stats["pairs"]) == (3, 2, 3)
    assert models.AIJudgment.objects.filter(ai_pass=ai_pass).count() == 3


def test_storing_a_batch_twice_changes_nothing(project, world):
    ai_pass = start(project, world["manager"], principles=[1])
    pairs = ai_passes.ai_pass_pending(ai_pass=ai_pass, principle_index=1)
    verdicts = load_judge("fake", "").judge(
        [ai_feedback.PairToJudge(p.task_id, "q", p.first_text, p.second_text) for p in pairs]
    )
    kwargs = {
        "ai_pass": ai_pass,
        "principle_index": 1,
        "principle": PRINCIPLES[1],
        "model_name": "fake",
        "template_hash": "",
        "pairs": pairs,
        "verdicts": verdicts,
        "seconds": 0.5,
    }
    assert ai_passes.ai_judgments_store(**kwargs) == 3
    assert ai_passes.ai_judgments_store(**kwargs) == 0
    ai_pass.refresh_from_db()
    assert (ai_pass.done, ai_pass.stats["pairs"], ai_pass.stats["seconds"]) == (3, 3, 1.0)
    assert ai_passes.ai_pass_pending(ai_pass=ai_pass, principle_index=1) == []


def test_a_judge_error_fails_the_pass_with_the_error_stored(project, world, monkeypatch):
    def broken(method, model, device):
        raise RuntimeError("no model.safetensors in /models/missing")

    monkeypatch.setattr(ai_feedback, "load_judge", broken)
    ai_pass = start(project, world["manager"], model="/models/missing")
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "failed"
    ai_pass.refresh_from_db()
    assert ai_pass.status == "failed"
    assert ai_pass.finished_at is not None
    assert "no model.safetensors in /models/missing" in ai_pass.error
    assert not models.AIJudgment.objects.exists()


def test_a_reward_model_pass_stores_one_verdict_per_task(project, world):
    version = models.ModelVersion.objects.create(
        project=project,
        name="rm-1",
        kind="reward",
        trainer="rm",
        artifact_path="/artifacts/rm-1",
        status="ready",
        is_active=True,
    )
    ai_pass = ai_passes.ai_pass_start(
        project=project, user=world["manager"], method="reward_model", queue="gpu"
    )
    assert (ai_pass.model_version, ai_pass.model_path, ai_pass.total) == (
        version,
        "/artifacts/rm-1",
        3,
    )
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "succeeded"
    rows = models.AIJudgment.objects.filter(ai_pass=ai_pass)
    assert rows.count() == 3
    assert set(rows.values_list("principle_index", "principle", "model_version")) == {
        (None, "", version.id)
    }
    # The (pass, task) index holds without a principle too.
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "skipped"


def test_deleted_tasks_are_skipped_and_counted(project, world):
    ai_pass = start(project, world["manager"], principles=[0])
    world["tasks"][2].delete()
    assert ai_feedback.pass_execute(pass_id=ai_pass.id) == "succeeded"
    ai_pass.refresh_from_db()
    assert (ai_pass.done, ai_pass.total, ai_pass.stats["skipped"]) == (2, 3, 1)


def test_each_queue_has_its_routed_task_name(project, world, monkeypatch):
    from config import celery

    sent = []
    monkeypatch.setattr(celery, "send", lambda name, *args: sent.append((name, args)))
    for queue in ("cpu", "gpu"):
        ai_pass = start(project, world["manager"], queue=queue)
        ai_passes.enqueue_pass(ai_pass)
        name = ai_passes.RUN_PASS_TASKS[queue]
        assert sent[-1] == (name, (ai_pass.id,))
        assert celery.TASK_ROUTES[name] == {"queue": queue}
        assert name in celery.app.tasks
    assert "workers.ai_feedback" in celery.TASK_MODULES


def test_the_command_starts_runs_and_shows_a_pass(
    project, world, monkeypatch, django_capture_on_commit_callbacks
):
    import json
    from io import StringIO

    from django.core.management import CommandError, call_command

    from config import celery

    sent = []
    monkeypatch.setattr(celery, "send", lambda name, *args: sent.append(name))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "ai_pass",
            "start",
            "--project",
            project.slug,
            "--method",
            "llm_judge",
            "--limit",
            "2",
            "--principles",
            "1",
            "--queue",
            "gpu",
            stdout=out,
        )
    queued = json.loads(out.getvalue())
    assert (queued["status"], queued["total"], queued["queue"]) == ("queued", 2, "gpu")
    assert sent == ["ai.run_pass.gpu"]
    out = StringIO()
    call_command(
        "ai_pass", "start", "--project", project.slug, "--method", "llm_judge", "--here", stdout=out
    )
    ran = json.loads(out.getvalue())
    assert (ran["status"], ran["done"], ran["stats"]["pairs"]) == ("succeeded", 6, 6)
    assert sent == ["ai.run_pass.gpu"]  # --here sends nothing
    out = StringIO()
    call_command("ai_pass", "show", str(ran["id"]), stdout=out)
    assert json.loads(out.getvalue())["stats"]["flip_rate"] == ran["stats"]["flip_rate"]
    with pytest.raises(CommandError, match="No project"):
        call_command("ai_pass", "start", "--project", "nope", "--method", "llm_judge")
    with pytest.raises(CommandError, match="No principle 7"):
        call_command(
            "ai_pass",
            "start",
            "--project",
            project.slug,
            "--method",
            "llm_judge",
            "--principles",
            "7",
        )


def test_a_pass_whose_message_was_lost_is_sent_again_by_the_policy_tick(
    project, world, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from config import celery
    from workers.tasks import policy_tick

    sent = []
    monkeypatch.setattr(celery, "send", lambda name, *args: sent.append((name, args)))
    fresh = start(project, world["manager"])
    lost = start(project, world["manager"], queue="gpu")
    claimed = start(project, world["manager"])
    cai = models.AIPass.objects.create(project=project, method="cai")  # sent to its own task
    old = timezone.now() - timedelta(minutes=30)
    models.AIPass.objects.filter(id__in=[lost.id, claimed.id, cai.id]).update(created_at=old)
    models.AIPass.objects.filter(id=claimed.id).update(attempts=1, status="running")
    policy_tick()
    assert ("ai.run_pass.gpu", (lost.id,)) in sent
    assert ("ai.run_cai.cpu", (cai.id,)) in sent
    assert ("ai.run_pass.cpu", (cai.id,)) not in sent
    assert all(
        args[0] not in (fresh.id, claimed.id) for name, args in sent if name.startswith("ai.")
    )
