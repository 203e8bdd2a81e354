"""``manage.py simulate``: the closed loop with simulated raters (see workers/simulate.py).

A command of the ``workers`` app, not of ``annotation``: it drives the training stack, which the
web side never imports."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Run the closed loop for a few rounds with simulated raters whose hidden preference is "
        "known, printing judgments, reward-model accuracy, policy hidden score and win rate."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--labels-per-round", type=int, default=64)
        parser.add_argument("--selection", choices=["active", "random"], default="active")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--flip", type=float, default=0.16, help="Rater noise (0..0.5).")
        parser.add_argument("--workdir", default="", help="Where models are written.")
        parser.add_argument(
            "--base-model",
            default="",
            help="A causal LM folder to start from (e.g. one pretrained with training.pretrain); "
            "default: a random tiny model.",
        )
        parser.add_argument(
            "--rule",
            default="",
            help="The raters' hidden rule (lowercase, lipogram); default: lipogram with "
            "--base-model, lowercase without.",
        )
        parser.add_argument("--max-new-tokens", type=int, default=12)
        parser.add_argument(
            "--policy-lr", type=float, default=3e-3, help="The policy trainer's learning rate."
        )
        from workers.simulate import POLICY_METHODS

        parser.add_argument(
            "--policy",
            choices=POLICY_METHODS,
            default="dpo",
            help="The policy method: DPO on the raters' pairs, or online RL against the cycle's "
            "reward model with the hidden rule logged as the gold score.",
        )
        parser.add_argument(
            "--rl-steps", type=int, default=8, help="Online RL: rollouts per cycle (1..10000)."
        )
        parser.add_argument(
            "--celery", action="store_true", help="Run cycles on a Celery worker, not in-process."
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from pathlib import Path

        from workers.hidden_rules import RULE_DESCRIPTIONS, RULES
        from workers.simulate import SimConfig, Simulation

        rule = opts["rule"] or ("lipogram" if opts["base_model"] else "lowercase")
        if rule not in RULES:
            raise CommandError(f"--rule must be one of {', '.join(sorted(RULES))}, not {rule!r}.")
        if opts["base_model"] and not (Path(opts["base_model"]) / "config.json").is_file():
            raise CommandError(f"--base-model {opts['base_model']} holds no config.json.")
        if not 1 <= opts["max_new_tokens"] <= 256 or opts["policy_lr"] <= 0:
            raise CommandError("--max-new-tokens must be in 1..256 and --policy-lr > 0.")
        if opts["rounds"] < 1 or opts["labels_per_round"] < 2:
            raise CommandError("--rounds must be >= 1 and --labels-per-round >= 2.")
        if not 0 <= opts["flip"] < 0.5:
            raise CommandError("--flip must be in [0, 0.5).")
        if not 1 <= opts["rl_steps"] <= 10_000:
            raise CommandError("--rl-steps must be in 1..10000.")
        config = SimConfig(
            rounds=opts["rounds"],
            labels_per_round=opts["labels_per_round"],
            selection=opts["selection"],
            seed=opts["seed"],
            flip=opts["flip"],
            workdir=opts["workdir"],
            base_model=opts["base_model"],
            rule=rule,
            max_new_tokens=opts["max_new_tokens"],
            policy_learning_rate=opts["policy_lr"],
            policy=opts["policy"],
            rl_steps=opts["rl_steps"],
            via_celery=opts["celery"],
        )
        agreement = (1 - config.flip) ** 2 + config.flip**2
        self.stdout.write(
            f"Simulated raters: hidden rule = {rule} ({RULE_DESCRIPTIONS[rule]}); "
            f"flip {config.flip} -> expected inter-rater agreement {agreement:.0%}"
        )
        Simulation(config).run(report=lambda r: self.stdout.write(r.line()))
