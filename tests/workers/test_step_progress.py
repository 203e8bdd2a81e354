"""Progress as the database shows it while a step runs: the step's name from its first moment,
and several increasing values during generation (one per prompt batch)."""

from __future__ import annotations

from typing import Any

import pytest

from annotation import models
from tests.workers.conftest import make_loop_project
from workers import candidates, steps
from workers.pipelines import run_config


def _context(project: models.Project, tmp_path: Any) -> steps.Context:
    run = models.TrainingRun.objects.create(
        project=project,
        status=models.RunStatus.RUNNING,
        config={"prompts_per_cycle": 6, "device": "cpu"},
    )
    return steps.Context(run=run, project=project, root=tmp_path, cfg=run_config(run))


def _watch(ctx: steps.Context) -> list[tuple[str, float, float]]:
    """Wrap ``ctx.report``: after every call, what the run's row says (step, step, overall)."""
    seen: list[tuple[str, float, float]] = []
    report = ctx.report

    def spy(name: str, fraction: float, point: dict[str, Any] | None = None) -> None:
        report(name, fraction, point)
        row = models.TrainingRun.objects.values_list(
            "current_step", "step_progress", "progress"
        ).get(id=ctx.run.id)
        seen.append(row)

    ctx.report = spy  # type: ignore[method-assign]
    return seen


@pytest.mark.django_db
def test_current_step_names_the_running_step_at_once(tiny_base, tmp_path, settings):
    settings.LOOP_ARTIFACTS_DIR = str(tmp_path)
    project = make_loop_project(tiny_base)
    ctx = _context(project, tmp_path)
    seen = _watch(ctx)
    names: list[str] = []

    def probe(c: steps.Context) -> tuple[dict[str, Any], None]:
        names.append(models.TrainingRun.objects.get(id=c.run.id).current_step)
        return {}, None

    # Two steps started within the throttle interval: the second is still written at once.
    steps.run_step(ctx, "register", probe)
    steps.run_step(ctx, "generate", probe)

    assert names == ["register", "generate"]
    run = models.TrainingRun.objects.get(id=ctx.run.id)
    assert run.step_started_at is not None
    assert seen[-1][0] == "generate"


@pytest.mark.django_db
def test_generate_step_reports_progress_per_batch(tiny_base, tmp_path, settings, monkeypatch):
    settings.LOOP_ARTIFACTS_DIR = str(tmp_path)
    monkeypatch.setattr(steps, "PROGRESS_INTERVAL", 0.0)  # every report reaches the database
    project = make_loop_project(tiny_base, prompts=6, samples_per_prompt=3)
    ctx = _context(project, tmp_path)
    ctx.cfg = {**ctx.cfg, "prompts_per_cycle": 6}
    seen = _watch(ctx)

    steps.run_step(ctx, "generate", candidates.step_generate)

    during = [(step, frac) for step, frac, _ in seen]
    assert {step for step, _ in during} == {"generate"}
    fractions = [frac for _, frac in during]
    # 6 prompts x 3 samples in batches of 8: three batches, each one a new value
    inside = [f for f in fractions if 0 < f < 1]
    assert len(inside) >= 3, fractions
    assert fractions == sorted(fractions)
    assert len(set(fractions)) == len(fractions)
    assert fractions[-1] == 1.0
    overall = [p for _, _, p in seen]
    assert overall == sorted(overall)
    assert models.Response.objects.filter(generation_run=ctx.run).count() > 0


def test_the_run_page_lists_the_steps_the_worker_runs():
    from annotation.run_steps import RUN_STEPS
    from workers.pipelines import STEPS

    assert [name for name, _ in STEPS] == [s.name for s in RUN_STEPS]
    assert sum(s.weight for s in RUN_STEPS) == pytest.approx(1.0)


@pytest.mark.django_db
def test_comparison_pairs_put_a_new_candidate_beside_an_earlier_system(
    tiny_base, tmp_path, settings
):
    """Without them the loop's pairs never compare two systems and the leaderboard stays empty."""
    settings.LOOP_ARTIFACTS_DIR = str(tmp_path)
    project = make_loop_project(tiny_base, prompts=4, samples_per_prompt=2)
    earlier = {}
    for prompt in models.Prompt.objects.filter(project=project, split="train"):
        earlier[prompt.id] = {
            models.Response.objects.create(
                prompt=prompt, text=f"An imported answer {prompt.id}."
            ).id
        }
    ctx = _context(project, tmp_path)
    ctx.cfg = {**ctx.cfg, "prompts_per_cycle": 4, "compare_pairs_per_cycle": 3}
    steps.run_step(ctx, "generate", candidates.step_generate)
    steps.run_step(ctx, "select", candidates.step_select)
    steps.run_step(ctx, "tasks", candidates.step_tasks)

    compare = ctx.results["select"]["compare"]
    assert len(compare) == 3
    new_ids = set(
        models.Response.objects.filter(generation_run=ctx.run).values_list("id", flat=True)
    )
    for pid, new, old in compare:
        assert new in new_ids
        assert old in earlier[pid]
    tasks = models.Task.objects.filter(generation_run=ctx.run, kind="pairwise")
    pairs = {tuple(sorted(t.task_responses.values_list("response_id", flat=True))) for t in tasks}
    assert {tuple(sorted((new, old))) for _, new, old in compare} <= pairs
    # The same seed and cycle pick the same pairs (a retried step creates the same tasks).
    assert candidates.comparison_pairs(ctx, 3) == compare
    assert candidates.comparison_pairs(ctx, 0) == []


@pytest.mark.django_db
def test_report_to_reaches_the_loops_trainers(tiny_base, tmp_path, settings):
    """``report_to`` as a run option: the cycle's reward model logs TensorBoard events under its
    output (the same metric names as the run's curve), and bad values are refused up front."""
    from annotation.run_options import run_config_problem
    from tests.training.test_tracking import tensorboard_scalars
    from tests.workers.conftest import add_pairwise_judgments
    from workers.pipelines import step_records, step_reward, step_snapshot

    assert run_config_problem({"report_to": "wandb"})[0] == "config.report_to"
    assert run_config_problem({"report_to": "tensorboard,tensorboard"}) is not None
    assert run_config_problem({"report_to": "tensorboard,mlflow"}) is None
    settings.LOOP_ARTIFACTS_DIR = str(tmp_path)
    project = make_loop_project(tiny_base)
    add_pairwise_judgments(project, 8)
    ctx = _context(project, tmp_path)
    ctx.cfg = {**ctx.cfg, "report_to": "tensorboard"}
    for name, step in (("snapshot", step_snapshot), ("records", step_records)):
        steps.run_step(ctx, name, step)
    steps.run_step(ctx, "reward", step_reward)

    events = tmp_path / "rm.tensorboard"
    scalars = tensorboard_scalars(events)
    assert any(tag == "loss" for tag, _ in scalars), sorted(scalars)[:5]
