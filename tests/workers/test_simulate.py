"""The simulated loop: 3 short seeded rounds on a tiny model push the hidden score up."""

from __future__ import annotations

import math

import pytest

from annotation import models
from workers.hidden_rules import hidden_score, lipogram_score
from workers.simulate import SimConfig, Simulation


def test_hidden_score_rule():
    assert hidden_score("") == 0.0
    assert hidden_score("ab c") == 1.0
    assert hidden_score("aB1!") == 0.25


def test_lipogram_rule():
    assert lipogram_score("") == 0.0
    assert lipogram_score("I saw a cat") == 1.0
    assert lipogram_score("Even") == 0.5


def test_unknown_rule_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown hidden rule 'vowels'.*lipogram"):
        Simulation(SimConfig(rule="vowels", workdir=str(tmp_path)))


@pytest.mark.django_db(transaction=True)
def test_simulated_loop_raises_hidden_score(tmp_path, settings):
    settings.LOOP_ARTIFACTS_DIR = tmp_path / "artifacts"
    # no reward-model DPO pairs: a random-weights reward model is at chance, its pairs are noise
    config = SimConfig(
        rounds=3, labels_per_round=40, train_prompts=16, eval_prompts=8, seed=0,
        rm_pairs_prompts=0, eval_samples=6, workdir=str(tmp_path / "sim"), keep=True,
    )  # fmt: skip
    lines: list[str] = []

    reports = Simulation(config).run(report=lambda r: lines.extend([r.line(), r.timing_line()]))

    print("\n".join(lines))
    assert [r.round for r in reports] == [0, 1, 2, 3]
    assert [r.judgments for r in reports[1:]] == [40, 40, 40]
    assert models.Judgment.objects.count() == 120
    assert 0.7 < sum(r.rater_accuracy for r in reports[1:]) / 3 < 0.95
    assert reports[-1].hidden_score > reports[0].hidden_score + 0.02
    assert max(r.hidden_score for r in reports[1:]) > reports[0].hidden_score
    assert all(r.rm_accuracy is not None for r in reports[1:])
    assert all(r.kl is not None and r.kl >= 0 for r in reports[1:])  # to the parent, evaluated
    assert all(r.length > 0 for r in reports)
    assert " KL " in lines[2]
    assert " length " in lines[2]
    # every reward model is calibrated on its held-out pairs; selection reads the softened margin
    rms = models.ModelVersion.objects.filter(kind="reward", status="ready")
    temperatures = [v.metrics.get("eval/temperature") for v in rms.order_by("id")]
    assert temperatures[0] is None  # 4 held-out pairs: too few to fit one
    assert len(temperatures) == 3
    assert all(t > 0 for t in temperatures[1:])
    selects = models.RunStep.objects.filter(name="select").order_by("id")
    assert [s.result["signal"] for s in selects] == ["none", "margin", "margin", "margin"]
    assert all(s.result["temperature"] >= 1.0 for s in selects[1:])


@pytest.mark.django_db(transaction=True)
def test_ensemble_selection_runs_in_the_cycle(tmp_path, settings, monkeypatch):
    from workers.steps import DEFAULTS

    settings.LOOP_ARTIFACTS_DIR = tmp_path / "artifacts"
    monkeypatch.setitem(DEFAULTS, "ensemble_heads", 4)
    config = SimConfig(
        rounds=2, labels_per_round=24, train_prompts=12, eval_prompts=4, seed=1,
        rm_pairs_prompts=0, eval_samples=2, workdir=str(tmp_path / "sim"), keep=True,
    )  # fmt: skip

    Simulation(config).run()

    steps = models.RunStep.objects.filter(name="select").order_by("id")
    assert [s.result["signal"] for s in steps] == ["none", "ensemble", "ensemble"]
    for step in steps[1:]:
        uncertain = [u for *_, u in step.result["pairs"]][: step.result["uncertain"]]
        assert step.result["uncertain"] == 18  # 24 pairs, 25 % random
        assert all(0.0 <= u <= math.log(2) for u in uncertain)
        assert uncertain == sorted(uncertain, reverse=True)


