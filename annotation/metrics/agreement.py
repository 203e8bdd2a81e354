"""Inter-rater agreement from an item x category count matrix.

``V[i, c]`` = how many raters put item ``i`` in category ``c`` (missing ratings are simply not
counted, so items may have different numbers of raters). Categories are ordered; for ordinal data
the column order is the scale order.

- percent agreement: share of agreeing rater pairs among all pairs of raters on the same item;
- Fleiss' kappa (statsmodels): on the items rated by the most common number of raters (Fleiss'
  formula assumes a constant number of raters per item);
- Krippendorff's alpha (``krippendorff``): nominal or ordinal, any number of raters per item;
- Cohen's kappa for rater pairs, from their confusion tables (statsmodels' formula, vectorized).

Every summary carries a bootstrap 95% interval over items and the number of items it rests on.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from annotation.metrics.bootstrap import DEFAULT_RESAMPLES, percentile_interval


def value_counts(items: np.ndarray, codes: np.ndarray, n_items: int, n_cat: int) -> np.ndarray:
    """Count matrix (n_items, n_cat) from parallel arrays of item index and category code.

    Codes < 0 are missing and ignored."""
    keep = codes >= 0
    flat = items[keep].astype(np.int64) * n_cat + codes[keep].astype(np.int64)
    return np.bincount(flat, minlength=n_items * n_cat).reshape(n_items, n_cat).astype(float)


def pairable(counts: np.ndarray) -> np.ndarray:
    """Rows with at least two ratings: only these carry information about agreement."""
    return counts[counts.sum(1) >= 2]


# -- point estimates (libraries) ---------------------------------------------------------------


def percent_agreement(counts: np.ndarray) -> float:
    m = counts.sum(1)
    pairs = (m * (m - 1)).sum()
    if pairs == 0:
        return float("nan")
    return float((counts * (counts - 1)).sum() / pairs)


def fleiss_items(counts: np.ndarray) -> np.ndarray:
    """The rows rated by the most common number (>= 2) of raters."""
    counts = pairable(counts)
    if counts.shape[0] == 0:
        return counts
    m = counts.sum(1).astype(int)
    modal = np.bincount(m).argmax()
    return counts[m == modal]


def fleiss_kappa(counts: np.ndarray) -> float:
    table = fleiss_items(counts)
    if table.shape[0] == 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        from statsmodels.stats import inter_rater  # heavy: imported where used

        return float(inter_rater.fleiss_kappa(table, method="fleiss"))


def krippendorff_alpha(
    counts: np.ndarray, level: Literal["nominal", "ordinal"] = "nominal"
) -> float:
    counts = pairable(counts)
    if counts.shape[0] == 0 or (counts.sum(0) > 0).sum() < 2:
        return float("nan")
    import krippendorff  # heavy (and only needed here): imported where used

    return float(
        krippendorff.alpha(
            value_counts=counts,
            value_domain=list(range(counts.shape[1])),
            level_of_measurement=level,
        )
    )


# -- weighted versions (bootstrap) ---------------------------------------------------------------


def _delta(level: str, n_c: np.ndarray) -> np.ndarray:
    """Squared distance between categories; ``n_c``: (B, K) category totals. Returns (B, K, K)."""
    k = n_c.shape[1]
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(k), (n_c.shape[0], k, k))
    cum = np.concatenate([np.zeros((n_c.shape[0], 1)), np.cumsum(n_c, axis=1)], axis=1)
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = cum[:, hi + 1] - cum[:, lo]
    return (between - (n_c[:, lo] + n_c[:, hi]) / 2.0) ** 2


def alpha_from_coincidences(coinc: np.ndarray, level: str) -> np.ndarray:
    """Alpha for a batch of coincidence matrices (B, K, K)."""
    n_c = coinc.sum(2)
    n = n_c.sum(1)
    delta = _delta(level, n_c)
    d_o = (coinc * delta).sum((1, 2))
    d_e = (n_c[:, :, None] * n_c[:, None, :] * delta).sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (n - 1) * d_o / d_e


def _features(
    counts: np.ndarray, mult: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, slice]]:
    """Per-item features whose weighted sums give every statistic (see module docstring).

    ``mult``: how many items each row stands for (compressed rows); it decides the modal number
    of raters that Fleiss' kappa uses."""
    if mult is None:
        counts = pairable(counts)
    k = counts.shape[1]
    m = counts.sum(1)
    outer = counts[:, :, None] * counts[:, None, :]
    outer[:, np.arange(k), np.arange(k)] -= counts
    coinc = (outer / (m - 1)[:, None, None]).reshape(len(counts), k * k)
    agree = (counts * (counts - 1)).sum(1, keepdims=True)
    pairs = (m * (m - 1))[:, None]
    modal = np.bincount(m.astype(int), weights=mult).argmax() if len(counts) else 0
    eq = (m == modal).astype(float)[:, None]
    p_i = np.zeros_like(eq)
    if modal > 1:
        p_i = eq * (((counts**2).sum(1, keepdims=True) - modal) / (modal * (modal - 1)))
    parts = [coinc, agree, pairs, eq, p_i, counts * eq]
    feats = np.concatenate(parts, axis=1)
    names = ["coinc", "agree", "pairs", "eq", "p_i", "fleiss_counts"]
    slices, start = {}, 0
    for name, part in zip(names, parts, strict=True):
        slices[name] = slice(start, start + part.shape[1])
        start += part.shape[1]
    slices["modal"] = modal  # type: ignore[assignment]
    return feats, slices


