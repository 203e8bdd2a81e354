"""Response log-probs with each prompt computed once for all of its responses (prefix sharing).

DPO scores a chosen and a rejected answer to the same prompt; the usual concatenated forward runs
the prompt twice. Here the sequences that share a prompt are packed into one row,
``[prompt, response_1, ..., response_n]``, with an attention mask under which each response sees
the prompt and its own earlier tokens only, and positions that restart after the prompt for every
response, so each response's log-probs are those of ``prompt + response`` alone (Wang et al. 2024,
"Accelerating Direct Preference Optimization with Prefix Sharing", arXiv:2410.20305). A chat
prompt is usually longer than its answers, so a pair costs ``P + R_c + R_r`` tokens instead of
``2P + R_c + R_r``. Rows are end-aligned (padding in front) so the LM head runs only over the last
columns, where the responses are (``logits_to_keep``).

The mask is 4-D, which transformers hands to the attention as it is (boolean for SDPA, additive
for eager attention). Padding attends to padding only, so no query row is fully masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

PAD, PROMPT = -2, -1  # segment ids of padding and prompt columns; responses are 0, 1, ...


@dataclass
class SharedPrefixBatch:
    input_ids: Tensor  # (B, T)
    position_ids: Tensor  # (B, T)
    segments: Tensor  # (B, T): PAD, PROMPT or the response's index within its row
    sources: Tensor  # (B, K): column whose logits predict each target
    targets: Tensor  # (B, K): the target token ids
    owners: Tensor  # (B, K): index of the input sequence the target belongs to; -1 = none
    offsets: Tensor  # (B, K): the target's index within its response
    lengths: Tensor  # (N,): scored tokens per input sequence

    def to(self, device: torch.device) -> SharedPrefixBatch:
        return SharedPrefixBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def attention_mask(self, implementation: str) -> Tensor:  # (B, 1, T, T)
        """Causal; a response sees the prompt and itself; padding sees padding. Boolean (True =
        attend) for SDPA, additive (0 or the float32 minimum) for eager attention."""
        q, k = self.segments[:, :, None], self.segments[:, None, :]
        width = self.segments.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=q.device).tril()
        allowed = (causal & ((k == q) | ((k == PROMPT) & (q != PAD))))[:, None]
        if implementation == "sdpa":
            return allowed
        if implementation == "eager":
            zeros = torch.zeros(allowed.shape, dtype=torch.float32, device=q.device)
            return zeros.masked_fill(~allowed, torch.finfo(torch.float32).min)
        raise ValueError(
            f"prefix sharing needs eager or sdpa attention (a 4-D mask), not {implementation!r}"
        )


def pack(seqs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> SharedPrefixBatch:
    """One end-aligned row per distinct prompt of ``seqs`` ((prompt ids, response ids) each)."""
    rows: dict[tuple[int, ...], list[int]] = {}
    for i, (prompt, _) in enumerate(seqs):
        rows.setdefault(tuple(prompt), []).append(i)
    built = [_row(prompt, [(i, seqs[i][1]) for i in members]) for prompt, members in rows.items()]
    width = max(len(ids) for ids, *_ in built)
    n_targets = max(1, max(len(row[3]) for row in built))
    shape = (len(built), width)
    batch = SharedPrefixBatch(
        input_ids=torch.full(shape, pad_id, dtype=torch.long),
        position_ids=torch.zeros(shape, dtype=torch.long),
        segments=torch.full(shape, PAD, dtype=torch.long),
        # unused target slots read the last column, so they never widen the logits kept
        sources=torch.full((len(built), n_targets), width - 1, dtype=torch.long),
        targets=torch.zeros((len(built), n_targets), dtype=torch.long),
        owners=torch.full((len(built), n_targets), -1, dtype=torch.long),
        offsets=torch.zeros((len(built), n_targets), dtype=torch.long),
        lengths=torch.zeros(len(seqs), dtype=torch.long),
    )
    for row, (ids, positions, segments, sources, targets, owners, offsets) in enumerate(built):
        offset = width - len(ids)  # end-aligned: the padding goes in front
        batch.input_ids[row, offset:] = torch.tensor(ids)
        batch.position_ids[row, offset:] = torch.tensor(positions)
        batch.segments[row, offset:] = torch.tensor(segments)
        if sources:
            batch.sources[row, : len(sources)] = torch.tensor(sources) + offset
            batch.targets[row, : len(targets)] = torch.tensor(targets)
            batch.owners[row, : len(owners)] = torch.tensor(owners)
            batch.offsets[row, : len(offsets)] = torch.tensor(offsets)
    owned = batch.owners[batch.owners >= 0]
    batch.lengths.index_add_(0, owned, torch.ones_like(owned))
    return batch


def prompt_batches(prompts: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Batches of sequence indices for inference (the reference pass): the sequences of one prompt
    stay together, so they share it, and the longest prompts come first (little padding). A
    batch holds at most ``batch_size`` sequences unless one prompt has more."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(tuple(prompt), []).append(i)
    batches: list[list[int]] = []
    for members in sorted(groups.values(), key=lambda g: (-len(prompts[g[0]]), g[0])):
        if not batches or len(batches[-1]) + len(members) > batch_size:
            batches.append([])
        batches[-1].extend(members)
    return batches


def _row(
    prompt: tuple[int, ...], responses: list[tuple[int, Sequence[int]]]
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int], list[int]]:
    """Columns of one row, unpadded: ids, positions, segments; and per target its source column,
    token, owner and index within its response. A response's first token is predicted from the
    prompt's last column (none when the prompt is empty: like a plain forward, the first token
    is then not scored)."""
    ids, positions, segments = list(prompt), list(range(len(prompt))), [PROMPT] * len(prompt)
    sources: list[int] = []
    targets: list[int] = []
    owners: list[int] = []
    offsets: list[int] = []
    for index, (owner, response) in enumerate(responses):
        previous = len(prompt) - 1
        for t, token in enumerate(response):
            if previous >= 0:
                sources.append(previous)
                targets.append(token)
                owners.append(owner)
                offsets.append(t)
            previous = len(ids)
            ids.append(token)
            positions.append(len(prompt) + t)
            segments.append(index)
    return ids, positions, segments, sources, targets, owners, offsets


def shared_prefix_forward(
    model: Any, batch: SharedPrefixBatch, *, hidden: bool = False
) -> tuple[Tensor, Tensor | None]:
    """The logits (B, K, V) predicting each target and, with ``hidden``, the last hidden states
    (B, K, H) at the same columns (a value head's input)."""
    width = batch.input_ids.shape[1]
    keep = width - int(batch.sources.min())  # the logits of columns width - keep .. width - 1
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask(_attention_of(model)),
        position_ids=batch.position_ids,
        use_cache=False,
        output_hidden_states=hidden,
        logits_to_keep=keep,
    )
    rows = torch.arange(len(batch.sources), device=batch.sources.device)[:, None]
    logits = out.logits[rows, batch.sources - (width - keep)]  # (B, K, V)
    states = out.hidden_states[-1][rows, batch.sources] if hidden else None
    return logits, states


def shared_prefix_logps(model: Any, batch: SharedPrefixBatch, n: int) -> tuple[Tensor, Tensor]:
    """Summed response log-probs (n,) and scored lengths (n,) of the packed sequences, in the
    order they were given to :func:`pack`."""
    logits, _ = shared_prefix_forward(model, batch)
    picked = logits.gather(-1, batch.targets[..., None]).squeeze(-1).float()  # (B, K)
    logps = picked - logits.float().logsumexp(-1)
    valid = batch.owners >= 0
    out = torch.zeros(n, dtype=logps.dtype, device=logps.device)
    return out.index_add(0, batch.owners[valid], logps[valid]), batch.lengths


def _attention_of(model: Any) -> str:
    """The attention implementation of ``model`` (maybe DDP- and peft-wrapped)."""
    return getattr(model, "module", model).config._attn_implementation
