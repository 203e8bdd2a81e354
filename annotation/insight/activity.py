"""Throughput: judgments per hour/day/rater, active raters, queue burn-down with ETA, skipped and
expired leases; and rater activity (judgments per active hour)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Greatest, TruncDay

from annotation.insight.arrays import (
    COL_EPOCH,
    COL_FLAGS,
    COL_RATER,
    COL_TASK,
    CURRENT,
    FIRST_REVISION,
    HUMAN,
)
from annotation.insight.tables import iso, table, usernames
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Task,
    TaskStatus,
)

HOUR_KEY = 2**32  # (rater + 1) * HOUR_KEY + hours since 1970: one int64 per (rater, hour)


# -- throughput -------------------------------------------------------------------------------


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
    # Judgments on these tasks do not burn the queue down (gold tasks have no quota in it,
    # archived ones left it); few, read by index.
    uncounted = np.fromiter(
        Task.objects.filter(Q(is_gold=True) | Q(status=TaskStatus.ARCHIVED), project_id=project_id)
        .order_by()
        .values_list("id", flat=True),
        dtype=np.int64,
    )
    return {
        "remaining": remaining,
        "required_by_day": required_by_day,
        "leases": leases,
        "uncounted_tasks": uncounted,
    }


def queue_done_by_day(m: np.ndarray, uncounted_tasks: np.ndarray) -> dict[int, int]:
    """Per day (epoch s of 00:00 UTC): the judgments that count against the queue's quota, i.e.
    what ``Task.judgments_done`` counts: a rater's first submission on a task in the queue (not
    a revision, not an imported label, not a gold or archived task). So the burn-down ends at
    the same "remaining" as the summary card."""
    flags = m[:, COL_FLAGS]
    counted = ((flags & FIRST_REVISION) > 0) & ((flags & HUMAN) > 0)
    counted &= ~np.isin(m[:, COL_TASK], uncounted_tasks)
    days, n = np.unique(m[counted, COL_EPOCH] // 86400 * 86400, return_counts=True)
    return {int(d): int(c) for d, c in zip(days, n, strict=True)}


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


# Rates are averaged over a window that matches the data: a project minutes old is measured over
# the minutes it has existed (its last hour), not over a day it has not lived yet.
HOUR = 3600
WINDOWS = (  # (longest project age it is chosen for, window length, label)
    (HOUR, HOUR, "last hour"),
    (7 * 24 * HOUR, 24 * HOUR, "last 24 h"),
    (None, 7 * 24 * HOUR, "last 7 days"),
)
MIN_SPAN = 5 * 60  # never divide by less than 5 minutes: 3 judgments in 20 s are not 540/h
BIN_SECONDS = 300  # the recent-activity chart: 5-minute bins over the last 2 hours
RECENT_SECONDS = 2 * HOUR


@dataclass(frozen=True)
class RateWindow:
    """The window a rate is averaged over. ``seconds``: its nominal length; ``since``: its start
    (epoch s); ``span(first)``: the part of it that has data, for someone whose first judgment
    is at ``first`` (at least ``MIN_SPAN``)."""

    label: str
    seconds: int
    now: int

    @property
    def since(self) -> int:
        return self.now - self.seconds

    def span(self, first: int) -> int:
        return max(MIN_SPAN, min(self.seconds, self.now - first))


def rate_window(first_epoch: int | None, now_epoch: int) -> RateWindow:
    """Last hour while the project (its first judgment) is under an hour old, last 24 h under a
    week, last 7 days after."""
    age = 0 if first_epoch is None else now_epoch - first_epoch
    for longest, seconds, label in WINDOWS:
        if longest is None or age < longest:
            return RateWindow(label, seconds, now_epoch)
    raise AssertionError("unreachable: the last window has no limit")


def hourly(n: int, span_seconds: int) -> float:
    return n * HOUR / span_seconds


def span_text(seconds: int) -> str:
    """``5 min``, ``3.5 h``, ``2.0 days``: how much data a rate stands on."""
    if seconds < HOUR:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * HOUR:
        return f"{seconds / HOUR:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days")


def recent_activity(m: np.ndarray, now: Any) -> dict[str, Any]:
    """First submissions in the rate window (:func:`rate_window`), overall and per rater; the
    raters active in the last 24 hours; and first submissions per 5 minutes over the last 2
    hours (with the raters active in each bin)."""
    now_epoch = int(now.timestamp())
    flags = m[:, COL_FLAGS]
    first_sub = ((flags & FIRST_REVISION) > 0) & ((flags & HUMAN) > 0)
    epoch, rater = m[first_sub, COL_EPOCH], m[first_sub, COL_RATER]
    window = rate_window(int(epoch.min()) if len(epoch) else None, now_epoch)
    in_window = epoch >= window.since
    rater_ids, counts = np.unique(rater[in_window], return_counts=True)
    # Each rater's first judgment: a minimum per rater id (ids are small integers; -1 =
    # imported, shifted to 0), no sort of the whole matrix.
    first_by_id = np.full(int(rater.max()) + 2 if len(rater) else 1, np.iinfo(np.int64).max)
    np.minimum.at(first_by_id, rater + 1, epoch)
    firsts = {int(r): int(first_by_id[r + 1]) for r in rater_ids}
    day = epoch >= now_epoch - 24 * HOUR
    day_raters = rater[day]
    start = now_epoch // BIN_SECONDS * BIN_SECONDS - RECENT_SECONDS + BIN_SECONDS
    recent = (epoch >= start) & (epoch < start + RECENT_SECONDS)
    bins = (epoch[recent] - start) // BIN_SECONDS
    n_bins = RECENT_SECONDS // BIN_SECONDS
    bin_n = np.bincount(bins, minlength=n_bins)
    pairs = np.unique(np.stack([bins, rater[recent]], axis=1), axis=0)
    bin_raters = np.bincount(pairs[:, 0], minlength=n_bins)
    return {
        "n": int(day.sum()),
        "raters": len(np.unique(day_raters[day_raters >= 0])),
        "window": window,
        "first_epoch": int(epoch.min()) if len(epoch) else None,
        "window_n": int(in_window.sum()),
        "window_raters": {
            int(r): (int(c), int(firsts[int(r)])) for r, c in zip(rater_ids, counts, strict=True)
        },
        "bins": [
            (start + i * BIN_SECONDS, int(bin_n[i]), int(bin_raters[i])) for i in range(n_bins)
        ],
    }


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
    done_by_day = facts["done_by_day"]
    days = sorted(set(required_by_day) | set(done_by_day))
    req = np.cumsum([required_by_day.get(d, 0) for d in days])
    done = np.cumsum([done_by_day.get(d, 0) for d in days])
    burn = [
        [_day(d), int(r), int(dn), int(max(r - dn, 0))]
        for d, r, dn in zip(days, req, done, strict=True)
    ]
    window: RateWindow = recent["window"]
    span = window.span(recent["first_epoch"] or window.now)
    rate = hourly(recent["window_n"], span)
    eta_hours = remaining / rate if rate > 0 else None
    summary = {
        "remaining_judgments": int(remaining),
        "judgments_last_24h": recent["n"],
        "rate_window": window.label,
        "rate_span_seconds": span,
        "judgments_in_window": recent["window_n"],
        "rate_span_text": span_text(span),
        "rate_per_hour": round(rate, 2),
        "eta_hours": None if eta_hours is None else round(eta_hours, 2),
        "eta_text": None if eta_hours is None else span_text(round(eta_hours * HOUR)),
        "active_raters_24h": recent["raters"],
        "active_raters_in_window": len(recent["window_raters"]),
        "skipped_total": sum(s for _, s, _ in leases),
        "expired_total": sum(e for _, _, e in leases),
    }
    rate_names = usernames(list(recent["window_raters"]))
    rate_rows = [
        [
            "all raters",
            recent["window_n"],
            round(span / 3600, 3),
            round(rate, 2),
            None if eta_hours is None else round(eta_hours, 2),
        ]
    ]
    by_rate = sorted(
        (
            (-hourly(n, window.span(first)), rate_names.get(rid, str(rid)), n, window.span(first))
            for rid, (n, first) in recent["window_raters"].items()
        ),
    )
    rate_rows += [[name, n, round(sp / 3600, 3), round(-r, 2), None] for r, name, n, sp in by_rate]
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
        "rates": table(
            f"Throughput over the {window.label} ({span_text(span)} of data), overall and per "
            "rater; ETA = remaining judgments at this rate",
            ["rater", "judgments", "hours_covered", "per_hour", "eta_hours"],
            rate_rows,
        ),
        "per_5min": table(
            "Judgments per 5 minutes (last 2 h)",
            ["time", "judgments", "active_raters"],
            [[_hour(t), n, r] for t, n, r in recent["bins"]],
        ),
        "leases": table(
            "Skipped and expired leases per day",
            ["day", "skipped", "expired"],
            [[iso(d)[:10], s, e] for d, s, e in leases],
        ),
    }
    return tables, summary
