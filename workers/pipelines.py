"""The retrain cycle: snapshot -> records -> reward model -> policy -> evaluate -> register ->
generate -> select -> tasks (docs/loop.md walks through it).

:func:`cycle_execute` claims the run with a conditional update, runs each step through
:func:`workers.steps.run_step` (idempotent: a finished step is never redone) and marks the run
succeeded, or failed with the error on a permanent failure. Transient errors (database or broker
connection) propagate so the Celery task retries with backoff. Model versions become ``ready``
only after their artifact directory is complete; the active model changes only in ``register``,
inside one transaction, and only when the evaluation passes the project's rule.

Every write to a run or a model version goes through ``annotation/services/runs.py`` (claim,
progress, fail, mark ready, activate); this module decides *what* to write, not how.
"""

from __future__ import annotations

import contextlib
import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from annotation.models import ModelKind, ModelVersion, RunStatus, TrainingRun
from annotation.services import runs
from annotation.services.loop import last_snapshot_max
from annotation.services.runs import artifact_complete
from training.contract.trainers import TRAINERS
from workers import candidates, online
from workers.records import ai_snapshot, eligible_judgments, run_records
from workers.steps import (
    DEFAULTS,
    RECORD_FILES,
    Context,
    clear_partial,
    load_records,
    run_step,
)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)
POLICY_TRAINERS = tuple(t.name for t in TRAINERS if t.kind == "policy")  # the registry


def project_dir(project_id: int) -> Path:
    """Where every cycle of a project keeps its models, records and caches."""
    return Path(settings.LOOP_ARTIFACTS_DIR) / f"project-{project_id}"


def run_dir(run: TrainingRun) -> Path:
    return project_dir(run.project_id) / f"run-{run.id}"


def run_config(run: TrainingRun) -> dict[str, Any]:
    cfg = {**DEFAULTS, "device": os.environ.get("LOOP_DEVICE", DEFAULTS["device"])}
    cfg.update(run.config or {})
    return cfg


# ---------------------------------------------------------------- lineage helpers


def _version(ctx: Context, trainer: str, kind: str, parent: ModelVersion | None) -> ModelVersion:
    """This run's version for ``trainer`` (unique per (run, trainer): a re-run finds it)."""
    return runs.version_for_run(run=ctx.run, trainer=trainer, kind=kind, parent=parent)


def _lineage(ctx: Context, train_config: Any) -> dict[str, Any]:
    import dataclasses

    return {
        "train": dataclasses.asdict(train_config),
        "snapshot_run": ctx.run.id,
        "judgments": len(ctx.run.snapshot_judgment_ids),
        "snapshot_max_judgment_id": ctx.run.snapshot_max_judgment_id,
        **_sources(ctx),
    }


def _sources(ctx: Context) -> dict[str, Any]:
    """Where the run's records came from (the records step's counts) and the mixing choice."""
    pinned = (ctx.run.config or {}).get("ai_mixing") or {}
    counts = ctx.results.get("records", {})
    return {
        "sources": {"human": counts.get("human", 0), "ai": counts.get("ai", 0)},
        "ai_training": pinned.get("ai_training", "human"),
        "ai_weight": pinned.get("ai_weight"),
        "ai_min_confidence": pinned.get("ai_min_confidence"),
        "ai_max_judgment_id": pinned.get("ai_max_judgment_id", 0),
    }


def _mark_ready(version: ModelVersion, path: Path, metrics: dict[str, Any], config: Any) -> None:
    runs.version_mark_ready(
        version_id=version.id, artifact_path=path, metrics=metrics, config=config
    )


def _metadata_metrics(path: Path) -> dict[str, Any]:
    return json.loads((path / "metadata.json").read_text()).get("metrics", {})


# Trainer metrics kept on the run's curve beside the loss (TRL's names; what the run page plots),
# and the online-RL monitors (workers/online.py).
CURVE_METRICS = ("rewards/accuracies", "rewards/margins", "kl", *online.MONITORS)


