"""Online RL on the real chat model: SmolLM2-135M-Instruct (installed offline by the ``smollm2``
fixture, tests/conftest.py) through PPO with LoRA, the path users take on a GPU: chat-template
prompts, sampling that ends at ``<|im_end|>``, the value head on the real trunk, the reference as
the adapter disabled, and a merged artifact that loads. Kept small for 2 shared CPU cores:
2 prompts, 2 steps, 8 new tokens.
"""

from __future__ import annotations

import torch

from training.modeling import load_causal_lm
from training.rl import ppo
from training.rl.config import PPOConfig
from training.rl.rewards import ContainsWord

PROMPTS = [
    ({"role": "user", "content": "What is the capital of France? One word."},),
    ({"role": "user", "content": "Name a colour."},),
]


def test_ppo_lora_on_smollm2(smollm2, tmp_path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = ppo.run(
            PPOConfig(
                model=str(smollm2.path),
                output_dir=str(tmp_path / "policy"),
                device="cpu",
                lora_r=4,
                rollout_batch_size=2,
                ppo_epochs=1,
                max_steps=2,
                max_new_tokens=8,
                learning_rate=1e-4,
                missing_eos_penalty=1.0,
                eval_samples=1,
            ),
            PROMPTS,
            PROMPTS[:1],
            reward_model=ContainsWord("Paris"),
        )
    finally:
        torch.set_num_threads(before)
    first, last = result.history[1], result.history[-1]
    assert first["objective/kl"] == 0.0  # LoRA B = 0: the policy starts as its reference
    assert 1 <= first["completions/mean_length"] <= 8
    assert 0.0 <= first["completions/clipped_ratio"] <= 1.0
    assert "val/error" in last
    assert "eval/scores" in last
    assert result.steps == 2
    model = load_causal_lm(str(result.artifact_path), torch.device("cpu"))
    assert not any("lora" in name for name, _ in model.named_parameters())
