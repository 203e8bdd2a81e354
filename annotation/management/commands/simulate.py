"""``manage.py simulate``: the closed loop with simulated raters (see workers/simulate.py)."""

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
            "--celery", action="store_true", help="Run cycles on a Celery worker, not in-process."
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from workers.simulate import SimConfig, Simulation

        if opts["rounds"] < 1 or opts["labels_per_round"] < 2:
            raise CommandError("--rounds must be >= 1 and --labels-per-round >= 2.")
        if not 0 <= opts["flip"] < 0.5:
            raise CommandError("--flip must be in [0, 0.5).")
        config = SimConfig(
            rounds=opts["rounds"],
            labels_per_round=opts["labels_per_round"],
            selection=opts["selection"],
            seed=opts["seed"],
            flip=opts["flip"],
            workdir=opts["workdir"],
            via_celery=opts["celery"],
        )
        agreement = (1 - config.flip) ** 2 + config.flip**2
        self.stdout.write(
            f"Simulated raters: hidden rule = share of lowercase letters/spaces; "
            f"flip {config.flip} -> expected inter-rater agreement {agreement:.0%}"
        )
        Simulation(config).run(report=lambda r: self.stdout.write(r.line()))
