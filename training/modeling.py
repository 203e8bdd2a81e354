"""Loading models and tokenizers, device and precision choice, LoRA, and sequence log-probs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from training.artifacts import check_safe_weights
from training.losses import token_logps


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            if torch.cuda.is_available():
                return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            return torch.device("cpu")
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; fp32 (no autocast) on CPU."""
    if device.type == "cuda" and bf16 and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def fit_lengths(context: int | None, max_length: int, max_prompt_length: int) -> tuple[int, int]:
    """(max_length, max_prompt_length) shrunk to a context window of ``context`` positions: a
    longer sequence would index past the position embeddings (an IndexError deep inside the
    model). In a shrunk window the prompt keeps at most half."""
    if not isinstance(context, int) or max_length <= context:
        return max_length, max_prompt_length
    return context, min(max_prompt_length, context // 2)


def context_window(model_config: Any) -> int | None:
    """The model's number of positions, when its config states one."""
    value = getattr(model_config, "max_position_embeddings", None)
    return value if isinstance(value, int) else None


def fit_to_context(path: str, max_length: int, max_prompt_length: int) -> tuple[int, int]:
    """``fit_lengths`` for the model saved at ``path`` (reads only its config)."""
    from transformers import AutoConfig

    return fit_lengths(
        context_window(AutoConfig.from_pretrained(path)), max_length, max_prompt_length
    )


def load_causal_lm(path: str, device: torch.device) -> Any:
    from transformers import AutoModelForCausalLM

    check_safe_weights(path)
    model: Any = AutoModelForCausalLM.from_pretrained(
        path, use_safetensors=True, dtype=torch.float32
    )
    return model.to(device)


def load_reward_model(
    path: str, device: torch.device, pad_token_id: int | None, num_labels: int = 1
) -> Any:
    """A sequence classifier with one output (the reward); a fresh head on a plain backbone.
    ``num_labels=2`` gives ODIN's quality and length heads (:mod:`training.odin`)."""
    from transformers import AutoModelForSequenceClassification

    check_safe_weights(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=num_labels,
        use_safetensors=True,
        dtype=torch.float32,
        # a one-output reward model as the start of a two-head one: its head is fitted afresh
        ignore_mismatched_sizes=num_labels != 1,
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return model.to(device)


def apply_lora(model: Any, config: Any, task_type: str) -> Any:
    """Wrap ``model`` with a peft LoRA adapter when ``config.lora_r > 0``."""
    if config.lora_r <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules) or "all-linear",
        task_type=task_type,
    )
    return get_peft_model(model, lora)


def prepare_for_training(model: Any, config: Any, task_type: str) -> Any:
    if config.gradient_checkpointing:
        # transformers 5 renamed it; keep working on 4.x
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
        model.config.use_cache = False
        if config.lora_r > 0:
            model.enable_input_require_grads()
    return apply_lora(model, config, task_type)


def unwrap_for_save(model: Any) -> Any:
    """The plain transformers model (DDP and LoRA removed; LoRA merged into the weights)."""
    model = getattr(model, "module", model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


def fingerprint(path: str) -> str:
    """Identify model weights cheaply: config + weight file names, sizes and mtimes."""
    h = hashlib.sha256(str(Path(path).resolve()).encode())
    p = Path(path)
    if p.is_dir():
        for f in sorted(p.iterdir()):
            if f.suffix in (".safetensors", ".json"):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def sequence_logps(model: Any, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Summed response log-probs (B,) and response lengths (B,) for a padded batch: one plain
    forward per row. The trainers and evaluation use :mod:`training.shared_prefix`, which
    computes a shared prompt once; this is the straightforward form."""
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits  # (B, T, V)
    per_token = token_logps(logits, batch["labels"])  # (B, T-1)
    return per_token.sum(-1), (batch["labels"][:, 1:] != -100).sum(-1)


def to_device(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def data_hash(items: Any) -> str:
    """A stable hash of tokenized data (lists/tuples of ints, floats, bools)."""
    h = hashlib.sha256()
    h.update(json.dumps(items, default=_jsonable, separators=(",", ":")).encode())
    return h.hexdigest()


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    raise TypeError(type(obj))
