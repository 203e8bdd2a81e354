"""The reward model's held-out length correlation, checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.config import RewardConfig
from training.records import PreferencePair
from training.trainers import reward_model
from training.trainers.reward_model import length_correlation


def test_length_correlation_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=50)
    scores = 0.01 * lengths + rng.normal(size=50)
    got = length_correlation(torch.tensor(scores), lengths.tolist())
    assert got == pytest.approx(np.corrcoef(scores, lengths)[0, 1], abs=1e-5)
    assert length_correlation(torch.ones(5), [1, 2, 3, 4, 5]) is None  # constant scores
    assert length_correlation(torch.tensor([1.0, 2.0]), [1, 2]) is None  # too few


def test_reward_model_reports_length_correlation_on_held_out_pairs(tiny_lm, tmp_path) -> None:
    pairs = [
        PreferencePair(prompt=f"q{i}", chosen="a" * (5 + i % 7), rejected="b" * (3 + i % 5))
        for i in range(24)
    ]
    result = reward_model.run(
        RewardConfig(model=str(tiny_lm), output_dir=str(tmp_path / "rm"), max_steps=2),
        pairs[:16],
        pairs[16:],
    )
    assert -1.0 <= result.metrics["eval/length_correlation"] <= 1.0
