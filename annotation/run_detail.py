"""Reading a retrain run for the manager's run pages: what the page shows, as plain JSON.

The run page (``annotation/static/annotation/manage/run.js``) renders :func:`run_detail` and polls
it while the run is active, so everything it needs is here: the step timeline (every step of
:data:`annotation.run_steps.RUN_STEPS`, finished or not, with its duration and state), the
current step's progress and ETA, the training curves as chart specs for ``charts.js``, each step's
metrics, the evaluation against the parent, the promotion verdict, lineage and the error.

Reads only (a selector): the run, its steps, its versions and counts of what it generated.
Text from the database (model names, errors) goes out as data; the page renders it with
``textContent``.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count
from django.utils import timezone

from annotation.models import (
    ACTIVE_RUN_STATUSES,
    ModelVersion,
    Response,
    RunStatus,
    RunStep,
    Task,
    TrainingRun,
)
from annotation.run_options import RUN_OPTIONS
from annotation.run_rl import rl_lineage, rl_monitors
from annotation.run_steps import RUN_STEPS
from annotation.services.runs import run_config_shown
from annotation.textcheck import unreadable_summary
from training.contract.trainers import TRAINERS

MODEL_TITLES = {t.name: t.label for t in TRAINERS}  # the registry: training/contract/trainers.py
# (curve key, axis label, unit, y range, reference lines); the margin's unit depends on the model
CURVE_AXES: tuple[tuple[str, str, str, tuple[float, float] | None, list[dict[str, Any]]], ...] = (
    ("loss", "training loss", "nats", None, []),
    (
        "rewards/accuracies",
        "preference accuracy",
        "share of pairs",
        (0, 1),
        [{"value": 0.5, "label": "chance", "axis": "y"}],
    ),
    (
        "rewards/margins",
        "reward margin",
        "",
        None,
        [{"value": 0, "label": "no preference", "axis": "y"}],
    ),
    ("kl", "KL to the reference", "nats", None, []),
)
MARGIN_UNITS = {"rm": "reward units"}  # DPO/KTO: the implicit reward, beta x log-ratio
HISTORY_RUNS = 5  # past successful runs whose step durations estimate the remaining ones
TRACEBACK_LINES = 14


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if start and end else None


def _option(run: TrainingRun, name: str) -> Any:
    return (run.config or {}).get(name, RUN_OPTIONS[name].default)


def typical_step_seconds(project_id: int, *, before: int) -> dict[str, float]:
    """Median seconds of each step over the project's last successful runs before ``before``."""
    timings = (
        TrainingRun.objects.filter(project_id=project_id, status=RunStatus.SUCCEEDED, id__lt=before)
        .order_by("-id")
        .values_list("timings", flat=True)[:HISTORY_RUNS]
    )
    per_step: dict[str, list[float]] = {}
    for row in timings:
        for name, seconds in (row or {}).items():
            if isinstance(seconds, int | float):
                per_step.setdefault(name, []).append(float(seconds))
    return {name: statistics.median(values) for name, values in per_step.items()}


def _steps(
    run: TrainingRun, done: dict[str, RunStep], now: datetime
) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """The timeline, the current step's ETA and the run's ETA (seconds; None when unknown)."""
    active = run.status in ACTIVE_RUN_STATUSES
    typical = typical_step_seconds(run.project_id, before=run.id) if active else {}
    out, step_eta, rest = [], None, 0.0
    rest_known, passed_current = True, False
    for info in RUN_STEPS:
        row = done.get(info.name)
        item: dict[str, Any] = {"name": info.name, "title": info.title}
        if row is not None:
            result = row.result or {}
            skipped = result.get("skipped")
            item.update(
                state="skipped" if skipped else "done",
                seconds=round(row.seconds, 2),
                started_at=_iso(row.finished_at - timedelta(seconds=row.seconds)),
                finished_at=_iso(row.finished_at),
                note=str(skipped) if skipped else "",
                metrics=(run.metrics or {}).get(info.name, {}),
            )
        elif run.current_step == info.name and run.status != RunStatus.QUEUED:
            elapsed = _seconds(run.step_started_at, now) if active else None
            fraction = run.step_progress
            item.update(
                state="running" if active else "failed",
                progress=round(fraction, 4),
                started_at=_iso(run.step_started_at),
                seconds=elapsed,
            )
            if active and elapsed is not None and fraction >= 0.05:
                step_eta = round(elapsed * (1 - fraction) / fraction, 1)
                item["eta_seconds"] = step_eta
            passed_current = True
        else:
            item["state"] = "pending"
            if active:
                if info.name in typical:
                    rest += typical[info.name]
                    item["typical_seconds"] = round(typical[info.name], 1)
                else:
                    rest_known = False
        out.append(item)
    run_eta = None
    if active and rest_known and typical and (step_eta is not None or not passed_current):
        run_eta = round(rest + (step_eta or 0.0), 1)
    return out, step_eta, run_eta


