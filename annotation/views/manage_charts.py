"""Charts of the manager pages as charts.js specs (``annotation/static/annotation/charts.js``).

A spec is plain JSON that the page carries in a ``json_script`` element beside its
``<canvas data-chart=…>``; charts.js draws it with Chart.js. Every spec has a title, labelled
axes with units, reference lines where a value has a meaning (0 = chance agreement for kappa
and alpha, 0.5 = no bias for a share) and 95% intervals as error bars. Time series are filled
with zeros between their first and last point (an hour without judgments is a zero, not a
missing category), and a series of one point is drawn as a point.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

Spec = dict[str, Any]
RATERS_SHOWN = 30
PAIRS_SHOWN = 20
ALPHA, KAPPA = "\u03b1", "\u03ba"  # shown on the charts as Greek letters


def axis(label: str, unit: str = "", **extra: Any) -> dict[str, Any]:
    return {"label": label, "unit": unit, **extra}


def point(x: Any, y: Any, lo: Any = None, hi: Any = None) -> dict[str, Any]:
    p = {"x": x, "y": y}
    if lo is not None and hi is not None:
        p.update(lo=lo, hi=hi)
    return p


def spec(
    kind: str,
    title: str,
    x: dict[str, Any],
    y: dict[str, Any],
    series: list[dict[str, Any]],
    refs: Sequence[dict[str, Any]] = (),
) -> Spec:
    return {"type": kind, "title": title, "x": x, "y": y, "series": series, "refs": list(refs)}


def has_points(chart: Spec) -> bool:
    return any(s["points"] for s in chart["series"])


def chart(chart_id: str, chart_spec: Spec) -> dict[str, Any]:
    """What ``_chart.html`` renders: the canvas id, the spec, and whether there is anything to
    draw (an empty chart is a titled box that says so)."""
    return {"id": f"chart-{chart_id}", "spec": chart_spec, "empty": not has_points(chart_spec)}


def column(table: dict[str, Any], name: str) -> list[Any]:
    i = table["columns"].index(name)
    return [row[i] for row in table["rows"]]


# -- time series ----------------------------------------------------------------------------------


def _fill_days(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every day from the first to the last key (``YYYY-MM-DD``), zeros where none."""
    if not values:
        return []
    first, last = date.fromisoformat(min(values)), date.fromisoformat(max(values))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d.isoformat(), values.get(d.isoformat(), 0)) for d in days]


