"""Temperature scaling of a reward model's margins (Guo et al. 2017, "On Calibration of Modern
Neural Networks", https://arxiv.org/abs/1706.04599).

A Bradley-Terry reward model says a beats b with ``p = sigmoid(r_a - r_b)``. A small model
trained on a few hundred noisy labels is overconfident: its margins are large whether it is
right or not, so ``p`` far from 1/2 does not mean it knows. One scalar ``T``, fitted on held-out
pairs to minimise the negative log-likelihood of ``sigmoid(margin / T)``, fixes that without
changing the ranking: a reward model at chance gets a huge ``T`` (every pair a coin flip), a good
one keeps ``T`` near 1. Active learning reads uncertainty from the calibrated margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

# Bounds of the fitted temperature: below 0.05 every margin is a certainty, above 1000 every
# realistic margin is a coin flip; the likelihood is flat beyond both.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 1000.0


def fit_temperature(margins: Sequence[float]) -> float:
    """The ``T`` that minimises the mean of ``-log sigmoid(m / T)`` over held-out margins
    ``m = r_preferred - r_other`` (labelled pairs: the rater's choice first)."""
    m = np.asarray(margins, dtype=np.float64)
    if m.size == 0:
        raise ValueError("fit_temperature needs at least one held-out margin")

    def nll(log_t: float) -> float:
        return float(np.logaddexp(0.0, -m / math.exp(log_t)).mean())

    bounds = (math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE))
    result = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-4})
    return float(math.exp(result.x))
