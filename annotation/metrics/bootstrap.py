"""Item-level bootstrap with weighted sufficient statistics.

Resampling ``n`` items with replacement is the same as giving each item an integer weight
(how often it was drawn). Every statistic here is a function of weighted sums of per-item
features, so ``B`` resamples cost ``B x n`` weights times an ``n x f`` feature matrix: a few
matrix products instead of ``B`` library calls. Percentile intervals (2.5%, 97.5%).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

DEFAULT_RESAMPLES = 1000
BLOCK = 16  # resamples per matrix product: bounds memory at BLOCK x n floats


def resample_weights(
    n: int, n_boot: int, rng: np.random.Generator, block: int = BLOCK
) -> Iterator[np.ndarray]:
    """Blocks of bootstrap weights, each of shape (b, n), ``b <= block``; rows sum to ``n``."""
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        draws = rng.integers(0, n, size=(b, n))
        weights = np.zeros((b, n))
        for row in range(b):
            weights[row] = np.bincount(draws[row], minlength=n)
        done += b
        yield weights


def weighted_sums(features: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of ``features.sum(0)``: shape (n_boot, f). features: (n, f)."""
    n = features.shape[0]
    if n == 0:
        return np.zeros((0, features.shape[1]))
    # (f, n) @ (n, b) with a contiguous transposed copy: the layout OpenBLAS is fast on (the
    # plain (b, n) @ (n, f) product measured ~70x slower for n ~ 1e5).
    features_t = np.ascontiguousarray(features.T)
    return np.concatenate([(features_t @ w.T).T for w in resample_weights(n, n_boot, rng)])


def percentile_interval(replicates: np.ndarray) -> tuple[float | None, float | None]:
    """2.5% and 97.5% percentiles of the finite replicates (None when there are none)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_mean(
    values: np.ndarray, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float | None, float | None]:
    """Interval of the mean of ``values`` resampled with replacement."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None, None
    feats = np.stack([values, np.ones_like(values)], axis=1)
    sums = weighted_sums(feats, n_boot, np.random.default_rng(seed))
    return percentile_interval(sums[:, 0] / sums[:, 1])