def _fill_hours(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every hour from the first to the last key (``YYYY-MM-DDTHH:MM``), zeros where none."""
    if not values:
        return []
    first, last = datetime.fromisoformat(min(values)), datetime.fromisoformat(max(values))
    n = int((last - first).total_seconds() // 3600) + 1
    hours = [(first + timedelta(hours=i)).isoformat()[:16] for i in range(n)]
    return [(h, values.get(h, 0)) for h in hours]


def _short_hour(iso_hour: str, many_days: bool) -> str:
    """``14:00``, or ``12-01 14:00`` when the hours span more than one day."""
    return iso_hour[5:10] + " " + iso_hour[11:16] if many_days else iso_hour[11:16]


def per_day_charts(t: dict[str, dict]) -> list[dict[str, Any]]:
    per_day = t["per_day"]
    judged = _fill_days(
        dict(zip(column(per_day, "day"), column(per_day, "judgments"), strict=True))
    )
    active = _fill_days(
        dict(zip(column(per_day, "day"), column(per_day, "active_raters"), strict=True))
    )
    day = axis("day", "UTC")
    return [
        chart(
            "per-day",
            spec(
                "bar",
                "Judgments per day (first submissions)",
                day,
                axis("judgments", "per day", min=0, integer=True),
                [{"label": "judgments", "points": [point(d, n) for d, n in judged]}],
            ),
        ),
        chart(
            "active",
            spec(
                "line",
                "Active raters per day (raters with at least one judgment)",
                day,
                axis("raters", "", min=0, integer=True),
                [{"label": "active raters", "points": [point(d, n) for d, n in active]}],
            ),
        ),
    ]


def per_hour_chart(t: dict[str, dict]) -> dict[str, Any]:
    per_hour = t["per_hour"]
    hours = _fill_hours(
        dict(zip(column(per_hour, "hour"), column(per_hour, "judgments"), strict=True))
    )
    many_days = len({h[:10] for h, _ in hours}) > 1
    return chart(
        "per-hour",
        spec(
            "bar",
            "Judgments per hour (last 48 h)",
            axis("hour", "UTC"),
            axis("judgments", "per hour", min=0, integer=True),
            [
                {
                    "label": "judgments",
                    "points": [point(_short_hour(h, many_days), n) for h, n in hours],
                }
            ],
        ),
    )


def per_5min_chart(t: dict[str, dict]) -> dict[str, Any]:
    """The last 2 hours in 5-minute bins, from the first bin with a judgment (empty when none:
    an old project that is quiet now has its hours and days)."""
    rows = t["per_5min"]["rows"]
    start = next((i for i, r in enumerate(rows) if r[1]), len(rows))
    return chart(
        "per-5min",
        spec(
            "bar",
            "Judgments per 5 minutes (last 2 h)",
            axis("time", "UTC, start of each 5 minutes"),
            axis("judgments", "per 5 min", min=0, integer=True),
            [{"label": "judgments", "points": [point(r[0][11:16], r[1]) for r in rows[start:]]}],
        ),
    )


def burndown_chart(t: dict[str, dict]) -> dict[str, Any]:
    b = t["burndown"]
    days = column(b, "day")
    return chart(
        "burndown",
        spec(
            "line",
            "Queue burn-down: judgments remaining and done (cumulative)",
            axis("day", "UTC"),
            axis("judgments", "", min=0, integer=True),
            [
                {
                    "label": "remaining",
                    "points": [
                        point(d, v) for d, v in zip(days, column(b, "remaining"), strict=True)
                    ],
                },
                {
                    "label": "done",
                    "points": [
                        point(d, v) for d, v in zip(days, column(b, "done_total"), strict=True)
                    ],
                },
            ],
        ),
    )


def leases_chart(t: dict[str, dict]) -> dict[str, Any]:
    leases = t["leases"]
    days = column(leases, "day")
    series = []
    for name in ("skipped", "expired"):
        filled = _fill_days(dict(zip(days, column(leases, name), strict=True)))
        series.append({"label": name, "points": [point(d, n) for d, n in filled]})
    return chart(
        "leases",
        spec(
            "bar",
            "Skipped and expired leases per day",
            axis("day", "UTC"),
            axis("leases", "per day", min=0, integer=True),
            series,
        ),
    )


def rater_rate_chart(t: dict[str, dict], summary: dict[str, Any]) -> dict[str, Any]:
    rows = t["rates"]["rows"][1 : 1 + RATERS_SHOWN]
    more = len(t["rates"]["rows"]) - 1 - len(rows)
    title = f"Judgments per hour by rater ({summary.get('rate_window', 'last 24 h')})"
    if more > 0:
        title += f", fastest {len(rows)} of {len(rows) + more}"
    return chart(
        "rater-rates",
        spec(
            "bar",
            title,
            axis("rater"),
            axis("judgments", "per hour", min=0),
            [{"label": "per hour", "points": [point(r[0], r[3]) for r in rows]}],
        ),
    )


# -- agreement and bias ---------------------------------------------------------------------------


def agreement_chart(t: dict[str, dict]) -> dict[str, Any]:
    """Krippendorff's alpha per task kind and measure, 95% bootstrap interval; 0 = chance."""
    a = t["agreement"]
    points = [
        point(f"{kind} · {measure.split(' (')[0]}", v, lo, hi)
        for kind, measure, v, lo, hi in zip(
            column(a, "kind"),
            column(a, "measure"),
            column(a, "krippendorff_alpha"),
            column(a, "alpha_low"),
            column(a, "alpha_high"),
            strict=True,
        )
        if v is not None
    ]
    return chart(
        "agreement",
        spec(
            "points",
            f"Inter-rater agreement: Krippendorff's {ALPHA} per task kind (95% bootstrap interval)",
            axis("task kind · what is compared"),
            axis(f"Krippendorff's {ALPHA}", "1 = perfect", max=1),
            [{"label": ALPHA, "points": points}],
            [{"value": 0, "label": "0 = chance agreement"}],
        ),
    )


BIAS_LABELS = {"position": "position: chose the first shown", "length": "length: chose the longer"}


def bias_chart(t: dict[str, dict]) -> dict[str, Any]:
    b = t["bias"]
    points = [
        point(BIAS_LABELS.get(name.split(":")[0], name), share, lo, hi)
        for name, share, lo, hi in zip(
            column(b, "monitor"),
            column(b, "share"),
            column(b, "low"),
            column(b, "high"),
            strict=True,
        )
        if share is not None
    ]
    return chart(
        "bias",
        spec(
            "points",
            "Bias monitors: share of A/B choices (Wilson 95% interval)",
            axis("monitor"),
            axis("share of A/B choices", "0 to 1", min=0, max=1),
            [{"label": "share", "points": points}],
            [{"value": 0.5, "label": "0.5 = no bias"}],
        ),
    )


def cohen_pairs_chart(t: dict[str, dict]) -> dict[str, Any]:
    pairs = t["cohen_pairs"]
    rows = [r for r in pairs["rows"] if r[3] is not None][:PAIRS_SHOWN]
    total = len(pairs["rows"])
    title = f"Cohen's {KAPPA} per rater pair (95% interval)"
    if total > len(rows):
        title = (
            f"Cohen's {KAPPA}: the {len(rows)} least agreeing of {total} rater pairs (95% interval)"
        )
    return chart(
        "cohen-pairs",
        spec(
            "points",
            title,
            axis("rater pair"),
            axis(f"Cohen's {KAPPA}", "1 = perfect", max=1),
            [
                {
                    "label": KAPPA,
                    "points": [point(f"{r[0]} · {r[1]}", r[3], r[4], r[5]) for r in rows],
                }
            ],
            [{"value": 0, "label": "0 = chance agreement"}],
        ),
    )


def overview_charts(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The overview's charts by section."""
    t = data["tables"]
    recent = per_5min_chart(t)
    throughput = ([] if recent["empty"] else [recent]) + [per_hour_chart(t)]
    throughput += per_day_charts(t)
    throughput += [rater_rate_chart(t, data["summary"]), burndown_chart(t), leases_chart(t)]
    return {
        "agreement": [agreement_chart(t)],
        "bias": [bias_chart(t)],
        "throughput": throughput,
    }


def raters_charts(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [cohen_pairs_chart(data["tables"])]
