"""Training records in memory, and JSONL loaders for the TRL dataset formats.

Three record types cover every trainer (defined in :mod:`training.contract.records`, the data
contract shared with the exports and the loop, and importable from here):

- :class:`PreferencePair` (reward model, DPO): a prompt, a chosen and a rejected response, and an
  optional ``margin`` (how strongly the rater preferred ``chosen``; 0 when unknown).
- :class:`UnpairedExample` (KTO): a prompt, one completion and whether it is desirable.
- :class:`SFTExample` (SFT): a prompt and the completion to imitate.

A *prompt* is either a list of chat messages (``[{"role": "user", "content": "..."}]``), rendered
later by the tokenizer's chat template (or the plain format in :mod:`training.contract.render`),
or a string that is already formatted and is used verbatim.

JSONL formats accepted (the TRL "standard" and "conversational" formats):

=================  ========================================================================
preference         ``{"prompt": str|messages, "chosen": str|messages, "rejected": ...,
                   "margin"?, "weight"?}`` (``weight`` >= 0, default 1);
                   without ``prompt`` (implicit prompt, e.g. HH-RLHF) the common prefix of chosen
                   and rejected is the prompt (split after the last ``"\\n\\nAssistant:"`` for
                   strings, at the last shared message for conversations).
unpaired (KTO)     ``{"prompt": ..., "completion": str|messages, "label": true|false}``
sft                ``{"messages": [...]}`` (the last assistant message is the completion) or
                   ``{"prompt": ..., "completion": ...}``
=================  ========================================================================

Bad data policy (what the loaders do, line numbers are 1-based):

- *Structural* problems — malformed JSON, a missing or mistyped field, a label that is not a
  boolean (``true``/``false``/``0``/``1``) — raise :class:`DataError` naming the file and line, so a
  wrong file fails fast. Pass ``strict=False`` to skip such lines instead (counted as
  ``malformed``).
- *Content* problems that occur in real data — an empty response, ``chosen == rejected`` — are
  skipped and counted in :class:`LoadReport` (``empty_response``, ``identical_pair``).
- Over-long prompts are not dropped here; :mod:`training.tokenize` truncates them (keeping the end)
  and counts it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.contract.records import (
    DataError,
    Message,
    PreferencePair,
    Prompt,
    SFTExample,
    UnpairedExample,
    as_prompt,
    is_message,
    valid_weight,
)
from training.contract.render import HH_ASSISTANT

__all__ = [
    "DataError",
    "LoadReport",
    "Message",
    "PreferencePair",
    "Prompt",
    "SFTExample",
    "UnpairedExample",
    "completion_problem",
    "filter_records",
    "load_jsonl",
    "pair_problem",
    "split_implicit_prompt",
]


def _as_text(value: Any, name: str, where: str) -> str:
    """A response given as a string or as a list of messages (their contents are joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(is_message(m) for m in value):
        return "".join(m["content"] for m in value)
    raise DataError(f"{where}: '{name}' must be a string or a non-empty list of messages")


@dataclass
class LoadReport:
    """How many records were kept and why others were skipped."""

    kept: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"kept": self.kept, **{f"skipped/{k}": v for k, v in sorted(self.skipped.items())}}


def split_implicit_prompt(chosen: Any, rejected: Any, where: str) -> tuple[Prompt, str, str]:
    """Split two dialogues sharing all turns but the last into (prompt, chosen, rejected)."""
    if isinstance(chosen, str) and isinstance(rejected, str):
        prefix_len = 0
        for a, b in zip(chosen, rejected, strict=False):
            if a != b:
                break
            prefix_len += 1
        cut = chosen.rfind(HH_ASSISTANT, 0, prefix_len + 1)
        if cut < 0:
            raise DataError(f"{where}: no 'prompt' field and no shared '\\n\\nAssistant:' prefix")
        cut += len(HH_ASSISTANT)
        return chosen[:cut], chosen[cut:], rejected[cut:]
    if isinstance(chosen, list) and isinstance(rejected, list):
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt = as_prompt(chosen[:shared], where)
        return (
            prompt,
            _as_text(chosen[shared:], "chosen", where),
            _as_text(rejected[shared:], "rejected", where),
        )
    raise DataError(f"{where}: 'chosen' and 'rejected' must both be strings or both message lists")


