"""Rollouts: sample from the policy, score, and keep the tensors the updates need.

Sampling is :func:`training.generate.generate` (batched, left-padded, ``no_grad`` with the KV
cache, end-of-turn detection). Each ``generate`` call covers ``chunk`` prompts and is seeded from
(seed, step, global call index), so a run's samples are a function of the seed and the step: a
resumed run draws the same samples, and a 2-process run the same as one process.

After sampling, one no-grad forward of the policy gives the rollout-time log-probs, entropies and
values (PPO's "old" policy; recomputed rather than taken from generation so they match the update
forward exactly), one of the reference (LoRA adapter disabled, or the held copy) gives the
reference log-probs, and the scorer gives one score per response. A response that hit
``max_new_tokens`` without an end-of-turn token is ``truncated`` (``missing_eos_penalty``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from training.batching import left_pad
from training.generate import Sample, generate
from training.records import Prompt
from training.rl.losses import entropy_from_logits
from training.rl.policy import ActorCritic, reference_of, response_forward, token_logprobs
from training.rl.rewards import Scorer


@dataclass
class Rollout:
    """B = prompts * k samples, prompt-major (a prompt's k samples are adjacent)."""

    prompts: list[Prompt]  # (B,) the prompt of each sample
    texts: list[str]  # (B,)
    input_ids: Tensor  # (B, P + R) left-padded prompt, right-padded response
    attention_mask: Tensor  # (B, P + R)
    prompt_width: int  # P
    response_mask: Tensor  # (B, R) float, 1 on response tokens (end of turn included)
    truncated: Tensor  # (B,) bool: hit the length limit without end of turn
    logprobs: Tensor  # (B, R) policy at rollout time
    ref_logprobs: Tensor  # (B, R)
    entropy: Tensor  # (B, R)
    values: Tensor | None  # (B, R) critic at rollout time (PPO)
    raw_scores: Tensor  # (B,) scorer output
    scores: Tensor  # (B,) minus the missing-EOS penalty
    gold: Tensor | None = None  # (B,) gold scorer output
    extra: dict[str, Tensor] = field(default_factory=dict)  # advantages, returns, ...

    @property
    def responses(self) -> Tensor:  # (B, R)
        return self.input_ids[:, self.prompt_width :]

    def __len__(self) -> int:
        return len(self.texts)


def rollout_seed(seed: int, step: int, call: int) -> int:
    """The seed of one ``generate`` call; distinct across steps and calls, < 2**31."""
    return (seed * 1_000_003 + step * 65_537 + call * 257 + 17) % (2**31 - 1)


def sample(
    policy: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    k: int,
    temperature: float,
    max_new_tokens: int,
    max_prompt_length: int,
    chunk: int,
    seed_of: Any,  # call index within this process's share -> seed
) -> tuple[list[Prompt], list[Sample]]:
    """k samples for each prompt, prompt-major, ``chunk`` prompts per seeded generate call."""
    out_prompts: list[Prompt] = []
    samples: list[Sample] = []
    for call, start in enumerate(range(0, len(prompts), chunk)):
        part = list(prompts[start : start + chunk])
        got = generate(
            policy,
            tokenizer,
            part,
            k=k,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            max_prompt_length=max_prompt_length,
            batch_size=len(part) * k,
            seed=seed_of(call),
            logprobs=False,  # recomputed below by the policy's own forward
        )
        for prompt, group in zip(part, got, strict=True):
            out_prompts += [prompt] * k
            samples += group
    return out_prompts, samples


def prompt_token_ids(
    model: Any, tokenizer: Any, prompts: Sequence[Prompt], max_prompt_length: int, new: int
) -> list[tuple[int, ...]]:
    """The prompt ids ``generate`` used (same rendering and context-window rule)."""
    from training.modeling import context_window
    from training.tokenize import Encoder

    context = context_window(model.config)
    if context is not None:
        max_prompt_length = min(max_prompt_length, max(context - new, context // 2))
    encoder = Encoder(
        tokenizer, max_length=max_prompt_length + 1, max_prompt_length=max_prompt_length
    )
    return [encoder.prompt(p)[0] for p in prompts]


def pack(
    prompt_ids: Sequence[Sequence[int]], samples: Sequence[Sample], pad_id: int
) -> tuple[Tensor, Tensor, int, Tensor]:
    """input_ids, attention_mask (B, P + R), P, response mask (B, R)."""
    query = left_pad(prompt_ids, pad_id)  # (B, P)
    width = max(len(s.token_ids) for s in samples)
    response = torch.full((len(samples), width), pad_id, dtype=torch.long)
    rmask = torch.zeros((len(samples), width), dtype=torch.long)
    for row, s in enumerate(samples):
        response[row, : len(s.token_ids)] = torch.tensor(s.token_ids, dtype=torch.long)
        rmask[row, : len(s.token_ids)] = 1
    ids = torch.cat([query["input_ids"], response], 1)
    mask = torch.cat([query["attention_mask"], rmask], 1)
    return ids, mask, query["input_ids"].shape[1], rmask.float()


@torch.no_grad()
def collect(
    model: ActorCritic,
    ref: Any | None,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    k: int,
    temperature: float,
    max_new_tokens: int,
    max_prompt_length: int,
    chunk: int,
    seed_of: Any,
    scorer: Scorer,
    gold: Scorer | None,
    missing_eos_penalty: float,
    batch_size: int,
    device: torch.device,
    policy_pass: bool = True,
) -> Rollout:
    """Sample, run the policy and the reference over the samples, and score them.

    ``policy_pass=False`` skips the policy's forward: ``logprobs`` and ``entropy`` stay zero for
    the update to fill from its own forward (:func:`training.rl.engine.fill_from_update`), which
    is the same numbers when a rollout gets exactly one optimizer update and the method needs no
    log-probs before its advantages (GRPO); TRL 1.16's GRPO saves this pass the same way."""
    was_training = model.training
    model.eval()
    flat_prompts, samples = sample(
        model.policy,
        tokenizer,
        prompts,
        k=k,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        max_prompt_length=max_prompt_length,
        chunk=chunk,
        seed_of=seed_of,
    )
    ids_of = prompt_token_ids(
        model.policy, tokenizer, flat_prompts, max_prompt_length, max_new_tokens
    )
    ids, mask, width, rmask = pack(ids_of, samples, tokenizer.pad_token_id)
    ids, mask, rmask = ids.to(device), mask.to(device), rmask.to(device)
    tokens = ids[:, width:]
    parts: dict[str, list[Tensor]] = {"logp": [], "ref": [], "ent": [], "val": []}
    for start in range(0, len(samples), batch_size):
        rows = slice(start, start + batch_size)
        if policy_pass:
            logits, values = model(ids[rows], mask[rows], width, temperature)
            parts["logp"].append(token_logprobs(logits, tokens[rows]))
            parts["ent"].append(entropy_from_logits(logits))
            if values is not None:
                parts["val"].append(values.float())
        else:
            parts["logp"].append(torch.zeros(tokens[rows].shape, device=device))
            parts["ent"].append(torch.zeros(tokens[rows].shape, device=device))
        with reference_of(model.policy, ref) as reference:
            ref_logits, _ = response_forward(reference, ids[rows], mask[rows], width, temperature)
        parts["ref"].append(token_logprobs(ref_logits, tokens[rows]))
    model.train(was_training)
    texts = [s.text for s in samples]
    truncated = torch.tensor([not s.stopped for s in samples], device=device)
    raw = torch.tensor(scorer(flat_prompts, texts), dtype=torch.float32, device=device)
    gold_scores = None
    if gold is not None:
        gold_scores = torch.tensor(gold(flat_prompts, texts), dtype=torch.float32, device=device)
    return Rollout(
        prompts=flat_prompts,
        texts=texts,
        input_ids=ids,
        attention_mask=mask,
        prompt_width=width,
        response_mask=rmask,
        truncated=truncated,
        logprobs=torch.cat(parts["logp"]) * rmask,
        ref_logprobs=torch.cat(parts["ref"]) * rmask,
        entropy=torch.cat(parts["ent"]) * rmask,
        values=torch.cat(parts["val"]) * rmask if parts["val"] else None,
        raw_scores=raw,
        scores=raw - missing_eos_penalty * truncated.float(),
        gold=gold_scores,
    )
