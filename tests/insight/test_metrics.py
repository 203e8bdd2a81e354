"""Every statistic against a published worked example and against the library on random data."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import kendalltau
from statsmodels.stats import inter_rater

from annotation.metrics import agreement, bootstrap, bradley_terry, proportions

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
# twelve units, values 1-5, missing data. Published: nominal 0.743, ordinal 0.815 (interval 0.849).
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories -> 0.210.
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _kripp_counts() -> np.ndarray:
    data = np.array(
        [[np.nan if v is None else v for v in row] for row in KRIPPENDORFF_EXAMPLE], dtype=float
    )
    raters, items = np.nonzero(~np.isnan(data))
    codes = data[raters, items].astype(int) - 1
    return agreement.value_counts(items, codes, data.shape[1], 5)


def test_krippendorff_published_example() -> None:
    counts = _kripp_counts()
    assert agreement.krippendorff_alpha(counts, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert agreement.krippendorff_alpha(counts, "ordinal") == pytest.approx(0.815, abs=5e-4)


def test_weighted_alpha_matches_published_example() -> None:
    """The bootstrap's weighted formula at weight 1 is the same statistic."""
    feats, slices = agreement._features(_kripp_counts())
    stats = agreement._stats_from_sums(feats.sum(0, keepdims=True), slices, "nominal", 5)
    assert stats["alpha"][0] == pytest.approx(0.743, abs=5e-4)
    stats = agreement._stats_from_sums(feats.sum(0, keepdims=True), slices, "ordinal", 5)
    assert stats["alpha"][0] == pytest.approx(0.815, abs=5e-4)


def test_fleiss_wikipedia_example() -> None:
    counts = np.array(FLEISS_EXAMPLE, dtype=float)
    assert agreement.fleiss_kappa(counts) == pytest.approx(0.210, abs=5e-4)
    feats, slices = agreement._features(counts)
    stats = agreement._stats_from_sums(feats.sum(0, keepdims=True), slices, "nominal", 5)
    assert stats["fleiss"][0] == pytest.approx(0.210, abs=5e-4)
    # Wikipedia: P-bar = 0.378; percent agreement of all rater pairs is the same for constant m.
    assert agreement.percent_agreement(counts) == pytest.approx(0.378, abs=5e-4)


def test_cohen_kappa_textbook_example() -> None:
    # Wikipedia, "Cohen's kappa": 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> 0.4.
    table = np.array([[20, 5], [10, 15]])
    kappa, low, high = agreement.cohen_kappa_tables(table[None])
    assert kappa[0] == pytest.approx(0.4)
    assert agreement.cohen_kappa_reference(table) == pytest.approx(0.4)
    assert low[0] < 0.4 < high[0]


def _random_reliability(rng: np.random.Generator, raters: int, items: int, k: int, missing: float):
    truth = rng.integers(0, k, items)
    data = np.where(rng.random((raters, items)) < 0.6, truth, rng.integers(0, k, (raters, items)))
    data = data.astype(float)
    data[rng.random((raters, items)) < missing] = np.nan
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_alpha_matches_library_on_random_data(seed: int, level: str) -> None:
    rng = np.random.default_rng(seed)
    data = _random_reliability(rng, raters=5, items=200, k=4, missing=0.3)
    expected = krippendorff.alpha(
        reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2, 3]
    )
    raters, items = np.nonzero(~np.isnan(data))
    counts = agreement.value_counts(items, data[raters, items].astype(int), 200, 4)
    assert agreement.krippendorff_alpha(counts, level) == pytest.approx(expected, abs=1e-9)
    feats, slices = agreement._features(counts)
    weighted = agreement._stats_from_sums(feats.sum(0, keepdims=True), slices, level, 4)
    assert weighted["alpha"][0] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", [4, 5])
