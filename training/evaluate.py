"""Evaluate a policy against its parent on held-out prompts.

For each prompt both policies sample one response; the reward model scores both. Reported:

- ``win_rate``: fraction of prompts where the policy's response out-scores the parent's (ties 0.5);
- ``mean_reward`` / ``parent_mean_reward``;
- ``mean_length`` / ``parent_mean_length`` in tokens: reward going up while length balloons is the
  classic reward-hacking alarm;
- ``kl``: Monte-Carlo KL(policy || parent) = mean over the policy's samples of
  ``sum_t log pi(y_t) - log parent(y_t)`` (the parent is the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from training.batching import pad_sequences
from training.generate import generate, score
from training.modeling import sequence_logps, to_device
from training.records import Prompt
from training.tokenize import Encoder


@torch.no_grad()
def response_logps(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    responses: Sequence[tuple[int, ...]],
    *,
    max_prompt_length: int,
    batch_size: int = 8,
) -> list[float]:
    """Summed log-probs under ``model`` of already-tokenized responses."""
    model.eval()
    device = next(model.parameters()).device
    encoder = Encoder(
        tokenizer, max_length=max_prompt_length + 1, max_prompt_length=max_prompt_length
    )
    seqs = [(encoder.prompt(p)[0], r) for p, r in zip(prompts, responses, strict=True)]
    out: list[float] = []
    for start in range(0, len(seqs), batch_size):
        batch = to_device(
            pad_sequences(seqs[start : start + batch_size], tokenizer.pad_token_id), device
        )
        logps, _ = sequence_logps(model, batch)
        out.extend(logps.float().tolist())
    return out


def compare_policies(
    policy: Any,
    parent: Any,
    tokenizer: Any,
    reward_model: Any,
    rm_tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    max_prompt_length: int = 256,
    batch_size: int = 8,
    seed: int = 0,
) -> dict[str, float]:
    """Win rate, rewards, lengths and KL of ``policy`` versus ``parent`` (see module docstring)."""
    kw = {
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "max_prompt_length": max_prompt_length,
        "batch_size": batch_size,
        "seed": seed,
    }
    new = [s[0] for s in generate(policy, tokenizer, prompts, k=1, **kw)]
    old = [s[0] for s in generate(parent, tokenizer, prompts, k=1, **kw)]
    r_new = score(
        reward_model,
        rm_tokenizer,
        [(p, s.text) for p, s in zip(prompts, new, strict=True)],
        batch_size=batch_size,
    )
    r_old = score(
        reward_model,
        rm_tokenizer,
        [(p, s.text) for p, s in zip(prompts, old, strict=True)],
        batch_size=batch_size,
    )
    parent_logps = response_logps(
        parent,
        tokenizer,
        prompts,
        [s.token_ids for s in new],
        max_prompt_length=max_prompt_length,
        batch_size=batch_size,
    )
    wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(r_new, r_old, strict=True)]
    n = max(1, len(prompts))
    return {
        "win_rate": sum(wins) / n,
        "mean_reward": sum(r_new) / n,
        "parent_mean_reward": sum(r_old) / n,
        "mean_length": sum(len(s.token_ids) for s in new) / n,
        "parent_mean_length": sum(len(s.token_ids) for s in old) / n,
        "kl": sum(s.logprob - lp for s, lp in zip(new, parent_logps, strict=True)) / n,
        "prompts": float(len(prompts)),
    }
