"""The run page's online-RL part: the reward-hacking monitors of ``ppo``, ``rloo``, ``grpo`` and
``best_of_n`` as chart specs for ``charts.js``, their alarms in words, and an RL version's lineage.

The worker (``workers/online.py``) puts the monitors of every RL step on the run's curve (points
``{phase: "policy", model: "ppo", i, ...}`` with the keys of ``training/rl/monitors.py``), and the
alarms and the over-optimisation series on the policy step's result; this module reads them
back. Plain data out: the page sets every text with ``textContent``.
"""

from __future__ import annotations

from typing import Any

from annotation.models import ModelVersion, TrainingRun
from training.contract.trainers import TRAINERS

MODEL_TITLES = {t.name: t.label for t in TRAINERS}
ON_POLICY = frozenset(t.name for t in TRAINERS if t.on_policy)


# (curve keys, chart id suffix, title, y axis, y range): the monitors of training/rl/monitors.py
# that the run's curve holds for an online trainer, one chart each.
RL_CHARTS: tuple[tuple[tuple[tuple[str, str], ...], str, str, dict[str, Any]], ...] = (
    (
        (("objective/scores", "reward model"), ("objective/gold", "gold score")),
        "reward",
        "mean reward per step",
        {"label": "mean score", "unit": "reward units"},
    ),
    (
        (("objective/kl", "KL to the reference"),),
        "kl",
        "KL to the reference (the parent) per step",
        {"label": "KL per response", "unit": "nats"},
    ),
    (
        (("completions/mean_length", "mean length"),),
        "length",
        "response length per step",
        {"label": "mean response length", "unit": "tokens"},
    ),
    (
        (
            ("policy/clipfrac", "clip fraction"),
            ("completions/clipped_ratio", "hit the length limit"),
        ),
        "shares",
        "clip fraction and share of responses cut at the length limit",
        {"label": "share", "unit": "", "min": 0, "max": 1},
    ),
    (
        (("objective/entropy", "entropy"),),
        "entropy",
        "policy entropy on its samples",
        {"label": "entropy", "unit": "nats per token"},
    ),
    (
        (("val/error", "value error"),),
        "value",
        "value head error",
        {"label": "mean squared error", "unit": ""},
    ),
)
STEP_AXIS = {"label": "RL step (rollout)", "unit": "", "kind": "linear", "integer": True}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rl_series(points: list[dict[str, Any]], key: str, x: str = "i") -> list[dict[str, Any]]:
    return [{"x": p[x], "y": p[key]} for p in points if _number(p.get(key)) and _number(p.get(x))]


def _curve_alarms(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alarms that turned on, read from the live curve (before the policy step has finished)."""
    events, previous = [], {"length": 0.0, "kl": 0.0}
    for p in points:
        for name in previous:
            on = p.get(f"alarm/{name}", previous[name]) or 0.0
            if on and not previous[name]:
                key = "completions/mean_length" if name == "length" else "objective/kl"
                events.append({"step": p.get("i"), "alarm": name, "value": p.get(key)})
            previous[name] = on
    return events


def alarm_text(title: str, event: dict[str, Any]) -> str:
    """What an alarm means, for people (plain text; the page sets it with textContent)."""
    step, value, bound = event.get("step"), event.get("value"), event.get("bound")
    where = f"{title}, step {step}"
    if event.get("alarm") == "length":
        grew = f"past {bound:g} times its start" if _number(bound) else "well past its start"
        now = f" (now {value:.1f} tokens)" if _number(value) else ""
        return (
            f"{where}: the reward rose while the mean response length grew {grew}{now}. The "
            "policy may be buying reward with length; read its samples before promoting it."
        )
    bound_text = f", past the alarm bound of {bound:g} nats" if _number(bound) else ""
    kl = f"{value:.2f} nats" if _number(value) else "its bound"
    return (
        f"{where}: the KL to the reference reached {kl}{bound_text}. The policy has moved far "
        "from its parent, where the reward model's scores are least trustworthy."
    )


def rl_monitors(
    run: TrainingRun, policy: dict[str, Any], by_trainer: dict[str, ModelVersion]
) -> dict[str, Any]:
    """The online trainers' monitors: charts per step from the run's curve (live while the step
    runs), the over-optimisation chart (reward and gold score against sqrt(KL)) and the alarms
    (from the policy step's result once it finished, from the curve before)."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for point in run.curve or []:
        if isinstance(point, dict) and str(point.get("model")) in ON_POLICY:
            by_model.setdefault(str(point["model"]), []).append(point)
    charts: list[dict[str, Any]] = []
    alarms: list[dict[str, Any]] = []
    for model in sorted(by_model, key=lambda m: list(MODEL_TITLES).index(m)):
        points, title = by_model[model], MODEL_TITLES[model]
        train = ((by_trainer.get(model) and by_trainer[model].config) or {}).get("train", {})
        for keys, suffix, what, y in RL_CHARTS:
            series = [
                {"label": label, "points": xy}
                for key, label in keys
                if (xy := _rl_series(points, key))
            ]
            if not series:
                continue
            refs = []
            if suffix == "kl" and _number(train.get("kl_alarm")) and train["kl_alarm"] > 0:
                refs.append({"value": train["kl_alarm"], "label": "alarm bound", "axis": "y"})
            charts.append(
                {
                    "id": f"rl-{model}-{suffix}",
                    "spec": {
                        "type": "line",
                        "title": f"{title}: {what}",
                        "x": STEP_AXIS,
                        "y": y,
                        "series": series,
                        "refs": refs,
                    },
                }
            )
        over = [
            {"label": label, "points": xy}
            for key, label in (("objective/scores", "reward model"), ("objective/gold", "gold"))
            if (xy := _rl_series(points, key, x="objective/sqrt_kl"))
        ]
        if over:
            charts.append(
                {
                    "id": f"rl-{model}-overoptimization",
                    "spec": {
                        "type": "points",
                        "title": f"{title}: reward against √KL (over-optimisation, Gao et al.)",
                        "x": {"label": "√KL to the reference", "unit": "√nats", "kind": "linear"},
                        "y": {"label": "mean score", "unit": "reward units"},
                        "series": over,
                        "refs": [],
                    },
                }
            )
        stored = policy.get(f"{model}/alarms")
        events = stored if isinstance(stored, list) else _curve_alarms(points)
        alarms += [
            {**e, "trainer": model, "text": alarm_text(title, e)}
            for e in events
            if isinstance(e, dict)
        ]
    return {"trainers": list(by_model), "charts": charts, "alarms": alarms}


def rl_lineage(version: ModelVersion, names: dict[int, str]) -> dict[str, Any] | None:
    """What an online-RL version records about how it was made (workers/online.py)."""
    config = version.config or {}
    if not config.get("method"):
        return None
    rm = config.get("reward_model_version")
    return {
        "method": config["method"],
        "beta": config.get("beta"),
        "adaptive_kl": bool(config.get("adaptive_kl")),
        "reward_model": names.get(rm, f"version {rm}") if rm else None,
        "k": config.get("k"),
        "steps": config.get("steps"),
    }
