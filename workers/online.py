"""The cycle's online-RL policy trainers (``ppo``, ``rloo``, ``grpo``, ``best_of_n``): what they
need beyond an offline trainer, for ``workers.pipelines.step_policy``.

An offline trainer learns from the run's records; an on-policy one samples from the policy on the
project's prompts and is scored by a reward model. So the policy step gives it

- the project's **prompts**: the train split to learn on, the eval split (at most
  ``eval_prompts``) held out for its own evaluation; without eval prompts it holds out 10 % of the
  train prompts itself. ``best_of_n`` samples every prompt it gets k times per round, so it gets
  one round over ``rl_steps x rl_prompts_per_step`` train prompts (a seeded sample);
- the **reward model** the run trained, else the project's active one
  (:func:`annotation.services.runs.run_judge`, the same judge the evaluation uses). Without
  either the run fails with "ppo needs a reward model: train one first", except in a cycle whose
  ``rm`` step was skipped for lack of pairs (the bootstrap): then the trainer is skipped, so the
  first candidates and tasks are still made;
- the run options (``rl_*``, ``annotation/run_options.py``) in its config, and in a simulation the
  hidden rule as the **gold** scorer (``gold_rule``), logged as ``objective/gold``.

The monitors of every step reach the run's curve through the progress callback (the keys in
:data:`MONITORS`); the alarms and the over-optimisation series (proxy reward and gold score
against sqrt(KL), Gao et al. 2022) are kept on the step's result, the lineage (method, final
beta, the reward model version, k, steps) on the version's ``config``.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from annotation.models import ModelVersion, Prompt
from annotation.services import runs
from training.contract.trainers import TRAINERS
from workers.steps import Context, PermanentError

ON_POLICY = frozenset(t.name for t in TRAINERS if t.on_policy)  # the registry

# The reward-hacking monitors (training/rl/monitors.py) kept on the run's curve at every step.
MONITORS = (
    "objective/scores",
    "objective/gold",
    "objective/kl",
    "objective/sqrt_kl",
    "objective/entropy",
    "objective/rlhf_reward",
    "completions/mean_length",
    "completions/clipped_ratio",
    "policy/clipfrac",
    "val/error",
    "kl/beta",
    "alarm/length",
    "alarm/kl",
    "bon/kept_scores",
)
MAX_NEW_TOKENS = 64  # rl_max_new_tokens = 0: the project's length limit, at most this
OWN_EVAL_PREFIX = "rl_eval/"  # the trainer's own held-out metrics (the cycle's are eval/)


def rl_fields(cfg: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """The run options of an on-policy config class with ``fields`` (its dataclass fields)."""
    out: dict[str, Any] = {
        "rollout_batch_size": int(cfg["rl_prompts_per_step"]),
        "beta": float(cfg["rl_beta"]),
    }
    if "iterations" in fields:  # best_of_n: one round (its prompts are chosen by rl_prompts)
        out["iterations"] = 1
    else:
        out["max_steps"] = int(cfg["rl_steps"])
    if int(cfg["rl_k"]):
        out["k"] = int(cfg["rl_k"])
    if int(cfg["rl_max_new_tokens"]):
        out["max_new_tokens"] = int(cfg["rl_max_new_tokens"])
    if "adaptive_kl" in fields and float(cfg["rl_target_kl"]) > 0:
        out.update(adaptive_kl=True, target_kl=float(cfg["rl_target_kl"]))
    return out


def reward_model_for(ctx: Context, trainer: str) -> ModelVersion | None:
    """The reward model ``trainer`` optimises: the run's own, else the project's active one.
    None when the run's ``rm`` step was skipped for lack of data (the trainer is skipped);
    raises PermanentError when there is none to be had."""
    judge = runs.run_judge(run=ctx.run)
    if judge is not None:
        return judge
    if "rm" in ctx.run.trainers and ctx.results.get("reward", {}).get("skipped"):
        return None
    raise PermanentError(
        f"{trainer} needs a reward model: train one first (add rm to the run's trainers with "
        "enough preference judgments, or activate a reward model)."
    )


def rl_prompts(ctx: Context, trainer: str) -> tuple[list[Any], list[Any] | None]:
    """(train prompts, held-out prompts or None = let the trainer hold out a share)."""
    from training.rl.data import as_prompt

    def load(split: str) -> list[Any]:
        rows = Prompt.objects.filter(project=ctx.project, split=split).order_by("id")
        return [as_prompt(p.messages, f"prompt {p.id}") for p in rows]

    train, evals = load("train"), load("eval")[: int(ctx.cfg["eval_prompts"])]
    if trainer == "best_of_n":
        n = int(ctx.cfg["rl_steps"]) * int(ctx.cfg["rl_prompts_per_step"])
        if len(train) > n:
            train = random.Random(int(ctx.cfg["seed"])).sample(train, n)
    return train, evals or None


def gold_scorer(cfg: dict[str, Any]) -> Any:
    """The simulation's hidden rule as a scorer ``(prompts, responses) -> scores``, or None."""
    name = str(cfg.get("gold_rule") or "")
    if not name:
        return None
    from workers.hidden_rules import RULES

    rule = RULES[name]

    def gold(prompts: Any, responses: Any) -> list[float]:
        return [rule(text) for text in responses]

    return gold


