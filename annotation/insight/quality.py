"""Agreement (per kind, with bootstrap intervals; Cohen per rater pair; Kendall for rankings) and
rater quality (leave-one-out majority, gold accuracy, speed, skips, own biases).

Treatment of ties and both-bad (docs/insight.md): the pairwise choice is nominal over four
categories (first wins / second wins / tie / both bad); on the signed 9-point strength scale
both-bad is missing.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any, Literal

import numpy as np
from django.db.models import Count, Q

from annotation.insight.arrays import (
    MISSING,
    N_SCALE,
    PairwiseJudgments,
    payload_rows,
)
from annotation.insight.tables import n_boot_for, num, table, usernames
from annotation.metrics import agreement
from annotation.metrics.bootstrap import bootstrap_mean
from annotation.metrics.proportions import proportion
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Judgment,
    RaterExclusion,
    TaskKind,
)

MIN_SHARED_ITEMS = 10  # Cohen's kappa for a rater pair needs this many shared items
TOO_FAST_MS = 4000  # a judgment faster than this is "too fast" to have read both responses
TIME_MS_MAX = 2**32 - 1  # the median sorts times in 32 bits: longer ones (49 days) count as this


# -- agreement -----------------------------------------------------------------------------------


def _agreement_rows(
    kind: str, measure: str, counts: np.ndarray, level: Literal["nominal", "ordinal"]
) -> list[list[Any]]:
    n_items = int((counts.sum(1) >= 2).sum()) if counts.size else 0
    if counts.size == 0 or n_items == 0:
        return [[kind, measure, level, None, None, None, 0, None, None, None, None, None, 0]]
    s = agreement.agreement_summary(counts, level=level, n_boot=n_boot_for(n_items))
    p, f, a = s["percent"], s["fleiss"], s["alpha"]
    return [
        [
            kind,
            measure,
            level,
            num(p["value"]),
            num(p["low"]),
            num(p["high"]),
            p["items"],
            num(f["value"]),
            num(f["low"]),
            num(f["high"]),
            num(a["value"]),
            num(a["low"]),
            num(a["high"]),
        ]
    ]


AGREEMENT_COLUMNS = [
    "kind",
    "measure",
    "level",
    "percent",
    "percent_low",
    "percent_high",
    "items",
    "fleiss_kappa",
    "fleiss_low",
    "fleiss_high",
    "krippendorff_alpha",
    "alpha_low",
    "alpha_high",
]


def _ranking_units(rows: list[tuple]) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, int]:
    """Units (task, response) -> index; parallel arrays of unit, rater, rank group."""
    units: dict[tuple[int, int], int] = {}
    unit_idx, raters, ranks = [], [], []
    depth = 1
    for task_id, rater_id, payload in rows:
        groups = (payload or {}).get("ranking") or []
        depth = max(depth, len(groups))
        for rank, group in enumerate(groups):
            for response_id in group:
                unit_idx.append(units.setdefault((task_id, response_id), len(units)))
                raters.append(rater_id if rater_id is not None else MISSING)
                ranks.append(rank)
    return units, np.array(unit_idx, int), np.array(raters, int), np.array(ranks, int), depth


def _kendall_by_task(rows: list[tuple]) -> tuple[np.ndarray, int]:
    """Kendall's tau-b for every pair of raters on the same ranking task (mean per task)."""
    from scipy.stats import kendalltau  # heavy: imported where used

    by_task: dict[int, list[dict[int, int]]] = defaultdict(list)
    for task_id, _rater, payload in rows:
        groups = (payload or {}).get("ranking") or []
        by_task[task_id].append({rid: rank for rank, group in enumerate(groups) for rid in group})
    task_means, pairs = [], 0
    for rankings in by_task.values():
        taus = []
        for a, b in itertools.combinations(rankings, 2):
            ids = sorted(a)
            tau = kendalltau([a[i] for i in ids], [b.get(i, 0) for i in ids]).statistic
            if np.isfinite(tau):
                taus.append(tau)
        if taus:
            task_means.append(float(np.mean(taus)))
            pairs += len(taus)
    return np.array(task_means), pairs


