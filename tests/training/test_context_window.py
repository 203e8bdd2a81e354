"""Configured lengths longer than the model's context window are shrunk, not an IndexError."""

from __future__ import annotations

import pytest
import torch

from training.config import DPOConfig, KTOConfig, RewardConfig, SFTConfig
from training.modeling import fit_lengths, fit_to_context
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


def test_fit_lengths():
    assert fit_lengths(None, 512, 256) == (512, 256)  # no stated window: unchanged
    assert fit_lengths(100, 612, 256) == (100, 50)


def test_generation_and_scoring_fit_the_context(short_context_lm, tmp_path):
    from training.generate import generate, score
    from training.modeling import load_causal_lm, load_reward_model, load_tokenizer

    tokenizer = load_tokenizer(short_context_lm)
    model = load_causal_lm(short_context_lm, torch.device("cpu"))
    samples = generate(model, tokenizer, [LONG], k=2, max_new_tokens=100, max_prompt_length=256)
    assert all(len(s.token_ids) <= 32 for s in samples[0])  # half of the 64 positions
    rm = load_reward_model(short_context_lm, torch.device("cpu"), tokenizer.pad_token_id)
    assert len(score(rm, tokenizer, [(LONG, LONG)], max_length=512)) == 1