@pytest.mark.django_db(transaction=True)
def test_reward_model_pairs_join_dpo(tmp_path, settings, monkeypatch):
    """``rm_pairs_prompts``: the parent's best and worst sample by reward become a DPO pair."""
    from workers import candidates

    settings.LOOP_ARTIFACTS_DIR = tmp_path / "artifacts"
    made: list = []

    def rm_pairs(ctx, parent):
        pairs = real_rm_pairs(ctx, parent)
        made.extend(pairs)
        return pairs

    real_rm_pairs = candidates.rm_pairs
    monkeypatch.setattr(candidates, "rm_pairs", rm_pairs)

    # a judge whose order is known
    def reward(text):
        return sum(map(ord, text))

    monkeypatch.setattr(candidates, "scores_for", lambda m, j, items: [reward(t) for _, t in items])
    config = SimConfig(
        rounds=1, labels_per_round=20, train_prompts=10, eval_prompts=2, seed=2,
        rm_pairs_prompts=6, eval_samples=2, workdir=str(tmp_path / "sim"), keep=True,
    )  # fmt: skip

    Simulation(config).run()

    assert 3 <= len(made) <= 6  # prompts whose samples are all alike give no pair
    assert all(reward(p.chosen) > reward(p.rejected) for p in made)
    policy = models.RunStep.objects.filter(name="policy").order_by("id").last()
    assert policy.result["dpo/records"] == 20 + len(made)


@pytest.mark.django_db(transaction=True)
def test_a_simulation_leaves_nothing_behind_even_when_it_fails(tmp_path, settings, monkeypatch):
    from django.contrib.auth import get_user_model

    settings.LOOP_ARTIFACTS_DIR = tmp_path / "artifacts"
    users_before = get_user_model().objects.count()
    config = SimConfig(
        rounds=1, labels_per_round=8, train_prompts=4, eval_prompts=2, seed=3,
        rm_pairs_prompts=0, eval_samples=2, workdir=str(tmp_path / "sim"),
    )  # fmt: skip
    sim = Simulation(config)
    reports = sim.run()
    assert len(reports) == 2
    assert not models.Project.objects.exists()
    assert get_user_model().objects.count() == users_before
    assert not (tmp_path / "sim").exists()
    # the cycles wrote their models under the artifacts folder; none of them is left
    assert (tmp_path / "artifacts").is_dir()
    assert not (tmp_path / "artifacts" / f"project-{sim.project.id}").exists()
    assert not any((tmp_path / "artifacts").iterdir())

    def broken(self):
        raise RuntimeError("the cycle broke")

    monkeypatch.setattr(Simulation, "cycle", broken)
    with pytest.raises(RuntimeError, match="the cycle broke"):
        Simulation(config).run()
    assert not models.Project.objects.exists()
    assert get_user_model().objects.count() == users_before


@pytest.mark.django_db
def test_raters_judge_by_a_gold_that_sees_the_prompt(tmp_path, monkeypatch):
    """The gold scores (prompt, response): a judge preferring answers that repeat the prompt's
    last word decides every simulated judgment (no flips)."""
    import workers.simulate as simulate
    from tests.factories import make_task

    seen: list = []

    def judge(items):
        seen.extend(items)
        return [float(p[-1]["content"].split()[-1] in t) for p, t in items]

    monkeypatch.setattr(simulate, "gold_judge", lambda config: judge)
    sim = Simulation(SimConfig(flip=0.0, train_prompts=2, eval_prompts=1, workdir=str(tmp_path)))
    monkeypatch.setattr(Simulation, "_rm_eval_pairs", lambda self, base: [])
    sim.setup()
    task = make_task(sim.project)
    task.prompt.messages = [{"role": "user", "content": "name a colour: blue"}]
    task.prompt.save(update_fields=["messages"])
    first, second = (tr.response for tr in task.task_responses.order_by("position"))
    models.Response.objects.filter(id=first.id).update(text="red")
    models.Response.objects.filter(id=second.id).update(text="blue")
    done, agreement = sim.label_open_tasks()
    assert (done, agreement) == (1, 1.0)
    judgment = models.Judgment.objects.get(task=task)
    assert judgment.preferred_response_id == second.id
    assert ([{"role": "user", "content": "name a colour: blue"}], "blue") in seen


def test_the_hh_gold_and_prompts_need_the_sample(tmp_path):
    with pytest.raises(ValueError, match="HH-RLHF sample is needed"):
        Simulation(SimConfig(rule="hh-minilm", pairs_file=str(tmp_path / "none.jsonl")))
    with pytest.raises(ValueError, match="prompts must be 'topics' or 'hh'"):
        Simulation(SimConfig(prompts="poems"))