def test_bootstrap_weights_equal_library_on_resampled_items(seed: int) -> None:
    """A bootstrap replicate (integer weights) equals the library on the duplicated items."""
    rng = np.random.default_rng(seed)
    data = _random_reliability(rng, raters=4, items=120, k=4, missing=0.2)
    raters, items = np.nonzero(~np.isnan(data))
    counts = agreement.value_counts(items, data[raters, items].astype(int), 120, 4)
    usable = agreement.pairable(counts)
    feats, slices = agreement._features(usable)
    weights = next(bootstrap.resample_weights(len(usable), 1, rng))[0]
    stats = agreement._stats_from_sums((weights @ feats)[None], slices, "ordinal", 4)
    duplicated = np.repeat(usable, weights.astype(int), axis=0)
    assert stats["alpha"][0] == pytest.approx(
        agreement.krippendorff_alpha(duplicated, "ordinal"), abs=1e-9
    )
    assert stats["percent"][0] == pytest.approx(agreement.percent_agreement(duplicated))
    assert stats["fleiss"][0] == pytest.approx(agreement.fleiss_kappa(duplicated), abs=1e-9)


@pytest.mark.parametrize("seed", [6, 7])
def test_fleiss_matches_statsmodels_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = _random_reliability(rng, raters=6, items=300, k=3, missing=0.0).astype(int)
    table, _ = inter_rater.aggregate_raters(data.T, n_cat=3)
    counts = agreement.value_counts(np.tile(np.arange(300), 6), data.ravel(), 300, 3)
    assert agreement.fleiss_kappa(counts) == pytest.approx(inter_rater.fleiss_kappa(table))


def test_cohen_kappa_pairs_match_statsmodels_on_random_data() -> None:
    rng = np.random.default_rng(8)
    n_items, n_raters = 400, 6
    items = np.repeat(np.arange(n_items), 3)
    raters = np.concatenate([rng.choice(n_raters, 3, replace=False) for _ in range(n_items)])
    truth = rng.integers(0, 4, n_items)
    codes = np.where(rng.random(len(items)) < 0.7, truth[items], rng.integers(0, 4, len(items)))
    ra, rb, tables = agreement.pair_tables(items, raters, codes, 4, min_shared=10)
    kappa, _, _ = agreement.cohen_kappa_tables(tables)
    assert len(ra) == 15  # every pair of 6 raters shares items
    for a, b, t, k in zip(ra, rb, tables, kappa, strict=True):
        shared = np.intersect1d(items[raters == a], items[raters == b])
        code_a = {i: c for i, r, c in zip(items, raters, codes, strict=True) if r == a}
        code_b = {i: c for i, r, c in zip(items, raters, codes, strict=True) if r == b}
        manual = np.zeros((4, 4))
        for i in shared:
            manual[code_a[i], code_b[i]] += 1
        np.testing.assert_array_equal(t, manual)
        assert k == pytest.approx(agreement.cohen_kappa_reference(manual))


def test_agreement_summary_interval_brackets_estimate_and_counts_items() -> None:
    rng = np.random.default_rng(9)
    data = _random_reliability(rng, raters=3, items=300, k=4, missing=0.1)
    raters, items = np.nonzero(~np.isnan(data))
    counts = agreement.value_counts(items, data[raters, items].astype(int), 300, 4)
    summary = agreement.agreement_summary(counts, level="nominal", n_boot=300)
    for stat in ("percent", "fleiss", "alpha"):
        s = summary[stat]
        assert s["low"] < s["value"] < s["high"]
        assert s["high"] - s["low"] < 0.2
    assert summary["alpha"]["items"] == int((counts.sum(1) >= 2).sum())
    assert summary["fleiss"]["items"] == int((counts.sum(1) == 3).sum())


def test_kendall_tau_known_value() -> None:
    # Two rankings of five items with one swapped adjacent pair: tau = (9 - 1) / 10 = 0.8.
    assert kendalltau([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]).statistic == pytest.approx(0.8)


