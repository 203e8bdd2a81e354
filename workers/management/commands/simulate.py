"""``manage.py simulate``: the closed loop with simulated raters (see workers/simulate.py).

A command of the ``workers`` app, not of ``annotation``: it drives the training stack, which the
web side never imports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_HH = settings.BASE_DIR.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"
GOLD_TEXT = "a MiniLM reward model trained once on 600 HH-RLHF pairs"


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
            help="The raters' hidden rule: lowercase, lipogram, or hh-minilm (a MiniLM reward "
            "model trained once on the HH-RLHF sample: the gold for a real chat model); default: "
            "lipogram with --base-model, lowercase without.",
        )
        parser.add_argument(
            "--prompts",
            choices=["topics", "hh"],
            default="",
            help="topics (made-up one-liners) or hh (HH-RLHF dialogues); default: hh with "
            "--rule hh-minilm, topics otherwise.",
        )
        parser.add_argument(
            "--pairs-file",
            default=str(DEFAULT_HH),
            help="The HH-RLHF sample for --prompts hh and --rule hh-minilm.",
        )
        parser.add_argument("--train-prompts", type=int, default=48)
        parser.add_argument("--eval-prompts", type=int, default=16)
        parser.add_argument("--eval-samples", type=int, default=8)
        parser.add_argument(
            "--lora-r",
            type=int,
            default=0,
            help="LoRA rank of the RM and DPO (0: full).",
        )
        parser.add_argument("--rm-lr", type=float, default=1e-3)
        parser.add_argument(
            "--rm-pairs-prompts",
            type=int,
            default=32,
            help="Prompts whose best and worst sample by the reward model join DPO (0: none).",
        )
        parser.add_argument(
            "--keep", action="store_true", help="Keep the simulated project and its models."
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
        from workers.simulate import GOLD_HH, SimConfig, Simulation

        rule = opts["rule"] or ("lipogram" if opts["base_model"] else "lowercase")
        rules = [*sorted(RULES), GOLD_HH]
        if rule not in rules:
            raise CommandError(f"--rule must be one of {', '.join(rules)}, not {rule!r}.")
        prompts = opts["prompts"] or ("hh" if rule == GOLD_HH else "topics")
        if (rule == GOLD_HH or prompts == "hh") and not Path(opts["pairs_file"]).is_file():
            raise CommandError(f"--pairs-file {opts['pairs_file']} is not a file (HH-RLHF sample).")
        for name in ("train_prompts", "eval_prompts", "eval_samples"):
            if not 1 <= opts[name] <= 10_000:
                raise CommandError(f"--{name.replace('_', '-')} must be in 1..10000.")
        if not 0 <= opts["rm_pairs_prompts"] <= 10_000:
            raise CommandError("--rm-pairs-prompts must be in 0..10000.")
        if not 0 <= opts["lora_r"] <= 256 or opts["rm_lr"] <= 0:
            raise CommandError("--lora-r must be in 0..256 and --rm-lr > 0.")
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
            prompts=prompts,
            pairs_file=opts["pairs_file"],
            train_prompts=opts["train_prompts"],
            eval_prompts=opts["eval_prompts"],
            eval_samples=opts["eval_samples"],
            lora_r=opts["lora_r"],
            rm_learning_rate=opts["rm_lr"],
            rm_pairs_prompts=opts["rm_pairs_prompts"],
            keep=opts["keep"],
            max_new_tokens=opts["max_new_tokens"],
            policy_learning_rate=opts["policy_lr"],
            policy=opts["policy"],
            rl_steps=opts["rl_steps"],
            via_celery=opts["celery"],
        )
        agreement = (1 - config.flip) ** 2 + config.flip**2
        self.stdout.write(
            f"Simulated raters: hidden rule = {rule} ({RULE_DESCRIPTIONS.get(rule, GOLD_TEXT)}); "
            f"flip {config.flip} -> expected inter-rater agreement {agreement:.0%}"
        )
        Simulation(config).run(report=lambda r: self.stdout.write(r.line()))