def _progress(ctx: Context, name: str, label: str) -> Any:
    def callback(p: Any) -> None:
        point = {"model": label, "i": p.step, "of": p.total_steps, "loss": round(p.loss, 5)}
        point.update(
            {
                k: round(float(p.metrics[k]), 5)
                for k in CURVE_METRICS
                if isinstance(p.metrics.get(k), int | float)
            }
        )
        ctx.report(name, p.step / max(1, p.total_steps), point)

    return callback


# ---------------------------------------------------------------- steps


def step_snapshot(ctx: Context) -> tuple[dict[str, Any], Any]:
    ids = list(
        eligible_judgments(project_id=ctx.project.id).order_by("id").values_list("id", flat=True)
    )
    max_id = max(ids, default=0)
    previous = last_snapshot_max(project=ctx.project)

    ai = ai_snapshot(ctx.project)  # the mixing choice and the AI judgments it uses, pinned

    def commit() -> None:
        runs.run_snapshot_set(run_id=ctx.run.id, judgment_ids=ids, max_judgment_id=max_id)
        runs.run_ai_snapshot_set(run_id=ctx.run.id, mixing=ai)
        ctx.run.snapshot_judgment_ids, ctx.run.snapshot_max_judgment_id = ids, max_id
        ctx.run.config = {**(ctx.run.config or {}), "ai_mixing": ai}

    new = sum(1 for i in ids if i > previous)
    result = {
        "judgments": len(ids),
        "new_judgments": new,
        "max_judgment_id": max_id,
        "ai_training": ai["ai_training"],
        "ai_judgments": len(ai["ai_judgment_ids"]),
        "ai_max_judgment_id": ai["ai_max_judgment_id"],
    }
    return result, commit


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def step_records(ctx: Context) -> tuple[dict[str, Any], Any]:
    recs = run_records(ctx.run)
    weighted = recs.counts["ai"] > 0  # a human-only run writes exactly the records it always did
    folder = ctx.root / "records"
    _write_jsonl(
        folder / RECORD_FILES["preference"],
        [
            {
                "prompt": list(p.prompt),
                "chosen": p.chosen,
                "rejected": p.rejected,
                "margin": p.margin,
                **({"weight": p.weight} if weighted else {}),
            }
            for p in recs.pairs
        ],
    )
    _write_jsonl(
        folder / RECORD_FILES["unpaired"],
        [
            {"prompt": list(u.prompt), "completion": u.completion, "label": u.desirable}
            for u in recs.unpaired
        ],
    )
    _write_jsonl(
        folder / RECORD_FILES["sft"],
        [{"prompt": list(s.prompt), "completion": s.completion} for s in recs.sft],
    )
    pinned = (ctx.run.config or {}).get("ai_mixing") or {}
    return {**dict(recs.counts), "ai_training": pinned.get("ai_training", "human")}, None


def step_reward(ctx: Context) -> tuple[dict[str, Any], Any]:
    from training.config import RewardConfig
    from training.trainers import reward_model

    pairs = load_records(ctx, "preference")
    if "rm" not in ctx.run.trainers:
        return {"skipped": "rm is not among the project's trainers"}, None
    if len(pairs) < 2:
        return {"skipped": f"{len(pairs)} preference pairs; need at least 2"}, None
    active_reward = runs.version_active(project=ctx.project, kind=ModelKind.REWARD)
    version = _version(ctx, "rm", ModelKind.REWARD, active_reward)
    out = ctx.root / "rm"
    kw: dict[str, Any] = (
        {"learning_rate": ctx.cfg["learning_rate"]} if ctx.cfg["learning_rate"] else {}
    )
    config = RewardConfig(
        model=ctx.project.base_model,
        output_dir=str(out),
        eval_fraction=0.1 if len(pairs) >= 20 else 0.0,
        num_epochs=int(ctx.cfg["rm_epochs"]),
        seed=int(ctx.cfg["seed"]),
        device=ctx.cfg["device"],
        lora_r=int(ctx.cfg["lora_r"]),
        **kw,
        **_tracking(ctx, "rm"),
    )
    if artifact_complete(out):
        metrics = _metadata_metrics(out)  # finished before a crash: reuse, never retrain
    else:
        clear_partial(out)
        metrics = reward_model.run(config, pairs, progress=_progress(ctx, "reward", "rm")).metrics
    lineage = _lineage(ctx, config)
    result = {"version": version.id, "pairs": len(pairs), **_scalars(metrics)}
    return result, lambda: _mark_ready(version, out, _scalars(metrics), lineage)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in metrics.items() if isinstance(v, int | float)}


