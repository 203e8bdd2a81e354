"""Shared fixtures: tiny offline models and a synthetic preference task with a known answer.

The synthetic task: a prompt of random words, and two responses that share a random prefix and
end in either the marker ``" GOOD"`` (preferred) or ``" bad"``. A learner that finds the marker
gets every held-out pair right.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from training.records import PreferencePair, UnpairedExample
from training.tiny import write_tiny_causal_lm, write_tiny_reward_model

WORDS = ["apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "rocket"]
MARKER = " GOOD"


def synthetic_pairs(n: int, seed: int) -> list[PreferencePair]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt = "Q: " + " ".join(rng.choice(WORDS) for _ in range(3)) + "\nA:"
        base = " " + " ".join(rng.choice(WORDS) for _ in range(2))
        pairs.append(PreferencePair(prompt=prompt, chosen=base + MARKER, rejected=base + " bad"))
    return pairs


def as_unpaired(pairs: list[PreferencePair]) -> list[UnpairedExample]:
    return [
        UnpairedExample(p.prompt, text, desirable)
        for p in pairs
        for text, desirable in ((p.chosen, True), (p.rejected, False))
    ]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_causal_lm(tmp_path_factory.mktemp("models") / "lm")


@pytest.fixture(scope="session")
def tiny_lm_dropout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_causal_lm(tmp_path_factory.mktemp("models") / "lm-dropout", dropout=0.1)


@pytest.fixture(scope="session")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_reward_model(tmp_path_factory.mktemp("models") / "rm")


@pytest.fixture(scope="session")
def train_pairs() -> list[PreferencePair]:
    return synthetic_pairs(128, seed=1)


@pytest.fixture(scope="session")
def eval_pairs() -> list[PreferencePair]:
    return synthetic_pairs(32, seed=2)
