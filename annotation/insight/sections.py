"""The dashboard's sections, each a function of arrays (and a few SQL aggregates) -> tables.

A table is ``{"title", "columns", "rows"}`` (rows are lists of plain JSON values) so that one
code path renders it as HTML, serves it as JSON and downloads it as CSV.

Treatment of ties and both-bad (documented in docs/insight.md):
- pairwise agreement (nominal): four categories, first wins / second wins / tie / both bad;
- pairwise strength (ordinal): the signed 9-point scale of :mod:`annotation.insight.arrays`;
  both-bad is missing there (it says nothing about which response is better);
- position and length bias: only A/B choices count (a tie or both-bad prefers no side);
- leaderboard: a tie is half a win for each system; both-bad is left out.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Greatest, TruncDay
from scipy.stats import kendalltau

from annotation.insight.arrays import (
    COL_EPOCH,
    COL_FLAGS,
    COL_RATER,
    CURRENT,
    FIRST_REVISION,
    MISSING,
    N_SCALE,
    PairwiseJudgments,
    PairwiseTasks,
    payload_rows,
)
from annotation.metrics import agreement, bradley_terry
from annotation.metrics.bootstrap import bootstrap_mean
from annotation.metrics.proportions import proportion
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Judgment,
    ModelKind,
    ModelVersion,
    RaterExclusion,
    Task,
    TaskKind,
    TaskStatus,
    TrainingRun,
)

MIN_SHARED_ITEMS = 10  # Cohen's kappa for a rater pair needs this many shared items
TOO_FAST_MS = 4000  # a judgment faster than this is "too fast" to have read both responses
PAIR_TABLE_LIMIT = 200  # rater pairs shown on the page (the CSV has all of them)
HOUR_KEY = 2**32  # (rater + 1) * HOUR_KEY + hours since 1970: one int64 per (rater, hour)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows}


def _r(x: Any, digits: int = 4) -> Any:
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else round(x, digits)


def n_boot_for(n_items: int) -> int:
    """Fewer resamples on big projects: the interval is already narrow and stable there."""
    return 1000 if n_items <= 20_000 else 200


def usernames(ids: list[int]) -> dict[int, str]:
    users = get_user_model().objects.filter(id__in=ids).values_list("id", "username")
    return dict(users)


# -- agreement -----------------------------------------------------------------------------------


def _agreement_rows(kind: str, measure: str, counts: np.ndarray, level: str) -> list[list[Any]]:
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
            _r(p["value"]),
            _r(p["low"]),
            _r(p["high"]),
            p["items"],
            _r(f["value"]),
            _r(f["low"]),
            _r(f["high"]),
            _r(a["value"]),
            _r(a["low"]),
            _r(a["high"]),
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


def agreement_section(project_id: int, pw: PairwiseJudgments) -> dict[str, dict]:
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
    ranking = [r for r in payload_rows(project_id, TaskKind.RANKING) if r[1] is not None]
    kendall_rows: list[list[Any]] = []
    if ranking:
        units, unit_idx, _raters, ranks, depth = _ranking_units(ranking)
        counts = agreement.value_counts(unit_idx, ranks, len(units), depth)
        rows += _agreement_rows("ranking", "rank of each response", counts, "ordinal")
        means, pairs = _kendall_by_task(ranking)
        low, high = bootstrap_mean(means) if len(means) else (None, None)
        mean = float(means.mean()) if len(means) else None
        kendall_rows.append([_r(mean), _r(low), _r(high), len(means), pairs])
    rating = [r for r in payload_rows(project_id, TaskKind.RATING) if r[1] is not None]
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
    kappa, low, high = agreement.cohen_kappa_tables(tables_ab)
    names = usernames(list({*ra.tolist(), *rb.tolist()}))
    order = np.argsort(np.nan_to_num(kappa, nan=2.0))
    pair_rows = [
        [
            names.get(int(ra[i]), str(ra[i])),
            names.get(int(rb[i]), str(rb[i])),
            int(tables_ab[i].sum()),
            _r(kappa[i]),
            _r(low[i]),
            _r(high[i]),
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


def _loo_majority(pw: PairwiseJudgments, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment in ``sel``: 1/0 agreement with the other raters' unique majority; -1 when the
    others are fewer than two or tie for the majority."""
    inverse = pw.task_row[sel]
    codes = pw.canon[sel]
    n = int(pw.task_row.max()) + 1 if len(pw.task_row) else 0
    counts = agreement.value_counts(inverse, codes, n, 4)
    others = counts[inverse] - np.eye(4)[np.maximum(codes, 0)] * (codes >= 0)[:, None]
    top = others.max(1)
    unique_top = (others == top[:, None]).sum(1) == 1
    valid = (others.sum(1) >= 2) & unique_top & (codes >= 0)
    agree = np.where(valid, (others.argmax(1) == codes).astype(int), MISSING)
    return pw.rater[sel], agree


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
    pw: PairwiseJudgments, raters: np.ndarray, loo_rater: np.ndarray, loo: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-rater sums (aligned with the sorted ``raters``) by bincount: no loop over raters."""
    k = len(raters)

    def index(ids: np.ndarray) -> np.ndarray:
        """Position of each rater id in ``raters``; ``k`` (a spare bin) when absent."""
        if k == 0:
            return np.zeros(len(ids), dtype=np.int64)
        pos = np.minimum(np.searchsorted(raters, ids), k - 1)
        return np.where(raters[pos] == ids, pos, k)

    def count(ids: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(index(ids), weights=weights, minlength=k + 1)[:k]

    human = pw.human & (pw.rater >= 0)
    ab = human & (pw.shown >= 0) & (pw.shown <= 1)
    decided = human & (pw.chose_longer >= 0)
    timed = human & (pw.time_ms >= 0)
    valid_loo = loo >= 0
    # Median time per rater: sort by (rater, time), take the middle of each rater's run.
    t_idx = index(pw.rater[timed])
    t_ms = pw.time_ms[timed]
    order = np.lexsort((t_ms, t_idx))
    t_idx, t_ms = t_idx[order], t_ms[order]
    sizes = np.bincount(t_idx, minlength=k + 1)[:k]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    median = np.zeros(k)
    has = sizes > 0
    if has.any():
        lo = starts[has] + (sizes[has] - 1) // 2
        hi = starts[has] + sizes[has] // 2
        median[has] = (t_ms[lo] + t_ms[hi]) / 2
    return {
        "ab": count(pw.rater[ab]),
        "left": count(pw.rater[ab], (pw.shown[ab] == 0).astype(float)),
        "decided": count(pw.rater[decided]),
        "longer": count(pw.rater[decided], pw.chose_longer[decided].astype(float)),
        "timed": sizes,
        "too_fast": count(pw.rater[timed], (pw.time_ms[timed] < TOO_FAST_MS).astype(float)),
        "median_ms": median,
        "loo_n": count(loo_rater[valid_loo]),
        "loo_agree": count(loo_rater[valid_loo], loo[valid_loo].astype(float)),
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
    per_rater: dict[int, int] = {}
    hours: dict[int, int] = {}
    first: dict[int, int] = {}
    for rater_id, _hour_start, submitted, current in activity[activity[:, 0] >= 0].tolist():
        per_rater[rater_id] = per_rater.get(rater_id, 0) + current
        first[rater_id] = first.get(rater_id, 0) + submitted
        hours[rater_id] = hours.get(rater_id, 0) + (submitted > 0)
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
    loo_rater, loo = _loo_majority(pw, sel)
    stats = _per_rater_arrays(pw, np.array(raters, dtype=np.int64), loo_rater, loo)
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
                _r(stats["loo_agree"][k] / n_loo) if n_loo else None,
                n_loo,
                _r(g_ok / g_n) if g_n else None,
                g_n,
                _r(first.get(rid, 0) / hours[rid], 1) if hours.get(rid) else None,
                _r(stats["median_ms"][k] / 1000, 1) if n_times else None,
                _r(stats["too_fast"][k] / n_times) if n_times else None,
                _r(lease["skipped"] / lease["total"]) if lease["total"] else None,
                lease["expired"],
                _r(pos.share),
                pos.n,
                pos.biased,
                _r(length.share),
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


# -- throughput -------------------------------------------------------------------------------


def _iso(dt: Any) -> str:
    return dt.isoformat() if hasattr(dt, "isoformat") else str(dt)


def queue_facts(project_id: int) -> dict[str, Any]:
    """The queue's aggregates (tasks, leases): the SQL half of throughput."""
    tasks = Task.objects.filter(project_id=project_id, is_gold=False).exclude(
        status=TaskStatus.ARCHIVED
    )
    remaining = (
        tasks.filter(status=TaskStatus.OPEN).aggregate(
            r=Sum(Greatest(F("required_judgments") - F("judgments_done"), 0))
        )["r"]
        or 0
    )
    required_by_day = dict(
        tasks.annotate(day=TruncDay("created_at"))
        .values("day")
        .annotate(n=Sum("required_judgments"))
        .values_list("day", "n")
    )
    leases = list(
        Assignment.objects.filter(
            project_id=project_id,
            status__in=[AssignmentStatus.SKIPPED, AssignmentStatus.EXPIRED],
        )
        .annotate(day=TruncDay("claimed_at"))
        .values("day")
        .annotate(
            skipped=Count("id", filter=Q(status=AssignmentStatus.SKIPPED)),
            expired=Count("id", filter=Q(status=AssignmentStatus.EXPIRED)),
        )
        .order_by("day")
        .values_list("day", "skipped", "expired")
    )
    return {"remaining": remaining, "required_by_day": required_by_day, "leases": leases}


