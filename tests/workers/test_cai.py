"""The Constitutional AI step on the queue (workers/cai.py), without a broker.

A scripted ``critique_and_revise`` stands in for the model (one real run on a tiny model checks
the wiring): originals and revisions stored with their lineage, one CAI judgment per usable
revision with the critique kept, optional pairwise tasks for humans to verify, progress and
cost, a retry that skips the prompts done, and no human counter moved.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.db import OperationalError

from annotation import models
from annotation.errors import ValidationFailed
from annotation.services import ai_passes
from annotation.services.constitutions import constitution_save
from tests.factories import PromptFactory, make_task
from training.cai import CAIResult
from workers import cai

pytestmark = pytest.mark.django_db
PRINCIPLES = ["Be harmless.", "Be honest."]


def scripted(calls: list[list[int]], fail_on: int | None = None):
    """Revises every prompt to "better <n>", except a prompt whose text asks for "same"."""

    def run(model, tokenizer, items, principles, *, config):
        calls.append([it.key for it in items])
        if fail_on is not None and len(calls) == fail_on:
            raise OperationalError("the database went away")
        out = []
        for it in items:
            question = it.prompt[0]["content"]
            revised = "first answer" if "same" in question else f"better {it.key}"
            index = it.key % len(principles)
            out.append(
                CAIResult(
                    key=it.key,
                    prompt=it.prompt,
                    principle_index=index,
                    principle=principles[index],
                    original="first answer",
                    critique=f"too blunt ({it.key})",
                    revised=revised,
                    tokens=10,
                    dropped="identical" if revised == "first answer" else None,
                )
            )
        return out

    return run


@pytest.fixture
def world(project, manager, monkeypatch, settings, tmp_path):
    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    constitution_save(project=project, principles=PRINCIPLES, user=manager)
    loads: list[str] = []
    monkeypatch.setattr(cai, "load_model", lambda path, device: (loads.append(path), None))
    prompts = [
        PromptFactory(project=project, messages=[{"role": "user", "content": f"q{i}"}])
        for i in range(2)
    ]
    prompts.append(PromptFactory(project=project, messages=[{"role": "user", "content": "same"}]))
    human = make_task(project)
    return {"prompts": prompts, "manager": manager, "loads": loads, "human": human}


def human_counters(project):
    return list(
        models.Task.objects.filter(project=project)
        .order_by("id")
        .values_list("id", "slots_taken", "judgments_done", "status")
    )


def start(project, world, **kwargs):
    ids = [p.id for p in world["prompts"]]
    return ai_passes.start_cai_pass(
        project=project, user=world["manager"], prompt_ids=ids, enqueue=False, **kwargs
    )


def test_cai_stores_originals_revisions_and_judgments(project, world, monkeypatch) -> None:
    calls: list[list[int]] = []
    monkeypatch.setattr(cai, "critique_and_revise", scripted(calls))
    before = human_counters(project)
    ai_pass = start(project, world)
    assert (ai_pass.method, ai_pass.total, ai_pass.task_ids) == (
        "cai",
        3,
        [p.id for p in world["prompts"]],
    )
    assert cai.cai_execute(pass_id=ai_pass.id) == "succeeded"
    ai_pass.refresh_from_db()
    assert (ai_pass.status, ai_pass.done, ai_pass.progress) == ("succeeded", 3, 1.0)
    assert ai_pass.stats["prompts"] == 3
    assert ai_pass.stats["kept"] == 2
    assert ai_pass.stats["dropped"] == {"identical": 1}
    assert ai_pass.stats["tokens"] == 30
    assert ai_pass.stats["skipped"] == 0
    originals = models.Response.objects.filter(
        origin=models.Origin.MODEL, source__startswith="cai:"
    )
    assert originals.count() == 3
    judgments = list(models.AIJudgment.objects.filter(ai_pass=ai_pass).order_by("id"))
    assert len(judgments) == 2
    for j in judgments:
        revised, original = j.chosen_response, j.rejected_response
        assert (j.method, j.consistent, j.confidence, j.task_id) == ("cai", True, 1.0, None)
        assert revised.origin == models.Origin.REVISION
        assert revised.parent_id == original.id
        assert revised.prompt_id == original.prompt_id
        assert original.origin == models.Origin.MODEL
        assert revised.generation_params["critique"] == j.critique
        assert revised.generation_params["principle"] == j.principle
        assert j.principle == PRINCIPLES[j.principle_index]
        assert j.constitution_id == ai_pass.constitution_id
        assert j.critique.startswith("too blunt")
        assert len(j.template_hash) == 64
    assert human_counters(project) == before  # no task created, none touched
    # a finished pass is not run again
    assert cai.cai_execute(pass_id=ai_pass.id) == "skipped"
    assert len(calls) == 1


def test_verify_tasks_put_each_pair_before_humans(project, world, monkeypatch) -> None:
    monkeypatch.setattr(cai, "critique_and_revise", scripted([]))
    ai_pass = start(project, world, verify=True)
    assert cai.cai_execute(pass_id=ai_pass.id) == "succeeded"
    judgments = models.AIJudgment.objects.filter(ai_pass=ai_pass)
    assert judgments.count() == 2
    for j in judgments:
        assert j.task is not None
        assert j.task.kind == "pairwise"
        shown = set(j.task.task_responses.values_list("response_id", flat=True))
        assert shown == {j.chosen_response_id, j.rejected_response_id}
        assert (j.task.slots_taken, j.task.judgments_done) == (0, 0)


def test_a_retry_skips_the_prompts_done(project, world, monkeypatch) -> None:
    monkeypatch.setenv("AI_CAI_BATCH", "1")
    calls: list[list[int]] = []
    monkeypatch.setattr(cai, "critique_and_revise", scripted(calls, fail_on=2))
    ai_pass = start(project, world)
    with pytest.raises(OperationalError):  # transient: the Celery task retries it
        cai.cai_execute(pass_id=ai_pass.id)
    ai_pass.refresh_from_db()
    assert (ai_pass.status, ai_pass.done) == ("running", 1)
    assert ai_pass.progress == pytest.approx(1 / 3)
    monkeypatch.setattr(cai, "critique_and_revise", scripted(calls))
    assert cai.cai_execute(pass_id=ai_pass.id) == "succeeded"
    first, *_ = world["prompts"]
    assert calls[0] == [first.id]
    assert [c[0] for c in calls[2:]] == [p.id for p in world["prompts"][1:]]
    assert models.Response.objects.filter(source__startswith="cai:").count() == 3 + 2
    # a duplicate batch stores nothing twice
    item = cai.CAIPrompt(first.id, ({"role": "user", "content": "q0"},))
    results = scripted([])(None, None, [item], PRINCIPLES, config=None)
    stored = cai.cai_store(
        ai_pass=ai_pass, results=results, indexes=[0, 1], model_name="m", seconds=0
    )
    assert stored == 0
    assert models.AIJudgment.objects.filter(ai_pass=ai_pass).count() == 2


def test_a_permanent_error_fails_the_pass(project, world, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(cai, "critique_and_revise", broken)
    ai_pass = start(project, world)
    assert cai.cai_execute(pass_id=ai_pass.id) == "failed"
    ai_pass.refresh_from_db()
    assert ai_pass.status == "failed"
    assert "CUDA out of memory" in ai_pass.error


def test_start_cai_pass_validates(project, world, manager) -> None:
    with pytest.raises(ValidationFailed, match="Not prompts of this project"):
        ai_passes.start_cai_pass(project=project, user=manager, prompt_ids=[10**9], enqueue=False)
    with pytest.raises(ValidationFailed, match="verify"):
        ai_passes.start_cai_pass(project=project, user=manager, verify="yes", enqueue=False)
    with pytest.raises(ValidationFailed, match="queue"):
        ai_passes.start_cai_pass(project=project, user=manager, queue="tpu", enqueue=False)
    with pytest.raises(ValidationFailed, match="principle"):
        ai_passes.start_cai_pass(project=project, user=manager, principles=[5], enqueue=False)
    everything = ai_passes.start_cai_pass(project=project, user=manager, limit=2, enqueue=False)
    assert len(everything.task_ids) == 2
    assert models.AIPass.objects.filter(project=project).count() == 1


def test_no_constitution_no_cai(project, manager, settings, tmp_path) -> None:
    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    PromptFactory(project=project)
    with pytest.raises(ValidationFailed, match="constitution"):
        ai_passes.start_cai_pass(project=project, user=manager, enqueue=False)


def test_cai_on_a_tiny_model(project, world, monkeypatch, tmp_path) -> None:
    """The real path end to end: model loading, three generate calls, storing."""
    from training.tiny import write_tiny_causal_lm

    path = write_tiny_causal_lm(tmp_path / "lm", chat_template=True, n_positions=1024)
    monkeypatch.undo()  # the real load_model
    project.max_new_tokens = 4
    project.save(update_fields=["max_new_tokens"])
    ai_pass = start(project, world, model=str(path))
    assert cai.cai_execute(pass_id=ai_pass.id) == "succeeded"
    ai_pass.refresh_from_db()
    assert ai_pass.done + ai_pass.stats["skipped"] == 3
    assert ai_pass.stats["tokens"] > 0


def test_cai_tasks_are_routed_by_queue() -> None:
    from config import celery

    for queue, name in ai_passes.RUN_CAI_TASKS.items():
        assert celery.TASK_ROUTES[name] == {"queue": queue}
        assert name in celery.app.tasks
    assert "workers.cai" in celery.TASK_MODULES


def test_an_unusable_original_is_recorded_and_never_retried(project, world, monkeypatch) -> None:
    """An original the database cannot show stores no row, but the prompt is done: the pass
    finishes, and a retry does not generate it again."""
    calls: list[list[int]] = []
    base = scripted(calls)
    first = world["prompts"][0]

    def empty_first(model, tokenizer, items, principles, *, config):
        out = base(model, tokenizer, items, principles, config=config)
        return [r if r.key != first.id else dataclasses.replace(r, original="  ") for r in out]

    monkeypatch.setattr(cai, "critique_and_revise", empty_first)
    ai_pass = start(project, world)
    assert cai.cai_execute(pass_id=ai_pass.id) == "succeeded"
    ai_pass.refresh_from_db()
    assert (ai_pass.done, ai_pass.progress, ai_pass.stats["skipped"]) == (3, 1.0, 0)
    assert ai_pass.stats["unusable"] == {str(first.id): "empty"}
    assert ai_pass.stats["dropped"] == {"identical": 1, "original_empty": 1}
    assert ai_pass.stats["kept"] == 1
    assert (ai_pass.stats["tokens"], ai_pass.stats["unusable_tokens"]) == (30, 10)  # all paid
    assert not models.Response.objects.filter(prompt=first).exists()
    assert cai.cai_pending(ai_pass) == []
    # a redelivered batch with the same result stores nothing and keeps the record
    item = cai.CAIPrompt(first.id, ({"role": "user", "content": "q0"},))
    again = empty_first(None, None, [item], PRINCIPLES, config=None)
    assert (
        cai.cai_store(ai_pass=ai_pass, results=again, indexes=[0, 1], model_name="m", seconds=0)
        == 0
    )
    ai_pass.refresh_from_db()
    assert ai_pass.stats["unusable"] == {str(first.id): "empty"}
    assert ai_pass.done == 3


def test_a_lost_cai_message_is_sent_again(project, world, monkeypatch) -> None:
    """The policy tick re-sends queued, never-claimed CAI batches to their own task."""
    from datetime import timedelta

    from django.utils import timezone

    sent: list[tuple[str, tuple]] = []
    monkeypatch.setattr("config.celery.send", lambda name, *args: sent.append((name, args)))
    ai_pass = start(project, world, queue="gpu")
    fresh = start(project, world)
    models.AIPass.objects.filter(id=ai_pass.id).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    assert ai_passes.ai_pass_requeue_stale() == [ai_pass.id]
    assert sent == [("ai.run_cai.gpu", (ai_pass.id,))]
    assert fresh.id not in [args[0] for _, args in sent]
    # once claimed, it is not sent again
    assert ai_passes.cai_pass_claim(pass_id=ai_pass.id)
    models.AIPass.objects.filter(id=ai_pass.id).update(status="queued")
    assert ai_passes.ai_pass_requeue_stale() == []


def test_the_command_starts_and_runs_a_cai_batch(project, world, monkeypatch, capsys) -> None:
    import io
    import json

    from django.core.management import CommandError, call_command

    sent: list[tuple[str, tuple]] = []
    monkeypatch.setattr("config.celery.send", lambda name, *args: sent.append((name, args)))
    monkeypatch.setattr(cai, "critique_and_revise", scripted([]))
    ids = ",".join(str(p.id) for p in world["prompts"][:2])
    out = io.StringIO()
    args = ("ai_pass", "start", "--project", project.slug, "--method", "cai", "--prompts", ids)
    call_command(*args, "--verify", "--queue", "gpu", stdout=out)
    queued = json.loads(out.getvalue())
    assert (queued["method"], queued["status"], queued["total"]) == ("cai", "queued", 2)
    assert queued["stats"] == {"verify_tasks": True}
    out = io.StringIO()
    call_command(*args, "--principles", "1", "--here", stdout=out)
    ran = json.loads(out.getvalue())
    assert (ran["status"], ran["done"], ran["principle_indexes"]) == ("succeeded", 2, [1])
    assert models.AIJudgment.objects.filter(ai_pass_id=ran["id"]).count() == 2
    with pytest.raises(CommandError, match="No principle 9"):
        call_command(*args, "--principles", "9")
    with pytest.raises(CommandError, match="--prompts"):
        call_command(*args, "--tasks", "1")
    with pytest.raises(CommandError, match="for --method cai"):
        call_command(
            "ai_pass", "start", "--project", project.slug, "--method", "llm_judge", "--verify"
        )
    assert models.AIPass.objects.filter(project=project).count() == 2
