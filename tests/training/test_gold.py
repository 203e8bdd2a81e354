"""training/gold.py: the HH halves never overlap, prompts come as chat messages, the gold model is
built once (atomically) and scores like any reward model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from training import gold
from training.generate import score
from training.modeling import load_reward_model, load_tokenizer
from training.tiny import write_tiny_reward_model

ROOT = Path(__file__).resolve().parents[2]
HH_SAMPLE = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"
needs_hh = pytest.mark.skipif(not HH_SAMPLE.exists(), reason="needs ../shared/data/hh-rlhf")


@needs_hh
def test_the_halves_split_the_sample_and_prompts_are_distinct_chat_messages():
    first, second = gold.hh_halves(HH_SAMPLE)
    assert len(first) + len(second) == 1200
    assert len(first) == 600
    assert first[0] != second[0]
    assert gold.hh_halves(HH_SAMPLE)[0] == first  # seeded: the same split every time
    prompts = gold.hh_prompts(HH_SAMPLE, 40)
    assert len(prompts) == 40
    assert len({repr(p) for p in prompts}) == 40
    assert all(p[0]["role"] == "user" and p[-1]["role"] == "user" for p in prompts)
    assert gold.hh_prompts(HH_SAMPLE, 10, skip=30) == prompts[30:40]


@needs_hh
def test_the_gold_is_built_once_and_atomically(tmp_path, monkeypatch):
    from training.trainers import reward_model

    calls: list[tuple[str, int]] = []

    def fake_run(config, pairs):
        calls.append((config.output_dir, len(pairs)))
        return SimpleNamespace(artifact_path=write_tiny_reward_model(config.output_dir))

    monkeypatch.setattr(reward_model, "run", fake_run)
    path = gold.ensure_hh_gold(HH_SAMPLE, tmp_path, n_pairs=50, max_length=64)
    assert path == tmp_path / "hh-minilm-50-64"
    assert (path / "config.json").is_file()
    assert calls == [(str(tmp_path / "hh-minilm-50-64.tmp"), 50)]
    assert not (tmp_path / "hh-minilm-50-64.tmp").exists()
    assert gold.ensure_hh_gold(HH_SAMPLE, tmp_path, n_pairs=50, max_length=64) == path
    assert len(calls) == 1  # the second call reuses it


def test_a_reward_model_gold_scores_like_the_reward_model(tmp_path):
    path = write_tiny_reward_model(tmp_path / "rm")
    items = [("Say hi.", "hi"), ("Say hi.", "hello there"), ("Count.", "1 2 3")]
    judge = gold.RewardModelGold(path, max_length=64)
    tok = load_tokenizer(str(path))
    model = load_reward_model(str(path), torch.device("cpu"), tok.pad_token_id)
    expected = score(model, tok, items, max_length=64, max_prompt_length=32)
    assert judge(items) == pytest.approx(expected, abs=1e-5)
    assert judge([]) == []
