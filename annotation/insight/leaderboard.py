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


# The reward trainer's held-out figures shown per reward model (its metric names, "eval/" prefix).
REWARD_MODEL_FIGURES = (
    "length_correlation",
    "accuracy",
    "length_balanced_accuracy",
    "accuracy_longer_preferred",
    "accuracy_shorter_preferred",
    "shorter_wins_agreement",
    "temperature",
)


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
        figures = [metrics.get(f"eval/{key}", metrics.get(key)) for key in REWARD_MODEL_FIGURES]
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
            "accuracy beside the length-balanced accuracy (mean of the accuracies when the "
            "longer and when the shorter response is preferred; a pure length rule scores 0.5) "
            'and its parts, agreement with "the shorter wins", calibration temperature '
            "(> 1: overconfident)",
            ["model_version_id", "model_version", *REWARD_MODEL_FIGURES],
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


def _wilson(successes: float, n: float) -> tuple[float | None, float | None]:
    """95% Wilson score interval; ``successes`` may hold half-wins (ties)."""
    if n <= 0:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def _systems_table(
    names: list[str], sys_first: np.ndarray, sys_second: np.ndarray, canon: np.ndarray
) -> dict[str, Any]:
    """Per system: judgments of two of its own responses (both-bad share, Wilson) and games
    against other systems. Explains an empty leaderboard: judgments can exist while no game
    between two systems does."""
    same = sys_first == sys_second
    rows = []
    for i, name in enumerate(names):
        own = same & (sys_first == i)
        both_bad = int((canon[own] == 3).sum())
        low, high = _wilson(both_bad, int(own.sum()))
        games = int((~same & ((sys_first == i) | (sys_second == i)) & (canon <= 2)).sum())
        share = both_bad / int(own.sum()) if own.any() else None
        rows.append([name, int(own.sum()), num(share), num(low), num(high), games])
    rows.sort(key=lambda r: (-r[1] - r[5], r[0]))
    return table(
        "Systems: judgments between two responses of the same system (with their both-bad share, "
        "95% Wilson interval) and games against another system",
        ["system", "same_system_judgments", "both_bad_share", "low", "high", "games"],
        rows,
    )


def leaderboard_section(pw: PairwiseJudgments, tasks: PairwiseTasks) -> dict[str, dict]:
    used = (pw.canon >= 0) & (pw.canon <= 3) & ~pw.gold
    rows_used = pw.task_row[used]
    codes_first = tasks.first_sys[rows_used]
    codes_second = tasks.second_sys[rows_used]
    codes, inverse = _unique_codes(np.concatenate([codes_first, codes_second]))
    names = [tasks.system_names.get(int(c), str(c)) for c in codes]
    sys_first, sys_second = inverse[: len(rows_used)], inverse[len(rows_used) :]
    canon = pw.canon[used]
    systems = _systems_table(names, sys_first, sys_second, canon)
    differ = (sys_first != sys_second) & (canon <= 2)
    empty = {
        "leaderboard": table("Leaderboard", ["rank", "system"], []),
        "win_rates": table("Win rates", ["system"], []),
        "head_to_head": table("Head to head", ["system_a", "system_b"], []),
        "systems": systems,
    }
    if len(names) < 2 or not differ.any():
        return empty
    win = differ & (canon < 2)
    winners = np.where(canon[win] == 0, sys_first[win], sys_second[win])
    losers = np.where(canon[win] == 0, sys_second[win], sys_first[win])
    tie = differ & (canon == 2)
    wins = bradley_terry.win_matrix(winners, losers, sys_first[tie], sys_second[tie], len(names))
    ties = np.zeros_like(wins)
    np.add.at(ties, (sys_first[tie], sys_second[tie]), 1.0)
    ties = ties + ties.T
    board = bradley_terry.leaderboard(names, wins, n_boot=200 if wins.sum() > 20_000 else 1000)
    order = [int(i) for i in np.argsort(-board.rating) if board.games[i] > 0]
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
    head = []
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1 :]:
            games = float(wins[a, b] + wins[b, a])
            if games == 0:
                continue
            n_ties = int(ties[a, b])
            low, high = _wilson(float(wins[a, b]), games)
            head.append(
                [
                    names[a],
                    names[b],
                    int(games),
                    round(float(wins[a, b]) - n_ties / 2),
                    round(float(wins[b, a]) - n_ties / 2),
                    n_ties,
                    num(wins[a, b] / games),
                    num(low),
                    num(high),
                ]
            )
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
        "head_to_head": table(
            "Head to head: how often the higher-rated system A won against B "
            "(ties = half; 95% Wilson interval)",
            [
                "system_a",
                "system_b",
                "games",
                "a_wins",
                "b_wins",
                "ties",
                "a_win_rate",
                "low",
                "high",
            ],
            head,
        ),
        "systems": systems,
    }


