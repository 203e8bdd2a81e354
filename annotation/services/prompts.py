"""Prompts: content hashing (dedup) and the fixed train/eval split."""

from __future__ import annotations

import hashlib
import json


def messages_hash(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def split_for(content_hash: str, eval_share: float) -> str:
    """Deterministic per prompt: the same conversation lands in the same split in every project
    and every re-import, so eval prompts never leak into training."""
    bucket = int(content_hash[:8], 16) / 0xFFFFFFFF
    return "eval" if bucket < eval_share else "train"