def curve_charts(run: TrainingRun) -> list[dict[str, Any]]:
    """One chart per (model, metric) the curve has, in the order the models trained."""
    series: dict[str, list[dict[str, Any]]] = {}
    for n, point in enumerate(p for p in (run.curve or []) if isinstance(p, dict)):
        model = str(point.get("model") or point.get("phase") or "train")
        series.setdefault(model, []).append({**point, "_x": point.get("i", point.get("step", n))})
    charts = []
    for model, points in series.items():
        for key, label, unit, bounds, refs in CURVE_AXES:
            xy = [
                {"x": p["_x"], "y": p[key]}
                for p in points
                if isinstance(p.get(key), int | float) and isinstance(p["_x"], int | float)
            ]
            if not xy:
                continue
            if key == "rewards/margins":
                unit = MARGIN_UNITS.get(model, "β·nats")
            y: dict[str, Any] = {"label": label, "unit": unit}
            if bounds is not None:
                y["min"], y["max"] = bounds
            charts.append(
                {
                    "id": f"curve-{model}-{key.replace('/', '-')}",
                    "spec": {
                        "type": "line",
                        "title": f"{MODEL_TITLES.get(model, model)}: {label}"
                        + (" (chosen - rejected)" if key == "rewards/margins" else ""),
                        "x": {
                            "label": "optimizer step",
                            "unit": "",
                            "kind": "linear",
                            "integer": True,
                        },
                        "y": y,
                        "series": [{"label": model, "points": xy}],
                        "refs": refs,
                    },
                }
            )
    return charts


def _version_out(version: ModelVersion | None, names: dict[int, str]) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "id": version.id,
        "name": version.name,
        "kind": version.kind,
        "trainer": version.trainer,
        "status": version.status,
        "is_active": version.is_active,
        "parent": names.get(version.parent_id) if version.parent_id else None,
        "rl": rl_lineage(version, names),
    }


def _evaluation(
    run: TrainingRun, result: dict[str, Any], versions: dict[int, ModelVersion]
) -> list[dict[str, Any]]:
    rows = []
    for key, metrics in result.items():
        if not isinstance(metrics, dict) or not key.isdigit():
            continue
        version = versions.get(int(key))
        length, parent_length = metrics.get("mean_length"), metrics.get("parent_mean_length")
        rows.append(
            {
                "version": int(key),
                "name": version.name if version else f"version {key}",
                "trainer": version.trainer if version else "",
                "win_rate": metrics.get("win_rate"),
                "win_rate_low": metrics.get("win_rate_low"),
                "win_rate_high": metrics.get("win_rate_high"),
                "kl": metrics.get("kl"),
                "mean_length": length,
                "parent_mean_length": parent_length,
                "length_change": (
                    round(length - parent_length, 3)
                    if isinstance(length, int | float) and isinstance(parent_length, int | float)
                    else None
                ),
                "mean_reward": metrics.get("mean_reward"),
                "parent_mean_reward": metrics.get("parent_mean_reward"),
                "prompts": metrics.get("prompts"),
                "passed": bool(metrics.get("passed")),
                "reason": str(metrics.get("reason", "")),
            }
        )
    return rows


