"""Active-learning pair selection: least certain pairs first, plus an unbiased random share."""

from __future__ import annotations

import difflib
import math

import pytest

from workers.active import bald, select_pairs, similarity, uncertainty


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


def test_bald_on_hand_made_heads():
    # every head sure of the same order, or every head at a coin flip: nothing to learn
    assert bald([4.0, 4.0, 4.0]) == pytest.approx(0.0, abs=1e-12)
    assert bald([0.0, 0.0]) == pytest.approx(0.0, abs=1e-12)
    # two confident heads that contradict each other: H(1/2) - H(p) with p = sigmoid(4)
    p = 1 / (1 + math.exp(-4.0))
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert bald([4.0, -4.0]) == pytest.approx(math.log(2) - h)
    assert bald([60.0, -60.0]) == pytest.approx(math.log(2))  # no overflow at large gaps
    # heads at 1/2 and sigmoid(2): H(mean p) - mean H(p), computed by hand
    q = 1 / (1 + math.exp(-2.0))
    ent = lambda x: -(x * math.log(x) + (1 - x) * math.log(1 - x))  # noqa: E731
    assert bald([0.0, 2.0]) == pytest.approx(ent((0.5 + q) / 2) - (math.log(2) + ent(q)) / 2)
    with pytest.raises(ValueError, match="head"):
        bald([])


def test_heads_pick_disagreement_not_near_ties():
    # (10, 11): both heads call it a tie -> the margin's favourite, but BALD 0;
    # (20, 21): the heads contradict each other -> the most informative pair.
    candidates = {1: [10, 11], 2: [20, 21], 3: [30, 31]}
    scores = {10: 0.0, 11: 0.0, 20: 0.0, 21: 0.2, 30: 0.0, 31: 3.0}
    heads = {10: [0.0, 0.0], 11: [0.0, 0.0], 20: [3.0, -3.0], 21: [0.0, 0.0], 30: [0, 0]}
    heads[31] = [2.0, 4.0]

    by_margin = select_pairs(candidates, scores, budget=1, random_share=0.0)
    by_heads = select_pairs(candidates, scores, budget=3, random_share=0.0, heads=heads)

    assert [c.response_ids for c in by_margin] == [(10, 11)]
    assert [c.response_ids for c in by_heads] == [(20, 21), (30, 31), (10, 11)]
    assert by_heads[0].uncertainty == pytest.approx(bald([3.0, -3.0]))
    assert by_heads[2].uncertainty == pytest.approx(0.0, abs=1e-12)


def test_random_selection_ignores_scores_and_heads():
    candidates = {1: [1, 2, 3, 4], 2: [5, 6, 7]}
    scores = {i: float(i) for i in range(1, 8)}
    heads = {i: [float(i), -float(i)] for i in range(1, 8)}

    plain = select_pairs(candidates, scores, budget=5, random_share=1.0, seed=4)
    with_heads = select_pairs(candidates, scores, budget=5, random_share=1.0, seed=4, heads=heads)

    assert [c.response_ids for c in plain] == [c.response_ids for c in with_heads]
    assert {c.reason for c in plain} == {"random"}


def test_similarity_is_the_shared_share_of_two_texts():
    # 2 * matched / total, the measure difflib's ratio approximates, as an independent reference
    for a, b in [("hello world", "hello wrld!"), ("abc", "xyz"), ("same", "same"), ("", "ab")]:
        reference = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        assert similarity(a, b) == pytest.approx(reference)
    assert similarity("the cat sat", "the cat sat.") > similarity("the cat sat", "a dog ran")


def test_similar_pairs_are_preferred_among_equally_uncertain_ones():
    # all three pairs are coin flips to the reward model; (1, 2) differs by one character
    candidates = {1: [1, 2, 3]}
    scores = dict.fromkeys([1, 2, 3], 0.0)
    texts = {1: "the sea is blue", 2: "the sea is blue!", 3: "XQ#7 z"}

    kw = {"budget": 3, "random_share": 0.0, "per_prompt": 3, "texts": texts}
    chosen = select_pairs(candidates, scores, **kw, similarity_power=1.0)
    unweighted = select_pairs(candidates, scores, **kw)  # similarity_power 0: the default

    assert chosen[0].response_ids == (1, 2)
    assert chosen[0].uncertainty == pytest.approx(similarity(texts[1], texts[2]))
    assert [c.uncertainty for c in unweighted] == [1.0, 1.0, 1.0]


def test_similarity_does_not_override_a_confident_reward_model():
    # (1, 2) is a near-copy the reward model is sure of; (3, 4) shares little but is a toss-up
    candidates = {1: [1, 2], 2: [3, 4]}
    scores = {1: 0.0, 2: 12.0, 3: 0.0, 4: 0.0}
    texts = {1: "abcdefgh", 2: "abcdefgX", 3: "abcd", 4: "abXY"}

    chosen = select_pairs(
        candidates, scores, budget=1, random_share=0.0, texts=texts, similarity_power=1.0
    )

    assert chosen[0].response_ids == (3, 4)


def test_similarity_alone_when_the_margin_is_switched_off():
    candidates = {1: [1, 2], 2: [3, 4]}
    scores = {1: 0.0, 2: 12.0, 3: 0.0, 4: 0.0}  # the margin would pick (3, 4)
    texts = {1: "abcdefgh", 2: "abcdefgX", 3: "abcd", 4: "abXY"}

    chosen = select_pairs(
        candidates, scores, budget=2, random_share=0.0, texts=texts,
        similarity_power=1.0, uncertainty_power=0.0,
    )  # fmt: skip

    assert [c.response_ids for c in chosen] == [(1, 2), (3, 4)]
    assert chosen[0].uncertainty == pytest.approx(similarity("abcdefgh", "abcdefgX"))


def test_two_copies_of_one_text_are_never_paired():
    candidates = {1: [1, 2, 3]}
    texts = {1: "same", 2: "same", 3: "other"}

    for scores, share in [(dict.fromkeys([1, 2, 3], 0.0), 0.0), (None, 1.0)]:
        chosen = select_pairs(
            candidates, scores, budget=3, random_share=share, per_prompt=3, texts=texts
        )
        assert sorted(c.response_ids for c in chosen) == [(1, 3), (2, 3)]
