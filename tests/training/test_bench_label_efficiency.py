"""bench/label_efficiency.py's experiment on a synthetic pool: the arms' rules, the rater noise,
the interpolated labels-to-reach and the summary (the real run needs SmolLM2 and ~25 min)."""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_le", ROOT / "bench" / "label_efficiency.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_le"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pool(bench):
    """60 prompts x 4 answers; the gold is a linear function of 6 features."""
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(240, 6, generator=gen)
    gold = (features @ torch.tensor([1.0, -0.5, 0.25, 0.0, 0.0, 2.0])).tolist()
    rows = [{"candidates": ["a", "b", "c", "d"]} for _ in range(60)]
    return bench.make_pool(rows, gold, features, heldout=0.25, min_gap=0.0)


def args(**kw):
    base = {
        "start": 8,
        "batch": 8,
        "budget": 40,
        "flip": 0.16,
        "l2": 0.01,
        "active_random_share": 0.25,
    }
    return argparse.Namespace(**{**base, **kw})


def test_the_pool_splits_prompts_and_pairs_every_two_answers(pool):
    assert len(pool.train_pairs) == 45 * 6
    assert len(pool.eval_pairs) == 15 * 6
    assert set(pool.train_prompt).isdisjoint({a // 4 for a, _ in pool.eval_pairs})


def test_raters_follow_the_gold_but_flip_at_the_given_rate(bench):
    gold = [0.0, 1.0]
    rng = random.Random(0)
    answers = [bench.rater_label((0, 1), gold, 0.16, rng) for _ in range(4000)]
    assert answers.count((1, 0)) / 4000 == pytest.approx(0.84, abs=0.02)
    assert bench.rater_label((0, 1), gold, 0.0, rng) == (1, 0)


def test_labels_to_reach_interpolates_between_rounds(bench):
    assert bench.labels_to_reach([0.5, 0.6, 0.7], [10, 20, 30], 0.65) == pytest.approx(25.0)
    assert bench.labels_to_reach([0.5, 0.6, 0.7], [10, 20, 30], 0.4) == 10.0
    assert bench.labels_to_reach([0.5, 0.6, 0.7], [10, 20, 30], 0.8) is None


def test_the_summary_compares_active_and_the_oracle_with_random(bench):
    budgets = [10, 20, 30, 40]
    curves = {
        "random": [[0.5, 0.6, 0.65, 0.7], [0.5, 0.6, 0.65, 0.7]],
        "active": [[0.5, 0.7, 0.72, 0.74], [0.5, 0.7, 0.72, 0.74]],
        "oracle": [[0.5, 0.8, 0.85, 0.9], [0.5, 0.8, 0.85, 0.9]],
    }
    summary = bench.summarize(curves, budgets)
    assert summary["target"] == pytest.approx(0.7)
    assert summary["reach"]["random"] == pytest.approx(40.0)
    assert summary["reach"]["active"] == pytest.approx(20.0)
    assert summary["reach"]["oracle"] == pytest.approx(10 + 10 * 0.2 / 0.3)
    assert summary["active_share"] == pytest.approx(0.5)
    assert summary["saving_captured"] == pytest.approx(20 / (40 - summary["reach"]["oracle"]))
    assert summary["table"]["active"][1] == (pytest.approx(0.7), pytest.approx(0.0))


def test_the_paired_gain_is_each_seeds_mean_lead_over_random_after_the_start(bench):
    budgets = [10, 20, 30]
    curves = {
        "random": [[0.5, 0.6, 0.7], [0.5, 0.7, 0.7]],
        "active": [[0.5, 0.7, 0.7], [0.5, 0.6, 0.8]],  # leads by 0.05, then by 0.0
        "oracle": [[0.5, 0.6, 0.7], [0.5, 0.7, 0.7]],
    }
    gain, se = bench.summarize(curves, budgets)["paired_gain"]["active"]
    assert gain == pytest.approx(0.025)
    assert se == pytest.approx(0.025)  # SD 0.0354 over 2 seeds / sqrt(2)
    assert bench.summarize(curves, budgets)["paired_gain"]["oracle"] == (0.0, 0.0)


def test_active_takes_the_most_uncertain_pairs_and_a_random_quarter(bench, pool):
    rewards = [float(i % 7) for i in range(240)]
    open_pairs = list(range(len(pool.train_pairs)))
    batch = bench.choose("active", pool, open_pairs, rewards, 8, random.Random(0), seed=0)
    assert len(set(batch)) == 8
    margin = [abs(rewards[a] - rewards[b]) for a, b in (pool.train_pairs[i] for i in batch)]
    assert max(margin[:6]) <= 1.0  # the 6 uncertain ones: the smallest margins
    per_prompt = [pool.train_prompt[i] for i in batch[:6]]
    assert max(per_prompt.count(p) for p in per_prompt) <= 2


def test_the_bootstrap_interval_brackets_the_share_and_widens_with_disagreeing_seeds(bench):
    budgets = [10, 20, 30, 40]
    steady = {
        "random": [[0.5, 0.6, 0.65, 0.7]] * 4,
        "active": [[0.5, 0.7, 0.72, 0.74]] * 4,
    }
    assert bench.share_interval(steady, budgets, resamples=200) == (0.5, 0.5)
    mixed = {
        "random": [[0.5, 0.6, 0.65, 0.7]] * 4,
        "active": [[0.5, 0.7, 0.72, 0.74]] * 2 + [[0.5, 0.55, 0.6, 0.65]] * 2,
    }
    lo, hi = bench.share_interval(mixed, budgets, resamples=400)
    assert lo == 0.5  # resamples of the two good seeds only
    assert hi == float("inf")  # resamples of mostly bad seeds never reach random's 0.7
    assert bench.share_interval(steady, budgets, resamples=0) is None


def test_active_without_a_random_share_takes_only_uncertain_pairs(bench, pool):
    rewards = [float(i % 7) for i in range(240)]
    open_pairs = list(range(len(pool.train_pairs)))
    batch = bench.choose(
        "active", pool, open_pairs, rewards, 8, random.Random(0), seed=0, random_share=0.0
    )
    margins = sorted(abs(rewards[a] - rewards[b]) for a, b in pool.train_pairs)
    picked = [abs(rewards[a] - rewards[b]) for a, b in (pool.train_pairs[i] for i in batch)]
    assert max(picked) <= margins[len(margins) // 4]  # all from the most uncertain quarter


def test_the_oracle_takes_the_pairs_the_head_gets_most_wrong(bench, pool):
    gold = pool.gold
    rewards = [-g for g in gold]  # a head that orders every pair backwards
    open_pairs = list(range(len(pool.train_pairs)))
    batch = bench.choose("oracle", pool, open_pairs, rewards, 4, random.Random(0), seed=0)
    wrong = sorted((abs(gold[a] - gold[b]) for a, b in pool.train_pairs), reverse=True)
    picked = [abs(gold[a] - gold[b]) for a, b in (pool.train_pairs[i] for i in batch)]
    assert picked[0] == pytest.approx(wrong[0])


def test_every_arm_learns_the_gold_and_selection_pays_where_the_head_fits(bench, pool):
    """On a pool whose gold is linear in the features (the head's own model class), four seeds:
    every arm climbs from the shared start, and active and oracle end above random."""
    final = {}
    for arm in bench.ARMS:
        curves = [bench.run_arm(arm, pool, seed, args()) for seed in range(4)]
        assert all(len(c) == 5 for c in curves)  # 8, 16, 24, 32, 40 labels
        start = sum(c[0] for c in curves) / 4
        final[arm] = sum(c[-1] for c in curves) / 4
        assert final[arm] > start + 0.05, arm
    assert final["random"] > 0.78
    assert final["active"] > final["random"]
    assert final["oracle"] > final["random"]