def agreement_section(
    project_id: int, pw: PairwiseJudgments, kinds: set[str] | None = None
) -> dict[str, dict]:
    """``kinds``: the kinds with current judgments (:func:`current_kinds`) when known, so that
    the JSON answers of rankings and ratings are only read when there are some."""
    tables: dict[str, dict] = {}
    rows: list[list[Any]] = []
    sel = ~pw.gold & (pw.rater >= 0)
    # Task rows are already dense indices: items without judgments are empty rows, which the
    # statistics drop (fewer than two ratings), so no sort is needed.
    inverse = pw.task_row[sel]
    n = int(pw.task_row.max()) + 1 if len(pw.task_row) else 0
    rows += _agreement_rows(
        "pairwise",
        "choice (first/second/tie/both bad)",
        agreement.value_counts(inverse, pw.canon[sel], n, 4),
        "nominal",
    )
    rows += _agreement_rows(
        "pairwise",
        "signed strength (9-point)",
        agreement.value_counts(inverse, pw.scale[sel], n, N_SCALE),
        "ordinal",
    )

    def rows_of(kind: str) -> list[tuple]:
        if kinds is not None and kind not in kinds:
            return []
        return [r for r in payload_rows(project_id, kind) if r[1] is not None]

    ranking = rows_of(TaskKind.RANKING)
    kendall_rows: list[list[Any]] = []
    if ranking:
        rank_units, unit_idx, _raters, ranks, depth = _ranking_units(ranking)
        counts = agreement.value_counts(unit_idx, ranks, len(rank_units), depth)
        rows += _agreement_rows("ranking", "rank of each response", counts, "ordinal")
        means, pairs = _kendall_by_task(ranking)
        low, high = bootstrap_mean(means) if len(means) else (None, None)
        mean = float(means.mean()) if len(means) else None
        kendall_rows.append([num(mean), num(low), num(high), len(means), pairs])
    rating = rows_of(TaskKind.RATING)
    if rating:
        units: dict[tuple[int, int], int] = {}
        thumb_u, thumbs, likert_u, likerts = [], [], [], []
        for task_id, _rater, payload in rating:
            for item in (payload or {}).get("ratings", []):
                u = units.setdefault((task_id, item["response"]), len(units))
                thumb_u.append(u)
                thumbs.append(1 if item.get("thumb") == "up" else 0)
                if item.get("likert"):
                    likert_u.append(u)
                    likerts.append(int(item["likert"]) - 1)
        rows += _agreement_rows(
            "rating",
            "thumb (up/down)",
            agreement.value_counts(np.array(thumb_u), np.array(thumbs), len(units), 2),
            "nominal",
        )
        if likerts:
            rows += _agreement_rows(
                "rating",
                "likert (1-7)",
                agreement.value_counts(np.array(likert_u), np.array(likerts), len(units), 7),
                "ordinal",
            )
    tables["agreement"] = table("Agreement", AGREEMENT_COLUMNS, rows)
    tables["kendall"] = table(
        "Kendall's tau between raters (rankings)",
        ["mean_tau", "low", "high", "tasks", "rater_pairs"],
        kendall_rows,
    )
    ra, rb, tables_ab = agreement.pair_tables(
        inverse, pw.rater[sel], pw.canon[sel], 4, MIN_SHARED_ITEMS
    )
    kappa, kappa_low, kappa_high = agreement.cohen_kappa_tables(tables_ab)
    names = usernames(list({*ra.tolist(), *rb.tolist()}))
    order = np.argsort(np.nan_to_num(kappa, nan=2.0))
    pair_rows = [
        [
            names.get(int(ra[i]), str(ra[i])),
            names.get(int(rb[i]), str(rb[i])),
            int(tables_ab[i].sum()),
            num(kappa[i]),
            num(kappa_low[i]),
            num(kappa_high[i]),
        ]
        for i in order
    ]
    tables["cohen_pairs"] = table(
        f"Cohen's kappa per rater pair (pairwise choice, >= {MIN_SHARED_ITEMS} shared items, "
        "lowest first)",
        ["rater_a", "rater_b", "shared_items", "kappa", "low", "high"],
        pair_rows,
    )
    return tables


# -- rater quality --------------------------------------------------------------------------------


