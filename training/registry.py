"""The trainer protocol, and a registered name turned into a trainer that can run.

The table of trainers is :mod:`training.contract.trainers` (pure Python, so the web process can
read it). This module is the training side of it: :func:`config_class` imports only a trainer's
config module (the CLI builds its parser from these without loading torch), :func:`resolve`
imports the implementation when a trainer is about to run.

The protocol is one function. Every trainer module has::

    run(config, train_records=None, eval_records=None, progress=None) -> RunResult

``config`` is an instance of the entry's config class (a frozen ``TrainConfig`` subclass),
``train_records``/``eval_records`` are records of the entry's ``records`` kind (preference
pairs, unpaired examples, demonstrations, or prompts for an on-policy trainer; ``None`` reads
``config.train_file``/``eval_file``), ``progress`` is called on rank 0 after each step with a
:class:`training.session.Progress`, and the result is a :class:`training.session.RunResult`
whose artifact is complete on disk. Offline trainers drive :func:`training.loop.fit`, on-policy
ones a :class:`training.session.TrainingSession` of their own; both end in the same result type.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from training.contract.trainers import TRAINERS, TrainerSpec, trainer_spec

if TYPE_CHECKING:
    from training.session import ProgressCallback, RunResult


class TrainerModule(Protocol):
    """What a trainer's implementation module provides."""

    def run(
        self,
        config: Any,
        train_records: Sequence[Any] | None = None,
        eval_records: Sequence[Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunResult: ...


class OnPolicyTrainerModule(Protocol):
    """An on-policy trainer's module: the same ``run`` taking prompts as its records, plus the
    reward to optimise and an optional gold scorer (a path or a callable, keyword only)."""

    def run(
        self,
        config: Any,
        train_records: Sequence[Any] | None = None,
        eval_records: Sequence[Any] | None = None,
        progress: ProgressCallback | None = None,
        *,
        reward_model: Any = None,
        gold: Any = None,
    ) -> RunResult: ...


@dataclass(frozen=True)
class Trainer:
    """A registered trainer with its implementation loaded."""

    spec: TrainerSpec
    config_class: type
    module: TrainerModule

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def on_policy(self) -> OnPolicyTrainerModule:
        """The module as an on-policy trainer (its entry says ``on_policy``)."""
        if not self.spec.on_policy:
            raise TypeError(f"{self.name} is not an on-policy trainer")
        return cast(OnPolicyTrainerModule, self.module)

    def run(
        self,
        config: Any,
        train_records: Sequence[Any] | None = None,
        eval_records: Sequence[Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunResult:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{self.name}: expected a {self.config_class.__name__}, got {type(config).__name__}"
            )
        return self.module.run(config, train_records, eval_records, progress=progress)


def config_class(name: str) -> type:
    """The config dataclass of trainer ``name`` (imports its config module only)."""
    spec = trainer_spec(name)
    return getattr(importlib.import_module(spec.config_module), spec.config_class)  # type: ignore[no-any-return]


def resolve(name: str) -> Trainer:
    """Trainer ``name`` with its implementation imported (torch and all)."""
    spec = trainer_spec(name)
    module = importlib.import_module(spec.module)
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{spec.module} has no run(config, train_records, ...) function")
    return Trainer(spec=spec, config_class=config_class(name), module=module)  # type: ignore[arg-type]


def trainer_names() -> list[str]:
    return [t.name for t in TRAINERS]