def judgment_hours(m: np.ndarray) -> np.ndarray:
    """Per (rater, clock hour): first submissions and current judgments, from the judgment matrix
    (:func:`annotation.insight.arrays.judgment_matrix`). Columns: rater id (-1: imported), hour
    start (epoch s), first, current. Gold judgments are work too: they are counted."""
    if len(m) == 0:
        return np.zeros((0, 4), dtype=np.int64)
    hour = m[:, COL_EPOCH] // 3600
    keys, inverse = np.unique((m[:, COL_RATER] + 1) * HOUR_KEY + hour, return_inverse=True)
    inverse = inverse.ravel()
    flags = m[:, COL_FLAGS]
    first = np.bincount(inverse, weights=(flags & FIRST_REVISION) > 0, minlength=len(keys))
    current = np.bincount(inverse, weights=(flags & CURRENT) > 0, minlength=len(keys))
    return np.stack(
        [
            keys // HOUR_KEY - 1,
            keys % HOUR_KEY * 3600,
            first.astype(np.int64),
            current.astype(np.int64),
        ],
        axis=1,
    )


def recent_activity(m: np.ndarray, now: Any) -> dict[str, int]:
    """First submissions in the last 24 hours and how many raters made them."""
    since = int((now - timedelta(hours=24)).timestamp())
    recent = ((m[:, COL_FLAGS] & FIRST_REVISION) > 0) & (m[:, COL_EPOCH] >= since)
    raters = m[recent, COL_RATER]
    return {"n": int(recent.sum()), "raters": len(np.unique(raters[raters >= 0]))}


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).date().isoformat()


