"""Chart specs of the leaderboard & runs page, for ``annotation/static/annotation/charts.js``.

Each chart is ``{"id", "spec", "empty"}``: the page puts the spec in a ``json_script`` element
beside ``<canvas data-chart=id>``. Every spec has a title and labelled axes; intervals are error
bars; reference lines mark the value that means "no difference". Names of systems and versions
are data in the JSON (charts.js draws them as canvas text), never markup.
"""

from __future__ import annotations

from typing import Any

CURVE_RUNS_SHOWN = 5
# Curve keys of the reward-hacking view (the first present of each tuple), with axis labels.
HACKING_KEYS = (
    (("rewards/margins", "rewards/chosen"), "implicit reward", "beta x log-ratio"),
    (("kl", "eval/kl"), "KL to the reference", "nats"),
)


def _rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


def _chart(chart_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    empty = not any(s["points"] for s in spec["series"])
    return {"id": chart_id, "spec": spec, "empty": empty}


def _spec(kind: str, title: str, x: dict, y: dict, series: list, refs: list | None = None) -> dict:
    return {"type": kind, "title": title, "x": x, "y": y, "series": series, "refs": refs or []}


def _wilson(share: float, n: float) -> tuple[float | None, float | None]:
    if not n:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(share * n, n, alpha=0.05, method="wilson")
    return round(float(low), 4), round(float(high), 4)


def leaderboard_charts(tables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    board = _rows(tables["leaderboard"])
    ratings = _spec(
        "points",
        "Bradley-Terry rating per system, 95% bootstrap interval",
        {"label": "system", "kind": "category"},
        {"label": "rating", "unit": "Elo points; +400 = 10:1 odds"},
        [
            {
                "label": "rating",
                "points": [
                    {"x": r["system"], "y": r["rating"], "lo": r["low"], "hi": r["high"]}
                    for r in board
                ],
            }
        ],
        [{"value": 1000, "label": "average system", "axis": "y"}],
    )
    head = _rows(tables["head_to_head"])
    h2h = _spec(
        "points",
        "Head to head: share of games system A won against B, 95% Wilson interval",
        {"label": "A vs B", "kind": "category"},
        {"label": "A's win rate", "unit": "share of games, tie = half", "min": 0, "max": 1},
        [
            {
                "label": "win rate",
                "points": [
                    {
                        "x": f"{r['system_a']} vs {r['system_b']}",
                        "y": r["a_win_rate"],
                        "lo": r["low"],
                        "hi": r["high"],
                    }
                    for r in head
                ],
            }
        ],
        [{"value": 0.5, "label": "even", "axis": "y"}],
    )
    versions = [v for v in _rows(tables["policy_versions"]) if v["rm_win_rate"] is not None]
    rm_points = []
    for v in versions:
        low, high = _wilson(v["rm_win_rate"], v["eval_prompts"] or 0)
        rm_points.append({"x": v["version"], "y": v["rm_win_rate"], "lo": low, "hi": high})
    rm_view = _spec(
        "points",
        "Reward model's view: win rate of each policy version against its parent, 95% Wilson "
        "interval over the held-out prompts",
        {"label": "policy version", "kind": "category"},
        {"label": "win rate vs parent", "unit": "share of prompts", "min": 0, "max": 1},
        [{"label": "RM win rate", "points": rm_points}],
        [{"value": 0.5, "label": "no better than the parent", "axis": "y"}],
    )
    length = _spec(
        "line",
        "Reward vs length: parent → policy version (mean over one sample per held-out prompt)",
        {"label": "mean response length", "unit": "tokens", "kind": "linear"},
        {"label": "mean reward", "unit": "reward-model units"},
        [
            {
                "label": v["version"],
                "points": [
                    {"x": v["parent_mean_length"], "y": v["parent_mean_reward"]},
                    {"x": v["mean_length"], "y": v["mean_reward"]},
                ],
            }
            for v in versions
        ],
    )
    return {
        "ratings": _chart("chart-ratings", ratings),
        "head_to_head": _chart("chart-head-to-head", h2h),
        "rm_view": _chart("chart-rm-view", rm_view),
        "reward_length": _chart("chart-reward-length", length),
    }


def hacking_curves(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per policy training (curve phase ``policy``): reward and KL by optimizer step, or the
    keys the run recorded instead, so the page can say what is missing."""
    out = []
    for c in curves:
        if c["phase"] != "policy":
            continue
        charts, missing = [], []
        for keys, label, unit in HACKING_KEYS:
            key = next((k for k in keys if c["series"].get(k)), None)
            if key is None:
                missing.append(" or ".join(keys))
                continue
            spec = _spec(
                "line",
                f"Run {c['run']}, {c['model']}: {key} over training",
                {"label": "optimizer step", "kind": "linear"},
                {"label": label, "unit": unit},
                [{"label": key, "points": [{"x": x, "y": y} for x, y in c["series"][key]]}],
            )
            slug = key.replace("/", "-")
            charts.append(_chart(f"chart-hack-{c['run']}-{c['model']}-{slug}", spec))
        out.append(
            {
                "run": c["run"],
                "model": c["model"],
                "charts": charts,
                "missing": missing,
                "recorded": sorted(c["series"]),
            }
        )
    return out


def curve_charts(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One chart per metric of each (run, phase, model) curve of the last runs."""
    runs = sorted({c["run"] for c in curves}, reverse=True)[:CURVE_RUNS_SHOWN]
    out = []
    for c in curves:
        if c["run"] not in runs:
            continue
        for key, points in sorted(c["series"].items()):
            spec = _spec(
                "line",
                f"Run {c['run']}, {c['phase']} {c['model']}: {key}",
                {"label": "optimizer step", "kind": "linear"},
                {"label": key},
                [{"label": key, "points": [{"x": x, "y": y} for x, y in points]}],
            )
            slug = f"{c['run']}-{c['phase']}-{c['model']}-{key.replace('/', '-')}"
            out.append({"run": c["run"], **_chart(f"chart-curve-{slug}", spec)})
    return out
