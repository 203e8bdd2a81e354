"""Parsing of JSONL imports into plain records (pure: no database, no settings).

Accepted line forms:

* ``{"prompt": str | messages, "responses": [str, ...]}``: candidates without a label (an empty
  list imports the prompt alone, for the loop to generate candidates for);
* HH-RLHF: ``{"chosen": dialogue, "rejected": dialogue}``, where both dialogues share every turn
  but the last assistant turn; the shared prefix becomes the prompt;
* TRL preference: ``{"prompt": str | messages, "chosen": str | messages, "rejected": ...}``.

Optional on every line: ``source`` (str) and ``metadata`` (object).

The input is read as a stream, one line at a time (:func:`read_lines`): a line longer than
``Limits.line_bytes`` is refused while it is read, its remainder skipped in small chunks and never
held, so memory does not depend on what a file contains. Every line is checked whole before it
becomes a record: text PostgreSQL or UTF-8 cannot store (NUL, lone surrogates), non-finite numbers
and deep nesting (``annotation/textcheck.py``), and the length caps on prompts and responses. A
bad line is reported with its number and a reason that names the field.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from annotation.textcheck import MAX_DEPTH, find_problem

ROLES = ("system", "user", "assistant")
MAX_LINE_ERRORS = 50
MAX_MESSAGES = 1_000  # turns in one prompt
MAX_RESPONSES = 100  # responses on one line
SKIP_CHUNK = 1 << 16  # bytes read at a time while skipping the rest of an over-long line
HH_TURN = re.compile(r"\n\n(Human|Assistant):")
HH_ASSISTANT = "\n\nAssistant:"


@dataclass(frozen=True)
class Limits:
    """Caps on one line (documented with the settings that fill them: PROMPT_MAX_CHARS,
    RESPONSE_MAX_CHARS, IMPORT_MAX_LINE_BYTES)."""

    prompt_chars: int = 100_000  # all of a prompt's message contents together
    response_chars: int = 100_000  # each response
    line_bytes: int = 4_000_000  # one JSONL line, as UTF-8 bytes without its newline


@dataclass(frozen=True)
class ImportRecord:
    line: int
    messages: list[dict[str, str]]
    responses: list[str]
    preferred: tuple[int, int] | None = None  # (chosen index, rejected index) in responses
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedLine:
    """One non-blank line: a record or the reason it was refused; ``offset`` = bytes read so far
    (for progress)."""

    number: int
    record: ImportRecord | None
    error: str | None
    offset: int


@dataclass
class ParseResult:
    records: list[ImportRecord] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


class LineError(ValueError):
    pass


# ------------------------------------------------------------------------------- reading


def read_lines(stream: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line number, bytes or None, offset after the line)`` for every line of ``stream``.

    ``None`` means the line is longer than ``max_bytes``: at most ``max_bytes + 1`` bytes of it
    were read before that was known, and the rest is skipped ``SKIP_CHUNK`` bytes at a time.
    """
    offset = 0
    number = 0
    while True:
        chunk = stream.readline(max_bytes + 1)
        if not chunk:
            return
        number += 1
        offset += len(chunk)
        if len(chunk) <= max_bytes or chunk.endswith(b"\n"):
            yield number, chunk, offset
            continue
        while chunk and not chunk.endswith(b"\n"):
            chunk = stream.readline(SKIP_CHUNK)
            offset += len(chunk)
        yield number, None, offset


def iter_parsed(stream: IO[bytes], limits: Limits) -> Iterator[ParsedLine]:
    """Every non-blank line of ``stream`` parsed (blank lines are skipped silently)."""
    for number, data, offset in read_lines(stream, limits.line_bytes):
        if data is None:
            reason = f"the line is longer than {limits.line_bytes} bytes (IMPORT_MAX_LINE_BYTES)"
            yield ParsedLine(number, None, reason, offset)
            continue
        if not data.strip():
            continue
        try:
            yield ParsedLine(number, parse_bytes(data, number, limits), None, offset)
        except LineError as exc:
            yield ParsedLine(number, None, str(exc), offset)


