"""The cycle's second half: new candidates from the new policy, the pairs worth labeling, tasks.

Every generated :class:`Response` records the model version and sampling settings that produced it
and its ``(generation_run, prompt, sample_index)``, which is unique in the database: a re-run of
the step after a crash cannot create duplicates (and the step's rows commit together with its
RunStep row anyway).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from django.db.models import Count, Q

from annotation.models import (
    ModelKind,
    ModelVersion,
    Origin,
    Project,
    Prompt,
    Response,
    Task,
    TaskKind,
    TrainingRun,
)
from annotation.services import runs
from annotation.services.tasks import TaskSpec, task_specs_for_prompt, tasks_create
from annotation.textcheck import unreadable_reason
from workers.active import select_pairs
from workers.steps import Context, load_records


class Models:
    """Loads each model once per step (by artifact path) on the configured device."""

    def __init__(self, device: str) -> None:
        from training.modeling import pick_device

        self.device = pick_device(device)
        self._cache: dict[tuple[str, str], Any] = {}

    def _get(self, kind: str, path: str) -> Any:
        from training.modeling import load_causal_lm, load_reward_model, load_tokenizer

        key = (kind, path)
        if key not in self._cache:
            if kind == "tok":
                self._cache[key] = load_tokenizer(path)
            elif kind == "lm":
                self._cache[key] = load_causal_lm(path, self.device)
            else:
                tok = self.tokenizer(path)
                self._cache[key] = load_reward_model(path, self.device, tok.pad_token_id)
        return self._cache[key]

    def tokenizer(self, path: str) -> Any:
        return self._get("tok", path)

    def policy(self, path: str) -> Any:
        return self._get("lm", path)

    def reward(self, path: str) -> Any:
        return self._get("rm", path)


def storable(text: str) -> str:
    """Model output as the database can hold it: PostgreSQL text cannot contain NUL."""
    return text.replace("\x00", "\ufffd")


def cycle_index(ctx: Context) -> int:
    """How many cycles the project ran before this one (seeds depend on it, not on row ids, so a
    seeded simulation is reproducible in any database)."""
    return TrainingRun.objects.filter(project=ctx.project, id__lt=ctx.run.id).count()


def eval_prompts(project: Project, n: int) -> list[Prompt]:
    """Held-out prompts (split=eval); a project without any uses its newest train prompts."""
    rows = list(Prompt.objects.filter(project=project, split="eval").order_by("id")[:n])
    return rows or list(Prompt.objects.filter(project=project).order_by("-id")[:n])


def prompts_needing_candidates(project: Project, n: int) -> list[Any]:
    """Train prompts with the fewest model-generated candidates first (then oldest)."""
    return list(
        Prompt.objects.filter(project=project, split="train")
        .annotate(generated=Count("responses", filter=Q(responses__origin="model")))
        .order_by("generated", "id")[:n]
    )


def _sample(
    models: Models,
    project: Project,
    path: str,
    prompts: list[Any],
    seed: int,
    progress: Callable[[float], None] | None = None,
) -> Any:
    from training.generate import generate

    return generate(
        models.policy(path),
        models.tokenizer(path),
        prompts,
        k=project.samples_per_prompt,
        temperature=project.temperature,
        top_p=project.top_p,
        max_new_tokens=project.max_new_tokens,
        seed=seed,
        progress=None if progress is None else lambda done, total: progress(done / total),
    )


def scores_for(models: Models, judge: ModelVersion, items: list[tuple[Any, str]]) -> list[float]:
    from training.generate import score

    path = judge.artifact_path
    return score(models.reward(path), models.tokenizer(path), items) if items else []


def rm_pairs(ctx: Context, parent: ModelVersion) -> list[Any]:
    """Extra DPO pairs labeled by this run's reward model: for ``rm_pairs_prompts`` train prompts
    the parent samples k responses and the best and worst by reward form a pair (on-policy data at
    no labeling cost; off by default)."""
    from training.records import PreferencePair

    n, judge = int(ctx.cfg["rm_pairs_prompts"]), runs.run_judge(run=ctx.run)
    if n <= 0 or judge is None or judge.training_run_id != ctx.run.id:
        return []
    models = Models(ctx.cfg["device"])
    prompts = [p.messages for p in prompts_needing_candidates(ctx.project, n)]
    samples = _sample(models, ctx.project, parent.artifact_path, prompts, int(ctx.cfg["seed"]) + 7)
    out = []
    for prompt, group in zip(prompts, samples, strict=True):
        texts = [s.text for s in group if unreadable_reason(s.text) is None]
        if len(set(texts)) < 2:
            continue
        rewards = scores_for(models, judge, [(prompt, t) for t in texts])
        ranked = sorted(zip(rewards, texts, strict=True))
        best, worst = ranked[-1], ranked[0]
        out.append(PreferencePair(tuple(prompt), best[1], worst[1], 0.0))
    return out


def _generator(ctx: Context) -> ModelVersion:
    """The newest policy of this run (best evaluated, else first); without one, the parent."""
    promoted = ctx.results.get("register", {}).get("promoted_policy")
    policies = runs.run_versions_ready(run=ctx.run, kind=ModelKind.POLICY)
    for v in policies:
        if v.id == promoted:
            return v
    return policies[0] if policies else runs.version_policy_parent(project=ctx.project)


def step_generate(ctx: Context) -> tuple[dict[str, Any], Any]:
    version = _generator(ctx)
    prompts = prompts_needing_candidates(ctx.project, int(ctx.cfg["prompts_per_cycle"]))
    seed = int(ctx.cfg["seed"]) * 1000 + cycle_index(ctx)
    models = Models(ctx.cfg["device"])
    ctx.report("generate", 0.02)  # the model is loaded; sampling reports after every batch
    samples = _sample(
        models,
        ctx.project,
        version.artifact_path,
        [p.messages for p in prompts],
        seed,
        progress=ctx.reporter("generate", 0.02, 1.0),
    )
    params = {
        "temperature": ctx.project.temperature,
        "top_p": ctx.project.top_p,
        "max_new_tokens": ctx.project.max_new_tokens,
        "k": ctx.project.samples_per_prompt,
        "seed": seed,
    }
    rows, dropped = [], Counter[str]()
    for prompt, group in zip(prompts, samples, strict=True):
        for i, sample in enumerate(group):
            reason = unreadable_reason(sample.text)  # empty, invalid UTF-8, control characters
            if reason is not None:
                dropped[reason] += 1
                continue
            rows.append(
                Response(
                    prompt=prompt,
                    text=storable(sample.text),
                    origin=Origin.MODEL,
                    source=version.name,
                    model_version=version,
                    generation_params=params,
                    generation_run=ctx.run,
                    sample_index=i,
                )
            )

    def commit() -> None:
        Response.objects.bulk_create(rows, ignore_conflicts=True)

    return {
        "version": version.id,
        "prompts": len(prompts),
        "responses": len(rows),
        "unreadable": sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),  # reason -> count (annotation/textcheck.py)
    }, commit


def _candidates(ctx: Context) -> dict[int, list[int]]:
    by_prompt: dict[int, list[int]] = defaultdict(list)
    for rid, pid in (
        Response.objects.filter(generation_run=ctx.run).order_by("prompt_id", "sample_index")
    ).values_list("id", "prompt_id"):
        by_prompt[pid].append(rid)
    return dict(by_prompt)


def _head_rewards(
    ctx: Context, judge: ModelVersion, rows: list[Response]
) -> dict[int, list[float]] | None:
    """Each candidate's reward under ``ensemble_heads`` bootstrap heads of the judge's last layer,
    refitted on this run's labeled pairs (``training/ensemble.py``); None without such pairs."""
    from training.ensemble import ensemble_rewards

    labeled = load_records(ctx, "preference")
    if len(labeled) < 2:
        return None
    models, path = Models(ctx.cfg["device"]), judge.artifact_path
    rewards = ensemble_rewards(
        models.reward(path),
        models.tokenizer(path),
        labeled,
        [(r.prompt.messages, r.text) for r in rows],
        n_heads=int(ctx.cfg["ensemble_heads"]),
        l2=float(ctx.cfg["ensemble_l2"]),
        seed=int(ctx.cfg["seed"]) * 1000 + cycle_index(ctx),
    )  # (N, K)
    return {r.id: v for r, v in zip(rows, rewards.tolist(), strict=True)}


