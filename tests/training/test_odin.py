"""ODIN (training/odin.py): the loss terms against hand computation, the two heads in the reward
trainer, and the saved artifact being an ordinary one-output reward model (the quality head)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.config import ConfigError, RewardConfig
from training.generate import score
from training.modeling import load_reward_model, load_tokenizer
from training.odin import (
    head_weight,
    odin_correlation_loss,
    odin_orthogonality_loss,
    pearson,
    quality_only,
)
from training.records import PreferencePair
from training.trainers import reward_model


def test_pearson_matches_numpy_and_is_zero_for_a_constant() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=20), rng.normal(size=20)
    got = pearson(torch.tensor(x), torch.tensor(y))
    assert got.item() == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
    assert pearson(torch.ones(4), torch.arange(4.0)).item() == 0.0


def test_correlation_loss_by_hand() -> None:
    lengths = torch.tensor([1, 2, 3, 4])
    # quality: dx = (.5, -.5, .5, -.5), dy = (-1.5, -.5, .5, 1.5): sum dx dy = -1,
    # sum dx^2 = 1, sum dy^2 = 5 -> rho = -1 / sqrt(5); the length head is exactly 2 * length
    quality = torch.tensor([1.0, 0.0, 1.0, 0.0])
    got = odin_correlation_loss(quality, 2.0 * lengths, lengths)
    assert got.item() == pytest.approx(1 / math.sqrt(5) - 1, abs=1e-6)
    # the length head may carry length in either direction (the paper: only rising with it)
    against = odin_correlation_loss(quality, -2.0 * lengths, lengths)
    assert against.item() == pytest.approx(got.item(), abs=1e-6)
    # the worst case: quality follows length, the length head ignores it
    worst = odin_correlation_loss(lengths.float(), torch.tensor([1.0, 0.0, 0.0, 1.0]), lengths)
    assert worst.item() == pytest.approx(1.0, abs=1e-6)


def test_orthogonality_by_hand_and_scale_free() -> None:
    assert odin_orthogonality_loss(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])).item() == (
        pytest.approx(1 / math.sqrt(2))
    )
    assert odin_orthogonality_loss(torch.tensor([3.0, 0.0]), torch.tensor([0.0, -2.0])).item() == 0
    w_q, w_l = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.5, -1.0, 2.0])
    assert odin_orthogonality_loss(10 * w_q, 0.1 * w_l).item() == pytest.approx(
        odin_orthogonality_loss(w_q, w_l).item(), abs=1e-6
    )
    assert odin_orthogonality_loss(-w_q, w_l).item() == pytest.approx(
        odin_orthogonality_loss(w_q, w_l).item()
    )


def test_gradient_steps_move_length_out_of_the_quality_head() -> None:
    """Descending the two terms on fixed features: the quality head's correlation with length
    falls, the length head's grows, the heads turn orthogonal."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 60, (64,), generator=gen)
    feats = torch.randn(64, 8, generator=gen)
    feats[:, 0] += 0.05 * lengths  # one feature carries length
    weight = torch.randn(2, 8, generator=gen)
    weight[0, 0] = 2.0  # the quality head starts on the length feature
    weight.requires_grad_(True)

    def figures() -> tuple[float, float, float]:
        q, ln = (feats @ weight.T).unbind(-1)
        rho_q = pearson(q, lengths.float()).abs().item()
        rho_l = pearson(ln, lengths.float()).item()
        return rho_q, rho_l, odin_orthogonality_loss(weight[0], weight[1]).item()

    before = figures()
    opt = torch.optim.SGD([weight], lr=0.1)
    for _ in range(100):
        q, ln = (feats @ weight.T).unbind(-1)
        loss = odin_correlation_loss(q, ln, lengths) + odin_orthogonality_loss(weight[0], weight[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = figures()
    assert after[0] < before[0] / 3
    assert abs(after[1]) > max(abs(before[1]), 0.5)
    assert after[2] < before[2]


def test_quality_only_keeps_the_quality_scores(tiny_lm) -> None:
    tok = load_tokenizer(str(tiny_lm))
    torch.manual_seed(0)
    model = load_reward_model(str(tiny_lm), torch.device("cpu"), tok.pad_token_id, num_labels=2)
    assert head_weight(model).shape[0] == 2
    pairs = [("Q: apple\nA:", " river stone"), ("Q: cloud\nA:", " lemon")]
    two = torch.tensor([score(model, tok, [p], batch_size=1)[0] for p in pairs])  # (N, 2)
    single = quality_only(model)
    assert single.config.num_labels == 1
    assert score(single, tok, pairs) == pytest.approx(two[:, 0].tolist(), abs=1e-6)


def _pairs(n: int) -> list[PreferencePair]:
    return [
        PreferencePair(prompt=f"Q{i}:", chosen=" good" * (1 + i % 4), rejected=" bad" * (1 + i % 3))
        for i in range(n)
    ]


@pytest.mark.parametrize("lora_r", [0, 2])
def test_odin_run_trains_two_heads_and_saves_the_quality_head(tiny_lm, tmp_path, lora_r) -> None:
    pairs = _pairs(24)
    config = RewardConfig(
        model=str(tiny_lm),
        output_dir=str(tmp_path / "rm"),
        max_steps=2,
        batch_size=4,
        lora_r=lora_r,
        length_debias="odin",
        odin_correlation_coef=0.5,
    )
    result = reward_model.run(config, pairs[:16], pairs[16:])
    m = result.metrics
    assert -1 <= m["odin/correlation_loss"] <= 1
    assert 0 <= m["odin/orthogonality"] <= 1
    assert -1 <= m["eval/length_head_correlation"] <= 1
    assert "eval/length_balanced_accuracy" in m
    tok = load_tokenizer(str(result.artifact_path))
    loaded = load_reward_model(str(result.artifact_path), torch.device("cpu"), tok.pad_token_id)
    assert loaded.config.num_labels == 1
    assert loaded.score.weight.shape[0] == 1
    assert len(score(loaded, tok, [(p.prompt, p.chosen) for p in pairs[16:]])) == 8


def test_plain_run_has_no_odin_terms(tiny_lm, tmp_path) -> None:
    pairs = _pairs(20)
    config = RewardConfig(model=str(tiny_lm), output_dir=str(tmp_path / "rm"), max_steps=1)
    m = reward_model.run(config, pairs[:16], pairs[16:]).metrics
    assert not any(k.startswith("odin/") for k in m)
    assert "eval/length_head_correlation" not in m


def test_config_rejects_an_unknown_method_and_negative_weights() -> None:
    with pytest.raises(ConfigError, match="length_debias"):
        RewardConfig(model="m", output_dir="o", length_debias="lengthy")
    with pytest.raises(ConfigError, match="odin_orthogonal_coef"):
        RewardConfig(model="m", output_dir="o", length_debias="odin", odin_orthogonal_coef=-1)
