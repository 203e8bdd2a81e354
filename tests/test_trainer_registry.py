"""Adding a trainer is one implementation file plus one entry in training/contract/trainers.py.

For every entry, each place that names trainers must know it without being edited: the entry
resolves to a module with ``run`` and a config dataclass, the CLI has its subcommand, the web
accepts it as a project's and a run's trainer (and the migrations hold its choice), the run form
and pages show it, and the retrain cycle knows its records and builds its config.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db.migrations.loader import MigrationLoader

import training.contract.trainers as table
from annotation.models import ModelVersion, Trainer
from annotation.run_detail import MODEL_TITLES
from annotation.services.loop import KNOWN_TRAINERS, _check_trainers
from annotation.services.projects import TRAINER_NAMES, _check_settings
from training.config import TrainConfig
from training.contract.trainers import (
    POLICY_TRAINERS,
    TRAINERS,
    TrainerSpec,
    in_training_order,
    trainer_spec,
)
from training.registry import config_class, resolve

NAMES = [t.name for t in TRAINERS]


def test_names_are_unique_and_fit_the_column() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert "base" not in NAMES  # reserved for imported base models
    limit = ModelVersion._meta.get_field("trainer").max_length
    assert all(len(n) <= limit for n in NAMES)


@pytest.mark.parametrize("spec", TRAINERS, ids=NAMES)
def test_entry_resolves_to_a_trainer(spec: TrainerSpec) -> None:
    assert spec.kind in ("reward", "policy")
    assert spec.records in ("preference", "unpaired", "sft", "prompts")
    assert spec.on_policy == (spec.records == "prompts")  # online methods learn from prompts
    cls = config_class(spec.name)
    assert dataclasses.is_dataclass(cls)
    assert issubclass(cls, TrainConfig)
    trainer = resolve(spec.name)
    assert trainer.config_class is cls
    params = list(inspect.signature(trainer.module.run).parameters)
    assert params[:4] == ["config", "train_records", "eval_records", "progress"]
    assert getattr(trainer.module, "NAME", spec.name) == spec.name
    assert spec.label
    assert spec.summary


@pytest.mark.parametrize("name", NAMES)
def test_entry_has_a_cli_subcommand(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from training.__main__ import COMMANDS, HANDLERS, main

    assert COMMANDS[name][0] is config_class(name)
    assert name in HANDLERS
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "--learning_rate" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_a_valid_project_and_model_choice(name: str) -> None:
    assert name in TRAINER_NAMES
    _check_settings({"trainers": [name]})  # a project may train with it (raises otherwise)
    assert Trainer(name).label == trainer_spec(name).label
    assert name in dict(ModelVersion._meta.get_field("trainer").choices)


def test_the_migrations_hold_the_trainer_choices() -> None:
    """A new entry changes ModelVersion.trainer's choices: run ``manage.py makemigrations``."""
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    migrated = state.models["annotation", "modelversion"].fields["trainer"].choices
    assert list(migrated) == list(Trainer.choices), "run manage.py makemigrations annotation"


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_accepted_by_the_loop(name: str, tmp_path: Path) -> None:
    from workers import pipelines
    from workers.steps import DEFAULTS

    spec = trainer_spec(name)
    assert name in KNOWN_TRAINERS
    assert _check_trainers([name]) == [name]
    assert name in MODEL_TITLES
    if spec.kind == "reward":
        assert name not in pipelines.POLICY_TRAINERS
        return
    assert name in pipelines.POLICY_TRAINERS
    assert pipelines.TRAINER_RECORDS[name] == spec.records
    ctx = SimpleNamespace(
        cfg={**DEFAULTS, "report_to": ""},
        root=tmp_path,
        run=SimpleNamespace(id=1),
        project=SimpleNamespace(slug="p"),
    )
    parent = SimpleNamespace(artifact_path="/models/parent")
    config = pipelines._policy_config(ctx, name, parent, tmp_path / name)
    assert isinstance(config, config_class(name))
    assert config.model == "/models/parent"
    assert config.output_dir == str(tmp_path / name)


def test_order_and_lists_follow_the_table() -> None:
    assert list(table.TRAINER_NAMES) == NAMES
    assert list(POLICY_TRAINERS) == [t.name for t in TRAINERS if t.kind == "policy"]
    assert in_training_order([*reversed(NAMES), "nope", 3, None]) == NAMES
    assert in_training_order("rm") == []
    with pytest.raises(KeyError, match="unknown trainer 'nope'"):
        trainer_spec("nope")