def _tracking(ctx: Context, trainer: str) -> dict[str, Any]:
    """The run's ``report_to`` for a trainer config: TensorBoard events beside the trainer's
    output (``<out>.tensorboard``), MLflow runs in $MLFLOW_TRACKING_URI or under the loop's
    artifacts (``mlruns/``), each run named project/run/trainer."""
    sinks = tuple(s for s in str(ctx.cfg.get("report_to", "")).split(",") if s)
    if not sinks:
        return {}
    store = os.environ.get("MLFLOW_TRACKING_URI") or (
        f"file:{Path(settings.LOOP_ARTIFACTS_DIR).resolve() / 'mlruns'}"
    )
    return {
        "report_to": sinks,
        "mlflow_tracking_uri": store,
        "mlflow_experiment": ctx.project.slug,
        "run_name": f"run-{ctx.run.id}/{trainer}",
    }


def _policy_config(ctx: Context, trainer: str, parent: ModelVersion, out: Path) -> Any:
    """The trainer's config class (from the registry) with the run's options; ``beta`` and the
    reference cache where the class has those fields."""
    import dataclasses

    from training.registry import config_class

    cls = config_class(trainer)
    fields = {f.name for f in dataclasses.fields(cls)}
    common: dict[str, Any] = {
        "model": parent.artifact_path,
        "output_dir": str(out),
        "num_epochs": int(ctx.cfg["policy_epochs"]),
        "seed": int(ctx.cfg["seed"]),
        "device": ctx.cfg["device"],
        **_tracking(ctx, trainer),
    }
    if ctx.cfg["policy_learning_rate"]:
        common["learning_rate"] = float(ctx.cfg["policy_learning_rate"])
    if "beta" in fields:
        common["beta"] = float(ctx.cfg["beta"])
    if "lora_r" in fields and trainer not in online.ON_POLICY:
        common["lora_r"] = int(ctx.cfg["lora_r"])
    if "ref_cache_dir" in fields:
        common["ref_cache_dir"] = str(ctx.root / "refcache")
    if trainer in online.ON_POLICY:
        common.update(online.rl_fields(ctx.cfg, fields))
    return cls(**common)


TRAINER_RECORDS = {t.name: t.records for t in TRAINERS if t.kind == "policy"}


def step_policy(ctx: Context) -> tuple[dict[str, Any], Any]:
    from training.registry import resolve

    parent = runs.version_policy_parent(project=ctx.project)
    result: dict[str, Any] = {"parent": parent.id}
    commits = []
    for trainer in [t for t in POLICY_TRAINERS if t in ctx.run.trainers]:
        if trainer in online.ON_POLICY:
            entry = _step_on_policy(ctx, trainer, parent, result)
            if entry is not None:
                commits.append(entry)
            continue
        records = load_records(ctx, TRAINER_RECORDS[trainer])
        if trainer == "dpo":
            records = records + candidates.rm_pairs(ctx, parent)
        if not records:
            result[f"{trainer}/skipped"] = "no records of this kind"
            continue
        version = _version(ctx, trainer, ModelKind.POLICY, parent)
        out = ctx.root / trainer
        config = _policy_config(ctx, trainer, parent, out)
        if artifact_complete(out):
            metrics = _metadata_metrics(out)
        else:
            clear_partial(out)
            progress = _progress(ctx, "policy", trainer)
            metrics = resolve(trainer).run(config, records, progress=progress).metrics
        result[f"{trainer}/version"] = version.id
        result[f"{trainer}/records"] = len(records)
        result.update({f"{trainer}/{k}": v for k, v in _scalars(metrics).items()})
        commits.append((version, out, _scalars(metrics), _lineage(ctx, config)))

    def commit() -> None:
        for c in commits:
            _mark_ready(*c)

    return result, commit


