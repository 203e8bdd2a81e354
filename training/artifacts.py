"""Model artifacts: safetensors only, written to a temporary directory and renamed into place.

Layout of an artifact directory::

    model.safetensors (or shards)  config.json  tokenizer files  metadata.json

``metadata.json`` holds the run config, data hash and counts, metrics, library versions and the
git revision of this code. The directory appears under its final name only after everything was
written (``os.replace`` of a sibling temp dir is atomic on POSIX), so a crash mid-save leaves at
most a ``.tmp-*`` sibling, never a half-written artifact. Loading refuses pickle weights
(``*.bin``, ``*.pt``, ``*.pkl``): unpickling untrusted files runs arbitrary code.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
METADATA = "metadata.json"


class UnsafeWeightsError(ValueError):
    """The directory holds pickle weights and no safetensors."""


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "tokenizers", "safetensors"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_artifact(
    model: Any, tokenizer: Any, final_dir: str | Path, metadata: dict[str, Any]
) -> Path:
    """Write model + tokenizer + metadata.json atomically to ``final_dir``; return it.

    Fails if ``final_dir`` already exists (artifacts are immutable; pick a new name).
    """
    final_dir = Path(final_dir)
    if final_dir.exists():
        raise FileExistsError(f"{final_dir} already exists; artifacts are never overwritten")
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.tmp-", dir=final_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        meta = {
            **metadata,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "library_versions": library_versions(),
            "git_revision": git_revision(),
        }
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        _fsync_dir(tmp)
        os.replace(tmp, final_dir)
        _fsync_dir(final_dir.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final_dir


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_safe_weights(path: str | Path) -> None:
    """Raise :class:`UnsafeWeightsError` unless a local model dir has safetensors weights only."""
    path = Path(path)
    if not path.is_dir():
        return  # a hub id resolved from the local cache; from_pretrained(use_safetensors=True)
    pickles = [p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES]
    has_safe = any(p.suffix == ".safetensors" for p in path.iterdir())
    if pickles and not has_safe:
        raise UnsafeWeightsError(
            f"{path}: refusing pickle weights {sorted(pickles)}; convert them to safetensors"
        )


def read_metadata(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / METADATA).read_text(encoding="utf-8"))
