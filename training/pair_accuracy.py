"""A reward model's accuracy on preference pairs, split by which response is longer.

On the public HH-RLHF sample a small reward model can reach a respectable plain accuracy by
learning "the shorter answer wins", because the preferred answer is shorter more often than not.
Plain accuracy hides that; the length-balanced accuracy (the mean of the accuracies on the pairs
whose preferred response is the longer one and on those whose preferred response is the shorter
one) does not: a pure length rule scores 0.5 on it whatever the data's length mix.

Pure Python on purpose (no torch): the trainer's evaluation, ``python -m training eval-rm`` and
anything else that holds scores and lengths use the same function.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_balanced_accuracy(
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    chosen_lengths: Sequence[int],
    rejected_lengths: Sequence[int],
) -> dict[str, float]:
    """Plain and length-balanced pairwise accuracy of scores against preference labels.

    Pair ``i`` is *right* when ``chosen_scores[i] > rejected_scores[i]`` (a tie in score is
    wrong, as in the trainer's ``rewards/accuracies``). Lengths are those of the two responses
    (characters, for a measure that does not depend on the tokenizer). Returned:

    - ``accuracy``: share of all pairs that are right;
    - ``accuracy_longer_preferred`` / ``accuracy_shorter_preferred``: the same over the pairs
      whose chosen response is longer / shorter than the rejected one;
    - ``length_balanced_accuracy``: the mean of those two (0.5 for any pure length rule);
    - ``shorter_wins_agreement``: share of the pairs of unequal lengths where the shorter
      response scores strictly higher (how far the model behaves like "shorter wins");
    - ``pairs``, ``pairs_longer_preferred``, ``pairs_shorter_preferred``,
      ``pairs_equal_length``: the counts behind them.

    Pairs of equal length count in ``accuracy`` only: they prefer neither side, so they belong
    to neither group. A figure over an empty group is left out (undefined, not 0).
    """
    n = len(chosen_scores)
    if not n == len(rejected_scores) == len(chosen_lengths) == len(rejected_lengths):
        raise ValueError("length_balanced_accuracy: the four sequences differ in length")
    right = [c > r for c, r in zip(chosen_scores, rejected_scores, strict=True)]
    longer = [i for i in range(n) if chosen_lengths[i] > rejected_lengths[i]]
    shorter = [i for i in range(n) if chosen_lengths[i] < rejected_lengths[i]]
    out: dict[str, float] = {
        "pairs": float(n),
        "pairs_longer_preferred": float(len(longer)),
        "pairs_shorter_preferred": float(len(shorter)),
        "pairs_equal_length": float(n - len(longer) - len(shorter)),
    }
    if n:
        out["accuracy"] = sum(right) / n
    if longer:
        out["accuracy_longer_preferred"] = sum(right[i] for i in longer) / len(longer)
    if shorter:
        out["accuracy_shorter_preferred"] = sum(right[i] for i in shorter) / len(shorter)
    if longer and shorter:
        out["length_balanced_accuracy"] = (
            out["accuracy_longer_preferred"] + out["accuracy_shorter_preferred"]
        ) / 2
    if longer or shorter:
        # the shorter side is rejected on "longer preferred" pairs and chosen on the others
        shorter_higher = sum(rejected_scores[i] > chosen_scores[i] for i in longer)
        shorter_higher += sum(right[i] for i in shorter)
        out["shorter_wins_agreement"] = shorter_higher / (len(longer) + len(shorter))
    return out


def describe(figures: dict[str, float]) -> str:
    """The figures of :func:`length_balanced_accuracy` as a few aligned lines for a terminal."""

    def fig(key: str) -> str:
        value = figures.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    n = int(figures.get("pairs", 0))
    longer, shorter = (
        int(figures["pairs_longer_preferred"]),
        int(figures["pairs_shorter_preferred"]),
    )
    rows = [
        (
            "pairs",
            f"{n} ({longer} preferred longer, {shorter} preferred shorter, "
            f"{n - longer - shorter} of equal length)",
        ),
        ("accuracy", fig("accuracy")),
        ("length-balanced accuracy", fig("length_balanced_accuracy")),
        ("  when the longer is preferred", fig("accuracy_longer_preferred")),
        ("  when the shorter is preferred", fig("accuracy_shorter_preferred")),
        ('agrees with "shorter wins"', fig("shorter_wins_agreement")),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