def _step_on_policy(
    ctx: Context, trainer: str, parent: ModelVersion, result: dict[str, Any]
) -> tuple[ModelVersion, Path, dict[str, Any], dict[str, Any]] | None:
    """Train ``trainer`` (ppo, rloo, grpo, best_of_n) from ``parent`` on the project's prompts
    against the run's reward model (workers/online.py); what its version's commit needs, or
    None when it is skipped. The result gets its scalars, alarms and over-optimisation series."""
    from training.registry import resolve

    judge = online.reward_model_for(ctx, trainer)
    if judge is None:
        result[f"{trainer}/skipped"] = "no reward model yet (the rm step was skipped)"
        return None
    train, evals = online.rl_prompts(ctx, trainer)
    if not train:
        result[f"{trainer}/skipped"] = "the project has no train prompts"
        return None
    version = _version(ctx, trainer, ModelKind.POLICY, parent)
    out = ctx.root / trainer
    config = online.complete_config(
        ctx, _policy_config(ctx, trainer, parent, out), judge, eval_held_out=evals is not None
    )
    if artifact_complete(out):  # trained before a crash: reuse, never retrain
        metrics = _metadata_metrics(out)
        history = [p for p in ctx.curve if p.get("phase") == "policy" and p.get("model") == trainer]
    else:
        clear_partial(out)
        progress = _progress(ctx, "policy", trainer)
        run = resolve(trainer).on_policy.run(
            config, train, evals, gold=online.gold_scorer(ctx.cfg), progress=progress
        )
        metrics, history = run.metrics, run.history
    scalars = online.version_metrics(_scalars(metrics))
    alarms = online.alarm_events(history, config)
    rl = online.lineage(trainer, config, metrics, judge)
    result.update(
        {
            f"{trainer}/version": version.id,
            f"{trainer}/reward_model": judge.id,
            f"{trainer}/prompts": len(train),
            f"{trainer}/beta": rl["beta"],
            f"{trainer}/alarms_fired": len(alarms),
            f"{trainer}/alarms": alarms,
            f"{trainer}/overoptimization": online.overoptimization(history),
            **{f"{trainer}/{k}": v for k, v in scalars.items()},
        }
    )
    return version, out, scalars, {**_lineage(ctx, config), **rl}


def new_policies(ctx: Context) -> list[ModelVersion]:
    return runs.run_versions_ready(run=ctx.run, kind=ModelKind.POLICY)


def step_evaluate(ctx: Context) -> tuple[dict[str, Any], Any]:
    from training.evaluate import compare_policies

    policies, judge = new_policies(ctx), runs.run_judge(run=ctx.run)
    if not policies:
        return {"skipped": "no new policy"}, None
    if judge is None:
        return {"skipped": "no reward model to judge the policy"}, None
    models = candidates.Models(ctx.cfg["device"])
    prompts = candidates.eval_prompts(ctx.project, int(ctx.cfg["eval_prompts"]))
    result: dict[str, Any] = {"judge": judge.id, "prompts": len(prompts)}
    for n, version in enumerate(policies):
        parent = version.parent or runs.version_policy_parent(project=ctx.project)
        share = 1 / len(policies)
        metrics = compare_policies(
            models.policy(version.artifact_path),
            models.policy(parent.artifact_path),
            models.tokenizer(version.artifact_path),
            models.reward(judge.artifact_path),
            models.tokenizer(judge.artifact_path),
            [p.messages for p in prompts],
            temperature=ctx.project.temperature,
            top_p=ctx.project.top_p,
            max_new_tokens=min(ctx.project.max_new_tokens, 256),
            seed=int(ctx.cfg["seed"]),
            progress=ctx.reporter("evaluate", n * share, (n + 1) * share),
        )
        passed, reason = promotion_rule(metrics, ctx.cfg)
        result[str(version.id)] = {**_scalars(metrics), "passed": passed, "reason": reason}
    return result, None


