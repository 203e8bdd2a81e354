"""The win rate's 95 % Wilson interval against hand-computed values."""

from __future__ import annotations

import pytest

from training.evaluate import wilson_interval


@pytest.mark.parametrize(
    ("rate", "n", "low", "high"),
    [
        # p = 0.8, n = 100: (0.8 + 0.019208 ± 1.96·sqrt(0.0016 + 0.00009604)) / 1.038416
        (0.8, 100, 0.711169, 0.866634),
        (0.5, 16, 0.279992, 0.720008),
        (1.0, 16, 0.806387, 1.0),
    ],
)
def test_wilson_interval(rate, n, low, high):
    lo, hi = wilson_interval(rate, n)
    assert lo == pytest.approx(low, abs=1e-6)
    assert hi == pytest.approx(high, abs=1e-6)


def test_no_trials_says_nothing():
    assert wilson_interval(0.0, 0) == (0.0, 1.0)
