"""Throughput and ETA over a window that matches the data, on hand-made timestamps.

The judgment matrix is built by hand (columns of :mod:`annotation.insight.arrays`), so every
number below is computed from the timestamps written here."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from annotation.insight.activity import (
    MIN_SPAN,
    judgment_hours,
    rate_window,
    recent_activity,
    span_text,
    throughput_section,
)
from annotation.insight.arrays import (
    COL_EPOCH,
    COL_FLAGS,
    COL_RATER,
    COL_TASK,
    CURRENT,
    FIRST_REVISION,
    HUMAN,
)

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())
H = 3600


def matrix(rows: list[tuple[int, int]], flags: int = HUMAN | FIRST_REVISION | CURRENT):
    """One judgment per (rater, seconds before NOW)."""
    m = np.zeros((len(rows), 9), dtype=np.int64)
    for i, (rater, ago) in enumerate(rows):
        m[i, COL_TASK] = i
        m[i, COL_RATER] = rater
        m[i, COL_EPOCH] = T - ago
        m[i, COL_FLAGS] = flags
    return m


def throughput(m: np.ndarray, remaining: int) -> tuple[dict, dict]:
    facts = {
        "remaining": remaining,
        "required_by_day": {},
        "leases": [],
        "done_by_day": {},
        "recent": recent_activity(m, NOW),
    }
    return throughput_section(NOW, judgment_hours(m), facts)


@pytest.mark.parametrize(
    ("age", "label", "seconds"),
    [
        (0, "last hour", H),
        (5 * 60, "last hour", H),
        (H - 1, "last hour", H),
        (H, "last 24 h", 24 * H),
        (3 * 24 * H, "last 24 h", 24 * H),
        (7 * 24 * H, "last 7 days", 7 * 24 * H),
        (90 * 24 * H, "last 7 days", 7 * 24 * H),
    ],
)
def test_window_follows_the_projects_age(age: int, label: str, seconds: int) -> None:
    window = rate_window(T - age, T)
    assert (window.label, window.seconds) == (label, seconds)


def test_no_judgments_yet_is_the_last_hour() -> None:
    assert rate_window(None, T).label == "last hour"


def test_span_is_the_part_of_the_window_with_data() -> None:
    window = rate_window(T - 3 * H, T)  # last 24 h, the project is 3 h old
    assert window.span(T - 3 * H) == 3 * H
    assert window.span(T - 30 * H) == 24 * H
    assert window.span(T - 20) == MIN_SPAN  # 20 s of data: divide by 5 minutes


@pytest.mark.django_db
def test_98_judgments_in_5_minutes() -> None:
    """The finding: 98 judgments in a project 5 minutes old said "4.08/h, ETA 81.8 h" (a 24 h
    average). Over the 5 minutes that exist: 98 / (5/60) = 1176 per hour, ETA 333 / 1176 h."""
    m = matrix([(r % 2 + 1, 300 - 3 * i) for i, r in enumerate(range(98))])
    tables, s = throughput(m, remaining=333)
    assert s["rate_window"] == "last hour"
    assert s["rate_span_seconds"] == 300
    assert s["judgments_in_window"] == 98
    assert s["rate_per_hour"] == 1176.0
    assert s["eta_hours"] == pytest.approx(333 / 1176, abs=0.005)
    assert s["rate_per_hour"] != pytest.approx(98 / 24, abs=0.01)
    rates = tables["rates"]
    assert rates["rows"][0][:4] == ["all raters", 98, round(300 / H, 3), 1176.0]
    assert "last hour" in rates["title"]
    assert "5 min of data" in rates["title"]


@pytest.mark.django_db
def test_per_rater_rates_use_each_raters_own_start() -> None:
    """Rater 1 worked the whole 24 h (48 judgments: 2/h); rater 2 joined 30 minutes ago and did
    30 (60/h). The project is 2 days old: last 24 h."""
    rows = [(1, 2 * 24 * H)]  # the project's first judgment, outside the window
    rows += [(1, 24 * H - 1 - i * 1800) for i in range(48)]
    rows += [(2, 1800 - i * 60) for i in range(30)]
    tables, s = throughput(matrix(rows), remaining=156)
    assert s["rate_window"] == "last 24 h"
    assert s["judgments_in_window"] == 78
    assert s["rate_per_hour"] == pytest.approx(78 / 24, abs=0.01)
    assert s["eta_hours"] == pytest.approx(156 / (78 / 24), abs=0.01)
    per_rater = {row[0]: row for row in tables["rates"]["rows"][1:]}
    assert len(per_rater) == 2
    fast, slow = tables["rates"]["rows"][1], tables["rates"]["rows"][2]
    assert fast[1:4] == [30, 0.5, 60.0]
    assert slow[1:4] == [48, 24.0, 2.0]


@pytest.mark.django_db
def test_old_project_uses_seven_days() -> None:
    rows = [(1, 30 * 24 * H)] + [(1, i * 24 * H + 10) for i in range(7)]  # one a day
    _, s = throughput(matrix(rows), remaining=10)
    assert s["rate_window"] == "last 7 days"
    assert s["judgments_in_window"] == 7
    assert s["rate_per_hour"] == pytest.approx(7 / 168, abs=0.01)


@pytest.mark.django_db
def test_revisions_and_imported_labels_are_not_throughput() -> None:
    m = np.concatenate(
        [
            matrix([(1, 60), (1, 120)]),
            matrix([(1, 30)], flags=HUMAN | CURRENT),  # a revision
            matrix([(-1, 10)] * 50, flags=FIRST_REVISION | CURRENT),  # imported
        ]
    )
    _, s = throughput(m, remaining=0)
    assert s["judgments_in_window"] == 2
    assert s["rate_per_hour"] == 2 * H / MIN_SPAN
    assert s["eta_hours"] == 0


def test_recent_bins_of_5_minutes() -> None:
    # NOW is on a 5-minute boundary: the last bin starts at NOW.
    m = matrix([(1, 0), (2, 1), (1, 299), (1, 301), (3, 2 * H + 10)])
    bins = recent_activity(m, NOW)["bins"]
    assert len(bins) == 24
    assert bins[-1] == (T, 1, 1)
    assert bins[-2] == (T - 300, 2, 2)
    assert bins[-3] == (T - 600, 1, 1)
    assert sum(n for _, n, _ in bins) == 4


@pytest.mark.django_db
def test_nothing_yet() -> None:
    tables, s = throughput(matrix([]), remaining=40)
    assert s["rate_per_hour"] == 0
    assert s["eta_hours"] is None
    assert tables["rates"]["rows"] == [["all raters", 0, round(MIN_SPAN / H, 3), 0.0, None]]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(300, "5 min"), (3 * H, "3 h"), (5400, "1.5 h"), (3 * 24 * H, "3 days")],
)
def test_span_text(seconds: int, text: str) -> None:
    assert span_text(seconds) == text