def promotion_rule(metrics: dict[str, float], cfg: dict[str, Any]) -> tuple[bool, str]:
    """Promote when win rate >= min_win_rate and KL <= max_kl (docs/loop.md, "Promotion")."""
    if metrics["win_rate"] < cfg["min_win_rate"]:
        return False, f"win rate {metrics['win_rate']:.3f} < {cfg['min_win_rate']}"
    if metrics["kl"] > cfg["max_kl"]:
        return False, f"KL {metrics['kl']:.2f} > {cfg['max_kl']}"
    return True, f"win rate {metrics['win_rate']:.3f}, KL {metrics['kl']:.2f}"


def step_register(ctx: Context) -> tuple[dict[str, Any], Any]:
    evaluation = ctx.results.get("evaluate", {})
    passing = [
        (evaluation[str(v.id)]["win_rate"], v)
        for v in new_policies(ctx)
        if evaluation.get(str(v.id), {}).get("passed")
    ]
    best = max(passing, key=lambda wv: (wv[0], -wv[1].id))[1] if passing else None
    reward = runs.run_own_reward(run=ctx.run)

    def commit() -> None:  # inside run_step_finish's transaction
        for version in (best, reward):
            if version is not None:
                runs.version_activate(version_id=version.id)
        for v in new_policies(ctx):
            if str(v.id) in evaluation:
                metrics = {f"eval/{k}": x for k, x in evaluation[str(v.id)].items()}
                runs.version_metrics_merge(version_id=v.id, metrics=metrics)
        runs.version_ensure_active_policy(project=ctx.project)

    result = {
        "promoted_policy": best.id if best else None,
        "active_reward": reward.id if reward else None,
        "promoted": best is not None,
    }
    return result, commit


STEPS = [
    ("snapshot", step_snapshot),
    ("records", step_records),
    ("reward", step_reward),
    ("policy", step_policy),
    ("evaluate", step_evaluate),
    ("register", step_register),
    ("generate", candidates.step_generate),
    ("select", candidates.step_select),
    ("tasks", candidates.step_tasks),
]


# ---------------------------------------------------------------- the cycle


@contextlib.contextmanager
def run_lock(run_id: int) -> Iterator[bool]:
    """A PostgreSQL session advisory lock on the run: a redelivered copy of a message that is
    still being worked on finds it taken. The lock dies with the worker's connection, so a killed
    worker never leaves it behind. (SQLite: the embedded default runs one worker; always True.)"""
    if connection.vendor != "postgresql":
        yield True
        return
    key = 0x5EED0000 + run_id
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with contextlib.suppress(Exception), connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def cycle_fail(*, run_id: int, error: str) -> None:
    """Mark the run failed with ``error``; its unfinished versions fail; active models stay."""
    runs.run_fail(run_id=run_id, error=error)


def cycle_execute(*, run_id: int) -> str:
    """Run (or resume) the cycle ``run_id``; returns its final status or why nothing was done."""
    with run_lock(run_id) as locked:
        if not locked:
            return "busy: another worker holds this run"
        if not runs.run_claim(run_id=run_id):
            return "skipped: run is not queued or running"
        run = TrainingRun.objects.select_related("project").get(id=run_id)
        ctx = Context(run=run, project=run.project, root=run_dir(run), cfg=run_config(run))
        ctx.curve = list(run.curve)
        try:
            for name, step in STEPS:
                run_step(ctx, name, step)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # a permanent failure: recorded on the run, never swallowed
            cycle_fail(
                run_id=run_id, error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            )
            return RunStatus.FAILED
        runs.run_succeed(run_id=run_id)
        return RunStatus.SUCCEEDED
