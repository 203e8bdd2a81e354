"""AI-vs-human agreement statistics on per-task counts (pure numpy; the definitions and why are
in :mod:`annotation.insight.ai_agreement`, which groups the votes and reads the database).

Each task contributes :data:`N_FEATURES` counts, four flattened 2x2 tables (row = the first
rater's code, column = the second's; code 0 = the task's first response wins): AI x human pairs,
AI x the human majority, ordered human x human pairs, and AI x human again on the ceiling's tasks
(two or more human votes). Every statistic is a function of the summed counts, so a bootstrap
resample is a sum over resampled tasks.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from annotation.metrics.bootstrap import percentile_interval

BIN_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def num(x: Any, digits: int = 4) -> float | None:
    """A finite float rounded for the output, or None (nan, inf, None)."""
    if x is None or not np.isfinite(float(x)):
        return None
    return round(float(x), digits)


MIN_BOOT_TASKS = 2  # scipy's bootstrap needs two observations


# -- tables and statistics ---------------------------------------------------------------------

# Per-task features, each a 2x2 table flattened (row = first rater's code, column = second's):
AI_HUMAN, AI_MAJORITY, HUMAN_HUMAN, AI_CEILING = (
    slice(0, 4),
    slice(4, 8),
    slice(8, 12),
    slice(12, 16),
)
N_FEATURES = 16


def kappa(tables: np.ndarray) -> np.ndarray:
    """Cohen's kappa of 2x2 tables flattened to (..., 4): (po - pe) / (1 - pe)."""
    t = tables.reshape(*tables.shape[:-1], 2, 2)
    n = t.sum((-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = (t[..., 0, 0] + t[..., 1, 1]) / n
        p_e = (t.sum(-1) * t.sum(-2)).sum(-1) / n**2
        return (p_o - p_e) / (1 - p_e)


def percent(tables: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (tables[..., 0] + tables[..., 3]) / tables.sum(-1)


def statistics(sums: np.ndarray) -> np.ndarray:
    """(..., N_FEATURES) summed features -> (9, ...) statistics, in :data:`STAT_NAMES` order."""
    ceiling_kappa, ai_kappa = kappa(sums[..., HUMAN_HUMAN]), kappa(sums[..., AI_CEILING])
    return np.stack(
        [
            percent(sums[..., AI_HUMAN]),
            kappa(sums[..., AI_HUMAN]),
            percent(sums[..., AI_MAJORITY]),
            kappa(sums[..., AI_MAJORITY]),
            percent(sums[..., HUMAN_HUMAN]),
            ceiling_kappa,
            percent(sums[..., AI_CEILING]),
            ai_kappa,
            ai_kappa - ceiling_kappa,
        ]
    )


STAT_NAMES = (
    "ai_human_percent",
    "ai_human_kappa",
    "ai_majority_percent",
    "ai_majority_kappa",
    "ceiling_human_percent",
    "ceiling_human_kappa",
    "ceiling_ai_percent",
    "ceiling_ai_kappa",
    "ceiling_kappa_gap",
)


def library_kappa(table: np.ndarray) -> float | None:
    """statsmodels' Cohen's kappa of one flattened 2x2 table (None when undefined)."""
    if table.sum() == 0:
        return None
    from statsmodels.stats import inter_rater  # heavy: imported where used

    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(inter_rater.cohens_kappa(table.reshape(2, 2).astype(float)).kappa)
    return value if np.isfinite(value) else None


def strict_majority(codes: Sequence[int]) -> int | None:
    """The code most of ``codes`` share, None on a tie (or no votes)."""
    top = Counter(codes).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def task_features(ai_codes: Sequence[int], human_codes: Sequence[int]) -> list[float]:
    """The N_FEATURES counts one task contributes (see the module docstring). Plain Python: it
    runs once per task, where small numpy arrays cost more than they save."""
    h = [0, 0]
    for c in human_codes:
        h[c] += 1
    a = [0, 0]
    for c in ai_codes:
        a[c] += 1
    f = [0.0] * N_FEATURES
    f[0:4] = [a[0] * h[0], a[0] * h[1], a[1] * h[0], a[1] * h[1]]
    majority = strict_majority(human_codes)
    if majority is not None:
        f[4 + majority] = a[0]
        f[6 + majority] = a[1]
    if h[0] + h[1] >= 2:
        # ordered pairs of two different votes: (0,0), (0,1), (1,0), (1,1)
        f[8:12] = [h[0] * (h[0] - 1), h[0] * h[1], h[1] * h[0], h[1] * (h[1] - 1)]
        f[12:16] = f[0:4]
    return f


BOOT_CELLS = 20_000_000  # resampled task indices held at once (batch x tasks): bounds memory


def bootstrap_replicates(features: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(9, n_boot) replicates of :func:`statistics`, resampling the rows (tasks) of features.

    ``scipy.stats.bootstrap`` draws the resamples; the statistic of one resample is the sum of
    its tasks' features, counted over the few distinct feature rows (tasks with the same votes
    contribute the same), so a resample costs a bincount and a small matrix product."""
    from scipy.stats import DegenerateDataWarning, bootstrap  # heavy: imported where used

    n = features.shape[0]
    distinct, inverse = np.unique(features, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    d = distinct.shape[0]

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = inverse[idx.astype(np.int64)]  # (..., n) distinct-row ids
        lead = rows.shape[:-1]
        flat = rows.reshape(-1, n)
        offsets = np.arange(flat.shape[0])[:, None] * d
        counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * d)
        sums = counts.reshape(flat.shape[0], d).astype(float) @ distinct  # (B, N_FEATURES)
        return statistics(sums.reshape(*lead, N_FEATURES))

    batch = max(1, min(n_boot, BOOT_CELLS // max(1, n)))
    # A resample where every vote is one category has no kappa (nan): scipy warns, and the
    # interval below is taken over the finite replicates instead.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap(
            (np.arange(n),),
            statistic,
            vectorized=True,
            n_resamples=n_boot,
            batch=batch,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return np.asarray(res.bootstrap_distribution)


def estimate(value: Any, replicates: np.ndarray | None) -> dict[str, Any]:
    low, high = percentile_interval(replicates) if replicates is not None else (None, None)
    return {"value": num(value), "low": num(low), "high": num(high)}


def calibration(pairs: Iterable[tuple[float, bool]]) -> dict[str, Any]:
    """(confidence, agrees with the human majority) -> bins, Brier score and ECE."""
    from annotation.metrics.proportions import proportion

    rows = [(float(c), bool(y)) for c, y in pairs]
    conf = np.array([c for c, _ in rows])
    agree = np.array([y for _, y in rows], dtype=float)
    bins = []
    ece = 0.0
    for i, (lo, hi) in enumerate(itertools.pairwise(BIN_EDGES)):
        last = i == len(BIN_EDGES) - 2
        sel = (conf >= lo) & ((conf <= hi) if last else (conf < hi))
        n = int(sel.sum())
        p = proportion(int(agree[sel].sum()), n, test=False)
        mean_conf = float(conf[sel].mean()) if n else None
        if n:
            ece += n / len(rows) * abs(float(agree[sel].mean()) - float(conf[sel].mean()))
        bins.append(
            {
                "low": lo,
                "high": hi,
                "n": n,
                "mean_confidence": num(mean_conf),
                "agree": num(p.share),
                "agree_low": num(p.low),
                "agree_high": num(p.high),
            }
        )
    return {
        "n": len(rows),
        "bins": bins,
        "brier": num(float(((conf - agree) ** 2).mean())) if rows else None,
        "ece": num(ece) if rows else None,
    }
