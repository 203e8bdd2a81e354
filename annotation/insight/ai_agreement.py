"""How far an AI rater agrees with the humans, before anyone trains on it (docs/ai-feedback.md).

On the pairwise tasks that both humans and an AI source judged. Human votes are the eligible
judgments (:func:`annotation.selectors.eligible_judgments`: current, not gold, rater not excluded)
whose choice is A or B; ties and both-bad say nothing about which response is better and are left
out, as are AI verdicts whose two orders disagreed (inconsistent: counted, never a choice). Each
vote is coded by the task's own response order: 0 = the task's first response wins, 1 = the
second (so a position bias shows in the marginals, which Cohen's kappa accounts for).

The figures, for every AI pass (one source: a method and a model), per principle and overall
(all the pass's principles pooled; the intervals resample tasks, so a task judged under several
principles stays one unit):

- **AI·human** (the headline): every (AI verdict, human vote) pair on a task counts once; percent
  = share of pairs that agree, Cohen's kappa on their pooled 2x2 table (AI as one rater, "a
  human" as the other). Why each human and not the majority: the ceiling below is agreement
  between *two single raters*, so this is the same unit and reads directly as "the AI as one
  more rater": AI·human near human·human means the AI agrees with a human about as well as
  the humans agree with each other.
- **AI·majority**: the AI against the task's strict human majority (tasks whose A/B votes tie
  have none and are left out). A majority is less noisy than one human, so this can exceed the
  pairwise ceiling; it is the reference the calibration uses.
- **ceiling**: human·human agreement on the same tasks (those with a consistent AI verdict and
  at least two human votes): every ordered pair of two different raters' votes counts, so the
  pooled table is symmetric and its Cohen's kappa is Scott's pi (Fleiss' kappa for two raters);
  beside it the AI·human figures on exactly those tasks and the kappa gap (AI minus human).
- **calibration**: consistent AI verdicts with a confidence, on tasks with a human majority, in
  confidence bins [0.5, 0.6) ... [0.9, 1.0]: the share agreeing with the majority per bin (Wilson
  interval), the Brier score mean((confidence - agrees)^2) and the expected calibration error
  sum_b n_b / n |share_b - mean confidence_b|.
- **flip rate**: inconsistent / judged over all the source's verdicts, with how many inconsistent
  verdicts fell on human-judged tasks (excluded from the agreement).

Point estimates: percent from the pooled table, kappa from ``statsmodels``; 95% percentile
intervals from ``scipy.stats.bootstrap`` resampling tasks (seeded), over the finite replicates
(a resample where every vote is one category has no kappa). The computation reads plain rows
(:class:`HumanVote`, :class:`AIVote`), so it is tested without a database; :func:`ai_agreement`
reads them from the database. AI verdicts never enter the human agreement figures
(:mod:`annotation.insight.quality`): they live in their own table and only this module reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from annotation.errors import NotFound, ValidationFailed
from annotation.insight.tables import n_boot_for, num
from annotation.metrics.ai_agreement import (
    AI_CEILING,
    AI_HUMAN,
    AI_MAJORITY,
    HUMAN_HUMAN,
    MIN_BOOT_TASKS,
    N_FEATURES,
    STAT_NAMES,
    bootstrap_replicates,
    calibration,
    estimate,
    library_kappa,
    statistics,
    strict_majority,
    task_features,
)
from annotation.models import AIJudgment, AIMethod, AIPass, PairwiseChoice, TaskKind, TaskResponse
from annotation.selectors import eligible_judgments


class HumanVote(NamedTuple):
    task_id: int
    rater_id: int
    code: int  # 0: the task's first response preferred, 1: the second


class AIVote(NamedTuple):
    ai_pass_id: int
    task_id: int
    principle_index: int | None
    principle: str
    code: int | None  # None: inconsistent across the two orders
    confidence: float | None


def group_agreement(
    ai: Sequence[AIVote],
    humans: Mapping[int, Sequence[int]],
    *,
    n_boot: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The figures of one group of AI verdicts (one pass, one principle or all) against the human
    codes by task (``humans[task_id]``: the codes of that task's eligible A/B votes).
    ``n_boot``: resamples (default :func:`annotation.insight.tables.n_boot_for` the tasks: fewer
    on big groups, whose intervals are narrow and stable already)."""
    by_task: dict[int, list[int]] = defaultdict(list)
    calib: list[tuple[float, bool]] = []
    inconsistent = excluded = 0
    for v in ai:
        human = humans.get(v.task_id, ())
        if v.code is None:
            inconsistent += 1
            excluded += bool(human)
            continue
        if not human:
            continue
        by_task[v.task_id].append(v.code)
        majority = strict_majority(human)
        if majority is not None and v.confidence is not None:
            calib.append((v.confidence, v.code == majority))
    tasks = sorted(by_task)
    features = np.array([task_features(by_task[t], humans[t]) for t in tasks], dtype=float).reshape(
        len(tasks), N_FEATURES
    )
    sums = features.sum(0)
    points = dict(zip(STAT_NAMES, statistics(sums), strict=True))
    # The kappas' point estimates from the library (the vectorized formula is for resampling).
    for name, part in (
        ("ai_human_kappa", AI_HUMAN),
        ("ai_majority_kappa", AI_MAJORITY),
        ("ceiling_human_kappa", HUMAN_HUMAN),
        ("ceiling_ai_kappa", AI_CEILING),
    ):
        points[name] = library_kappa(sums[part])
    if points["ceiling_human_kappa"] is not None and points["ceiling_ai_kappa"] is not None:
        points["ceiling_kappa_gap"] = points["ceiling_ai_kappa"] - points["ceiling_human_kappa"]
    else:
        points["ceiling_kappa_gap"] = None
    n_boot = n_boot_for(len(tasks)) if n_boot is None else n_boot
    reps = bootstrap_replicates(features, n_boot, seed) if len(tasks) >= MIN_BOOT_TASKS else None
    est = {
        name: estimate(points[name], reps[i] if reps is not None else None)
        for i, name in enumerate(STAT_NAMES)
    }
    ceiling_tasks = int((features[:, HUMAN_HUMAN].sum(1) > 0).sum()) if tasks else 0
    return {
        "judged": len(ai),
        "inconsistent": inconsistent,
        "flip_rate": num(inconsistent / len(ai)) if ai else None,
        "excluded_inconsistent": excluded,
        "tasks": len(tasks),
        "n_boot": n_boot,
        "ai_human": {
            "percent": est["ai_human_percent"],
            "kappa": est["ai_human_kappa"],
            "pairs": int(sums[AI_HUMAN].sum()),
        },
        "ai_majority": {
            "percent": est["ai_majority_percent"],
            "kappa": est["ai_majority_kappa"],
            "pairs": int(sums[AI_MAJORITY].sum()),
            "tasks": int((features[:, AI_MAJORITY].sum(1) > 0).sum()) if tasks else 0,
        },
        "ceiling": {
            "tasks": ceiling_tasks,
            "human_pairs": int(sums[HUMAN_HUMAN].sum()) // 2,
            "human": {
                "percent": est["ceiling_human_percent"],
                "kappa": est["ceiling_human_kappa"],
            },
            "ai": {"percent": est["ceiling_ai_percent"], "kappa": est["ceiling_ai_kappa"]},
            "kappa_gap": est["ceiling_kappa_gap"],
        },
        "calibration": calibration(calib),
    }


