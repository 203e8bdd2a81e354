"""Pretraining a tiny causal LM on plain text, offline and deterministically.

No model hub is reachable from our machines, so a simulation that needs a base which already
"speaks" (a reward model that can learn a rule from a few hundred labels needs features worth
learning from) makes one here: the tiny byte-level GPT-2 of :mod:`training.tiny`, trained with
next-byte prediction on random windows of a text corpus. A few minutes on one CPU thread give a
model that writes English-looking words; random weights write byte noise.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pretrain_tiny_causal_lm(
    path: str | Path,
    texts: Sequence[str],
    *,
    steps: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    block: int = 128,
    learning_rate: float = 3e-3,
    n_positions: int = 256,
) -> dict[str, Any]:
    """Train the tiny GPT-2 on ``texts`` for ``steps`` batches and save it (with its tokenizer)
    to ``path``. Returns the metrics, also written to ``path/pretrain.json``.

    Each batch is ``batch_size`` windows of ``block`` bytes at random offsets of the
    concatenated corpus (documents joined by EOS); AdamW with linear warm-up and cosine decay.
    """
    import torch
    from transformers import GPT2LMHeadModel

    from training.loop import cosine_schedule
    from training.tiny import tiny_config, tiny_tokenizer

    if block + 1 > n_positions:
        raise ValueError(f"block {block} does not fit {n_positions} positions")
    tokenizer = tiny_tokenizer()
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    if len(ids) <= block + 1:
        raise ValueError(f"the corpus has {len(ids)} tokens, fewer than one window of {block + 1}")
    corpus = torch.tensor(ids, dtype=torch.long)

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = GPT2LMHeadModel(tiny_config(tokenizer, n_positions=n_positions))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    factor = cosine_schedule(warmup=max(1, steps // 20), total=steps, min_ratio=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        starts = [rng.randrange(len(ids) - block - 1) for _ in range(batch_size)]
        batch = torch.stack([corpus[s : s + block + 1] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss  # the model shifts labels by one
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())

    path = Path(path)
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    tail = losses[-max(1, steps // 10) :]
    metrics = {
        "steps": steps,
        "corpus_tokens": len(ids),
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),  # nats per byte, mean of the last tenth
        "seed": seed,
        "batch_size": batch_size,
        "block": block,
        "learning_rate": learning_rate,
    }
    (path / "pretrain.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def read_corpus(path: str | Path) -> list[str]:
    """Documents from a text file (one per line) or a JSON Lines file (each object's ``text``, or
    the ``chosen`` side of a preference pair, e.g. the HH-RLHF sample)."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix != ".jsonl":
        return lines
    docs = []
    for n, line in enumerate(lines, 1):
        row = json.loads(line)
        text = row.get("text", row.get("chosen")) if isinstance(row, dict) else None
        if not isinstance(text, str):
            raise ValueError(f"{path}:{n}: no 'text' or 'chosen' string")
        docs.append(text)
    return docs