def test_binomial_interval_wilson_known_value() -> None:
    # Wilson interval for 7/10: (0.3968, 0.8922) (Newcombe 1998, Table I).
    p = proportions.proportion(7, 10)
    assert p.low == pytest.approx(0.3968, abs=1e-4)
    assert p.high == pytest.approx(0.8922, abs=1e-4)
    assert not p.biased
    assert proportions.proportion(700, 1000).biased
    assert proportions.proportion(0, 0).share is None


def test_bradley_terry_matches_logistic_regression() -> None:
    """The MLE equals a logistic regression on +1/-1 design (statsmodels) without ties."""
    rng = np.random.default_rng(10)
    true = np.array([0.0, 0.5, 1.0, -0.7])
    a = rng.integers(0, 4, 3000)
    b = (a + rng.integers(1, 4, 3000)) % 4
    a_wins = rng.random(3000) < 1 / (1 + np.exp(-(true[a] - true[b])))
    winners = np.where(a_wins, a, b)
    losers = np.where(a_wins, b, a)
    empty = np.zeros(0, dtype=int)
    wins = bradley_terry.win_matrix(winners, losers, empty, empty, 4)
    logp = bradley_terry.fit_strengths(wins)
    design = np.zeros((3000, 4))
    design[np.arange(3000), a] = 1.0
    design[np.arange(3000), b] = -1.0
    fit = sm.Logit(a_wins.astype(float), design[:, 1:]).fit(disp=0)
    np.testing.assert_allclose(logp[1:] - logp[0], fit.params, atol=1e-6)
    board = bradley_terry.leaderboard(["s0", "s1", "s2", "s3"], wins, prior=0.0, n_boot=100)
    assert list(np.argsort(-board.rating)) == [2, 1, 0, 3]
    assert np.all(board.low <= board.rating)
    assert np.all(board.rating <= board.high)
    assert board.win_rate[2, 3] + board.win_rate[3, 2] == pytest.approx(1.0)


def test_bradley_terry_elo_scale_known_value() -> None:
    # A beats B 10 times out of 11: p_A / p_B = 10 -> 400 Elo points apart.
    wins = np.array([[0.0, 10.0], [1.0, 0.0]])
    board = bradley_terry.leaderboard(["A", "B"], wins, prior=0.0, n_boot=50)
    assert board.rating[0] - board.rating[1] == pytest.approx(400.0, abs=1e-6)


def test_bootstrap_mean_interval() -> None:
    values = np.random.default_rng(11).normal(2.0, 1.0, 2000)
    low, high = bootstrap.bootstrap_mean(values, n_boot=400)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / np.sqrt(2000), rel=0.25)


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_compressed_point_estimates_equal_libraries(monkeypatch, level: str) -> None:
    """Above LIBRARY_MAX_ITEMS the summary uses compressed rows: same numbers as the libraries,
    also with a varying number of raters per item (Fleiss on the modal count)."""
    rng = np.random.default_rng(12)
    data = _random_reliability(rng, raters=4, items=500, k=5, missing=0.3)
    raters, items = np.nonzero(~np.isnan(data))
    counts = agreement.value_counts(items, data[raters, items].astype(int), 500, 5)
    expected = agreement.agreement_summary(counts, level=level, n_boot=50)
    monkeypatch.setattr(agreement, "LIBRARY_MAX_ITEMS", 0)
    compressed = agreement.agreement_summary(counts, level=level, n_boot=50)
    assert compressed["alpha"]["value"] == pytest.approx(
        krippendorff.alpha(
            reliability_data=data, level_of_measurement=level, value_domain=[0, 1, 2, 3, 4]
        ),
        abs=1e-9,
    )
    assert compressed["alpha"]["value"] == pytest.approx(expected["alpha"]["value"], abs=1e-9)
    rows, mult = agreement.compress(agreement.pairable(counts))
    feats, slices = agreement._features(rows, mult)
    stats = agreement._stats_from_sums((mult @ feats)[None], slices, level, 5)
    assert stats["fleiss"][0] == pytest.approx(agreement.fleiss_kappa(counts), abs=1e-9)
    assert stats["percent"][0] == pytest.approx(agreement.percent_agreement(counts), abs=1e-12)
    assert len(rows) < 200 < mult.sum()
    for name in ("percent", "fleiss"):  # the summary's own closed-form point estimates
        assert compressed[name]["value"] == pytest.approx(expected[name]["value"], abs=1e-9)
        assert compressed[name]["items"] == expected[name]["items"]
    assert compressed["fleiss"]["items"] < compressed["percent"]["items"]


