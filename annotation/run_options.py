"""The run options a manager may set per retrain cycle: the one list, with type, range and default.

``POST /api/projects/<id>/retrain/`` checks a run's ``config`` against :data:`RUN_OPTIONS` before
the run row exists (unknown keys, wrong types, values out of range are a 400 naming the option), and
the worker takes its defaults from the same table (``workers/steps.py``), so the two cannot drift.
Pure Python: no Django, no torch (``annotation`` never imports torch; ``workers`` imports this).

``device`` is an enumeration, not a prefix: exactly ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` — what
``training.modeling.pick_device`` is meant to receive, and nothing a shell or a path could use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,2})?")
REPORT_TO = re.compile(r"|tensorboard|mlflow|tensorboard,mlflow|mlflow,tensorboard")
# The simulation's hidden rules (workers/simulate.py RULES; a test keeps the two in step).
GOLD_RULES = re.compile(r"|lowercase|lipogram|finished-concise")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Option:
    kind: type  # int, float or str
    default: Any
    low: float | None = None  # inclusive, unless low_open
    high: float | None = None  # inclusive
    help: str = ""
    low_open: bool = False
    pattern: re.Pattern[str] = DEVICE  # str options: the whole value must match
    spelled: str = "exactly 'auto', 'cpu', 'cuda' or 'cuda:N' (N = 0-99)"

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable for this option, or None."""
        if self.kind is str:
            if not isinstance(value, str) or self.pattern.fullmatch(value) is None:
                return f"must be {self.spelled}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {'an integer' if self.kind is int else 'a number'}"
        if self.kind is int and not isinstance(value, int):
            return "must be an integer"
        if not math.isfinite(value):
            return "must be a finite number"
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        if below or (self.high is not None and value > self.high):
            return f"must be {self.range_text()}"
        return None

    def range_text(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"<= {_number(self.high)}")
        return " and ".join(parts)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _int(default: int, low: int, high: int, help: str) -> Option:
    return Option(int, default, low, high, help)


def _float(default: float, low: float, high: float, help: str, low_open: bool = False) -> Option:
    return Option(float, default, low, high, help, low_open)


RUN_OPTIONS: dict[str, Option] = {
    "prompts_per_cycle": _int(32, 0, 100_000, "prompts that get k new candidates"),
    "pairs_per_cycle": _int(64, 0, 100_000, "pairwise tasks created"),
    "random_share": _float(0.25, 0, 1, "share of those pairs drawn at random (unbiased data)"),
    "pairs_per_prompt": _int(2, 1, 1_000, "at most this many uncertainty-picked pairs per prompt"),
    "compare_pairs_per_cycle": _int(
        8, 0, 100_000, "extra pairwise tasks: a new candidate beside an earlier system's response"
    ),
    # a pair's informativeness = calibrated RM uncertainty ** uncertainty_power
    #                            x text similarity of the two responses ** similarity_power
    "uncertainty_power": _float(1.0, 0, 100, "exponent of the calibrated RM uncertainty"),
    "similarity_power": _float(0.0, 0, 100, "exponent of the two responses' text similarity"),
    "ensemble_heads": _int(0, 0, 64, "> 1: uncertainty = disagreement of this many RM heads"),
    "ensemble_l2": _float(0.01, 0, 1_000, "the bootstrap heads' pull towards the trained head"),
    "min_win_rate": _float(0.5, 0, 1, "promotion rule: win rate vs parent (reward model judge)"),
    "max_kl": _float(50.0, 0, 1e6, "promotion rule: KL(policy || parent), nats per response"),
    "rm_epochs": _int(1, 1, 1_000, "reward-model passes over the data"),
    "policy_epochs": _int(1, 1, 1_000, "policy passes over the data"),
    "learning_rate": _float(0.0, 0, 1, "reward model; 0 = the training library's default"),
    "policy_learning_rate": _float(0.0, 0, 1, "0 = the library's default for the trainer"),
    "beta": _float(0.1, 0, 1_000, "DPO/KTO beta", low_open=True),
    "lora_r": _int(
        0, 0, 1_024, "LoRA rank of the reward model and offline policy trainers; 0 = all weights"
    ),
    "rm_pairs_prompts": _int(0, 0, 100_000, "prompts whose parent samples become RM-judged pairs"),
    # Online RL (ppo, rloo, grpo, best_of_n): small by default, so a cycle's RL step on the tiny
    # demo model takes seconds on a CPU; raise them on a GPU.
    "rl_steps": _int(
        4, 1, 100_000, "online RL: rollouts (best_of_n: one round over steps x prompts per step)"
    ),
    "rl_prompts_per_step": _int(4, 1, 4_096, "online RL: train prompts sampled per rollout"),
    "rl_k": _int(0, 0, 256, "online RL: samples per prompt; 0 = the method's default"),
    "rl_max_new_tokens": _int(
        0, 0, 4_096, "online RL: response length limit; 0 = the project's (at most 64)"
    ),
    "rl_beta": _float(0.05, 0, 1_000, "online RL: KL coefficient to the parent (0 = no leash)"),
    "rl_target_kl": _float(
        0.0, 0, 1e6, "ppo: > 0 adapts beta towards this KL (nats per response); 0 = fixed beta"
    ),
    "gold_rule": Option(
        str,
        "",
        help="simulations: a hidden rule logged beside the reward as the gold score",
        pattern=GOLD_RULES,
        spelled="'', 'lowercase', 'lipogram' or 'finished-concise'",
    ),
    "eval_prompts": _int(16, 1, 100_000, "held-out prompts for the evaluation"),
    "seed": _int(0, 0, MAX_SEED, "seed of sampling, selection and training"),
    "device": Option(str, "auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'"),
    "report_to": Option(
        str,
        "",
        help="experiment trackers for the run's trainers: tensorboard, mlflow, both, or none",
        pattern=REPORT_TO,
        spelled="'', 'tensorboard', 'mlflow' or 'tensorboard,mlflow'",
    ),
}


def run_option_defaults() -> dict[str, Any]:
    return {name: option.default for name, option in RUN_OPTIONS.items()}


def run_config_problem(config: object) -> tuple[str, str] | None:
    """(field, message) for the first bad entry of a run config, or None when it is acceptable.

    Keys are checked first (an unknown key is named, with the allowed ones), then values in the
    table's order, so the answer does not depend on the order the caller sent them in.
    """
    if not isinstance(config, dict):
        return "config", "config must be a JSON object of run options."
    unknown = sorted(str(key)[:60] for key in config if key not in RUN_OPTIONS)
    if unknown:
        return (
            f"config.{unknown[0]}",
            f"Unknown run option(s) {unknown}; allowed: {', '.join(RUN_OPTIONS)}.",
        )
    for name, option in RUN_OPTIONS.items():
        if name in config:
            reason = option.problem(config[name])
            if reason:
                return f"config.{name}", f"config.{name} {reason} (got {config[name]!r:.60})."
    return None