def complete_config(ctx: Context, config: Any, judge: ModelVersion, *, eval_held_out: bool) -> Any:
    """``config`` (from the run options) with what comes from the database: the reward model,
    the project's sampling temperature and (unless the run set one) its length limit."""
    extra: dict[str, Any] = {
        "reward_model": judge.artifact_path,
        "temperature": float(ctx.project.temperature) or 1.0,
        "progress_bar": False,
        "eval_fraction": 0.0 if eval_held_out else 0.1,
    }
    if not int(ctx.cfg["rl_max_new_tokens"]):
        extra["max_new_tokens"] = max(1, min(int(ctx.project.max_new_tokens), MAX_NEW_TOKENS))
    return dataclasses.replace(config, **extra)


def version_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The trainer's final metrics for the version; its own held-out ``eval/...`` become
    ``rl_eval/...`` so that the cycle's evaluation (``eval/...``, merged in ``register``) does
    not overwrite them."""
    return {
        (OWN_EVAL_PREFIX + k.removeprefix("eval/") if k.startswith("eval/") else k): v
        for k, v in metrics.items()
    }


def lineage(trainer: str, config: Any, metrics: dict[str, Any], judge: ModelVersion) -> dict:
    """What an RL version records about how it was made (beside the common lineage)."""
    steps = config.iterations if trainer == "best_of_n" else config.max_steps
    beta = metrics.get("kl/beta", config.beta)
    return {
        "method": trainer,
        "beta": round(float(beta), 6),
        "adaptive_kl": bool(getattr(config, "adaptive_kl", False)),
        "reward_model_version": judge.id,
        "k": config.k,
        "steps": steps,
        "max_new_tokens": config.max_new_tokens,
    }


def alarm_events(history: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """Each step where an alarm turned on, with the value and the bound it passed. ``history``
    is the trainer's (``step``) or the run's curve (``i``) for one model."""
    bounds = {"length": config.length_alarm, "kl": config.kl_alarm}
    events, previous = [], {"length": 0.0, "kl": 0.0}
    for h in history:
        for name in previous:
            on = float(h.get(f"alarm/{name}", previous[name]) or 0.0)
            if on and not previous[name]:
                value = h.get("completions/mean_length" if name == "length" else "objective/kl")
                events.append(
                    {
                        "step": h.get("step", h.get("i")),
                        "alarm": name,
                        "value": round(float(value), 4) if value is not None else None,
                        "bound": bounds[name],
                    }
                )
            previous[name] = on
    return events


def overoptimization(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proxy reward (and gold score) against sqrt(KL) per step: the over-optimisation curve."""
    out = []
    for h in history:
        if not isinstance(h.get("objective/sqrt_kl"), int | float):
            continue
        point = {
            "step": h.get("step", h.get("i")),
            "sqrt_kl": round(float(h["objective/sqrt_kl"]), 5),
            "reward": round(float(h["objective/scores"]), 5),
        }
        if isinstance(h.get("objective/gold"), int | float):
            point["gold"] = round(float(h["objective/gold"]), 5)
        out.append(point)
    return out
