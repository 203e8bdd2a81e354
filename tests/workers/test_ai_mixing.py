"""The cycle's training records under each ``ai_training`` choice, pair by pair, on a small
hand-built project; the snapshot pins the AI judgments it used, the lineage counts the sources."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from annotation import models
from tests.insight import ai_rows
from training.records import load_jsonl
from workers import steps
from workers.pipelines import _lineage, run_config, step_records, step_snapshot

pytestmark = pytest.mark.django_db


def _cycle(project: models.Project, tmp_path: Any) -> tuple[steps.Context, list, list]:
    run = models.TrainingRun.objects.create(project=project, status=models.RunStatus.RUNNING)
    ctx = steps.Context(run=run, project=project, root=tmp_path, cfg=run_config(run))
    steps.run_step(ctx, "snapshot", step_snapshot)
    steps.run_step(ctx, "records", step_records)
    folder = tmp_path / "records"
    pairs = load_jsonl(folder / steps.RECORD_FILES["preference"], "preference")[0]
    unpaired = load_jsonl(folder / steps.RECORD_FILES["unpaired"], "unpaired")[0]
    return ctx, pairs, unpaired


def _rows(pairs: list) -> list[tuple[str, str, float, float]]:
    return [(p.chosen, p.rejected, p.margin, p.weight) for p in pairs]


def test_human_is_exactly_todays_records(project, tmp_path) -> None:
    data = ai_rows.mixed_project(project)
    (a1, b1), (a2, b2), (a3, b3) = data["text"]["t1"], data["text"]["t2"], data["text"]["t3"]
    ctx, pairs, unpaired = _cycle(project, tmp_path)
    assert _rows(pairs) == [(a1, b1, 2.0, 1.0), (b2, a2, 0.0, 1.0)]
    assert [(u.completion, u.desirable) for u in unpaired] == [(a3, False), (b3, False)]
    line = (tmp_path / "records" / "pairs.jsonl").read_text().splitlines()[0]
    assert '"weight"' not in line  # the file a human-only cycle always wrote
    pinned = models.TrainingRun.objects.get(id=ctx.run.id).config["ai_mixing"]
    assert pinned["ai_training"] == "human"
    assert pinned["ai_judgment_ids"] == []
    assert ctx.results["records"]["human"] == 4
    assert ctx.results["records"]["ai"] == 0


def test_ai_only_takes_the_consistent_confident_ai_pairs(project, tmp_path) -> None:
    data = ai_rows.mixed_project(project)
    project.ai_training, project.ai_min_confidence = "ai", 0.7
    project.save()
    (a1, b1), (a3, b3) = data["text"]["t1"], data["text"]["t3"]
    ctx, pairs, unpaired = _cycle(project, tmp_path)
    assert _rows(pairs) == [(b1, a1, 0.0, 1.0), (a3, b3, 0.0, 1.0)]
    assert unpaired == []  # no human record of any kind
    pinned = models.TrainingRun.objects.get(id=ctx.run.id).config["ai_mixing"]
    ids = data["ids"]
    assert pinned["ai_judgment_ids"] == [ids["t1p0"], ids["t3"]]
    assert pinned["ai_max_judgment_id"] == ids["t3"]
    lineage = _lineage(ctx, _Config())
    assert lineage["sources"] == {"human": 0, "ai": 2}
    assert (lineage["ai_training"], lineage["ai_min_confidence"]) == ("ai", 0.7)


def test_both_adds_weighted_ai_pairs_to_the_human_records(project, tmp_path) -> None:
    data = ai_rows.mixed_project(project)
    project.ai_training, project.ai_weight = "both", 0.25
    project.save()
    (a1, b1), (a2, b2), (a3, b3) = data["text"]["t1"], data["text"]["t2"], data["text"]["t3"]
    ctx, pairs, unpaired = _cycle(project, tmp_path)
    assert _rows(pairs) == [
        (a1, b1, 2.0, 1.0),
        (b2, a2, 0.0, 1.0),
        (b1, a1, 0.0, 0.25),  # t1, principle 0
        (a1, b1, 0.0, 0.25),  # t1, principle 1 (0.6: the floor is 0)
        (a3, b3, 0.0, 0.25),
    ]
    assert len(unpaired) == 2
    assert _lineage(ctx, _Config())["sources"] == {"human": 4, "ai": 3}


def test_the_snapshot_pins_the_ai_judgments(project, tmp_path) -> None:
    """An AI verdict stored after the snapshot does not enter that run's records."""
    data = ai_rows.mixed_project(project)
    project.ai_training = "ai"
    project.save()
    run = models.TrainingRun.objects.create(project=project, status=models.RunStatus.RUNNING)
    ctx = steps.Context(run=run, project=project, root=tmp_path, cfg=run_config(run))
    steps.run_step(ctx, "snapshot", step_snapshot)
    later = ai_rows.ai_pass(project)
    for task in models.Task.objects.filter(is_gold=False):
        ai_rows.verdict(later, task, 1)
    steps.run_step(ctx, "records", step_records)
    assert ctx.results["records"]["ai"] == 3
    assert data["ids"]["t2"] not in run.config["ai_mixing"]["ai_judgment_ids"]


@dataclasses.dataclass
class _Config:
    lr: float = 1.0


def test_the_api_shows_the_pin_as_a_count(project, tmp_path, manager, api) -> None:
    ai_rows.mixed_project(project)
    project.ai_training = "both"
    project.save()
    _cycle(project, tmp_path)
    [run] = api(manager).get(f"/api/projects/{project.id}/training-runs/").json()["results"]
    shown = run["config"]["ai_mixing"]
    assert "ai_judgment_ids" not in shown
    assert (shown["ai_training"], shown["ai_judgments"]) == ("both", 3)


def test_a_mixed_reward_model_records_its_sources(tiny_base, tmp_path, settings) -> None:
    """End to end on the tiny model: the weighted AI pairs train a reward model, and the model
    version's lineage says how many records came from humans and from AI."""
    from tests.workers.conftest import make_loop_project
    from workers.pipelines import step_reward

    settings.LOOP_ARTIFACTS_DIR = str(tmp_path)
    project = make_loop_project(tiny_base, ai_training="both", ai_weight=0.5, trainers=["rm"])
    ai_rows.mixed_project(project)
    run = models.TrainingRun.objects.create(
        project=project,
        status=models.RunStatus.RUNNING,
        trainers=["rm"],
        config={"rm_epochs": 1, "device": "cpu"},
    )
    ctx = steps.Context(run=run, project=project, root=tmp_path / "run", cfg=run_config(run))
    for name, step in (("snapshot", step_snapshot), ("records", step_records)):
        steps.run_step(ctx, name, step)
    result = steps.run_step(ctx, "reward", step_reward)
    assert result["pairs"] == 5
    version = models.ModelVersion.objects.get(id=result["version"])
    assert version.status == "ready"
    assert version.config["sources"] == {"human": 4, "ai": 3}
    assert (version.config["ai_training"], version.config["ai_weight"]) == ("both", 0.5)
