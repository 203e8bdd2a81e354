"""Sampling k responses per prompt, and scoring (prompt, response) pairs with a reward model.

Generation is batched with left padding (decoder-only models continue from the right edge).
Sampling is seeded per batch, so the same seed, prompts and batch size give the same samples.
Each sample carries the per-token log-probabilities of the *model* (temperature 1, before top-p),
which is what a KL to a reference needs.

A response ends at the first stop token: the tokenizer's EOS, the model's generation-config EOS
ids, and the chat template's end-of-turn markers (``<|im_end|>`` for ChatML models like SmolLM2,
``<|eot_id|>``, ``<end_of_turn>``...) when the vocabulary has them as single tokens. The stop token
is kept in ``token_ids`` (it was sampled) and left out of ``text``. A response cut by the length
limit loses a trailing partial character (a multi-byte character split across byte tokens
decodes to U+FFFD).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import Identity, Linear

from training.batching import left_pad, pad_sequences
from training.modeling import context_window, fit_lengths, to_device
from training.records import Prompt
from training.tokenize import Encoder, classifier_ids, n_special_tokens


@dataclass(frozen=True)
class Sample:
    """One generated response."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]  # log p(token_t | prompt, tokens < t) under the sampling model
    stopped: bool = False  # ended on a stop token (end of turn); False: cut by the length limit

    @property
    def logprob(self) -> float:
        return sum(self.logprobs)


END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The ids that end a response (see the module docstring), the tokenizer's EOS first."""
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    found: list[Any] = [tokenizer.eos_token_id]
    found += config_eos if isinstance(config_eos, list) else [config_eos]
    vocab = tokenizer.get_vocab()
    found += [vocab.get(marker) for marker in END_OF_TURN]
    return list(dict.fromkeys(i for i in found if isinstance(i, int)))


