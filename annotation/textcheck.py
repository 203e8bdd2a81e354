"""Text that PostgreSQL, UTF-8 or JSON cannot store, found before anything is written.

Every input from outside (API bodies, uploads, forms, query strings) passes through here at the
boundary, so one pasted character gives a clear 400 naming the field instead of a 500 deep in the
database driver:

* NUL (U+0000): PostgreSQL ``text`` and ``jsonb`` refuse it;
* lone surrogates (U+D800-U+DFFF): JSON may spell them (``"\\udc00"``) but they are not
  characters, and encoding them as UTF-8 fails;
* non-finite numbers (``NaN``, ``Infinity``): ``jsonb`` has no such values;
* nesting deeper than ``MAX_DEPTH``: nobody's metadata is that deep, and recursive code
  (serializers, the JSON encoder) would overflow the stack on it.

The walk is iterative, so a hostile document cannot exhaust the stack here either.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 32
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class TextProblem:
    path: str  # where, e.g. "rationale", "responses[2]", "metadata.source"
    reason: str  # what is wrong, for the message

    def message(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return f"contains a NUL character (U+0000) at position {found.start()}; remove it"
    return (
        f"contains a lone surrogate (U+{ord(char):04X}) at position {found.start()}, "
        "which is not a character; send valid Unicode text"
    )


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def find_problem(value: Any, path: str = "", max_depth: int = MAX_DEPTH) -> TextProblem | None:
    """The first value in a JSON-like document (dict keys included) that cannot be stored."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                return TextProblem(where, reason)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return TextProblem(where, f"{item!r} is not a finite number")
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return TextProblem(where, f"is nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                children = list(item.items())
                for key, _ in children:
                    reason = text_problem(str(key))
                    if reason:
                        return TextProblem(where, f"a key {reason}")
            else:
                children = list(enumerate(item))
            # Reversed so that the first problem in document order is the one reported.
            for key, child in reversed(children):
                stack.append((child, _join(where, key), depth + 1))
    return None


# Model output a rater can read. A sampled response can be empty, can stop in the middle of a
# multi-byte character or wander into byte tokens that are not UTF-8 (the tokenizer decodes
# those to U+FFFD), or be a run of control characters: none of that is a task worth a rater's
# time, so the loop drops it and counts why (workers/candidates.py).

UNREADABLE_LABELS = {
    "empty": "empty",
    "invalid_utf8": "invalid UTF-8",
    "control_characters": "control characters",
}
MAX_CONTROL_SHARE = 0.2  # more than this share of C0/C1 control characters: unreadable
_INVALID = re.compile("[\ufffd\ud800-\udfff]")  # replacement character, lone surrogates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 (and DEL), not \t or \n


def unreadable_reason(text: str | bytes) -> str | None:
    """Why ``text`` should not be shown to a rater (a key of ``UNREADABLE_LABELS``), or None.

    Bytes must be valid UTF-8; text must hold no U+FFFD (what a decoder puts for invalid bytes)
    and no lone surrogate, must not be empty or whitespace, and at most ``MAX_CONTROL_SHARE`` of
    its characters may be control characters other than tab and newline."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_utf8"
    if _INVALID.search(text):
        return "invalid_utf8"
    if not text.strip():
        return "empty"
    if len(_CONTROL.findall(text)) > MAX_CONTROL_SHARE * len(text):
        return "control_characters"
    return None


def unreadable_summary(counts: dict[str, int]) -> str | None:
    """``{"empty": 2, "control_characters": 1}`` as "3 unreadable candidates dropped (2 empty,
    1 control characters)"; None when nothing was dropped."""
    counts = {k: n for k, n in counts.items() if n}
    total = sum(counts.values())
    if not total:
        return None
    parts = ", ".join(
        f"{n} {UNREADABLE_LABELS.get(k, k)}"
        for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    noun = "candidate" if total == 1 else "candidates"
    return f"{total} unreadable {noun} dropped ({parts})"
