"""The simulated raters' hidden rules: pure functions of a response's text (workers/simulate.py).

A module of their own because two sides use them: the simulation (its raters answer by them) and
the online-RL step (``gold_rule``: the rule as a gold scorer, ``workers/online.py``). Neither
then imports the other, and the simulation, which runs the cycle, stays above the cycle.
"""

from __future__ import annotations

from collections.abc import Callable

HIDDEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz ")


def hidden_score(text: str) -> float:
    """The raters' hidden rule: share of characters that are lowercase ASCII letters or spaces."""
    return sum(ch in HIDDEN_CHARS for ch in text) / len(text) if text else 0.0


def lipogram_score(text: str) -> float:
    """The raters' hidden rule for a pretrained base: share of characters that are not "e"/"E"."""
    return 1 - text.lower().count("e") / len(text) if text else 0.0


def finished_and_concise_score(text: str) -> float:
    """The rule for a real chat model's answers (:func:`training.gold.finished_and_concise`)."""
    from training.gold import finished_and_concise

    return finished_and_concise(text)


RULES: dict[str, Callable[[str], float]] = {
    "lowercase": hidden_score,
    "lipogram": lipogram_score,
    "finished-concise": finished_and_concise_score,
}
RULE_DESCRIPTIONS = {
    "lowercase": "share of lowercase letters and spaces",
    "lipogram": 'share of characters that are not "e"',
    "finished-concise": "1 for an answer that ends its sentence, plus 0.5 x (1 - characters/300)",
}
