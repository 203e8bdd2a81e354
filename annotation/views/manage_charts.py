"""Server-side SVG charts for the manager pages (no JavaScript, no CDN, CSP-safe).

Every text that reaches the SVG (system names, usernames, labels) goes through ``escape``; the
markup is built here and only then marked safe. Colours are presentation attributes and CSS
classes from ``annotation/manage/manage.css`` (inline ``style`` would break the CSP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#23395d", "#c2410c", "#1c7c3a", "#7c3aed", "#b42318", "#0e7490", "#a16207"]
W, H = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 16, 34


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) < 0.01:
        return f"{v:.3g}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _frame(title: str, body: list[str], width: int = W, height: int = H) -> SafeString:
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    )
    # Safe: every text above went through escape().
    return mark_safe(head + "".join(body) + "</svg>")


def _axes(lo: float, hi: float, x_labels: Sequence[str]) -> list[str]:
    out = [
        f'<line class="axis" x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}"/>',
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}"/>',
    ]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        y = H - PAD_B - (H - PAD_T - PAD_B) * i / 4
        out.append(f'<line class="grid" x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_num(v))}</text>"
        )
    if x_labels:
        step = max(1, math.ceil(len(x_labels) / 8))
        for i in range(0, len(x_labels), step):
            x = _x(i, len(x_labels))
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{H - PAD_B + 16}" '
                f'text-anchor="middle">{escape(x_labels[i])}</text>'
            )
    return out


def _x(i: float, n: int) -> float:
    return PAD_L + (W - PAD_L - PAD_R) * (i / max(n - 1, 1))


def _y(v: float, lo: float, hi: float) -> float:
    return H - PAD_B - (H - PAD_T - PAD_B) * ((v - lo) / ((hi - lo) or 1.0))


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = PAD_L + 8 + 130 * i
        out.append(
            f'<rect x="{x}" y="2" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        out.append(f'<text class="legend" x="{x + 14}" y="11">{escape(name[:18])}</text>')
    return out


def line_chart(
    title: str, series: dict[str, Sequence[tuple[float, float]]], x_labels: Sequence[str] = ()
) -> SafeString:
    """Lines over a shared x (index positions when ``x_labels`` is given, else numeric x)."""
    points = [p for s in series.values() for p in s]
    if not points:
        return _frame(
            title,
            [
                f'<text class="empty" x="{W / 2}" y="{H / 2}" '
                f'text-anchor="middle">No data yet</text>'
            ],
        )
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    lo, hi = min(0.0, min(ys)), max(ys)
    hi = hi if hi > lo else lo + 1
    body = _axes(lo, hi, x_labels)
    if not x_labels:
        body.append(
            f'<text class="tick" x="{PAD_L}" y="{H - PAD_B + 16}">{escape(_num(x_lo))}</text>'
        )
        body.append(
            f'<text class="tick" x="{W - PAD_R}" y="{H - PAD_B + 16}" text-anchor="end">'
            f"{escape(_num(x_hi))}</text>"
        )
    span = (x_hi - x_lo) or 1.0
    for i, (name, pts) in enumerate(series.items()):
        coords = " ".join(
            f"{PAD_L + (W - PAD_L - PAD_R) * ((x - x_lo) / span):.1f},{_y(y, lo, hi):.1f}"
            for x, y in pts
        )
        color = PALETTE[i % len(PALETTE)]
        body.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{coords}"><title>{escape(name)}</title></polyline>'
        )
        if len(pts) <= 40:  # dots too, so a single day still shows
            for x, y in pts:
                cx = PAD_L + (W - PAD_L - PAD_R) * ((x - x_lo) / span)
                body.append(
                    f'<circle cx="{cx:.1f}" cy="{_y(y, lo, hi):.1f}" r="3" fill="{color}">'
                    f"<title>{escape(name)}: {escape(_num(y))}</title></circle>"
                )
    body += _legend(list(series))
    return _frame(title, body)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> SafeString:
    if not values:
        return line_chart(title, {})
    hi = max(max(values), 1)
    n = len(values)
    width = (W - PAD_L - PAD_R) / n
    body = _axes(0, hi, [])
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = PAD_L + i * width
        y = _y(v, 0, hi)
        body.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" '
            f'height="{H - PAD_B - y:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {escape(_num(v))}</title></rect>"
        )
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        body.append(
            f'<text class="tick" x="{PAD_L + (i + 0.5) * width:.1f}" y="{H - PAD_B + 16}" '
            f'text-anchor="middle">{escape(labels[i])}</text>'
        )
    return _frame(title, body)


def interval_chart(title: str, rows: Sequence[tuple[str, float, float, float]]) -> SafeString:
    """One row per item: a dot at the estimate and a whisker over its interval."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return line_chart(title, {})
    row_h = 22
    height = PAD_T + row_h * len(rows) + PAD_B
    lows = [r[2] if r[2] is not None else r[1] for r in rows]
    highs = [r[3] if r[3] is not None else r[1] for r in rows]
    lo, hi = min(lows), max(highs)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    left = 200

    def x(v: float) -> float:
        return left + (W - left - PAD_R) * (v - lo) / (hi - lo)

    body = []
    for i, (name, value, low, high) in enumerate(rows):
        y = PAD_T + row_h * i + row_h / 2
        low = value if low is None else low
        high = value if high is None else high
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(name[:30])}</text>"
        )
        body.append(
            f'<line class="whisker" x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" '
            f'y2="{y:.1f}" stroke="{PALETTE[0]}" stroke-width="2"/>'
        )
        body.append(
            f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[1]}">'
            f"<title>{escape(name)}: {escape(_num(value))} "
            f"[{escape(_num(low))}, {escape(_num(high))}]</title></circle>"
        )
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        body.append(
            f'<text class="tick" x="{x(v):.1f}" y="{height - 10}" text-anchor="middle">'
            f"{escape(_num(v))}</text>"
        )
    return _frame(title, body, height=height)


