"""Bradley-Terry ratings of systems from pairwise outcomes, with bootstrap intervals.

Model: P(i beats j) = p_i / (p_i + p_j). Fitted by the MM algorithm of Hunter (2004), "MM
algorithms for generalized Bradley-Terry models", Ann. Statist. 32(1):
``p_i <- W_i / sum_j N_ij / (p_i + p_j)`` with W_i the wins of i and N_ij the games between i and
j; a tie counts as half a win for each side (as public chatbot leaderboards do). Ratings are
reported on the Elo scale, ``1000 + 400 log10(p_i / geomean(p))``, so a 400-point gap means
10:1 odds. ``prior`` adds that many pseudo-games, split evenly, between every pair: it keeps the
maximum finite when a system never loses (0 = plain MLE, used by the reference test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation.metrics.bootstrap import DEFAULT_RESAMPLES, percentile_interval

ELO_BASE = 1000.0
ELO_SCALE = 400.0


def win_matrix(
    winners: np.ndarray, losers: np.ndarray, ties_a: np.ndarray, ties_b: np.ndarray, k: int
) -> np.ndarray:
    """W[i, j] = wins of i over j (ties add 0.5 both ways). Inputs: system indices."""
    wins = np.zeros((k, k))
    np.add.at(wins, (winners, losers), 1.0)
    np.add.at(wins, (ties_a, ties_b), 0.5)
    np.add.at(wins, (ties_b, ties_a), 0.5)
    return wins


def fit_strengths(
    wins: np.ndarray, *, prior: float = 0.0, tol: float = 1e-10, max_iter: int = 10_000
) -> np.ndarray:
    """log p (mean zero) for a win matrix (k, k). MM iterations until the change is below tol."""
    return fit_strengths_batch(wins[None], prior=prior, tol=tol, max_iter=max_iter)[0]


def fit_strengths_batch(
    wins: np.ndarray, *, prior: float = 0.0, tol: float = 1e-10, max_iter: int = 10_000
) -> np.ndarray:
    """:func:`fit_strengths` for a batch of win matrices (B, k, k) at once: (B, k).

    Each matrix iterates until its own change is below ``tol`` (then it is left alone), so every
    row is what a separate fit gives; the batch only shares the numpy calls."""
    k = wins.shape[-1]
    wins = wins + prior / 2.0 * (1.0 - np.eye(k))
    games = wins + wins.transpose(0, 2, 1)
    total_wins = wins.sum(2)  # (B, k)
    p = np.ones(wins.shape[:2])
    active = np.arange(len(p))  # the fits still iterating
    for _ in range(max_iter):
        if len(active) == 0:
            break
        old = p[active]  # (b, k)
        denom = (games[active] / (old[:, :, None] + old[:, None, :])).sum(2)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(denom > 0, total_wins[active] / denom, old)
        new = np.maximum(new, 1e-300)
        new /= np.exp(np.log(new).mean(1, keepdims=True))
        p[active] = new
        active = active[np.max(np.abs(np.log(new) - np.log(old)), axis=1) >= tol]
    logp = np.log(p)
    return logp - logp.mean(1, keepdims=True)


def to_elo(logp: np.ndarray) -> np.ndarray:
    return ELO_BASE + ELO_SCALE * logp / np.log(10.0)


@dataclass(frozen=True)
class Leaderboard:
    systems: list[str]
    rating: np.ndarray  # (k,) Elo scale
    low: np.ndarray  # (k,) 2.5% bootstrap percentile
    high: np.ndarray  # (k,) 97.5%
    games: np.ndarray  # (k,) comparisons each system took part in
    win_rate: (
        np.ndarray
    )  # (k, k) share of i's games against j that i won (ties = half); NaN if none


def leaderboard(
    systems: list[str],
    wins: np.ndarray,
    *,
    prior: float = 0.1,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Leaderboard:
    """Ratings with intervals from resampling the games (multinomial over the win matrix cells)."""
    k = len(systems)
    rating = to_elo(fit_strengths(wins, prior=prior))
    total = wins.sum()
    reps = np.full((n_boot, k), np.nan)
    if total > 0 and k > 1:
        rng = np.random.default_rng(seed)
        # Half-wins (ties) become whole half-units so the cells can be resampled as counts.
        units = np.rint(wins * 2).astype(np.int64).ravel()
        n_units = int(units.sum())
        draws = rng.multinomial(n_units, units / n_units, size=n_boot).reshape(-1, k, k) / 2.0
        reps = to_elo(fit_strengths_batch(draws, prior=prior, tol=1e-6, max_iter=2000))
    low = np.array([percentile_interval(reps[:, i])[0] or np.nan for i in range(k)])
    high = np.array([percentile_interval(reps[:, i])[1] or np.nan for i in range(k)])
    games = wins + wins.T
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(games > 0, wins / games, np.nan)
    return Leaderboard(systems, rating, low, high, games.sum(1), win_rate)
