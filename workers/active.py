"""Active learning: which pairs of new candidates to put in front of raters.

For each prompt the reward model scores the k candidates; a pair (a, b) is informative when the
model cannot tell them apart. Under Bradley-Terry the model's belief that a beats b is
``p = sigmoid(r_a - r_b)``; the pair's uncertainty is ``1 - |2p - 1|`` (1 = a coin flip, 0 =
certain); the caller passes margins already divided by the reward model's calibration
temperature (``training/calibration.py``), so "certain" means "right on held-out pairs".
Opt-in (``similarity_power`` > 0), the uncertainty is weighted by how much of the two responses
is shared (:func:`similarity`): a label on a *minimal pair* says which difference is better, while
on two unrelated texts it is spread over every token they do not share, and DPO's gradient on the
tokens both responses share cancels (CLAIR, D'Oosterlinck et al. 2024,
https://arxiv.org/abs/2408.06266, on minimally contrastive preference pairs). It is off by
default: on the simulated loop it measured no better than the margin (docs/loop.md).
Two candidates with the same text are never paired.
We take the most informative pairs (at most ``per_prompt`` per prompt, so one prompt cannot
swallow the budget) and fill ``random_share`` of the budget with pairs drawn uniformly at random
from the rest, so the labels stay an unbiased sample too (the reward model's blind spots are, by
definition, not where it is uncertain). Without scores (no reward model yet) every pair is random.

The informativeness becomes the task's ``priority``: raters get the most informative pairs first.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Indel


@dataclass(frozen=True)
class PairChoice:
    prompt_id: int
    response_ids: tuple[int, int]
    uncertainty: float
    reason: str  # "uncertain" or "random"


def uncertainty(r_a: float, r_b: float) -> float:
    """1 - |2 sigmoid(r_a - r_b) - 1| = 1 - |tanh((r_a - r_b) / 2)|."""
    return 1.0 - abs(math.tanh((r_a - r_b) / 2.0))


def similarity(text_a: str, text_b: str) -> float:
    """Share of two texts that is common, 2 * LCS / (len a + len b): 1 = equal, 0 = disjoint."""
    return Indel.normalized_similarity(text_a, text_b)


def _entropy(p: float) -> float:
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0.0)


def bald(deltas: Sequence[float]) -> float:
    """Ensemble disagreement on a pair from each head's reward difference r_a - r_b (nats)."""
    if not deltas:
        raise ValueError("bald needs at least one head")
    ps = [0.5 * (1.0 + math.tanh(d / 2.0)) for d in deltas]  # sigmoid, without overflow
    return max(0.0, _entropy(sum(ps) / len(ps)) - sum(map(_entropy, ps)) / len(ps))


def select_pairs(
    candidates: Mapping[int, Sequence[int]],
    scores: Mapping[int, float] | None,
    *,
    budget: int,
    random_share: float,
    per_prompt: int = 2,
    seed: int = 0,
    heads: Mapping[int, Sequence[float]] | None = None,
    texts: Mapping[int, str] | None = None,
    similarity_power: float = 0.0,
    uncertainty_power: float = 1.0,
) -> list[PairChoice]:
    """``budget`` pairs from each prompt's candidate responses (prompt id -> response ids).

    ``heads`` (response id -> reward per bootstrap head) switches the informativeness from the
    margin of ``scores`` to the heads' disagreement (:func:`bald`). ``texts`` (response id ->
    text) weights it by :func:`similarity` to the power ``similarity_power`` (0 = unweighted)
    and keeps two candidates with the same text from ever being paired. ``uncertainty_power``
    is the margin's own exponent (0 = rank by similarity alone)."""
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")
    rng = random.Random(seed)

    score_of: Mapping[int, float] = scores or {}

    def informativeness(a: int, b: int) -> float:  # only asked with scores
        if heads:
            value = bald([ha - hb for ha, hb in zip(heads[a], heads[b], strict=True)])
        else:
            value = uncertainty(score_of[a], score_of[b]) ** uncertainty_power
        if texts and similarity_power:
            value *= similarity(texts[a], texts[b]) ** similarity_power
        return value

    pool = [
        PairChoice(prompt_id, (a, b), informativeness(a, b) if scores else 0.0, "uncertain")
        for prompt_id, ids in sorted(candidates.items())
        for a, b in itertools.combinations(ids, 2)
        if not texts or texts[a] != texts[b]  # two copies of one text: nothing to compare
    ]
    if not scores:
        rng.shuffle(pool)
        return [PairChoice(c.prompt_id, c.response_ids, 0.0, "random") for c in pool[:budget]]
    n_random = round(budget * random_share)
    ranked = sorted(pool, key=lambda c: (-c.uncertainty, c.prompt_id, c.response_ids))
    chosen: list[PairChoice] = []
    per: Counter[int] = Counter()
    for c in ranked:
        if len(chosen) >= budget - n_random:
            break
        if per[c.prompt_id] < per_prompt:
            chosen.append(c)
            per[c.prompt_id] += 1
    taken = {c.response_ids for c in chosen}
    rest = [c for c in pool if c.response_ids not in taken]
    rng.shuffle(rest)
    chosen += [
        PairChoice(c.prompt_id, c.response_ids, c.uncertainty, "random")
        for c in rest[: budget - len(chosen)]
    ]
    return chosen