def step_select(ctx: Context) -> tuple[dict[str, Any], Any]:
    cands, judge = _candidates(ctx), runs.run_judge(run=ctx.run)
    rows = list(
        Response.objects.filter(generation_run=ctx.run).select_related("prompt").order_by("id")
    )
    texts = {r.id: r.text for r in rows}
    scores, heads, temperature = None, None, 1.0
    if judge is not None and cands:
        ctx.report("select", 0.05)
        values = scores_for(
            Models(ctx.cfg["device"]), judge, [(r.prompt.messages, r.text) for r in rows]
        )
        # calibrated margins (training/calibration.py): an RM near chance leaves every pair
        # uncertain, so a similarity weight (when on) decides. Only ever softened (T >= 1): a
        # few dozen held-out pairs can say "overconfident", not reliably "sharper than it looks".
        temperature = max(1.0, float((judge.metrics or {}).get("eval/temperature", 1.0)))
        scores = {r.id: v / temperature for r, v in zip(rows, values, strict=True)}
        if float(ctx.cfg["random_share"]) < 1.0 and int(ctx.cfg["ensemble_heads"]) > 1:
            heads = _head_rewards(ctx, judge, rows)
    ctx.report("select", 0.8)
    chosen = select_pairs(
        cands,
        scores,
        budget=int(ctx.cfg["pairs_per_cycle"]),
        random_share=float(ctx.cfg["random_share"]),
        per_prompt=int(ctx.cfg["pairs_per_prompt"]),
        seed=int(ctx.cfg["seed"]) * 1000 + cycle_index(ctx),
        heads=heads,
        texts=texts,
        similarity_power=float(ctx.cfg["similarity_power"]),
        uncertainty_power=float(ctx.cfg["uncertainty_power"]),
    )
    uncertain = [c.uncertainty for c in chosen if c.reason == "uncertain"]
    return {
        "judge": judge.id if judge else None,
        "signal": "ensemble" if heads else "margin" if scores else "none",
        "similarity_power": float(ctx.cfg["similarity_power"]) if scores else 0.0,
        "uncertainty_power": float(ctx.cfg["uncertainty_power"]) if scores else 0.0,
        "temperature": round(temperature, 4) if scores else None,
        "pairs": [[c.prompt_id, *c.response_ids, round(c.uncertainty, 4)] for c in chosen],
        "compare": comparison_pairs(ctx, int(ctx.cfg["compare_pairs_per_cycle"])),
        "selected": len(chosen),
        "uncertain": len(uncertain),
        "mean_uncertainty": round(sum(uncertain) / len(uncertain), 4) if uncertain else 0.0,
    }, None


