"""Resumable checkpoints: weights, optimizer, scheduler, every RNG and the loop's own state.

A checkpoint is a directory ``<output_dir>.checkpoints/step-N/`` holding ``model.safetensors``,
``optimizer.pt`` (optimizer and scheduler state and the torch / CUDA / Python RNG states, loaded
with ``weights_only=True``: tensors and plain containers, never arbitrary pickles) and
``state.json`` (the step, the history so far and whatever else the loop keeps). It is written to a
``.tmp`` sibling and renamed, so a crash leaves the previous checkpoint or none, never half of
one. Restoring the RNG states is what makes a resumed run take the identical steps (dropout
included): the data order is a function of the seed and the step, not of the RNG.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from training.config import TrainConfig


def checkpoint_root(config: TrainConfig) -> Path:
    return Path(f"{config.output_dir}.checkpoints")


def resolve_resume(config: TrainConfig) -> Path | None:
    """The checkpoint ``config.resume_from`` names: a directory, or ``"latest"`` (the highest
    ``step-N`` under :func:`checkpoint_root`, None when there is none yet)."""
    if not config.resume_from:
        return None
    if config.resume_from != "latest":
        return Path(config.resume_from)
    root = checkpoint_root(config)
    steps = (
        sorted(root.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
        if root.exists()
        else []
    )
    return steps[-1] if steps else None


def save_checkpoint(
    path: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]
) -> None:
    """Write a resumable checkpoint atomically (weights as safetensors)."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(getattr(model, "module", model), str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python_rng": random.getstate(),
        },
        tmp / "optimizer.pt",
    )
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states in place; return ``state.json``."""
    load_model(getattr(model, "module", model), str(path / "model.safetensors"))
    # weights_only: tensors and plain containers only, never arbitrary pickled objects.
    blob = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["torch_rng"])
    if blob["cuda_rng"]:
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    random.setstate(_as_tuple(blob["python_rng"]))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x
