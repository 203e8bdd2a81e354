"""Artifacts are written atomically, carry metadata, and never load pickle weights."""

from __future__ import annotations

import json

import pytest
import torch

from training.artifacts import UnsafeWeightsError, read_metadata, save_artifact
from training.modeling import load_causal_lm, load_tokenizer


def test_artifact_has_safetensors_and_metadata(tiny_lm, tmp_path) -> None:
    model = load_causal_lm(str(tiny_lm), torch.device("cpu"))
    out = save_artifact(model, load_tokenizer(str(tiny_lm)), tmp_path / "v1", {"data_hash": "abc"})
    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    meta = read_metadata(out)
    assert meta["data_hash"] == "abc"
    assert {"torch", "transformers"} <= set(meta["library_versions"])
    assert "git_revision" in meta
    with pytest.raises(FileExistsError):
        save_artifact(model, None, out, {})


def test_crash_mid_save_leaves_no_final_directory(tiny_lm, tmp_path, monkeypatch) -> None:
    model = load_causal_lm(str(tiny_lm), torch.device("cpu"))
    tokenizer = load_tokenizer(str(tiny_lm))

    def crash(path, *args, **kwargs):
        (path / "tokenizer.json").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tokenizer, "save_pretrained", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_artifact(model, tokenizer, tmp_path / "v1", {})
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temp dir remains


def test_loading_refuses_pickle_weights(tiny_lm, tmp_path) -> None:
    bad = tmp_path / "pickled"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_lm / "config.json").read_text())
    torch.save({"x": torch.zeros(1)}, bad / "pytorch_model.bin")
    with pytest.raises(UnsafeWeightsError, match="refusing pickle weights"):
        load_causal_lm(str(bad), torch.device("cpu"))


def test_trainer_metadata_records_config_counts_and_metrics(tiny_rm, train_pairs, tmp_path) -> None:
    from training.config import RewardConfig
    from training.trainers import reward_model

    config = RewardConfig(model=str(tiny_rm), output_dir=str(tmp_path / "rm"), max_steps=2)
    result = reward_model.run(config, train_pairs[:16], train_pairs[16:20])
    meta = json.loads((result.artifact_path / "metadata.json").read_text())
    assert meta["trainer"] == "rm"
    assert meta["config"]["max_steps"] == 2
    assert meta["counts"]["train_records"] == 16
    assert "eval/accuracy" in meta["metrics"]
    assert len(meta["data_hash"]) == 64