def _loo_majority(pw: PairwiseJudgments, sel: np.ndarray) -> np.ndarray:
    """Per judgment in ``sel``: 1/0 agreement with the other raters' unique majority; -1 when the
    others are fewer than two or tie for the majority."""
    inverse = pw.task_row[sel]
    codes = pw.canon[sel]
    n = int(pw.task_row.max()) + 1 if len(pw.task_row) else 0
    counts = agreement.value_counts(inverse, codes, n, 4).astype(np.int32)
    others = counts[inverse]  # (judgments, 4): the task's counts, minus the rater's own below
    own = np.flatnonzero(codes >= 0)
    others[own, codes[own]] -= 1
    top = others.max(1)
    unique_top = (others == top[:, None]).sum(1) == 1
    valid = (others.sum(1) >= 2) & unique_top & (codes >= 0)
    return np.where(valid, (others.argmax(1) == codes).astype(int), MISSING)


def _gold_correct(kind: str, answer: Any, preferred: Any, choice: str, payload: Any) -> bool | None:
    """Whether a judgment matches the gold answer (formats in docs/insight.md); None: ungradable."""
    if not isinstance(answer, dict):
        return None
    if kind == TaskKind.PAIRWISE:
        if "preferred_response" in answer:
            return preferred == answer["preferred_response"]
        if "choice" in answer:
            return choice == answer["choice"]
    if kind == TaskKind.RANKING and "best" in answer:
        groups = (payload or {}).get("ranking") or [[]]
        return answer["best"] in groups[0]
    if kind == TaskKind.RATING and "thumbs" in answer:
        given = {str(r["response"]): r["thumb"] for r in (payload or {}).get("ratings", [])}
        return all(given.get(str(k)) == v for k, v in answer["thumbs"].items())
    return None


