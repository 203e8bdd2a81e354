"""Bias monitors (position, length, reward-model length correlation), the Bradley-Terry model
leaderboard with its win-rate matrix, and training runs with their curves.

Only A/B choices count for bias (a tie or both-bad prefers no side); on the leaderboard a tie is
half a win for each system and both-bad is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annotation.insight.arrays import (
    PairwiseJudgments,
    PairwiseTasks,
)
from annotation.insight.tables import iso, num, table
from annotation.metrics import bradley_terry
from annotation.metrics.proportions import proportion
from annotation.models import (
    ModelKind,
    ModelVersion,
    TrainingRun,
)

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
            [
                name,
                p.successes,
                p.n,
                num(p.share),
                num(p.low),
                num(p.high),
                num(p.p_value, 6),
                p.biased,
            ]
        )
    reward = []
    for mv_id, name, metrics in ModelVersion.objects.filter(
        project_id=project_id, kind=ModelKind.REWARD
    ).values_list("id", "name", "metrics"):
        metrics = metrics or {}
        # Written by training/trainers/reward_model.py on the held-out pairs.
        figures = [
            metrics.get(f"eval/{key}", metrics.get(key))
            for key in ("length_correlation", "accuracy", "temperature")
        ]
        reward.append(
            [mv_id, name, *(num(v) if isinstance(v, int | float) else None for v in figures)]
        )
    return {
        "bias": table(
            "Bias monitors (human pairwise A/B choices; expected share 0.5)",
            ["monitor", "count", "n", "share", "low", "high", "p_value", "biased"],
            rows,
        ),
        "reward_length": table(
            "Reward models on their held-out pairs: correlation of scores with response length, "
            "accuracy, calibration temperature (> 1: overconfident)",
            ["model_version_id", "model_version", "length_correlation", "accuracy", "temperature"],
            reward,
        ),
    }


# -- leaderboard and runs -------------------------------------------------------------------------


def _unique_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for system codes: a few distinct integers in a
    modest range (model version ids, minus source positions), counted in a table over that range
    instead of sorting a million of them."""
    if len(values) == 0 or int(values.max()) - int(values.min()) > 1 << 20:
        codes, inverse = np.unique(values, return_inverse=True)
        return codes, inverse.ravel()
    low = int(values.min())
    present = np.bincount(values - low) > 0
    return np.flatnonzero(present) + low, (np.cumsum(present) - 1)[values - low]


def leaderboard_section(pw: PairwiseJudgments, tasks: PairwiseTasks) -> dict[str, dict]:
    used = (pw.canon >= 0) & (pw.canon <= 2) & ~pw.gold
    rows_used = pw.task_row[used]
    codes_first = tasks.first_sys[rows_used]
    codes_second = tasks.second_sys[rows_used]
    codes, inverse = _unique_codes(np.concatenate([codes_first, codes_second]))
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
            num(board.rating[i], 1),
            num(board.low[i], 1),
            num(board.high[i], 1),
            int(board.games[i]),
        ]
        for rank, i in enumerate(order)
    ]
    matrix = [
        [names[i], *[num(board.win_rate[i, j], 3) if i != j else None for j in order]]
        for i in order
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
                iso(created)[:16],
                iso(finished)[:16] if finished else None,
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