def _stats_from_sums(sums: np.ndarray, slices: dict[str, Any], level: str, k: int) -> dict:
    """Each statistic for a batch of summed features (B, f)."""
    coinc = sums[:, slices["coinc"]].reshape(-1, k, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = sums[:, slices["agree"]][:, 0] / sums[:, slices["pairs"]][:, 0]
        n_eq = sums[:, slices["eq"]][:, 0]
        p_bar = sums[:, slices["p_i"]][:, 0] / n_eq
        p_c = sums[:, slices["fleiss_counts"]] / (n_eq * slices["modal"])[:, None]
        p_e = (p_c**2).sum(1)
        fleiss = (p_bar - p_e) / (1 - p_e)
    return {
        "percent": percent,
        "fleiss": fleiss,
        "alpha": alpha_from_coincidences(coinc, level),
    }


LIBRARY_MAX_ITEMS = 50_000  # above this the point estimates use the compressed formulas
COMPRESS_TABLE_MAX = 2**22  # compress() counts in a table when base ** K keys fit in this many


def compress(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a count matrix and how often each occurs.

    Items with the same counts contribute the same to every statistic, and there are few distinct
    rows (3 raters over 4 categories: at most 20), so resampling n items is a multinomial draw
    over the distinct rows: exact, and independent of n."""
    counts = np.asarray(counts)
    if counts.shape[0] == 0:
        return counts, np.zeros(0)
    base = int(counts.max()) + 1
    if base ** counts.shape[1] < 2**62:
        digits = base ** np.arange(counts.shape[1], dtype=np.int64)
        keys = counts.astype(np.int64) @ digits  # each row as one number in base ``base``
        if base ** counts.shape[1] <= COMPRESS_TABLE_MAX:
            # Count the keys in a table instead of sorting them; decode the rows from the keys.
            table = np.bincount(keys)
            present = np.flatnonzero(table)
            rows = (present[:, None] // digits) % base
            return rows.astype(counts.dtype), table[present].astype(float)
        _, first, mult = np.unique(keys, return_index=True, return_counts=True)
        return counts[first], mult.astype(float)
    rows, mult = np.unique(counts, axis=0, return_counts=True)
    return rows, mult.astype(float)


def agreement_summary(
    counts: np.ndarray,
    *,
    level: Literal["nominal", "ordinal"] = "nominal",
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Percent agreement, Fleiss' kappa and Krippendorff's alpha with 95% bootstrap intervals.

    Point estimates come from the libraries up to ``LIBRARY_MAX_ITEMS`` items; above, from the
    same closed forms on the compressed rows that the bootstrap uses (the libraries' cost grows
    with n, Krippendorff's memory as n x K x K; tests check both agree). Intervals from
    multinomial resampling of the items."""
    counts = np.asarray(counts, dtype=float)
    k = counts.shape[1]
    usable = pairable(counts)
    n = len(usable)
    rows, mult = compress(usable)
    feats, slices = _features(rows, mult)
    rng = np.random.default_rng(seed)
    reps: dict[str, np.ndarray] = {
        "percent": np.array([]),
        "fleiss": np.array([]),
        "alpha": np.array([]),
    }
    if n:
        weights = rng.multinomial(n, mult / n, size=n_boot).astype(float)  # (B, distinct rows)
        reps = _stats_from_sums(weights @ feats, slices, level, k)
    if n <= LIBRARY_MAX_ITEMS:
        points = {
            "percent": percent_agreement(usable),
            "fleiss": fleiss_kappa(usable),
            "alpha": krippendorff_alpha(usable, level),
        }
        fleiss_n = len(fleiss_items(usable))
    else:
        closed = _stats_from_sums((mult @ feats)[None], slices, level, k)
        points = {name: float(values[0]) for name, values in closed.items()}
        fleiss_n = int(mult @ feats[:, slices["eq"]][:, 0])
    items = {"percent": n, "fleiss": fleiss_n, "alpha": n}
    out: dict[str, dict[str, Any]] = {}
    for name, value in points.items():
        low, high = percentile_interval(reps[name]) if n else (None, None)
        out[name] = {
            "value": None if not np.isfinite(value) else value,
            "low": low,
            "high": high,
            "items": items[name],
        }
    out["alpha"]["level"] = level
    return out


# -- Cohen's kappa for rater pairs --------------------------------------------------------------


def cohen_kappa_tables(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohen's kappa for a batch of confusion tables (P, K, K) of two raters on shared items.

    Returns (kappa, low, high, ) with a 95% interval from the large-sample standard error
    ``sqrt(po (1 - po) / (n (1 - pe)^2))`` (Cohen 1960)."""
    tables = np.asarray(tables, dtype=float)
    n = tables.sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = np.trace(tables, axis1=1, axis2=2) / n
        p_e = (tables.sum(2) * tables.sum(1)).sum(1) / n**2
        kappa = (p_o - p_e) / (1 - p_e)
        se = np.sqrt(p_o * (1 - p_o) / (n * (1 - p_e) ** 2))
    return kappa, kappa - 1.96 * se, kappa + 1.96 * se


def cohen_kappa_reference(table: np.ndarray) -> float:
    """statsmodels' Cohen's kappa for one table (the reference the vectorized version matches)."""
    from statsmodels.stats import inter_rater

    return float(inter_rater.cohens_kappa(np.asarray(table, dtype=float)).kappa)


PAIR_TABLE_MAX = 2**24  # rater id range squared up to which pair_tables counts in a table


def pair_tables(
    items: np.ndarray, raters: np.ndarray, codes: np.ndarray, n_cat: int, min_shared: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confusion tables of every rater pair sharing at least ``min_shared`` items.

    Inputs are parallel arrays (one entry per judgment with a code >= 0). Returns
    (rater_a, rater_b, tables) with rater_a < rater_b and tables[p, code_a, code_b]."""
    keep = codes >= 0
    items, raters, codes = items[keep], raters[keep], codes[keep]
    if len(items) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, n_cat, n_cat))
    base = int(raters.max()) + 1
    # Sort by (item, rater) through one int64 key: faster than a lexsort of two columns.
    order = np.argsort(items.astype(np.int64) * base + raters)
    items, raters, codes = items[order], raters[order], codes[order]
    starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
    sizes = np.diff(np.r_[starts, len(items)])
    a_idx, b_idx = [], []
    for size in np.unique(sizes[sizes >= 2]):
        group_starts = starts[sizes == size]
        ii, jj = np.triu_indices(int(size), k=1)
        a_idx.append((group_starts[:, None] + ii[None, :]).ravel())
        b_idx.append((group_starts[:, None] + jj[None, :]).ravel())
    if not a_idx:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, n_cat, n_cat))
    a = np.concatenate(a_idx)
    b = np.concatenate(b_idx)
    ra, rb = raters[a], raters[b]
    pair_key = ra.astype(np.int64) * base + rb
    if base * base <= PAIR_TABLE_MAX:  # count pairs in a table rather than sorting them
        seen = np.bincount(pair_key, minlength=base * base) > 0
        keys = np.flatnonzero(seen)
        slot = np.cumsum(seen) - 1
        pair_index = slot[pair_key]
    else:
        keys, pair_index = np.unique(pair_key, return_inverse=True)
        pair_index = pair_index.ravel()
    pair_ids = np.stack([keys // base, keys % base], axis=1)
    flat = pair_index * n_cat * n_cat + codes[a] * n_cat + codes[b]
    tables = np.bincount(flat, minlength=len(pair_ids) * n_cat * n_cat).reshape(
        len(pair_ids), n_cat, n_cat
    )
    enough = tables.sum((1, 2)) >= min_shared
    return pair_ids[enough, 0], pair_ids[enough, 1], tables[enough].astype(float)
