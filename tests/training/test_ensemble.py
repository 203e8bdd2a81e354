"""Bootstrap reward heads on the RM's last layer (``training/ensemble.py``) for active learning."""

from __future__ import annotations

import pytest
import torch

from training.ensemble import bootstrap_heads, ensemble_rewards, head_weight
from training.generate import reward_features, score
from training.modeling import load_reward_model, load_tokenizer
from training.records import PreferencePair
from training.tiny import write_tiny_reward_model


@pytest.fixture(scope="module")
def rm(tmp_path_factory):
    path = str(write_tiny_reward_model(tmp_path_factory.mktemp("models") / "rm", seed=3))
    tok = load_tokenizer(path)
    return load_reward_model(path, torch.device("cpu"), tok.pad_token_id), tok


def test_features_times_the_head_is_the_reward(rm):
    model, tok = rm
    items = [("p", "a"), ("prompt two", "a longer response"), ("p", "b b b")]

    feats = reward_features(model, tok, items, batch_size=2)

    assert feats.shape == (3, model.config.n_embd)
    assert (feats @ head_weight(model)).tolist() == pytest.approx(
        score(model, tok, items), abs=1e-5
    )
    assert isinstance(model.score, torch.nn.Linear)  # the head is put back


def test_bootstrap_heads_follow_the_data_and_spread_where_it_is_thin():
    # feature 0 decides every labeled pair; feature 1 never varies in the labels
    gen = torch.Generator().manual_seed(0)
    diffs = torch.zeros(40, 2)
    diffs[:, 0] = torch.rand(40, generator=gen) + 0.5
    anchor = torch.zeros(2)

    heads = bootstrap_heads(diffs, anchor, n_heads=8, l2=0.1, seed=1)

    assert heads.shape == (8, 2)
    assert (heads[:, 0] > 0.5).all()  # every head learned that feature 0 is good
    assert heads[:, 1].abs().max() < 1e-6  # no data on feature 1: all stay at the anchor
    assert heads[:, 0].std() > 0  # resamples differ
    assert torch.equal(heads, bootstrap_heads(diffs, anchor, n_heads=8, l2=0.1, seed=1))
    # a strong pull keeps every head at the trained one
    tight = bootstrap_heads(diffs, torch.tensor([1.0, 0.0]), n_heads=4, l2=1e4, seed=1)
    torch.testing.assert_close(tight, torch.tensor([[1.0, 0.0]] * 4), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="n_heads"):
        bootstrap_heads(diffs, anchor, n_heads=0)


def test_ensemble_rewards_one_column_per_head(rm):
    model, tok = rm
    labeled = [PreferencePair("p", "aaaa", "A!A!"), PreferencePair("q", "b b", "B?B?")] * 3
    items = [("p", "x"), ("q", "yy y"), ("r", "Z!")]

    rewards = ensemble_rewards(model, tok, labeled, items, n_heads=5, l2=1.0, seed=0)

    assert rewards.shape == (3, 5)
    assert not torch.equal(rewards[:, 0], rewards[:, 1])
