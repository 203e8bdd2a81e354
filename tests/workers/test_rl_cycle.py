"""Online RL in the retrain cycle (workers/online.py, the policy step of workers/pipelines.py):
ppo / rloo / grpo from the run's (or the project's active) reward model on the project's prompts,
the monitors on the run's curve, alarms and the over-optimisation series on the step's result,
the lineage on the version, idempotent retries, and a clear failure without a reward model.

In-process cycles on PostgreSQL with the tiny random model, a few RL steps each (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import OperationalError

from annotation import models
from annotation.run_options import GOLD_RULES, run_config_problem
from annotation.services.runs import artifact_complete
from tests.workers.conftest import add_pairwise_judgments, make_loop_project
from workers import online, pipelines
from workers.hidden_rules import RULES

RL = {
    "device": "cpu",
    "pairs_per_cycle": 2,
    "prompts_per_cycle": 2,
    "compare_pairs_per_cycle": 0,
    "eval_prompts": 2,
    "rl_steps": 3,
    "rl_prompts_per_step": 2,
    "rl_max_new_tokens": 6,
    "policy_learning_rate": 1e-3,
}
MONITOR_KEYS = {
    "objective/scores",
    "objective/kl",
    "objective/sqrt_kl",
    "objective/entropy",
    "completions/mean_length",
    "completions/clipped_ratio",
    "policy/clipfrac",
    "alarm/length",
    "alarm/kl",
}


@pytest.fixture(autouse=True)
def _artifacts(tmp_path, settings):
    settings.LOOP_ARTIFACTS_DIR = str(tmp_path / "artifacts")


def _run(project, trainers, **config):
    return models.TrainingRun.objects.create(
        project=project, trainers=trainers, config={**RL, **config}
    )


def _policy_result(run) -> dict:
    return run.steps.get(name="policy").result


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("needs_postgres")
def test_ppo_cycle_trains_against_the_new_reward_model_and_records_lineage_and_monitors(
    tiny_base,
):
    project = make_loop_project(tiny_base, trainers=["rm", "ppo"])
    add_pairwise_judgments(project, 6)
    run = _run(project, ["rm", "ppo"], rl_target_kl=1.0)

    assert pipelines.cycle_execute(run_id=run.id) == "succeeded"

    run.refresh_from_db()
    rm = run.versions.get(trainer="rm")
    ppo = run.versions.get(trainer="ppo")
    assert ppo.status == "ready"
    assert artifact_complete(Path(ppo.artifact_path))
    assert ppo.parent.trainer == "base"
    # lineage: method, the final (adapted) beta, the reward model it optimised, k, steps
    assert ppo.config["method"] == "ppo"
    assert ppo.config["reward_model_version"] == rm.id
    assert ppo.config["adaptive_kl"] is True
    assert ppo.config["beta"] == pytest.approx(ppo.metrics["kl/beta"], abs=1e-5)
    assert ppo.config["beta"] != 0.05  # adapted (a little, in 3 steps) towards target_kl
    assert (ppo.config["k"], ppo.config["steps"], ppo.config["max_new_tokens"]) == (1, 3, 6)
    assert ppo.config["train"]["reward_model"] == rm.artifact_path
    assert ppo.config["snapshot_run"] == run.id
    # the trainer's own held-out metrics do not collide with the cycle's evaluation
    assert "rl_eval/scores" in ppo.metrics
    assert isinstance(ppo.metrics["eval/win_rate"], float)
    # the monitors of every step on the run's curve, as the other trainers' curves
    points = [p for p in run.curve if p.get("model") == "ppo"]
    assert [p["i"] for p in points] == [1, 2, 3]
    assert all(MONITOR_KEYS | {"val/error", "kl/beta"} <= set(p) for p in points)
    assert all(p["objective/sqrt_kl"] == pytest.approx(p["objective/kl"] ** 0.5, abs=1e-3)
               for p in points if p["objective/kl"] >= 0)  # fmt: skip
    result = _policy_result(run)
    assert result["ppo/reward_model"] == rm.id
    assert result["ppo/alarms"] == []
    assert result["ppo/alarms_fired"] == 0
    assert [p["step"] for p in result["ppo/overoptimization"]] == [1, 2, 3]
    assert "gold" not in result["ppo/overoptimization"][0]  # no gold judge outside simulations
    assert run.metrics["policy"]["ppo/alarms_fired"] == 0
    # the evaluation and promotion treat it like any other policy
    assert str(ppo.id) in run.steps.get(name="evaluate").result
    generated = models.Response.objects.filter(generation_run=run)
    assert set(generated.values_list("model_version_id", flat=True)) == {ppo.id}

    # a late duplicate of the message changes nothing
    assert pipelines.cycle_execute(run_id=run.id).startswith("skipped")
    assert run.versions.filter(trainer="ppo").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("needs_postgres")
def test_grpo_and_best_of_n_optimise_the_projects_active_reward_model_with_gold_logged(tiny_base):
    project = make_loop_project(tiny_base, trainers=["rm"])
    add_pairwise_judgments(project, 6)
    first = _run(project, ["rm"])
    assert pipelines.cycle_execute(run_id=first.id) == "succeeded"
    active_rm = models.ModelVersion.objects.get(project=project, kind="reward", is_active=True)

    run = _run(project, ["grpo"], rl_k=2, gold_rule="lowercase")
    assert pipelines.cycle_execute(run_id=run.id) == "succeeded", run.error

    run.refresh_from_db()
    grpo = run.versions.get(trainer="grpo")
    assert grpo.status == "ready"
    assert grpo.config["reward_model_version"] == active_rm.id
    assert (grpo.config["method"], grpo.config["k"], grpo.config["beta"]) == ("grpo", 2, 0.05)
    points = [p for p in run.curve if p.get("model") == "grpo"]
    assert len(points) == 3
    assert all(0 <= p["objective/gold"] <= 1 for p in points)
    over = _policy_result(run)["grpo/overoptimization"]
    assert all({"sqrt_kl", "reward", "gold"} <= set(p) for p in over)

    # best-of-n: one round of sample k -> keep the best by reward -> SFT, from the new parent
    parent = models.ModelVersion.objects.get(project=project, kind="policy", is_active=True)
    bon_run = _run(project, ["best_of_n"], rl_k=2, gold_rule="lowercase")
    assert pipelines.cycle_execute(run_id=bon_run.id) == "succeeded", bon_run.error
    bon = bon_run.versions.get(trainer="best_of_n")
    assert bon.status == "ready"
    assert bon.parent_id == parent.id
    assert (bon.config["method"], bon.config["steps"], bon.config["k"]) == ("best_of_n", 1, 2)
    assert bon.config["reward_model_version"] == active_rm.id
    (point,) = _policy_result(bon_run)["best_of_n/overoptimization"]
    assert point["step"] == 1
    assert "gold" in point


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("needs_postgres")
def test_without_a_reward_model_the_run_fails_saying_so(tiny_base):
    project = make_loop_project(tiny_base, trainers=["ppo"])
    active = models.ModelVersion.objects.create(
        project=project, name="v1", kind="policy", trainer="dpo", status="ready", is_active=True
    )
    run = _run(project, ["ppo"])

    assert pipelines.cycle_execute(run_id=run.id) == "failed"

    run.refresh_from_db()
    assert run.error.startswith("PermanentError: ppo needs a reward model: train one first")
    assert run.current_step == "policy"
    assert not run.versions.exists()  # nothing half-made
    active.refresh_from_db()
    assert active.is_active


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("needs_postgres")
def test_the_bootstrap_cycle_skips_rl_until_a_reward_model_exists(tiny_base):
    project = make_loop_project(tiny_base, trainers=["rm", "rloo"])
    run = _run(project, ["rm", "rloo"])  # no judgments yet: the rm step is skipped

    assert pipelines.cycle_execute(run_id=run.id) == "succeeded", run.error

    assert _policy_result(run)["rloo/skipped"].startswith("no reward model yet")
    assert not run.versions.exists()
    assert models.Task.objects.filter(generation_run=run).exists()  # the loop goes on


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("needs_postgres")
def test_a_crash_after_training_reuses_the_artifact_and_keeps_one_version(tiny_base, monkeypatch):
    project = make_loop_project(tiny_base, trainers=["rm", "rloo"])
    add_pairwise_judgments(project, 6)
    run = _run(project, ["rm", "rloo"], rl_k=2)
    real_mark_ready = pipelines._mark_ready

    def connection_lost(version, *args):
        if version.trainer == "rloo":
            raise OperationalError("server closed the connection unexpectedly")
        real_mark_ready(version, *args)

    monkeypatch.setattr(pipelines, "_mark_ready", connection_lost)
    with pytest.raises(OperationalError):  # transient: the task retries it
        pipelines.cycle_execute(run_id=run.id)
    run.refresh_from_db()
    assert run.status == "running"
    assert not run.steps.filter(name="policy").exists()  # rolled back with the step's writes
    (version,) = run.versions.filter(trainer="rloo")
    assert version.status == "training"
    assert artifact_complete(pipelines.run_dir(run) / "rloo")

    monkeypatch.setattr(pipelines, "_mark_ready", real_mark_ready)

    def no_retraining(name):
        raise AssertionError(f"{name} trained again")

    monkeypatch.setattr("training.registry.resolve", no_retraining)
    assert pipelines.cycle_execute(run_id=run.id) == "succeeded"

    run.refresh_from_db()
    assert run.attempts == 2
    (again,) = run.versions.filter(trainer="rloo")
    assert again.id == version.id
    assert again.status == "ready"
    assert again.config["method"] == "rloo"
    assert again.config["steps"] == 3
    assert _policy_result(run)["rloo/overoptimization"]  # from the first attempt's curve


def test_policy_config_takes_the_rl_run_options(tmp_path):
    from types import SimpleNamespace

    from workers.steps import DEFAULTS

    ctx = SimpleNamespace(
        cfg={**DEFAULTS, "rl_steps": 7, "rl_k": 3, "rl_beta": 0.2, "rl_target_kl": 2.0},
        root=tmp_path,
        run=SimpleNamespace(id=1),
        project=SimpleNamespace(slug="p"),
    )
    parent = SimpleNamespace(artifact_path="/models/parent")
    ppo = pipelines._policy_config(ctx, "ppo", parent, tmp_path / "ppo")
    assert (ppo.max_steps, ppo.k, ppo.beta, ppo.rollout_batch_size) == (7, 3, 0.2, 4)
    assert (ppo.adaptive_kl, ppo.target_kl) == (True, 2.0)
    rloo = pipelines._policy_config(ctx, "rloo", parent, tmp_path / "rloo")
    assert not hasattr(rloo, "adaptive_kl")
    ctx.cfg["rl_k"] = 0  # the method's own default
    assert pipelines._policy_config(ctx, "grpo", parent, tmp_path / "g").k == 4
    bon = pipelines._policy_config(ctx, "best_of_n", parent, tmp_path / "b")
    assert bon.iterations == 1


def test_gold_rules_are_the_simulations_rules():
    assert {r for r in ("", *RULES) if GOLD_RULES.fullmatch(r)} == {"", *RULES}
    assert run_config_problem({"gold_rule": "lipogram"}) is None
    field, message = run_config_problem({"gold_rule": "__import__"})
    assert field == "config.gold_rule"
    assert "'lowercase', 'lipogram' or 'finished-concise'" in message
    assert run_config_problem({"rl_k": 1.5})[0] == "config.rl_k"
    assert set(online.ON_POLICY) == {"ppo", "rloo", "grpo", "best_of_n"}


def test_alarm_events_name_the_step_value_and_bound():
    from types import SimpleNamespace

    config = SimpleNamespace(length_alarm=1.5, kl_alarm=20.0)
    history = [
        {"step": 1, "alarm/length": 0.0, "alarm/kl": 0.0, "objective/kl": 1.0},
        {"i": 2, "alarm/length": 1.0, "alarm/kl": 0.0, "completions/mean_length": 30.0},
        {"i": 3, "alarm/length": 1.0, "alarm/kl": 1.0, "objective/kl": 25.0},
    ]
    assert online.alarm_events(history, config) == [
        {"step": 2, "alarm": "length", "value": 30.0, "bound": 1.5},
        {"step": 3, "alarm": "kl", "value": 25.0, "bound": 20.0},
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("needs_postgres")
def test_a_simulation_with_ppo_logs_the_hidden_rule_as_the_gold_score(tmp_path):
    from workers.hidden_rules import hidden_score
    from workers.simulate import SimConfig, Simulation

    config = SimConfig(
        rounds=1, labels_per_round=8, train_prompts=8, eval_prompts=4, k=3, max_new_tokens=6,
        rm_epochs=1, rm_pairs_prompts=0, eval_samples=2, policy="ppo", rl_steps=3,
        rl_prompts_per_step=4, workdir=str(tmp_path / "sim"), keep=True,
    )  # fmt: skip
    lines: list[str] = []

    reports = Simulation(config).run(report=lambda r: lines.append(r.line()))

    assert reports[0].rl == {}  # the bootstrap: no reward model yet, so no RL
    rl = reports[1].rl
    assert [p["step"] for p in rl["series"]] == [1, 2, 3]
    assert {"reward", "gold", "sqrt_kl"} <= set(rl)
    assert 0 <= rl["gold"] <= 1
    assert " gold " in lines[1]
    run = models.TrainingRun.objects.filter(status="succeeded").order_by("-id").first()
    assert run.trainers == ["rm", "ppo"]
    assert run.config["gold_rule"] == "lowercase"
    ppo = run.versions.get(trainer="ppo")
    points = [p for p in run.curve if p.get("model") == "ppo"]
    assert [p["objective/gold"] for p in points] == [p["gold"] for p in rl["series"]]
    assert ppo.metrics["rl_eval/gold"] >= 0
    assert hidden_score("ab") == 1.0  # the scorer the gold is


def test_an_unknown_simulation_policy_is_refused(tmp_path):
    from workers.simulate import SimConfig, Simulation

    with pytest.raises(ValueError, match=r"unknown policy 'kto'"):
        Simulation(SimConfig(policy="kto", workdir=str(tmp_path)))
