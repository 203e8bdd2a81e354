"""Pretraining the tiny model on text: it learns the corpus, deterministically, and loads."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from training.pretrain import pretrain_tiny_causal_lm, read_corpus
from training.tiny import tiny_tokenizer

CORPUS = [f"the cat sat on the mat number {i}. the dog sat on the log." for i in range(40)]


def _nll(path, text: str) -> float:
    model = AutoModelForCausalLM.from_pretrained(path)
    ids = torch.tensor([tiny_tokenizer()(text)["input_ids"]])
    with torch.no_grad():
        return float(model(input_ids=ids, labels=ids).loss)


def test_pretraining_learns_the_corpus_and_is_deterministic(tmp_path):
    kwargs = {"steps": 60, "batch_size": 8, "block": 32, "n_positions": 64, "seed": 1}
    metrics = pretrain_tiny_causal_lm(tmp_path / "a", CORPUS, **kwargs)
    again = pretrain_tiny_causal_lm(tmp_path / "b", CORPUS, **kwargs)

    assert metrics["final_loss"] < metrics["first_loss"] - 1.0
    assert json.loads((tmp_path / "a" / "pretrain.json").read_text()) == metrics
    assert again == metrics
    seen, unseen = "the dog sat on the log.", "zq xv kj wq pz jx qv."
    assert _nll(tmp_path / "a", seen) < _nll(tmp_path / "a", unseen) - 1.0
    assert _nll(tmp_path / "a", seen) == _nll(tmp_path / "b", seen)


def test_pretraining_rejects_a_corpus_shorter_than_a_window(tmp_path):
    with pytest.raises(ValueError, match="fewer than one window"):
        pretrain_tiny_causal_lm(tmp_path / "m", ["short"], steps=1, block=32, n_positions=64)
    with pytest.raises(ValueError, match="does not fit"):
        pretrain_tiny_causal_lm(tmp_path / "m", CORPUS, steps=1, block=64, n_positions=64)
    assert not (tmp_path / "m").exists()


def test_read_corpus_takes_text_lines_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: yo", "rejected": "x"})
        + "\n"
        + json.dumps({"text": "plain"})
        + "\n"
    )
    (tmp_path / "c.jsonl").write_text(json.dumps({"prompt": "no text"}) + "\n")

    assert read_corpus(tmp_path / "a.txt") == ["one", "two"]
    assert read_corpus(tmp_path / "b.jsonl") == ["\n\nHuman: hi\n\nAssistant: yo", "plain"]
    with pytest.raises(ValueError, match=r"c\.jsonl:1: no 'text' or 'chosen'"):
        read_corpus(tmp_path / "c.jsonl")
