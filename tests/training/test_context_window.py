"""Configured lengths longer than the model's context window are shrunk, not an IndexError."""

from __future__ import annotations

import pytest

from training.config import DPOConfig, KTOConfig, RewardConfig, SFTConfig
from training.modeling import fit_to_context
from training.records import PreferencePair, SFTExample, UnpairedExample
from training.tiny import write_tiny_causal_lm
from training.trainers import dpo, kto, reward_model, sft

LONG = "word " * 60  # 300 byte-level tokens


@pytest.fixture(scope="module")
def short_context_lm(tmp_path_factory):
    return str(write_tiny_causal_lm(tmp_path_factory.mktemp("models") / "lm64", n_positions=64))


def test_fit_to_context(short_context_lm):
    assert fit_to_context(short_context_lm, 512, 256) == (64, 32)
    assert fit_to_context(short_context_lm, 512, 20) == (64, 20)
    assert fit_to_context(short_context_lm, 48, 40) == (48, 40)  # fits: unchanged


def test_every_trainer_runs_on_sequences_longer_than_the_context(short_context_lm, tmp_path):
    common = {"model": short_context_lm, "max_steps": 1, "batch_size": 2}
    pairs = [PreferencePair(prompt=LONG, chosen=LONG + "yes", rejected=LONG + "no")] * 2
    unpaired = [UnpairedExample(prompt=LONG, completion=LONG, desirable=d) for d in (True, False)]
    demos = [SFTExample(prompt=LONG, completion=LONG)] * 2
    runs = [
        reward_model.run(RewardConfig(output_dir=str(tmp_path / "rm"), **common), pairs),
        dpo.run(
            DPOConfig(
                output_dir=str(tmp_path / "dpo"), ref_cache_dir=str(tmp_path / "c"), **common
            ),
            pairs,
        ),
        kto.run(KTOConfig(output_dir=str(tmp_path / "kto"), **common), unpaired),
        sft.run(SFTConfig(output_dir=str(tmp_path / "sft"), **common), demos),
    ]
    for result in runs:
        assert result.artifact_path.exists()
