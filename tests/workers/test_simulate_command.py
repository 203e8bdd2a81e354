"""``manage.py simulate`` refuses bad options before touching anything; a given base is copied."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation import models
from training.tiny import write_tiny_causal_lm
from workers.hidden_rules import RULE_DESCRIPTIONS, RULES
from workers.simulate import SimConfig, Simulation


def test_every_rule_is_described():
    assert set(RULE_DESCRIPTIONS) == set(RULES)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--rule", "vowels"],
            "--rule must be one of finished-concise, lipogram, lowercase, hh-minilm, not 'vowels'",
        ),
        (["--rule", "hh-minilm", "--pairs-file", "/nowhere.jsonl"], "is not a file"),
        (["--train-prompts", "0"], "--train-prompts must be in 1..10000"),
        (["--lora-r", "-1"], "--lora-r must be in 0..256"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be in 1..256"),
        (["--policy-lr", "0"], "--policy-lr > 0"),
        (["--flip", "0.5"], "--flip must be in"),
    ],
)
@pytest.mark.django_db
def test_bad_options_are_refused(argv, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("simulate", *argv)
    assert not models.Project.objects.exists()


@pytest.mark.django_db
def test_a_base_model_without_a_config_is_refused(tmp_path):
    with pytest.raises(CommandError, match=r"holds no config\.json"):
        call_command("simulate", "--base-model", str(tmp_path))
    assert not models.Project.objects.exists()


@pytest.mark.django_db
def test_the_simulation_starts_from_a_copy_of_the_given_base(tmp_path):
    given = write_tiny_causal_lm(tmp_path / "given", seed=7)
    sim = Simulation(SimConfig(base_model=str(given), rule="lipogram", workdir=str(tmp_path / "w")))

    sim.setup()

    base = Path(sim.project.base_model)
    assert base == tmp_path / "w" / "base"
    assert filecmp.cmp(given / "model.safetensors", base / "model.safetensors", shallow=False)
    assert sim.judge([("any prompt", "Even")]) == [0.5]  # the lipogram rule
