"""Temperature scaling recovers the temperature that generated the labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.calibration import MAX_TEMPERATURE, MIN_TEMPERATURE, fit_temperature


def _nll(margins: np.ndarray, t: float) -> float:
    return float(np.mean(np.log1p(np.exp(-margins / t))))


def test_recovers_the_generating_temperature():
    # a model whose margins are 4x too confident: labels follow sigmoid(s / 4)
    rng = np.random.default_rng(0)
    s = rng.normal(0.0, 6.0, 20_000)
    preferred_first = rng.random(s.size) < 1.0 / (1.0 + np.exp(-s / 4.0))
    margins = np.where(preferred_first, s, -s)  # r_preferred - r_other

    assert fit_temperature(margins.tolist()) == pytest.approx(4.0, rel=0.05)


def test_matches_a_grid_search():
    margins = np.array([3.0, -1.0, 0.5, 2.0, -2.5, 4.0, 1.0, -0.2])
    grid = np.exp(np.linspace(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE), 20_001))
    best = grid[np.argmin([_nll(margins, t) for t in grid])]

    assert fit_temperature(margins.tolist()) == pytest.approx(best, rel=1e-2)


def test_a_model_at_chance_is_a_coin_flip_and_a_perfect_one_is_sharp():
    assert fit_temperature([5.0, -5.0, 3.0, -3.0]) > 100  # as often wrong as right
    assert fit_temperature([-2.0, -1.0]) == pytest.approx(MAX_TEMPERATURE, rel=1e-2)
    assert fit_temperature([2.0, 3.0, 5.0]) == pytest.approx(MIN_TEMPERATURE, rel=1e-2)
    with pytest.raises(ValueError, match="at least one"):
        fit_temperature([])
