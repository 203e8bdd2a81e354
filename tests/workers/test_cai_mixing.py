"""Constitutional AI pairs in training, pair by pair: a CAI verdict (revised ≻ original) is an AI
pair under ``ai`` / ``both`` and its revised answer one SFT example; most CAI verdicts have no
task (the item is their prompt), one with a verify task trains through its task. The snapshot pins
them, the lineage counts them, the exports' ``source`` filter gives their pairs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from annotation import models
from annotation.services.tasks import TaskSpec, tasks_create
from tests.factories import PromptFactory
from tests.insight import ai_rows
from tests.workers.test_ai_mixing import _Config, _cycle, _rows
from training.records import load_jsonl
from workers import steps
from workers.pipelines import _lineage

pytestmark = pytest.mark.django_db


def cai_world(project: models.Project) -> dict[str, Any]:
    """``mixed_project`` plus a CAI batch: prompt p1 revised without a task, p2 with a verify
    task."""
    data = ai_rows.mixed_project(project)
    constitution = project.constitutions.order_by("-version").first()
    batch = models.AIPass.objects.create(
        project=project,
        method=models.AIMethod.CAI,
        model_path="m",
        constitution=constitution,
        status=models.AIPassStatus.SUCCEEDED,
    )
    out: dict[str, Any] = {**data, "cai": {}}
    for name, verify in (("p1", False), ("p2", True)):
        prompt = PromptFactory(project=project)
        original = models.Response.objects.create(
            prompt=prompt, text=f"{name} original", origin=models.Origin.MODEL
        )
        revised = models.Response.objects.create(
            prompt=prompt,
            text=f"{name} revised",
            origin=models.Origin.REVISION,
            parent=original,
            generation_params={"critique": "c", "principle": "Be helpful."},
        )
        task = None
        if verify:
            [task] = tasks_create(
                project=project,
                specs=[TaskSpec(models.TaskKind.PAIRWISE, prompt.id, (original.id, revised.id))],
            )
        judgment = models.AIJudgment.objects.create(
            ai_pass=batch,
            project=project,
            task=task,
            method=models.AIMethod.CAI,
            model_name="m",
            constitution=constitution,
            principle_index=0,
            principle="Be helpful.",
            chosen_response=revised,
            rejected_response=original,
            consistent=True,
            confidence=1.0,
            critique="c",
        )
        out["cai"][name] = (revised.text, original.text, judgment.id, prompt)
    return out


def _sft(tmp_path: Any) -> list[tuple[str, str]]:
    rows = load_jsonl(tmp_path / "records" / steps.RECORD_FILES["sft"], "sft")[0]
    return [(r.prompt[-1]["content"], r.completion) for r in rows]


def test_human_ignores_cai(project, tmp_path) -> None:
    data = cai_world(project)
    (a1, b1), (a2, b2) = data["text"]["t1"], data["text"]["t2"]
    ctx, pairs, _ = _cycle(project, tmp_path)
    assert _rows(pairs) == [(a1, b1, 2.0, 1.0), (b2, a2, 0.0, 1.0)]
    assert _sft(tmp_path) == []
    assert ctx.results["records"]["ai"] == 0


def test_ai_trains_the_revised_over_the_original_and_the_revisions_as_sft(
    project, tmp_path
) -> None:
    data = cai_world(project)
    project.ai_training, project.ai_min_confidence = "ai", 0.7
    project.save()
    (a1, b1), (a3, b3) = data["text"]["t1"], data["text"]["t3"]
    v1, o1, j1, p1 = data["cai"]["p1"]
    v2, o2, j2, p2 = data["cai"]["p2"]
    ctx, pairs, unpaired = _cycle(project, tmp_path)
    assert _rows(pairs) == [
        (b1, a1, 0.0, 1.0),
        (a3, b3, 0.0, 1.0),
        (v2, o2, 0.0, 1.0),  # through its verify task (after the other tasks, by task id)
        (v1, o1, 0.0, 1.0),  # no task: its prompt's item, after every task
    ]
    assert [p.prompt[-1]["content"] for p in pairs[2:]] == [
        p2.messages[-1]["content"],
        p1.messages[-1]["content"],
    ]
    assert _sft(tmp_path) == [(p2.messages[-1]["content"], v2), (p1.messages[-1]["content"], v1)]
    assert unpaired == []
    pinned = models.TrainingRun.objects.get(id=ctx.run.id).config["ai_mixing"]
    assert {j1, j2} <= set(pinned["ai_judgment_ids"])
    assert ctx.results["records"]["ai_sft"] == 2
    assert _lineage(ctx, _Config())["sources"] == {"human": 0, "ai": 6}


def test_both_weights_the_cai_pairs_like_other_ai_pairs(project, tmp_path) -> None:
    data = cai_world(project)
    project.ai_training, project.ai_weight = "both", 0.25
    project.save()
    v1, o1, *_ = data["cai"]["p1"]
    v2, o2, *_ = data["cai"]["p2"]
    ctx, pairs, unpaired = _cycle(project, tmp_path)
    assert _rows(pairs)[-2:] == [(v2, o2, 0.0, 0.25), (v1, o1, 0.0, 0.25)]
    assert len(pairs) == 2 + 3 + 2
    assert [completion for _, completion in _sft(tmp_path)] == [v2, v1]
    assert len(unpaired) == 2
    assert _lineage(ctx, _Config())["sources"] == {"human": 4, "ai": 3 + 2 + 2}


def test_a_cai_verdict_stored_after_the_snapshot_does_not_train(project, tmp_path) -> None:
    from workers.pipelines import run_config, step_records, step_snapshot

    project.ai_training = "ai"
    project.save()
    ai_rows.mixed_project(project)
    run = models.TrainingRun.objects.create(project=project, status=models.RunStatus.RUNNING)
    ctx = steps.Context(run=run, project=project, root=tmp_path, cfg=run_config(run))
    steps.run_step(ctx, "snapshot", step_snapshot)
    models.AIJudgment.objects.filter(project=project).delete()  # keep only what comes later
    cai_world_ids = cai_world(project)["cai"]
    steps.run_step(ctx, "records", step_records)
    assert ctx.results["records"]["ai"] == 0
    assert not {v[2] for v in cai_world_ids.values()} & set(
        run.config["ai_mixing"]["ai_judgment_ids"]
    )


def test_exports_give_the_cai_pairs_under_ai_and_all(project, manager, api) -> None:
    data = cai_world(project)
    v1, o1, *_ = data["cai"]["p1"]
    v2, o2, *_ = data["cai"]["p2"]
    client = api(manager)

    def rows(**params: str) -> list[dict]:
        answer = client.get(f"/api/projects/{project.id}/exports/", params)
        assert answer.status_code == 200, answer.content[:300]
        body = b"".join(answer.streaming_content).decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    ai = rows(source="ai")
    assert [(r["chosen"], r["rejected"], r["source"]) for r in ai][-2:] == [
        (v2, o2, "ai"),
        (v1, o1, "ai"),
    ]
    assert len(rows(source="all")) == 2 + len(ai)
    human = rows()
    assert all(v1 not in r["chosen"] and v2 not in r["chosen"] for r in human)
    assert not any(r["chosen"] == v1 for r in rows(source="ai", gold="only"))
