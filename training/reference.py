"""Reference log-probabilities, computed once before policy training and cached on disk.

DPO and KTO compare the policy with a frozen reference. Instead of keeping a second model in
memory and running it every step, we run the reference once over every training and eval sequence
before the first policy step, keep one float per sequence, and free the model. The result is cached
under ``cache_dir/<key>.safetensors`` where ``key`` hashes the reference model's fingerprint and
the tokenized sequences, so a retry or a second run on the same data skips the pass entirely.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from training.modeling import autocast, data_hash
from training.shared_prefix import pack, prompt_batches, shared_prefix_logps
from training.tokenize import Encoded


@torch.no_grad()
def compute_logps(
    model: Any,
    seqs: Sequence[Encoded],
    *,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = True,
) -> Tensor:  # (N,) float32 on CPU
    """Summed response log-probs of each sequence under ``model`` (eval mode, no grad); the
    sequences of one prompt (a pair's two answers, KTO's completion and its KL completion) are
    batched together and share the prompt's forward (:mod:`training.shared_prefix`)."""
    was_training = model.training
    model.eval()
    out = torch.zeros(len(seqs), dtype=torch.float32)
    for idx in prompt_batches([s.prompt_ids for s in seqs], batch_size):
        batch = pack([(seqs[i].prompt_ids, seqs[i].response_ids) for i in idx], pad_id)
        with autocast(device, bf16):
            logps, _ = shared_prefix_logps(model, batch.to(device), len(idx))
        out[idx] = logps.float().cpu()
    model.train(was_training)
    return out


def cache_key(model_fingerprint: str, seqs: Sequence[Encoded]) -> str:
    return data_hash([model_fingerprint, [(s.prompt_ids, s.response_ids) for s in seqs]])


def cached_logps(
    model: Any,
    seqs: Sequence[Encoded],
    *,
    model_fingerprint: str,
    cache_dir: str | Path,
    pad_id: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = True,
) -> tuple[Tensor, bool]:
    """Reference log-probs for ``seqs`` from the cache, or computed and stored; (values, hit)."""
    path = Path(cache_dir) / f"{cache_key(model_fingerprint, seqs)}.safetensors"
    if path.is_file():
        values = load_file(path)["logps"]
        if values.shape == (len(seqs),):
            return values, True
    values = compute_logps(
        model, seqs, pad_id=pad_id, batch_size=batch_size, device=device, bf16=bf16
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    save_file({"logps": values.contiguous()}, tmp)
    os.replace(tmp, path)
    return values, False
