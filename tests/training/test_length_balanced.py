"""The length-balanced accuracy on hand-made pairs, and the reward trainer reporting it."""

from __future__ import annotations

import pytest

from training.config import RewardConfig
from training.pair_accuracy import length_balanced_accuracy
from training.records import PreferencePair
from training.trainers import reward_model


def test_shorter_wins_rule_scores_half_whatever_the_mix() -> None:
    # 1 pair whose preferred answer is longer, 3 whose preferred answer is shorter; the scores
    # are minus the length: the "shorter wins" rule itself.
    chosen_len, rejected_len = [9, 2, 3, 4], [5, 7, 8, 6]
    got = length_balanced_accuracy(
        [-n for n in chosen_len], [-n for n in rejected_len], chosen_len, rejected_len
    )
    assert got["accuracy"] == 0.75  # plain accuracy rewards the rule
    assert got["accuracy_longer_preferred"] == 0.0
    assert got["accuracy_shorter_preferred"] == 1.0
    assert got["length_balanced_accuracy"] == 0.5
    assert got["shorter_wins_agreement"] == 1.0
    assert (got["pairs"], got["pairs_longer_preferred"], got["pairs_shorter_preferred"]) == (
        4,
        1,
        3,
    )


def test_hand_computed_mix_with_length_and_score_ties() -> None:
    chosen = [2.0, 0.0, 1.0, 5.0, 1.0, 3.0]
    rejected = [1.0, 1.0, 1.0, 4.0, 0.0, 3.5]
    chosen_len = [10, 10, 10, 3, 3, 7]  # longer, longer, longer, shorter, shorter, equal
    rejected_len = [5, 5, 5, 8, 8, 7]
    got = length_balanced_accuracy(chosen, rejected, chosen_len, rejected_len)
    # right: pair 0, pair 3, pair 4; pair 2 ties in score (wrong); pair 5 wrong
    assert got["accuracy"] == pytest.approx(3 / 6)
    assert got["accuracy_longer_preferred"] == pytest.approx(1 / 3)
    assert got["accuracy_shorter_preferred"] == pytest.approx(2 / 2)
    assert got["length_balanced_accuracy"] == pytest.approx((1 / 3 + 1) / 2)
    # shorter side strictly higher: pair 1 (rejected 1 > chosen 0), pairs 3 and 4 -> 3 of 5
    assert got["shorter_wins_agreement"] == pytest.approx(3 / 5)
    assert got["pairs_equal_length"] == 1  # counted in accuracy only


def test_an_empty_group_leaves_its_figures_out() -> None:
    got = length_balanced_accuracy([1.0, 0.0], [0.0, 1.0], [5, 6], [2, 2])
    assert got["accuracy_longer_preferred"] == 0.5
    assert "accuracy_shorter_preferred" not in got
    assert "length_balanced_accuracy" not in got
    assert length_balanced_accuracy([], [], [], []) == {
        "pairs": 0.0,
        "pairs_longer_preferred": 0.0,
        "pairs_shorter_preferred": 0.0,
        "pairs_equal_length": 0.0,
    }
    with pytest.raises(ValueError, match="differ in length"):
        length_balanced_accuracy([1.0], [0.0, 1.0], [1], [2])


def test_reward_trainer_reports_balanced_accuracy_beside_plain(tiny_lm, tmp_path) -> None:
    pairs = [
        PreferencePair(prompt=f"q{i}", chosen="a" * (3 + i % 7), rejected="b" * (5 + i % 3))
        for i in range(24)
    ]
    result = reward_model.run(
        RewardConfig(model=str(tiny_lm), output_dir=str(tmp_path / "rm"), max_steps=1),
        pairs[:16],
        pairs[16:],
    )
    m = result.metrics
    expected = length_balanced_accuracy(
        [0.0] * 8,
        [0.0] * 8,
        [len(p.chosen) for p in pairs[16:]],
        [len(p.rejected) for p in pairs[16:]],
    )
    for key in ("pairs", "pairs_longer_preferred", "pairs_shorter_preferred"):
        assert m[f"eval/{key}"] == expected[key]  # character lengths, as the function counts
    assert m["eval/length_balanced_accuracy"] == pytest.approx(
        (m["eval/accuracy_longer_preferred"] + m["eval/accuracy_shorter_preferred"]) / 2
    )
    assert 0 <= m["eval/shorter_wins_agreement"] <= 1
