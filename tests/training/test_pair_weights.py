"""``PreferencePair.weight``: the reward-model and DPO losses are weighted means over pairs.

A pair of weight 0 changes nothing; a pair of weight 2 is the pair twice; and the weighting is
exact across micro-batches (gradient accumulation, token budgets), like the unweighted mean.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from tests.training.conftest import synthetic_pairs
from tests.training.test_loop import assert_same_weights
from training.config import DPOConfig, RewardConfig
from training.losses import weighted_mean
from training.records import DataError, PreferencePair, load_jsonl
from training.trainers import dpo, reward_model

PAIRS = synthetic_pairs(7, seed=11)
EVAL = synthetic_pairs(4, seed=12)
WEIGHTS = [2, 0, 1, 0.5, 3, 1, 0]
COMMON = {"learning_rate": 1e-3, "max_steps": 1, "max_grad_norm": 1e9, "adam_epsilon": 1e-5}


def test_weight_is_validated_and_read_from_jsonl(tmp_path) -> None:
    assert PreferencePair("q", "a", "b").weight == 1.0
    for bad in (-0.5, float("nan"), float("inf"), True, "2"):
        with pytest.raises(DataError, match="'weight' must be a number >= 0"):
            PreferencePair("q", "a", "b", weight=bad)  # type: ignore[arg-type]
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "weight": 0.25}]
    rows.append({"prompt": "q", "chosen": "c", "rejected": "d"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs, _ = load_jsonl(path, "preference")
    assert [p.weight for p in pairs] == [0.25, 1.0]
    path.write_text(json.dumps({**rows[0], "weight": -1}) + "\n")
    with pytest.raises(DataError, match=r"p.jsonl:1: 'weight'"):
        load_jsonl(path, "preference")


def test_weighted_mean_by_hand() -> None:
    losses = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    out = weighted_mean(losses, torch.tensor([2.0, 0.0, 1.0]))
    assert out.item() == pytest.approx((2 * 1 + 4) / 3)
    zero = weighted_mean(losses, torch.zeros(3))
    zero.backward()
    assert zero.item() == 0
    assert losses.grad is not None
    assert losses.grad.abs().sum().item() == 0


def _runs(trainer, config_cls, model, tmp_path, name, pairs, **kw):
    config = config_cls(model=str(model), output_dir=str(tmp_path / name), **COMMON, **kw)
    return trainer.run(config, pairs, EVAL)


def _assert_same_run(a, b) -> None:
    steps_a = [h for h in a.history if "grad_norm" in h]
    steps_b = [h for h in b.history if "grad_norm" in h]
    assert len(steps_a) == 1
    for ha, hb in zip(steps_a, steps_b, strict=True):
        assert ha["loss"] == pytest.approx(hb["loss"], abs=1e-5)
        assert ha["grad_norm"] == pytest.approx(hb["grad_norm"], rel=1e-4)
    assert_same_weights(a.artifact_path, b.artifact_path, atol=1e-5)


def test_dpo_weights_zero_and_two(tiny_lm, tmp_path) -> None:
    kw = {"ref_cache_dir": str(tmp_path / "c")}
    base = _runs(dpo, DPOConfig, tiny_lm, tmp_path, "base", PAIRS, batch_size=7, **kw)
    ignored = dataclasses.replace(synthetic_pairs(1, seed=13)[0], weight=0.0)
    with_zero = _runs(
        dpo, DPOConfig, tiny_lm, tmp_path, "zero", [*PAIRS, ignored], batch_size=8, **kw
    )
    _assert_same_run(base, with_zero)
    doubled = [dataclasses.replace(PAIRS[0], weight=2.0), *PAIRS[1:]]
    dup = _runs(dpo, DPOConfig, tiny_lm, tmp_path, "dup", [PAIRS[0], *PAIRS], batch_size=8, **kw)
    two = _runs(dpo, DPOConfig, tiny_lm, tmp_path, "two", doubled, batch_size=7, **kw)
    _assert_same_run(dup, two)


def test_reward_model_weights_are_exact_across_micro_batches(tiny_rm, tmp_path) -> None:
    weighted = [dataclasses.replace(p, weight=w) for p, w in zip(PAIRS, WEIGHTS, strict=True)]
    # the same weights as copies (weight 0.5 stays a weight)
    dup = [PAIRS[0], PAIRS[0], PAIRS[2], PAIRS[4], PAIRS[4], PAIRS[4], PAIRS[5]]
    half = [dataclasses.replace(PAIRS[3], weight=0.5)]
    one_step = _runs(reward_model, RewardConfig, tiny_rm, tmp_path, "w", weighted, batch_size=7)
    accum = _runs(
        reward_model, RewardConfig, tiny_rm, tmp_path, "acc", weighted, batch_size=1, grad_accum=7
    )
    _assert_same_run(one_step, accum)
    copies = _runs(reward_model, RewardConfig, tiny_rm, tmp_path, "dup", dup + half, batch_size=8)
    _assert_same_run(one_step, copies)
