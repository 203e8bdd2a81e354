"""Active-learning pair selection: least certain pairs first, plus an unbiased random share."""

from __future__ import annotations

import math

import pytest

from workers.active import select_pairs, uncertainty


def test_uncertainty_is_one_for_a_coin_flip_and_falls_with_the_gap():
    assert uncertainty(1.0, 1.0) == 1.0
    p = 1 / (1 + math.exp(-2.0))
    assert uncertainty(2.0, 0.0) == pytest.approx(1 - abs(2 * p - 1))
    assert uncertainty(5.0, 0.0) < uncertainty(1.0, 0.0)


def test_most_uncertain_pairs_first_then_random_share():
    # prompt 1: responses 10, 11 nearly tied; prompt 2: far apart; prompt 3: moderately close
    candidates = {1: [10, 11, 12], 2: [20, 21], 3: [30, 31]}
    scores = {10: 0.0, 11: 0.01, 12: 9.0, 20: 0.0, 21: 8.0, 30: 0.0, 31: 0.5}

    chosen = select_pairs(candidates, scores, budget=4, random_share=0.25, seed=1)

    uncertain = [c for c in chosen if c.reason == "uncertain"]
    assert [c.response_ids for c in uncertain] == [(10, 11), (30, 31), (20, 21)]
    assert [c.reason for c in chosen].count("random") == 1
    assert len({c.response_ids for c in chosen}) == 4


def test_per_prompt_cap_and_no_scores_means_random():
    candidates = {1: [1, 2, 3, 4], 2: [5, 6]}
    scores = dict.fromkeys([1, 2, 3, 4, 5, 6], 0.0)

    chosen = select_pairs(candidates, scores, budget=3, random_share=0.0, per_prompt=2)
    assert sum(c.prompt_id == 1 for c in chosen) == 2

    blind = select_pairs(candidates, None, budget=5, random_share=0.0, seed=3)
    assert {c.reason for c in blind} == {"random"}
    assert len(blind) == 5
    assert select_pairs(candidates, None, budget=5, random_share=0.0, seed=3) == blind


def test_random_share_must_be_a_fraction():
    with pytest.raises(ValueError, match="random_share"):
        select_pairs({1: [1, 2]}, {1: 0.0, 2: 0.0}, budget=1, random_share=1.5)