def _hour(epoch: int) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()[:16]


def _sum_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inverse.ravel(), weights=values, minlength=len(uniq)).astype(int)


def throughput_section(
    now: Any, hours: np.ndarray, facts: dict[str, Any]
) -> tuple[dict[str, dict], dict[str, Any]]:
    """Per day / hour / rater from the (rater, hour) counts; the queue from tasks."""
    rater, hour, first = hours[:, 0], hours[:, 1], hours[:, 2]
    active = first > 0
    day = hour // 86400 * 86400
    days_uniq, per_day_n = _sum_by(day[active], first[active])
    # Active raters per day: distinct (day, rater) pairs, counted per day.
    pairs = np.unique(np.stack([day[active], rater[active]], axis=1), axis=0)
    raters_per_day = dict(zip(*np.unique(pairs[:, 0], return_counts=True), strict=True))
    per_day = [
        (int(d), int(n), int(raters_per_day.get(d, 0)))
        for d, n in zip(days_uniq, per_day_n, strict=True)
    ]
    since = int((now - timedelta(hours=48)).timestamp()) // 3600 * 3600
    recent_hours = active & (hour >= since)
    hours_uniq, per_hour_n = _sum_by(hour[recent_hours], first[recent_hours])
    raters_per_hour = dict(zip(*np.unique(hour[recent_hours], return_counts=True), strict=True))
    per_hour = [
        (int(h), int(n), int(raters_per_hour.get(h, 0)))
        for h, n in zip(hours_uniq, per_hour_n, strict=True)
    ]
    since_14d = int((now - timedelta(days=14)).timestamp()) // 86400 * 86400
    recent_days = active & (day >= since_14d) & (rater >= 0)
    names = usernames(np.unique(rater[recent_days]).tolist())
    by_key = day[recent_days] * 1_000_000_000 + rater[recent_days]
    keys, counts = _sum_by(by_key, first[recent_days])
    by_rater = sorted(
        (_day(k // 1_000_000_000), names.get(int(k % 1_000_000_000), ""), int(n))
        for k, n in zip(keys, counts, strict=True)
    )
    remaining = facts["remaining"]
    required_by_day, recent, leases = (
        facts["required_by_day"],
        facts["recent"],
        facts["leases"],
    )
    required_by_day = {int(d.timestamp()): n for d, n in required_by_day.items()}
    done_by_day = {d: n for d, n, _ in per_day}
    days = sorted(set(required_by_day) | set(done_by_day))
    req = np.cumsum([required_by_day.get(d, 0) for d in days])
    done = np.cumsum([done_by_day.get(d, 0) for d in days])
    burn = [
        [_day(d), int(r), int(dn), int(max(r - dn, 0))]
        for d, r, dn in zip(days, req, done, strict=True)
    ]
    last_24h, active_24h = recent["n"], recent["raters"]
    rate = last_24h / 24.0
    eta_hours = remaining / rate if rate > 0 else None
    summary = {
        "remaining_judgments": int(remaining),
        "judgments_last_24h": last_24h,
        "rate_per_hour": round(rate, 2),
        "eta_hours": None if eta_hours is None else round(eta_hours, 1),
        "active_raters_24h": active_24h,
        "skipped_total": sum(s for _, s, _ in leases),
        "expired_total": sum(e for _, _, e in leases),
    }
    tables = {
        "per_day": table(
            "Judgments per day",
            ["day", "judgments", "active_raters"],
            [[_day(d), n, r] for d, n, r in per_day],
        ),
        "per_hour": table(
            "Judgments per hour (last 48 h)",
            ["hour", "judgments", "active_raters"],
            [[_hour(h), n, r] for h, n, r in per_hour],
        ),
        "by_rater": table(
            "Judgments per rater per day (last 14 days)",
            ["day", "rater", "judgments"],
            [list(row) for row in by_rater],
        ),
        "burndown": table(
            "Queue burn-down", ["day", "required_total", "done_total", "remaining"], burn
        ),
        "leases": table(
            "Skipped and expired leases per day",
            ["day", "skipped", "expired"],
            [[_iso(d)[:10], s, e] for d, s, e in leases],
        ),
    }
    return tables, summary


# -- bias -----------------------------------------------------------------------------------------


def bias_section(project_id: int, pw: PairwiseJudgments) -> dict[str, dict]:
    human = pw.human & ~pw.gold
    ab = human & (pw.shown >= 0) & (pw.shown <= 1)
    pos = proportion(int((pw.shown[ab] == 0).sum()), int(ab.sum()))
    longer = human & (pw.chose_longer >= 0)
    length = proportion(int(pw.chose_longer[longer].sum()), int(longer.sum()))
    rows = []
    for name, p in (("position: chose left/first shown", pos), ("length: chose longer", length)):
        rows.append(
            [name, p.successes, p.n, _r(p.share), _r(p.low), _r(p.high), _r(p.p_value, 6), p.biased]
        )
    reward = []
    for mv_id, name, metrics in ModelVersion.objects.filter(
        project_id=project_id, kind=ModelKind.REWARD
    ).values_list("id", "name", "metrics"):
        metrics = metrics or {}
        corr = metrics.get("length_correlation", metrics.get("score_length_correlation"))
        reward.append([mv_id, name, _r(corr) if isinstance(corr, int | float) else None])
    return {
        "bias": table(
            "Bias monitors (human pairwise A/B choices; expected share 0.5)",
            ["monitor", "count", "n", "share", "low", "high", "p_value", "biased"],
            rows,
        ),
        "reward_length": table(
            "Reward models: correlation of scores with response length",
            ["model_version_id", "model_version", "length_correlation"],
            reward,
        ),
    }


# -- leaderboard and runs -------------------------------------------------------------------------


def leaderboard_section(pw: PairwiseJudgments, tasks: PairwiseTasks) -> dict[str, dict]:
    used = (pw.canon >= 0) & (pw.canon <= 2) & ~pw.gold
    rows_used = pw.task_row[used]
    codes_first = tasks.first_sys[rows_used]
    codes_second = tasks.second_sys[rows_used]
    codes, inverse = np.unique(np.concatenate([codes_first, codes_second]), return_inverse=True)
    names = [tasks.system_names.get(int(c), str(c)) for c in codes]
    if len(names) < 2:
        return {
            "leaderboard": table("Leaderboard", ["rank", "system"], []),
            "win_rates": table("Win rates", ["system"], []),
        }
    sys_first, sys_second = inverse[: len(rows_used)], inverse[len(rows_used) :]
    canon = pw.canon[used]
    differ = sys_first != sys_second
    win = differ & (canon < 2)
    winners = np.where(canon[win] == 0, sys_first[win], sys_second[win])
    losers = np.where(canon[win] == 0, sys_second[win], sys_first[win])
    tie = differ & (canon == 2)
    wins = bradley_terry.win_matrix(winners, losers, sys_first[tie], sys_second[tie], len(names))
    board = bradley_terry.leaderboard(names, wins, n_boot=200 if wins.sum() > 20_000 else 1000)
    order = np.argsort(-board.rating)
    rows = [
        [
            rank + 1,
            names[i],
            _r(board.rating[i], 1),
            _r(board.low[i], 1),
            _r(board.high[i], 1),
            int(board.games[i]),
        ]
        for rank, i in enumerate(order)
    ]
    matrix = [
        [names[i], *[_r(board.win_rate[i, j], 3) if i != j else None for j in order]] for i in order
    ]
    return {
        "leaderboard": table(
            "Model leaderboard (Bradley-Terry, Elo scale, 95% bootstrap interval)",
            ["rank", "system", "rating", "low", "high", "comparisons"],
            rows,
        ),
        "win_rates": table(
            "Win rate of row system against column system (ties = half)",
            ["system", *[names[j] for j in order]],
            matrix,
        ),
    }


def runs_section(project_id: int) -> tuple[dict[str, dict], list[dict[str, Any]]]:
    runs = list(
        TrainingRun.objects.filter(project_id=project_id)
        .order_by("-id")
        .values_list("id", "status", "trainers", "created_at", "finished_at", "metrics", "curve")[
            :20
        ]
    )
    rows, curves = [], []
    for rid, status, trainers, created, finished, metrics, curve in runs:
        flat = {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float | str)}
        rows.append(
            [
                rid,
                status,
                ",".join(trainers or []),
                _iso(created)[:16],
                _iso(finished)[:16] if finished else None,
                "; ".join(f"{k}={v}" for k, v in sorted(flat.items())),
            ]
        )
        points = [p for p in (curve or []) if isinstance(p, dict)]
        keys = sorted(
            {k for p in points for k, v in p.items() if k != "step" and isinstance(v, int | float)}
        )
        if points:
            curves.append(
                {
                    "run": rid,
                    "series": {
                        k: [
                            [p.get("step", i), p[k]]
                            for i, p in enumerate(points)
                            if isinstance(p.get(k), int | float)
                        ]
                        for k in keys
                    },
                }
            )
    return (
        {
            "runs": table(
                "Training runs",
                ["run", "status", "trainers", "created", "finished", "metrics"],
                rows,
            )
        },
        curves,
    )
