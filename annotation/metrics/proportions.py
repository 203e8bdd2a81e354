"""Binomial proportions with intervals (Wilson score, via statsmodels) and a two-sided test."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``n``; ``low``/``high`` the 95% Wilson interval; ``p_value`` of a
    two-sided exact binomial test against ``expected``; ``biased`` when the interval excludes it."""

    successes: int
    n: int
    share: float | None
    low: float | None
    high: float | None
    expected: float
    p_value: float | None
    biased: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def proportion(
    successes: int, n: int, *, expected: float = 0.5, alpha: float = 0.05, test: bool = True
) -> Proportion:
    """Share with its Wilson interval. ``n == 0`` gives an empty (None) estimate, never biased.

    ``test=False`` skips the exact binomial p-value (None): the interval alone decides ``biased``
    and hundreds of per-rater rows stay cheap."""
    successes, n = int(successes), int(n)
    if n == 0:
        return Proportion(0, 0, None, None, None, expected, None, False)
    from scipy.stats import binomtest  # heavy imports stay out of the web process start-up
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    p_value = float(binomtest(successes, n, expected).pvalue) if test else None
    return Proportion(
        successes=successes,
        n=n,
        share=successes / n,
        low=float(low),
        high=float(high),
        expected=expected,
        p_value=p_value,
        biased=bool(low > expected or high < expected),
    )
