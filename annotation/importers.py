"""Parsing of JSONL imports into plain records (pure: no database).

Accepted line forms:

* ``{"prompt": str | messages, "responses": [str, ...]}``: candidates without a label;
* HH-RLHF: ``{"chosen": dialogue, "rejected": dialogue}``, where both dialogues share every turn
  but the last assistant turn; the shared prefix becomes the prompt;
* TRL preference: ``{"prompt": str | messages, "chosen": str | messages, "rejected": ...}``.

Optional on every line: ``source`` (str) and ``metadata`` (object). A whole file is parsed before
anything is written; any bad line makes the import fail with every bad line's number and reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")
MAX_LINE_ERRORS = 50
MAX_TEXT_CHARS = 100_000
HH_TURN = re.compile(r"\n\n(Human|Assistant):")
HH_ASSISTANT = "\n\nAssistant:"


@dataclass(frozen=True)
class ImportRecord:
    line: int
    messages: list[dict[str, str]]
    responses: list[str]
    preferred: tuple[int, int] | None = None  # (chosen index, rejected index) in responses
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParseResult:
    records: list[ImportRecord] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    blank_lines: int = 0


class LineError(ValueError):
    pass


def _messages(value: object, what: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise LineError(f"{what} is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise LineError(f"{what} must be a string or a non-empty list of messages")
    clean = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise LineError(f"{what}[{i}] must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise LineError(f"{what}[{i}].role must be one of {list(ROLES)}")
        if not isinstance(content, str):
            raise LineError(f"{what}[{i}].content must be a string")
        clean.append({"role": role, "content": content})
    return clean


def _completion(value: object, what: str) -> str:
    """A response given as a string or as a one-message assistant list (TRL conversational)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0].get("content") if value[0].get("role") == "assistant" else None
    if not isinstance(value, str) or not value.strip():
        raise LineError(f"{what} must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise LineError(f"{what} is longer than {MAX_TEXT_CHARS} characters")
    return value


def shared_prefix(a: str, b: str) -> str:
    """The longest common prefix of two strings, character by character."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def split_hh_dialogue(prompt_text: str) -> list[dict[str, str]]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c"`` → user a, assistant b, user c."""
    parts = HH_TURN.split(prompt_text)
    # parts = [preamble, speaker, text, speaker, text, ...]
    messages = [
        {"role": "user" if parts[i] == "Human" else "assistant", "content": parts[i + 1].strip()}
        for i in range(1, len(parts), 2)
    ]
    if not messages or messages[0]["role"] != "user":
        raise LineError("dialogue has no '\\n\\nHuman:' turn before the reply")
    return messages


def _hh_record(obj: dict[str, Any], line: int) -> ImportRecord:
    """The prompt is the shared prefix up to and including its last '\\n\\nAssistant:'; the two
    responses are what follows it (the HH-RLHF convention, see the data's README)."""
    chosen_text, rejected_text = obj["chosen"], obj["rejected"]
    if not isinstance(chosen_text, str) or not isinstance(rejected_text, str):
        raise LineError("chosen and rejected must be strings")
    shared = shared_prefix(chosen_text, rejected_text)
    cut = shared.rfind(HH_ASSISTANT)
    if cut < 0:
        raise LineError("chosen and rejected share no turn ending in '\\n\\nAssistant:'")
    prompt_text = shared[:cut]
    start = cut + len(HH_ASSISTANT)
    messages = split_hh_dialogue(prompt_text)
    chosen, rejected = chosen_text[start:].strip(), rejected_text[start:].strip()
    return _pair(line, messages, chosen, rejected, obj)


def _pair(
    line: int, messages: list[dict[str, str]], chosen: str, rejected: str, obj: dict[str, Any]
) -> ImportRecord:
    if not chosen.strip() or not rejected.strip():
        raise LineError("chosen and rejected must both be non-empty")
    if chosen == rejected:
        raise LineError("chosen and rejected are identical")
    return ImportRecord(line, messages, [chosen, rejected], (0, 1), *_extras(obj))


def _extras(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    source = obj.get("source", "")
    metadata = obj.get("metadata", {})
    if not isinstance(source, str) or len(source) > 200:
        raise LineError("source must be a string of at most 200 characters")
    if not isinstance(metadata, dict):
        raise LineError("metadata must be an object")
    return source, metadata


def parse_line(obj: object, line: int) -> ImportRecord:
    if not isinstance(obj, dict):
        raise LineError("each line must be a JSON object")
    if "chosen" in obj and "rejected" in obj:
        if "prompt" not in obj:
            return _hh_record(obj, line)
        messages = _messages(obj["prompt"], "prompt")
        chosen = _completion(obj["chosen"], "chosen")
        rejected = _completion(obj["rejected"], "rejected")
        return _pair(line, messages, chosen, rejected, obj)
    if "prompt" in obj and "responses" in obj:
        messages = _messages(obj["prompt"], "prompt")
        responses = obj["responses"]
        if not isinstance(responses, list):
            raise LineError("responses must be a list of strings")
        texts = [_completion(r, f"responses[{i}]") for i, r in enumerate(responses)]
        if len(set(texts)) != len(texts):
            raise LineError("responses contains the same text twice")
        return ImportRecord(line, messages, texts, None, *_extras(obj))
    raise LineError(
        "unrecognised line: expected {prompt, responses}, {chosen, rejected} (HH-RLHF) "
        "or {prompt, chosen, rejected} (TRL)"
    )


def parse_jsonl(lines: Iterable[bytes | str]) -> ParseResult:
    result = ParseResult()
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            result.errors.append((number, "not valid UTF-8"))
            continue
        if not text.strip():
            result.blank_lines += 1
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            result.errors.append((number, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        try:
            result.records.append(parse_line(obj, number))
        except LineError as exc:
            result.errors.append((number, str(exc)))
    return result
