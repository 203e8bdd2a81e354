"""Length-bucketed, deterministic batching and padding.

Order is a pure function of ``(seed, epoch)``: examples are shuffled, cut into windows of
``bucket_window`` steps, sorted by length inside a window (so a step holds similar lengths and
padding is small), cut into steps, and the steps are shuffled. Resuming at step ``s`` therefore
needs no saved sampler state, and every process of a distributed run computes the same plan.

A step's examples are split into ``grad_accum * world_size`` contiguous micro-batches; micro-batch
``i`` of process ``r`` is piece ``i * world_size + r``. The loss of each micro-batch is weighted by
its share of the step's units (examples or tokens), so any split of the same step gives the same
gradient.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

IGNORE = -100


def plan_epoch(
    lengths: Sequence[int],
    step_size: int,
    *,
    seed: int,
    epoch: int,
    window: int,
    groups: Sequence[Hashable] | None = None,
) -> list[list[int]]:
    """Indices of the examples of each optimizer step of one epoch.

    ``groups`` (one key per example, e.g. its prompt) keeps a group's examples next to each other:
    the groups are shuffled instead of the examples and sorted inside a window by their longest
    member, so a group lands in one step unless the step's size cuts it. KTO uses it to put a
    prompt's completions in one forward that computes the prompt once."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if groups is None:
        order = torch.randperm(len(lengths), generator=g).tolist()
        key: dict[int, tuple[int, ...]] = {i: (-lengths[i], i) for i in order}
    else:
        members: dict[Hashable, list[int]] = {}
        for i, group in enumerate(groups):
            members.setdefault(group, []).append(i)
        listed = list(members.values())
        shuffled = [listed[j] for j in torch.randperm(len(listed), generator=g).tolist()]
        order = [i for group in shuffled for i in group]
        longest = {group[0]: max(lengths[j] for j in group) for group in shuffled}
        key = {i: (-longest[group[0]], group[0], i) for group in shuffled for i in group}
    steps: list[list[int]] = []
    span = step_size * window
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=key.__getitem__)
        steps.extend(chunk[j : j + step_size] for j in range(0, len(chunk), step_size))
    perm = torch.randperm(len(steps), generator=g).tolist()
    return [steps[i] for i in perm]


def split_step(indices: Sequence[int], pieces: int) -> list[list[int]]:
    """Split into ``pieces`` contiguous near-equal parts (some may be empty)."""
    base, extra = divmod(len(indices), pieces)
    out, pos = [], 0
    for p in range(pieces):
        n = base + (1 if p < extra else 0)
        out.append(list(indices[pos : pos + n]))
        pos += n
    return out


def token_chunks(indices: Sequence[int], costs: Sequence[int], budget: int) -> list[list[int]]:
    """Split a micro-batch greedily so ``len(chunk) * max(cost)`` stays within ``budget``.

    ``costs`` are padded tokens per item (e.g. 2 x length for a chosen+rejected pair). A single
    item over budget still forms its own chunk. ``budget == 0`` keeps the micro-batch whole.
    """
    if budget <= 0 or not indices:
        return [list(indices)]
    chunks: list[list[int]] = [[]]
    widest = 0
    for i in indices:
        w = max(widest, costs[i])
        if chunks[-1] and (len(chunks[-1]) + 1) * w > budget:
            chunks.append([])
            w = costs[i]
        chunks[-1].append(i)
        widest = w
    return chunks


def pad_sequences(
    seqs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad (prompt, response) id pairs; labels mask prompt and padding with -100."""
    width = max(len(p) + len(r) for p, r in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, (p, r) in enumerate(seqs):
        n = len(p) + len(r)
        ids[row, :n] = torch.tensor([*p, *r], dtype=torch.long)
        labels[row, len(p) : n] = torch.tensor(list(r), dtype=torch.long)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}  # each (B, T)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad prompts for generation."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        if s:
            ids[row, width - len(s) :] = torch.tensor(list(s), dtype=torch.long)
            mask[row, width - len(s) :] = 1
    return {"input_ids": ids, "attention_mask": mask}


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches for inference (eval, reference log-probs): longest first, little padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