# -- fast paths: each equals the general one -------------------------------------------------


def test_compress_table_path_equals_sorting_path(monkeypatch) -> None:
    rng = np.random.default_rng(13)
    counts = rng.multinomial(3, [0.5, 0.3, 0.15, 0.05], size=5000).astype(float)
    rows, mult = agreement.compress(counts)
    monkeypatch.setattr(agreement, "COMPRESS_TABLE_MAX", 0)
    rows_sorted, mult_sorted = agreement.compress(counts)
    np.testing.assert_array_equal(rows, rows_sorted)
    np.testing.assert_array_equal(mult, mult_sorted)
    assert mult.sum() == 5000
    assert len(rows) == len(np.unique(counts, axis=0))


def _pair_tables_by_loop(items, raters, codes, n_cat, min_shared):
    by_item: dict[int, dict[int, int]] = {}
    for i, r, c in zip(items.tolist(), raters.tolist(), codes.tolist(), strict=True):
        if c >= 0:
            by_item.setdefault(i, {})[r] = c
    tables: dict[tuple[int, int], np.ndarray] = {}
    for answers in by_item.values():
        for ra in answers:
            for rb in answers:
                if ra < rb:
                    t = tables.setdefault((ra, rb), np.zeros((n_cat, n_cat)))
                    t[answers[ra], answers[rb]] += 1
    return {pair: t for pair, t in tables.items() if t.sum() >= min_shared}


@pytest.mark.parametrize("table_max", [agreement.PAIR_TABLE_MAX, 0])
def test_pair_tables_equal_a_plain_loop(monkeypatch, table_max: int) -> None:
    monkeypatch.setattr(agreement, "PAIR_TABLE_MAX", table_max)
    rng = np.random.default_rng(14)
    items = np.repeat(np.arange(300), 3)
    raters = np.concatenate([rng.choice(12, 3, replace=False) for _ in range(300)])
    codes = rng.integers(-1, 4, len(items))  # -1: missing
    order = rng.permutation(len(items))
    ra, rb, tables = agreement.pair_tables(items[order], raters[order], codes[order], 4, 5)
    expected = _pair_tables_by_loop(items, raters, codes, 4, 5)
    assert sorted(zip(ra.tolist(), rb.tolist(), strict=True)) == sorted(expected)
    for a, b, t in zip(ra.tolist(), rb.tolist(), tables, strict=True):
        np.testing.assert_array_equal(t, expected[(a, b)])
    empty = agreement.pair_tables(items[:0], raters[:0], codes[:0], 4, 5)
    assert [len(x) for x in empty] == [0, 0, 0]


def test_bradley_terry_batch_equals_separate_fits() -> None:
    rng = np.random.default_rng(15)
    wins = rng.integers(0, 40, size=(30, 4, 4)).astype(float)
    wins[:, np.arange(4), np.arange(4)] = 0.0
    wins[3, 0, :] = 0.0  # a system that never wins: the prior keeps it finite
    batch = bradley_terry.fit_strengths_batch(wins, prior=0.1, tol=1e-6, max_iter=2000)
    for b in range(len(wins)):
        single = bradley_terry.fit_strengths(wins[b], prior=0.1, tol=1e-6, max_iter=2000)
        np.testing.assert_allclose(batch[b], single, rtol=0, atol=1e-12)
