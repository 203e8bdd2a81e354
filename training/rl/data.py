"""Prompts for online RL: a JSONL file with one ``{"prompt": ...}`` object per line.

A prompt is a string (used verbatim) or a list of ``{role, content}`` messages (rendered with the
tokenizer's chat template), as everywhere in ``training``. Other keys on a line are ignored, so an
exported preference file (``prompt``, ``chosen``, ``rejected``) works as a prompt file too.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.records import DataError, Prompt


def as_prompt(value: object, where: str) -> Prompt:
    if isinstance(value, str) and value:
        return value
    if (
        isinstance(value, list | tuple)
        and value
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in value
        )
    ):
        return tuple({"role": m["role"], "content": m["content"]} for m in value)
    raise DataError(f"{where}: 'prompt' must be a non-empty string or a list of messages")


def load_prompts(path: str | Path) -> list[Prompt]:
    """Every line's prompt; a malformed line stops the load with ``FILE:LINE: problem``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    out: list[Prompt] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{p}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: malformed JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or "prompt" not in obj:
                raise DataError(f"{where}: expected an object with 'prompt'")
            out.append(as_prompt(obj["prompt"], where))
    return out