def pass_agreement(
    ai: Sequence[AIVote],
    humans: Mapping[int, Sequence[int]],
    *,
    n_boot: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One pass's figures: overall (every principle pooled) and per principle, in index order."""
    by_principle: dict[int | None, list[AIVote]] = defaultdict(list)
    for v in ai:
        by_principle[v.principle_index].append(v)
    principles = []
    for index in sorted(by_principle, key=lambda i: -1 if i is None else i):
        votes = by_principle[index]
        principles.append(
            {
                "index": index,
                "principle": votes[0].principle,
                **group_agreement(votes, humans, n_boot=n_boot, seed=seed),
            }
        )
    return {
        "overall": group_agreement(ai, humans, n_boot=n_boot, seed=seed),
        "principles": principles,
    }


def humans_by_task(votes: Iterable[HumanVote]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for v in votes:
        out[v.task_id].append(v.code)
    return dict(out)


# -- the database reader -----------------------------------------------------------------------


def read_votes(
    project_id: int, ai_pass_ids: Collection[int] | None = None
) -> tuple[list[AIVote], list[HumanVote]]:
    """The AI verdicts (of these passes, or all) and the eligible human A/B votes on their
    tasks, both coded by the task's own response order."""
    ai_rows = AIJudgment.objects.filter(project_id=project_id, task__isnull=False)
    if ai_pass_ids is not None:
        ai_rows = ai_rows.filter(ai_pass_id__in=list(ai_pass_ids))
    raw = list(
        ai_rows.order_by("id").values_list(
            "ai_pass_id",
            "task_id",
            "principle_index",
            "principle",
            "chosen_response_id",
            "consistent",
            "confidence",
        )
    )
    task_ids = {r[1] for r in raw}
    first = dict(
        TaskResponse.objects.filter(task_id__in=task_ids, position=0).values_list(
            "task_id", "response_id"
        )
    )
    ai = [
        AIVote(
            pass_id,
            task_id,
            index,
            principle,
            (0 if chosen == first.get(task_id) else 1) if consistent and chosen else None,
            confidence if consistent else None,
        )
        for pass_id, task_id, index, principle, chosen, consistent, confidence in raw
    ]
    judgments = (
        eligible_judgments(project_id=project_id)
        .filter(
            kind=TaskKind.PAIRWISE,
            choice__in=[PairwiseChoice.A, PairwiseChoice.B],
            preferred_response__isnull=False,
            task_id__in=task_ids,
        )
        .order_by("task_id", "id")
        .values_list("task_id", "rater_id", "preferred_response_id")
    )
    humans = [
        HumanVote(task_id, rater_id, 0 if preferred == first.get(task_id) else 1)
        for task_id, rater_id, preferred in judgments
    ]
    return ai, humans


def judge_passes(project_id: int) -> Any:
    """The project's labeling passes: a Constitutional AI batch makes (revised, original) pairs
    rather than verdicts on the humans' tasks, so it has no agreement to show."""
    return AIPass.objects.filter(project_id=project_id).exclude(method=AIMethod.CAI)


def ai_agreement(
    project_id: int,
    *,
    ai_pass_id: int | None = None,
    principles: bool = True,
    limit: int | None = None,
    n_boot: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every AI pass of the project (or one, or the newest ``limit``) with its agreement
    figures, newest pass first. ``principles=False`` leaves out the per-principle groups (the
    dashboard's card)."""
    query = judge_passes(project_id).select_related("model_version").order_by("-id")
    total = query.count()
    if ai_pass_id is not None:
        query = query.filter(id=ai_pass_id)
    passes = list(query[:limit] if limit else query)
    ai, human_votes = read_votes(project_id, [p.id for p in passes])
    humans = humans_by_task(human_votes)
    by_pass: dict[int, list[AIVote]] = defaultdict(list)
    for v in ai:
        by_pass[v.ai_pass_id].append(v)
    out = []
    for p in passes:
        votes = by_pass.get(p.id, [])
        figures = (
            pass_agreement(votes, humans, n_boot=n_boot, seed=seed)
            if principles
            else {"overall": group_agreement(votes, humans, n_boot=n_boot, seed=seed)}
        )
        out.append(
            {
                "id": p.id,
                "method": p.method,
                # the version's name where there is one (as the pass list shows it), else the path
                "model": p.model_version.name if p.model_version else p.model_path,
                "status": p.status,
                "created_at": p.created_at.isoformat(),
                **figures,
            }
        )
    return {
        "project": project_id,
        "passes": out,
        "total_passes": total,
        "human_tasks": len(humans),
        "n_boot": n_boot,  # None: each group's own (its "n_boot")
        "seed": seed,
        "interval": "95% percentile bootstrap over tasks",
    }


CACHE_SECONDS = 24 * 3600
CARD_PASSES = 5  # the overview's card looks at the newest passes only


def ai_pass_option(project_id: int, value: Any) -> int | None:
    """The ``ai_pass`` query parameter: empty, or the id of one of the project's AI passes."""
    if value in (None, ""):
        return None
    try:
        ai_pass_id = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(
            f"ai_pass must be the id of an AI pass, got {value!r}.", field="ai_pass"
        ) from None
    if not AIPass.objects.filter(project_id=project_id, id=ai_pass_id).exists():
        raise NotFound(f"This project has no AI pass {ai_pass_id}.")
    if not judge_passes(project_id).filter(id=ai_pass_id).exists():
        raise ValidationFailed(
            f"AI pass {ai_pass_id} is a Constitutional AI batch: it has no verdicts to compare "
            "with the humans'; its pairs are on its revisions page.",
            field="ai_pass",
        )
    return ai_pass_id


def ai_agreement_cached(
    project_id: int,
    *,
    ai_pass_id: int | None = None,
    principles: bool = True,
    limit: int | None = None,
) -> dict[str, Any]:
    """:func:`ai_agreement`, cached until a human vote, an exclusion, an AI verdict or a pass's
    status changes (the dashboard's fingerprint plus the AI tables' newest rows)."""
    from django.core.cache import cache
    from django.db.models import Count, Max

    from annotation.insight.dashboard import fingerprint

    ai = AIJudgment.objects.filter(project_id=project_id).aggregate(m=Max("id"), n=Count("id"))
    passes = judge_passes(project_id).aggregate(
        m=Max("id"), s=Max("started_at"), f=Max("finished_at")
    )
    key = "ai-agreement:v1:{}:{}:{}:{}:{}".format(
        project_id,
        ai_pass_id,
        int(principles),
        limit,
        hashlib.sha256(
            json.dumps([fingerprint(project_id), ai, passes], default=str).encode()
        ).hexdigest(),
    )
    out = cache.get(key)
    if out is None:
        out = ai_agreement(project_id, ai_pass_id=ai_pass_id, principles=principles, limit=limit)
        cache.set(key, out, CACHE_SECONDS)
    return out


def dashboard_card(project_id: int) -> dict[str, Any] | None:
    """The overview's one line: the newest AI pass that shares tasks with the humans (or the
    newest pass when none does), overall figures only; None before the first pass."""
    if not judge_passes(project_id).exists():
        return None
    data = ai_agreement_cached(project_id, principles=False, limit=CARD_PASSES)
    passes = data["passes"]
    shown = next((p for p in passes if p["overall"]["tasks"]), passes[0])
    return {"pass": shown, "overall": shown["overall"], "passes": data["total_passes"]}