# Written on a policy version by the loop's register step (workers/pipelines.py) from its
# evaluate step (training/evaluate.py): the run's reward model judges one sample of the policy
# and one of its parent per held-out prompt. ``eval/kl`` is that step's sampled KL only when
# ``eval/win_rate`` is there too (otherwise it is DPO's off-policy proxy from training).
RM_VIEW = ("win_rate", "mean_reward", "parent_mean_reward", "mean_length", "parent_mean_length")


def _figure(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(f"eval/{key}")
    return num(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def policy_versions_section(project_id: int) -> dict[str, dict]:
    """Each policy version with the reward model's view of it (when the loop evaluated it), or
    why there is none."""
    versions = list(
        ModelVersion.objects.filter(project_id=project_id, kind=ModelKind.POLICY)
        .select_related("parent", "training_run")
        .order_by("id")
    )
    rm_names = dict(
        ModelVersion.objects.filter(project_id=project_id, kind=ModelKind.REWARD).values_list(
            "id", "name"
        )
    )
    rows = []
    for v in versions:
        metrics = v.metrics or {}
        figures = [_figure(metrics, key) for key in RM_VIEW]
        evaluated = figures[0] is not None
        evaluation = (v.training_run.metrics or {}).get("evaluate", {}) if v.training_run else {}
        if v.trainer == "base":
            note = "the base model (not trained here); compared only as a parent"
        elif evaluated:
            note = ""
        elif v.training_run is None:
            note = "no training run recorded"
        else:
            note = str(evaluation.get("skipped") or f"run {v.training_run_id} did not evaluate it")
        rows.append(
            [
                v.id,
                v.name,
                v.trainer,
                v.parent.name if v.parent else None,
                v.training_run_id,
                v.status,
                v.is_active,
                *figures,
                _figure(metrics, "kl") if evaluated else None,
                _figure(metrics, "prompts") if evaluated else None,
                rm_names.get(int(evaluation["judge"]))
                if evaluated and evaluation.get("judge")
                else None,
                note,
            ]
        )
    return {
        "policy_versions": table(
            "Policy versions and the reward model's view of them: win rate against the parent, "
            "mean reward and length (tokens) of one sample per held-out prompt, KL to the parent "
            "(nats per response)",
            [
                "version_id",
                "version",
                "trainer",
                "parent",
                "run",
                "status",
                "active",
                "rm_win_rate",
                "mean_reward",
                "parent_mean_reward",
                "mean_length",
                "parent_mean_length",
                "kl",
                "eval_prompts",
                "judge",
                "note",
            ],
            rows,
        )
    }


CURVE_POSITION_KEYS = {"step", "i", "of"}


def runs_section(project_id: int) -> tuple[dict[str, dict], list[dict[str, Any]]]:
    """The last 20 runs, their curves per (run, phase, model), and the policy versions.

    A curve point is ``{phase, model, i, of, loss, ...}`` (workers/pipelines.py); ``i`` is the
    optimizer step. Every other numeric key is a series of its own."""
    runs = list(
        TrainingRun.objects.filter(project_id=project_id)
        .order_by("-id")
        .values_list("id", "status", "trainers", "created_at", "finished_at", "metrics", "curve")[
            :20
        ]
    )
    rows: list[list[Any]] = []
    curves: list[dict[str, Any]] = []
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
        groups: dict[tuple[str, str], dict[str, list[list[Any]]]] = {}
        for n, p in enumerate(p for p in (curve or []) if isinstance(p, dict)):
            key = (str(p.get("phase", "")), str(p.get("model", "")))
            x = p.get("i", p.get("step", n))
            series = groups.setdefault(key, {})
            for k, v in p.items():
                if (
                    k in CURVE_POSITION_KEYS
                    or isinstance(v, bool)
                    or not isinstance(v, int | float)
                ):
                    continue
                series.setdefault(k, []).append([x, v])
        curves.extend(
            {"run": rid, "phase": phase, "model": model, "series": series}
            for (phase, model), series in groups.items()
        )
    return (
        {
            "runs": table(
                "Training runs",
                ["run", "status", "trainers", "created", "finished", "metrics"],
                rows,
            ),
            **policy_versions_section(project_id),
        },
        curves,
    )