def heatmap(
    title: str, names: Sequence[str], matrix: Sequence[Sequence[float | None]]
) -> SafeString:
    """Win-rate matrix: cell colour from red (0) through white (0.5) to green (1)."""
    n = len(names)
    if n == 0:
        return line_chart(title, {})
    cell = max(18, min(48, (W - 160) // n))
    left, top = 150, 110
    width, height = left + cell * n + 10, top + cell * n + 10
    body = []
    for j, name in enumerate(names):
        cx = left + cell * j + cell / 2
        body.append(
            f'<text class="tick" transform="translate({cx:.1f},{top - 6}) rotate(-45)">'
            f"{escape(name[:18])}</text>"
        )
    for i, name in enumerate(names):
        y = top + cell * i
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y + cell / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(name[:22])}</text>'
        )
        for j in range(n):
            v = matrix[i][j]
            if v is None:
                fill = "#e5e7eb"
            else:
                t = max(0.0, min(1.0, float(v)))
                r = int(255 if t < 0.5 else 255 - (t - 0.5) * 2 * 200)
                g = int(255 if t > 0.5 else 255 - (0.5 - t) * 2 * 200)
                b = int(255 - abs(t - 0.5) * 2 * 200)
                fill = f"#{r:02x}{g:02x}{b:02x}"
            label = "" if v is None else f"{float(v):.2f}"
            body.append(
                f'<rect x="{left + cell * j}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{fill}"><title>{escape(name)} vs {escape(names[j])}: '
                f"{escape(label or 'no games')}</title></rect>"
            )
            if label and cell >= 30:
                body.append(
                    f'<text class="cell" x="{left + cell * j + cell / 2:.1f}" '
                    f'y="{y + cell / 2 + 4:.1f}" text-anchor="middle">{label}</text>'
                )
    return _frame(title, body, width=width, height=height)