def _per_rater_arrays(
    pw: PairwiseJudgments, raters: np.ndarray, sel: np.ndarray, loo: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-rater sums (aligned with the sorted ``raters``) by bincount: no loop over raters.

    ``loo``: :func:`_loo_majority` of the judgments in ``sel``."""
    k = len(raters)
    # Position of each judgment's rater in ``raters``; ``k`` (a spare bin) when absent.
    if k == 0:
        r_idx = np.zeros(len(pw.rater), dtype=np.int64)
    else:
        pos = np.minimum(np.searchsorted(raters, pw.rater), k - 1)
        r_idx = np.where(raters[pos] == pw.rater, pos, k)

    def count(idx: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(idx, weights=weights, minlength=k + 1)[:k]

    human = pw.human & (pw.rater >= 0)
    ab = human & (pw.shown >= 0) & (pw.shown <= 1)
    decided = human & (pw.chose_longer >= 0)
    timed = human & (pw.time_ms >= 0)
    valid_loo = loo >= 0
    loo_idx = r_idx[sel][valid_loo]
    # Median time per rater: sort by (rater, time), take the middle of each rater's run. One
    # int64 key (rater index in the high bits, the time below) sorts faster than a lexsort.
    t_idx = r_idx[timed]
    t_ms = np.minimum(pw.time_ms[timed], TIME_MS_MAX)
    t_ms = np.sort((t_idx << 32) | t_ms) & TIME_MS_MAX
    sizes = np.bincount(t_idx, minlength=k + 1)[:k]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    median = np.zeros(k)
    has = sizes > 0
    if has.any():
        lo = starts[has] + (sizes[has] - 1) // 2
        hi = starts[has] + sizes[has] // 2
        median[has] = (t_ms[lo] + t_ms[hi]) / 2
    return {
        "ab": count(r_idx[ab]),
        "left": count(r_idx[ab], (pw.shown[ab] == 0).astype(float)),
        "decided": count(r_idx[decided]),
        "longer": count(r_idx[decided], pw.chose_longer[decided].astype(float)),
        "timed": sizes,
        "too_fast": count(t_idx, (pw.time_ms[timed] < TOO_FAST_MS).astype(float)),
        "median_ms": median,
        "loo_n": count(loo_idx),
        "loo_agree": count(loo_idx, loo[valid_loo].astype(float)),
    }


def rater_db_facts(project_id: int) -> dict[str, Any]:
    """Per-rater leases, gold answers and exclusions (SQL)."""
    leases = {
        r["rater_id"]: r
        for r in Assignment.objects.filter(project_id=project_id)
        .exclude(status=AssignmentStatus.ACTIVE)
        .values("rater_id")
        .annotate(
            total=Count("id"),
            skipped=Count("id", filter=Q(status=AssignmentStatus.SKIPPED)),
            expired=Count("id", filter=Q(status=AssignmentStatus.EXPIRED)),
        )
    }
    gold: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    gold_rows = Judgment.objects.filter(
        project_id=project_id, is_current=True, task__is_gold=True, rater__isnull=False
    ).values_list(
        "rater_id", "kind", "task__gold_answer", "preferred_response_id", "choice", "payload"
    )
    for rater_id, kind, answer, preferred, choice, payload in gold_rows:
        ok = _gold_correct(kind, answer, preferred, choice, payload)
        if ok is not None:
            gold[rater_id][0] += int(ok)
            gold[rater_id][1] += 1
    excluded = set(
        RaterExclusion.objects.filter(project_id=project_id, lifted_at__isnull=True).values_list(
            "rater_id", flat=True
        )
    )
    return {"leases": leases, "gold": dict(gold), "excluded": excluded}


def rater_facts(activity: np.ndarray, db: dict[str, Any]) -> dict[str, Any]:
    """Per-rater facts that do not need the judgment arrays: counts from ``activity``, the rest
    from :func:`rater_db_facts`.

    ``activity``: :func:`judgment_hours` (judgments per hour = first submissions / hours with one).
    """
    rated = activity[activity[:, 0] >= 0]
    ids, inverse = np.unique(rated[:, 0], return_inverse=True)
    inverse = inverse.ravel()

    def total(values: np.ndarray) -> dict[int, int]:
        sums = np.bincount(inverse, weights=values, minlength=len(ids)).astype(np.int64)
        return dict(zip(ids.tolist(), sums.tolist(), strict=True))

    per_rater = total(rated[:, 3])
    first = total(rated[:, 2])
    hours = total(rated[:, 2] > 0)
    leases, gold, excluded = db["leases"], db["gold"], db["excluded"]
    raters = sorted(set(per_rater) | set(leases))
    return {
        "per_rater": per_rater,
        "hours": hours,
        "first": first,
        "leases": leases,
        "gold": gold,
        "excluded": excluded,
        "raters": raters,
        "names": usernames(raters),
    }


def rater_section(pw: PairwiseJudgments, facts: dict[str, Any]) -> dict[str, dict]:
    per_rater, hours, first = facts["per_rater"], facts["hours"], facts["first"]
    leases, gold, excluded = facts["leases"], facts["gold"], facts["excluded"]
    raters, names = facts["raters"], facts["names"]
    sel = ~pw.gold & (pw.rater >= 0)
    loo = _loo_majority(pw, sel)
    stats = _per_rater_arrays(pw, np.array(raters, dtype=np.int64), sel, loo)
    rows = []
    for k, rid in enumerate(raters):
        pos = proportion(int(stats["left"][k]), int(stats["ab"][k]), test=False)
        length = proportion(int(stats["longer"][k]), int(stats["decided"][k]), test=False)
        n_loo = int(stats["loo_n"][k])
        n_times = int(stats["timed"][k])
        lease = leases.get(rid, {"total": 0, "skipped": 0, "expired": 0})
        g_ok, g_n = gold.get(rid, (0, 0))
        rows.append(
            [
                rid,
                names.get(rid, str(rid)),
                per_rater.get(rid, 0),
                num(stats["loo_agree"][k] / n_loo) if n_loo else None,
                n_loo,
                num(g_ok / g_n) if g_n else None,
                g_n,
                num(first.get(rid, 0) / hours[rid], 1) if hours.get(rid) else None,
                num(stats["median_ms"][k] / 1000, 1) if n_times else None,
                num(stats["too_fast"][k] / n_times) if n_times else None,
                num(lease["skipped"] / lease["total"]) if lease["total"] else None,
                lease["expired"],
                num(pos.share),
                pos.n,
                pos.biased,
                num(length.share),
                length.n,
                length.biased,
                rid in excluded,
            ]
        )
    return {
        "raters": table(
            "Rater quality",
            [
                "rater_id",
                "rater",
                "judgments",
                "loo_majority_agreement",
                "loo_items",
                "gold_accuracy",
                "gold_items",
                "judgments_per_hour",
                "median_seconds",
                "too_fast_share",
                "skip_rate",
                "expired_leases",
                "chose_left_share",
                "position_n",
                "position_biased",
                "chose_longer_share",
                "length_n",
                "length_biased",
                "excluded",
            ],
            rows,
        )
    }