def win_rate_chart(run: TrainingRun, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    points = [
        {
            "x": r["name"],
            "y": r["win_rate"],
            **(
                {"lo": r["win_rate_low"], "hi": r["win_rate_high"]}
                if r["win_rate_low"] is not None
                else {}
            ),
        }
        for r in rows
        if isinstance(r["win_rate"], int | float)
    ]
    if not points:
        return None
    threshold = float(_option(run, "min_win_rate"))
    return {
        "id": "eval-win-rate",
        "spec": {
            "type": "points",
            "title": "Win rate against the parent, 95% interval (reward-model judge)",
            "x": {"label": "new policy", "unit": ""},
            "y": {"label": "win rate", "unit": "share of prompts", "min": 0, "max": 1},
            "series": [{"label": "win rate", "points": points}],
            "refs": [
                {"value": threshold, "label": f"promotion threshold {threshold:g}", "axis": "y"}
            ],
        },
    }


def _verdict(
    run: TrainingRun,
    results: dict[str, dict[str, Any]],
    evaluation: list[dict[str, Any]],
    names: dict[int, str],
) -> dict[str, str]:
    rule = f"win rate ≥ {_option(run, 'min_win_rate'):g} and KL ≤ {_option(run, 'max_kl'):g} nats"
    register = results.get("register")
    if register is None:
        if run.status == RunStatus.FAILED:
            return {
                "state": "failed",
                "text": "The run failed before the promotion step: nothing was promoted and the "
                "active models are untouched.",
                "rule": rule,
            }
        return {
            "state": "pending",
            "text": "Decided in the register step, after the evaluation.",
            "rule": rule,
        }
    promoted = register.get("promoted_policy")
    if promoted:
        row = next((r for r in evaluation if r["version"] == promoted), None)
        why = row["reason"] if row else ""
        return {
            "state": "promoted",
            "text": f"Promoted {names.get(promoted, promoted)}: {why}.",
            "rule": rule,
        }
    skipped = results.get("evaluate", {}).get("skipped")
    if skipped:
        why = f"the evaluation was skipped ({skipped})"
    elif evaluation:
        why = "; ".join(f"{r['name']}: {r['reason']}" for r in evaluation)
    else:
        why = "no policy was evaluated"
    return {"state": "not_promoted", "text": f"Nothing promoted: {why}.", "rule": rule}


def _error(run: TrainingRun) -> dict[str, Any] | None:
    if not run.error:
        return None
    lines = run.error.strip().splitlines()
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    return {
        "summary": lines[0][:500],
        "where": frames[-1] if frames else "",
        "traceback": "\n".join(lines[-TRACEBACK_LINES:]),
        "full": run.error,
    }


def _lineage(
    run: TrainingRun,
    results: dict[str, dict[str, Any]],
    versions: list[ModelVersion],
    names: dict[int, str],
) -> dict[str, Any]:
    snapshot = results.get("snapshot", {})
    parent_id = results.get("policy", {}).get("parent")
    generate = results.get("generate", {})
    tasks = dict(
        Task.objects.filter(generation_run=run)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    return {
        "judgments": snapshot.get("judgments", len(run.snapshot_judgment_ids or [])),
        "new_judgments": snapshot.get("new_judgments"),
        "max_judgment_id": run.snapshot_max_judgment_id or None,
        "parent": {"id": parent_id, "name": names.get(parent_id, f"version {parent_id}")}
        if parent_id
        else None,
        "judge": names.get(results.get("evaluate", {}).get("judge") or 0),
        "versions": [_version_out(v, names) for v in versions],
        "generator": names.get(generate.get("version") or 0),
        "candidates": Response.objects.filter(generation_run=run).count(),
        "candidate_prompts": generate.get("prompts"),
        "dropped_candidates": unreadable_summary(generate.get("dropped") or {}),
        "tasks": sum(tasks.values()),
        "tasks_by_kind": tasks,
    }


def run_detail(run: TrainingRun, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the run page shows (see the module docstring); ``now`` for the ETA."""
    now = now or timezone.now()
    done = {s.name: s for s in RunStep.objects.filter(run=run)}
    results = {name: step.result or {} for name, step in done.items()}
    versions = list(run.versions.order_by("id"))
    related = (
        {v.parent_id for v in versions}
        | {(v.config or {}).get("reward_model_version") for v in versions}
        | {
            results.get("policy", {}).get("parent"),
            results.get("evaluate", {}).get("judge"),
            results.get("generate", {}).get("version"),
        }
    )
    names = {v.id: v.name for v in versions}
    names.update(
        ModelVersion.objects.filter(
            id__in=[i for i in related if isinstance(i, int) and i not in names]
        ).values_list("id", "name")
    )
    by_id = {v.id: v for v in versions}
    steps, step_eta, run_eta = _steps(run, done, now)
    evaluation = _evaluation(run, results.get("evaluate", {}), by_id)
    charts = curve_charts(run)
    rl = rl_monitors(run, results.get("policy", {}), {v.trainer: v for v in versions})
    win_chart = win_rate_chart(run, evaluation)
    end = run.finished_at or (now if run.status in ACTIVE_RUN_STATUSES else None)
    return {
        "id": run.id,
        "status": run.status,
        "active": run.status in ACTIVE_RUN_STATUSES,
        "trainers": run.trainers,
        "config": run_config_shown(run.config),
        "triggered_by": started_by(run.triggered_by),
        "attempts": run.attempts,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "elapsed_seconds": _seconds(run.started_at, end),
        "progress": round(run.progress, 4),
        "current_step": run.current_step,
        "step_progress": round(run.step_progress, 4),
        "step_eta_seconds": step_eta,
        "eta_seconds": run_eta,
        "steps": steps,
        "charts": charts,
        "rl": rl,
        "evaluation": evaluation,
        "evaluation_chart": win_chart,
        "verdict": _verdict(run, results, evaluation, names),
        "lineage": _lineage(run, results, versions, names),
        "error": _error(run),
    }


def _starter_id(triggered_by: str) -> int | None:
    kind, _, user_id = triggered_by.partition(":")
    return int(user_id) if kind == "manual" and user_id.isdigit() else None


def started_by(triggered_by: str, usernames: dict[int, str] | None = None) -> str:
    """What started a run, for people: "manual:<user id>" names the user (from ``usernames``
    when the caller read them in one query); "policy" is the beat's retrain policy."""
    user_id = _starter_id(triggered_by)
    if user_id is not None:
        if usernames is None:
            usernames = dict(User.objects.filter(id=user_id).values_list("id", "username"))
        name = usernames.get(user_id)
        return f"{name} (Retrain now)" if name else "a removed user (Retrain now)"
    return "the retrain policy" if triggered_by == "policy" else triggered_by


def runs_list(project_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """The project's newest runs with their state and verdict, for the runs list."""
    runs = list(TrainingRun.objects.filter(project_id=project_id).order_by("-id")[:limit])
    registers = dict(
        RunStep.objects.filter(run__in=runs, name="register").values_list("run_id", "result")
    )
    promoted_ids = {r.get("promoted_policy") for r in registers.values() if r}
    names = dict(ModelVersion.objects.filter(id__in=promoted_ids).values_list("id", "name"))
    starters = {i for run in runs if (i := _starter_id(run.triggered_by)) is not None}
    usernames = dict(User.objects.filter(id__in=starters).values_list("id", "username"))
    rows = []
    for run in runs:
        register = registers.get(run.id)
        if register is None:
            verdict = "failed" if run.status == RunStatus.FAILED else "pending"
        elif register.get("promoted_policy"):
            verdict = f"promoted {names.get(register['promoted_policy'], '')}".strip()
        else:
            verdict = "not promoted"
        rows.append(
            {
                "run": run,
                "active": run.status in ACTIVE_RUN_STATUSES,
                "percent": round(run.progress * 100),
                "seconds": _seconds(run.started_at, run.finished_at),
                "verdict": verdict,
                "started_by": started_by(run.triggered_by, usernames),
            }
        )
    return rows