def _pair_from_json(obj: dict[str, Any], where: str) -> PreferencePair:
    if "chosen" not in obj or "rejected" not in obj:
        raise DataError(f"{where}: missing field 'chosen' or 'rejected'")
    if "prompt" in obj:
        prompt = as_prompt(obj["prompt"], where)
        chosen = _as_text(obj["chosen"], "chosen", where)
        rejected = _as_text(obj["rejected"], "rejected", where)
    else:
        prompt, chosen, rejected = split_implicit_prompt(obj["chosen"], obj["rejected"], where)
    margin = obj.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
        raise DataError(f"{where}: 'margin' must be a number >= 0, got {margin!r}")
    weight = obj.get("weight", 1.0)
    if not valid_weight(weight):
        raise DataError(f"{where}: 'weight' must be a number >= 0, got {weight!r}")
    return PreferencePair(
        prompt=prompt, chosen=chosen, rejected=rejected, margin=float(margin), weight=float(weight)
    )


def _unpaired_from_json(obj: dict[str, Any], where: str) -> UnpairedExample:
    for name in ("prompt", "completion", "label"):
        if name not in obj:
            raise DataError(f"{where}: missing field '{name}'")
    label = obj["label"]
    if label not in (True, False, 0, 1) or isinstance(label, float):
        raise DataError(f"{where}: 'label' must be true or false, got {label!r}")
    return UnpairedExample(
        prompt=as_prompt(obj["prompt"], where),
        completion=_as_text(obj["completion"], "completion", where),
        desirable=bool(label),
    )


def _sft_from_json(obj: dict[str, Any], where: str) -> SFTExample:
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not all(is_message(m) for m in msgs):
            raise DataError(f"{where}: 'messages' must be a list of {{role, content}} messages")
        try:
            return SFTExample.from_messages(msgs)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
    if "prompt" not in obj or "completion" not in obj:
        raise DataError(f"{where}: need 'messages', or 'prompt' and 'completion'")
    return SFTExample(
        prompt=as_prompt(obj["prompt"], where),
        completion=_as_text(obj["completion"], "completion", where),
    )


def pair_problem(pair: PreferencePair) -> str | None:
    """Why a pair cannot be trained on (a skip-counter key), or None when it is fine."""
    if not pair.chosen.strip() or not pair.rejected.strip():
        return "empty_response"
    if pair.chosen == pair.rejected:
        return "identical_pair"
    return None


def completion_problem(completion: str) -> str | None:
    return "empty_response" if not completion.strip() else None


def filter_records(records: Iterable[Any], report: LoadReport | None = None) -> list[Any]:
    """Drop records with content problems (see module docstring), counting them in ``report``."""
    report = report if report is not None else LoadReport()
    kept = []
    for rec in records:
        problem = (
            pair_problem(rec)
            if isinstance(rec, PreferencePair)
            else completion_problem(rec.completion)
        )
        if problem:
            report.skipped[problem] += 1
        else:
            kept.append(rec)
    report.kept = len(kept)
    return kept


_PARSERS = {"preference": _pair_from_json, "unpaired": _unpaired_from_json, "sft": _sft_from_json}


def _iter_json_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield lineno, line


def load_jsonl(path: str | Path, kind: str, *, strict: bool = True) -> tuple[list[Any], LoadReport]:
    """Load records of ``kind`` ("preference", "unpaired" or "sft") from a JSONL file.

    Raises :class:`DataError` ("FILE:LINE: what is wrong") on the first structural problem when
    ``strict``; content problems are always skipped and counted in the returned report.
    """
    if kind not in _PARSERS:
        raise ValueError(f"kind must be one of {sorted(_PARSERS)}, got {kind!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    parse = _PARSERS[kind]
    report = LoadReport()
    records = []
    for lineno, line in _iter_json_lines(path):
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object")
            records.append(parse(obj, where))
        except json.JSONDecodeError as exc:
            if strict:
                raise DataError(f"{where}: malformed JSON ({exc.msg})") from None
            report.skipped["malformed"] += 1
        except DataError:
            if strict:
                raise
            report.skipped["malformed"] += 1
    return filter_records(records, report), report