def parse_bytes(data: bytes, number: int, limits: Limits) -> ImportRecord:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not valid UTF-8 (byte {exc.start + 1} of the line)") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:  # the C decoder refuses very deep nesting this way
        raise LineError(f"is nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit limit
        raise LineError(f"invalid JSON: {str(exc)[:200]}") from exc
    problem = find_problem(obj)
    if problem is not None:
        raise LineError(problem.message())
    return parse_line(obj, number, limits)


def parse_jsonl(lines: Iterable[bytes | str], limits: Limits | None = None) -> ParseResult:
    """All of ``lines`` parsed in memory (small inputs and tests; imports use :func:`iter_parsed`
    on a stream, the same path)."""
    buffer = io.BytesIO()
    for line in lines:
        data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
        buffer.write(data if data.endswith(b"\n") else data + b"\n")
    buffer.seek(0)
    result = ParseResult()
    for parsed in iter_parsed(buffer, limits or Limits()):
        if parsed.record is not None:
            result.records.append(parsed.record)
        else:
            result.errors.append((parsed.number, str(parsed.error)))
    return result


# ------------------------------------------------------------------------------- one line


def _messages(value: object, what: str, limits: Limits) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise LineError(f"{what} is empty")
        messages = [{"role": "user", "content": value}]
    elif not isinstance(value, list) or not value:
        raise LineError(f"{what} must be a string or a non-empty list of messages")
    elif len(value) > MAX_MESSAGES:
        raise LineError(f"{what} has {len(value)} messages; at most {MAX_MESSAGES} are accepted")
    else:
        messages = []
        for i, message in enumerate(value):
            if not isinstance(message, dict):
                raise LineError(f"{what}[{i}] must be an object with role and content")
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise LineError(f"{what}[{i}].role must be one of {list(ROLES)}")
            if not isinstance(content, str):
                raise LineError(f"{what}[{i}].content must be a string")
            messages.append({"role": role, "content": content})
    _check_prompt_length(messages, what, limits)
    return messages


def _check_prompt_length(messages: list[dict[str, str]], what: str, limits: Limits) -> None:
    chars = sum(len(m["content"]) for m in messages)
    if chars > limits.prompt_chars:
        raise LineError(
            f"{what} is {chars} characters long; at most {limits.prompt_chars} are accepted "
            "(PROMPT_MAX_CHARS)"
        )


def _check_response_length(text: str, what: str, limits: Limits) -> None:
    if len(text) > limits.response_chars:
        raise LineError(
            f"{what} is {len(text)} characters long; at most {limits.response_chars} are "
            "accepted (RESPONSE_MAX_CHARS)"
        )


def _completion(value: object, what: str, limits: Limits) -> str:
    """A response given as a string or as a one-message assistant list (TRL conversational)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0].get("content") if value[0].get("role") == "assistant" else None
    if not isinstance(value, str) or not value.strip():
        raise LineError(f"{what} must be a non-empty string")
    _check_response_length(value, what, limits)
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


def _hh_record(obj: dict[str, Any], line: int, limits: Limits) -> ImportRecord:
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
    _check_prompt_length(messages, "prompt (the dialogue before the last reply)", limits)
    chosen, rejected = chosen_text[start:].strip(), rejected_text[start:].strip()
    _check_response_length(chosen, "chosen (its last reply)", limits)
    _check_response_length(rejected, "rejected (its last reply)", limits)
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


def parse_line(obj: object, line: int, limits: Limits | None = None) -> ImportRecord:
    """One decoded line as a record. The caller checked it with ``find_problem`` already."""
    limits = limits or Limits()
    if not isinstance(obj, dict):
        raise LineError("each line must be a JSON object")
    if "chosen" in obj and "rejected" in obj:
        if "prompt" not in obj:
            return _hh_record(obj, line, limits)
        messages = _messages(obj["prompt"], "prompt", limits)
        chosen = _completion(obj["chosen"], "chosen", limits)
        rejected = _completion(obj["rejected"], "rejected", limits)
        return _pair(line, messages, chosen, rejected, obj)
    if "prompt" in obj and "responses" in obj:
        messages = _messages(obj["prompt"], "prompt", limits)
        responses = obj["responses"]
        if not isinstance(responses, list):
            raise LineError("responses must be a list of strings")
        if len(responses) > MAX_RESPONSES:
            raise LineError(
                f"responses has {len(responses)} entries; at most {MAX_RESPONSES} are accepted"
            )
        texts = [_completion(r, f"responses[{i}]", limits) for i, r in enumerate(responses)]
        if len(set(texts)) != len(texts):
            raise LineError("responses contains the same text twice")
        return ImportRecord(line, messages, texts, None, *_extras(obj))
    raise LineError(
        "unrecognised line: expected {prompt, responses}, {chosen, rejected} (HH-RLHF) "
        "or {prompt, chosen, rejected} (TRL)"
    )