@torch.no_grad()
def _token_logprobs(step_logits: Sequence[torch.Tensor], new: torch.Tensor) -> torch.Tensor:
    """log p of each new token from the raw per-step logits, one step at a time (never the
    (B, N, V) stack: at a 49k vocabulary that was the largest tensor of a generate call)."""
    return torch.stack(
        [
            torch.log_softmax(logits.float(), -1).gather(-1, new[:, t, None]).squeeze(-1)
            for t, logits in enumerate(step_logits)
        ],
        dim=1,
    )


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    k: int = 1,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    max_prompt_length: int = 256,
    batch_size: int = 8,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    logprobs: bool = True,
) -> list[list[Sample]]:
    """``k`` samples for each prompt (``temperature == 0``: greedy, the k samples are equal).
    Prompt and new tokens are fitted into the model's context window. ``progress(done, total)``
    is called after every batch with the number of samples generated so far. ``logprobs=False``
    leaves ``Sample.logprobs`` empty and keeps no logits: the same samples for less memory, for
    callers that score the tokens themselves (the online-RL rollout recomputes them)."""
    model.eval()
    device = next(model.parameters()).device
    context = context_window(model.config)
    if context is not None:
        # Prompt + new tokens must fit the window: the prompt keeps what the new tokens leave,
        # and at least half of it.
        max_prompt_length = min(max_prompt_length, max(context - max_new_tokens, context // 2))
    encoder = Encoder(
        tokenizer, max_length=max_prompt_length + 1, max_prompt_length=max_prompt_length
    )
    prompt_ids = [encoder.prompt(p)[0] for p in prompts]
    stops, pad = stop_token_ids(model, tokenizer), tokenizer.pad_token_id
    expanded = [i for i in range(len(prompts)) for _ in range(k)]
    out: list[list[Sample]] = [[] for _ in prompts]
    for b, start in enumerate(range(0, len(expanded), batch_size)):
        rows = expanded[start : start + batch_size]
        batch = to_device(left_pad([prompt_ids[i] for i in rows], pad), device)  # (B, P)
        room = max_new_tokens if context is None else context - batch["input_ids"].shape[1]
        torch.manual_seed(seed * 1_000_003 + b)
        sampling = temperature > 0
        gen = model.generate(
            **batch,
            do_sample=sampling,
            temperature=temperature if sampling else None,
            top_p=top_p if sampling else None,
            top_k=None,
            max_new_tokens=min(max_new_tokens, room),
            pad_token_id=pad,
            eos_token_id=stops or None,
            output_logits=logprobs,
            return_dict_in_generate=True,
        )
        new = gen.sequences[:, batch["input_ids"].shape[1] :]  # (B, N)
        logps = _token_logprobs(gen.logits, new) if logprobs else None  # (B, N)
        for row, i in enumerate(rows):
            ids = new[row].tolist()
            # Everything after the first stop token is padding (a pad id may equal a stop id).
            end = next((t for t, token in enumerate(ids) if token in stops), None)
            ids = ids if end is None else ids[: end + 1]
            text = tokenizer.decode(ids if end is None else ids[:end], skip_special_tokens=True)
            if end is None:
                text = text.rstrip("\ufffd")  # a character cut in half by the length limit
            lp = tuple(logps[row, : len(ids)].tolist()) if logps is not None else ()
            out[i].append(Sample(text, tuple(ids), lp, stopped=end is not None))
        if progress is not None:
            progress(start + len(rows), len(expanded))
    return out


@torch.no_grad()
def score(
    reward_model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[Prompt, str]],
    *,
    batch_size: int = 16,
    max_length: int = 512,
    max_prompt_length: int = 256,
) -> list[float]:
    """Reward of each (prompt, response), in batches sorted by length."""
    out = _pooled(reward_model, tokenizer, pairs, batch_size, max_length, max_prompt_length)
    return out.squeeze(-1).tolist()


@torch.no_grad()
def reward_features(
    reward_model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[Prompt, str]],
    *,
    batch_size: int = 16,
    max_length: int = 512,
    max_prompt_length: int = 256,
) -> torch.Tensor:
    """The features the reward model's scalar head reads, one row per (prompt, response): (N, H).

    The head (``score`` in decoders, ``classifier`` in encoders) is swapped for an identity for
    the duration of the call, so the model's own pooling (last non-pad token, or the pooler)
    applies and ``reward == head(features)`` holds exactly.
    """
    name = next(
        (n for n in ("score", "classifier") if isinstance(getattr(reward_model, n, None), Linear)),
        None,
    )
    if name is None:
        raise ValueError("reward_features needs a linear `score` or `classifier` head")
    head = getattr(reward_model, name)
    setattr(reward_model, name, Identity())
    try:
        return _pooled(reward_model, tokenizer, pairs, batch_size, max_length, max_prompt_length)
    finally:
        setattr(reward_model, name, head)


def _pooled(
    reward_model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[Prompt, str]],
    batch_size: int,
    max_length: int,
    max_prompt_length: int,
) -> torch.Tensor:
    """The model's pooled output (logits) per (prompt, response), in input order: (N, D)."""
    reward_model.eval()
    device = next(reward_model.parameters()).device
    max_length, max_prompt_length = fit_lengths(
        context_window(reward_model.config), max_length, max_prompt_length
    )
    encoder = Encoder(
        tokenizer,
        max_length=max_length - n_special_tokens(tokenizer),
        max_prompt_length=max_prompt_length,
    )
    seqs = [encoder.encode(p, r) for p, r in pairs]
    order = sorted(range(len(seqs)), key=lambda i: -seqs[i].length)
    rows: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = pad_sequences(
            [classifier_ids(tokenizer, seqs[i]) for i in idx], tokenizer.pad_token_id
        )
        batch = to_device(batch, device)
        logits = reward_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits  # (B, D)
        for i, row in zip(idx, logits.float().cpu(), strict=True):
            rows[i] = row
    return torch.stack(rows) if rows else torch.empty(0, 1)