COMPARE_PRIORITY = 0.5  # between a certain pair (0) and a coin flip (1)


def comparison_pairs(ctx: Context, budget: int) -> list[list[int]]:
    """[prompt, new candidate, earlier response] for up to ``budget`` prompts, one pair each.

    The uncertainty-picked pairs put two candidates of this run's policy side by side, so on
    their own they never compare two systems: the leaderboard (base vs each policy version)
    would have no game. These pairs put one of the new candidates beside a response to the same
    prompt from any earlier system (an earlier generation, an import, a demonstration), drawn at
    random with the cycle's seed; identical texts are never paired."""
    if budget <= 0:
        return []
    cands = _candidates(ctx)
    earlier: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for rid, pid, text in (
        Response.objects.filter(prompt_id__in=list(cands))
        .exclude(generation_run=ctx.run)
        .order_by("id")
        .values_list("id", "prompt_id", "text")
    ):
        earlier[pid].append((rid, text))
    texts = dict(Response.objects.filter(generation_run=ctx.run).values_list("id", "text"))
    rng = random.Random(int(ctx.cfg["seed"]) * 1000 + cycle_index(ctx) + 1)
    prompts = sorted(pid for pid in cands if earlier.get(pid))
    rng.shuffle(prompts)
    pairs: list[list[int]] = []
    for pid in prompts:
        new = rng.choice(cands[pid])
        options = [rid for rid, text in earlier[pid] if text != texts[new]]
        if options:
            pairs.append([pid, new, rng.choice(options)])
        if len(pairs) == budget:
            break
    return pairs


def step_tasks(ctx: Context) -> tuple[dict[str, Any], Any]:
    project = ctx.project
    specs: list[TaskSpec] = []
    if TaskKind.PAIRWISE in project.task_kinds:
        specs += [
            TaskSpec(TaskKind.PAIRWISE, pid, (a, b), priority=u)
            for pid, a, b, u in ctx.results["select"]["pairs"]
        ]
        specs += [
            TaskSpec(TaskKind.PAIRWISE, pid, (new, old), priority=COMPARE_PRIORITY)
            for pid, new, old in ctx.results["select"].get("compare", [])
        ]
    rng = random.Random(cycle_index(ctx))
    for pid, ids in sorted(_candidates(ctx).items()):
        specs += [
            s
            for s in task_specs_for_prompt(
                project=project, prompt_id=pid, response_ids=ids, rng=rng
            )
            if s.kind != TaskKind.PAIRWISE
        ]

    def commit() -> None:
        tasks = tasks_create(project=project, specs=specs)
        Task.objects.filter(id__in=[t.id for t in tasks]).update(generation_run=ctx.run)

    counts: dict[str, int] = defaultdict(int)
    for s in specs:
        counts[s.kind] += 1
    return {"tasks": len(specs), **{f"tasks/{k}": v for k, v in counts.items()}}, commit
