"""The trainers, listed once: every place that names a trainer reads this table.

Pure Python on purpose (no torch, no Django, nothing imported at all): the web process imports it
for its choices and checks, the workers for which records and config a trainer takes, and the
CLI for its subcommands; only :func:`training.registry.resolve` imports an implementation, and
only when a trainer is about to run.

Adding a trainer is one implementation file plus one entry below. The implementation is a module
with a ``run(config, train_records=None, eval_records=None, progress=None) -> RunResult``
(:class:`training.registry.TrainerModule`) and the config class named by ``config``. An
on-policy trainer (PPO, RLOO, GRPO, best-of-n) takes prompts as its records (``records =
"prompts"``) and finds its reward model through its config; everything else is the same. The
ModelVersion ``trainer`` choices come from this table too, so ``manage.py makemigrations`` then
writes a one-field ``AlterField`` for the new name (tests/training/test_registry.py says so when
it is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TrainerKind = Literal["reward", "policy"]
# What a trainer learns from; the first three are the data contract's record kinds.
RecordKind = Literal["preference", "unpaired", "sft", "prompts"]


@dataclass(frozen=True)
class TrainerSpec:
    """One trainer, as everyone outside ``training`` needs to know it."""

    name: str  # stored on ModelVersion.trainer and TrainingRun.trainers; the CLI subcommand
    kind: TrainerKind  # what it produces: a reward model or a policy
    records: RecordKind  # the records it trains on
    module: str  # dotted module path of the implementation, imported only to run it
    config: str  # "module:Class" of its frozen config dataclass (training/config.py style)
    label: str  # what the pages call the model it trains ("DPO policy")
    summary: str  # one line for the retrain form and the CLI's help: what it learns from
    on_policy: bool = False  # samples from the policy while training (takes prompts, a judge)
    aliases: tuple[str, ...] = ()  # other CLI subcommand names (``bon`` for ``best_of_n``)

    @property
    def config_module(self) -> str:
        return self.config.partition(":")[0]

    @property
    def config_class(self) -> str:
        return self.config.partition(":")[2]


TRAINERS: tuple[TrainerSpec, ...] = (
    TrainerSpec(
        name="rm",
        kind="reward",
        records="preference",
        module="training.trainers.reward_model",
        config="training.config:RewardConfig",
        label="Reward model",
        summary="Train a reward model on preference pairs (Bradley-Terry).",
    ),
    TrainerSpec(
        name="dpo",
        kind="policy",
        records="preference",
        module="training.trainers.dpo",
        config="training.config:DPOConfig",
        label="DPO policy",
        summary="Train a policy with DPO on preference pairs.",
    ),
    TrainerSpec(
        name="kto",
        kind="policy",
        records="unpaired",
        module="training.trainers.kto",
        config="training.config:KTOConfig",
        label="KTO policy",
        summary="Train a policy with KTO on thumbs-up/down examples.",
    ),
    TrainerSpec(
        name="sft",
        kind="policy",
        records="sft",
        module="training.trainers.sft",
        config="training.config:SFTConfig",
        label="SFT policy",
        summary="Supervised fine-tuning on demonstrations.",
    ),
    TrainerSpec(
        name="ppo",
        kind="policy",
        records="prompts",
        module="training.rl.ppo",
        config="training.rl.config:PPOConfig",
        label="PPO policy",
        summary="Online RL: PPO against the reward model, with a KL leash to the parent.",
        on_policy=True,
    ),
    TrainerSpec(
        name="rloo",
        kind="policy",
        records="prompts",
        module="training.rl.rloo",
        config="training.rl.config:RLOOConfig",
        label="RLOO policy",
        summary="Online RL: REINFORCE leave-one-out over k samples per prompt, no critic.",
        on_policy=True,
    ),
    TrainerSpec(
        name="grpo",
        kind="policy",
        records="prompts",
        module="training.rl.grpo",
        config="training.rl.config:GRPOConfig",
        label="GRPO policy",
        summary="Online RL: group-normalised advantages over k samples per prompt.",
        on_policy=True,
    ),
    TrainerSpec(
        name="best_of_n",
        kind="policy",
        records="prompts",
        module="training.rl.best_of_n",
        config="training.rl.config:BestOfNConfig",
        label="Best-of-n policy",
        summary="Sample k per prompt, keep the best by the reward model, fine-tune on it.",
        on_policy=True,
        aliases=("bon",),
    ),
)

BY_NAME: dict[str, TrainerSpec] = {t.name: t for t in TRAINERS}
TRAINER_NAMES: tuple[str, ...] = tuple(BY_NAME)  # in table order: the order runs train in
POLICY_TRAINERS: tuple[str, ...] = tuple(t.name for t in TRAINERS if t.kind == "policy")
REWARD_TRAINERS: tuple[str, ...] = tuple(t.name for t in TRAINERS if t.kind == "reward")


def trainer_spec(name: str) -> TrainerSpec:
    """The entry called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown trainer {name!r}; known: {', '.join(TRAINER_NAMES)}") from None


def in_training_order(names: object) -> list[str]:
    """The registered names among ``names`` (any iterable; a JSON value is fine), in table
    order, each once; anything else in it is dropped."""
    if not isinstance(names, list | tuple | set | frozenset):
        return []
    chosen = {n for n in names if isinstance(n, str)}
    return [n for n in TRAINER_NAMES if n in chosen]
