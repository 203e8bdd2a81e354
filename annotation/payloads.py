"""Validation of judgment payloads against the task kind (pure: no database).

The client speaks in what it was shown: for pairwise, ``A`` is the response displayed first.
Validation turns the raw JSON into a ``CleanJudgment`` with typed fields, or raises
``ValidationFailed`` naming the field that is wrong.

Payloads by kind::

    pairwise       {"choice": "A"|"B"|"tie"|"both_bad", "strength": 1..4}  (strength: A/B only)
    ranking        {"ranking": [[id, ...], [id], ...]}   best group first; a group is a tie
    rating         {"ratings": [{"response": id, "thumb": "up"|"down", "likert": 1..7?}, ...]}
    demonstration  {"text": "...", "based_on": id | null}

Every kind also takes ``flags`` (names from the project's list), ``rationale``, ``time_spent_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from annotation.errors import ValidationFailed
from annotation.models import PairwiseChoice, TaskKind

MAX_RATIONALE_CHARS = 10_000
MAX_DEMONSTRATION_CHARS = 100_000
MAX_TIME_SPENT_MS = 24 * 3600 * 1000
PAIRWISE_STRENGTHS = {1: "negligibly better", 2: "slightly better", 3: "better", 4: "much better"}

COMMON_KEYS = {"flags", "rationale", "time_spent_ms"}
KIND_KEYS = {
    TaskKind.PAIRWISE: {"choice", "strength"},
    TaskKind.RANKING: {"ranking"},
    TaskKind.RATING: {"ratings"},
    TaskKind.DEMONSTRATION: {"text", "based_on"},
}


@dataclass(frozen=True)
class CleanJudgment:
    kind: str
    choice: str = ""
    strength: int | None = None
    preferred_response_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    rationale: str = ""
    time_spent_ms: int | None = None
    demonstration_text: str = ""
    based_on_id: int | None = None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _common(raw: dict[str, Any], flag_choices: Sequence[str]) -> dict[str, Any]:
    flags = raw.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise ValidationFailed("flags must be a list of flag names.", field="flags")
    unknown = sorted(set(flags) - set(flag_choices))
    if unknown:
        raise ValidationFailed(
            f"Unknown flag(s) {unknown}; this project allows {list(flag_choices)}.", field="flags"
        )
    rationale = raw.get("rationale", "")
    if rationale is None:
        rationale = ""
    if not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE_CHARS:
        raise ValidationFailed(
            f"rationale must be text of at most {MAX_RATIONALE_CHARS} characters.",
            field="rationale",
        )
    time_spent = raw.get("time_spent_ms")
    if time_spent is not None and (
        not _is_int(time_spent) or not 0 <= time_spent <= MAX_TIME_SPENT_MS
    ):
        raise ValidationFailed(
            "time_spent_ms must be a whole number of milliseconds between 0 and 24 h.",
            field="time_spent_ms",
        )
    return {"flags": sorted(set(flags)), "rationale": rationale, "time_spent_ms": time_spent}


def _pairwise(raw: dict[str, Any], display_order: Sequence[int]) -> dict[str, Any]:
    choice = raw.get("choice")
    if choice not in PairwiseChoice.values:
        raise ValidationFailed(
            f"choice must be one of {PairwiseChoice.values}, got {choice!r}.", field="choice"
        )
    strength = raw.get("strength")
    if choice in (PairwiseChoice.A, PairwiseChoice.B):
        if not _is_int(strength) or strength not in PAIRWISE_STRENGTHS:
            raise ValidationFailed(
                "strength (1-4: negligibly, slightly, better, much better) is required when "
                "choosing A or B.",
                field="strength",
            )
        preferred = display_order[0] if choice == PairwiseChoice.A else display_order[1]
    else:
        if strength is not None:
            raise ValidationFailed(f"strength must be empty for {choice}.", field="strength")
        preferred = None
    return {"choice": choice, "strength": strength, "preferred_response_id": preferred}


def _ranking(raw: dict[str, Any], display_order: Sequence[int]) -> dict[str, Any]:
    ranking = raw.get("ranking")
    if not isinstance(ranking, list) or not ranking:
        raise ValidationFailed(
            "ranking must be a non-empty list of groups of response ids, best first.",
            field="ranking",
        )
    seen: list[int] = []
    groups: list[list[int]] = []
    for group in ranking:
        members = group if isinstance(group, list) else [group]
        if not members or not all(_is_int(m) for m in members):
            raise ValidationFailed(
                "each ranking group must be a response id or a non-empty list of ids.",
                field="ranking",
            )
        groups.append(list(members))
        seen.extend(members)
    if len(seen) != len(set(seen)):
        raise ValidationFailed("ranking lists a response more than once.", field="ranking")
    expected = set(display_order)
    if set(seen) != expected:
        missing = sorted(expected - set(seen))
        extra = sorted(set(seen) - expected)
        raise ValidationFailed(
            "ranking must be a permutation of the task's responses"
            + (f"; missing {missing}" if missing else "")
            + (f"; not in this task {extra}" if extra else "")
            + ".",
            field="ranking",
        )
    return {"payload": {"ranking": groups}}


def _rating(raw: dict[str, Any], display_order: Sequence[int]) -> dict[str, Any]:
    ratings = raw.get("ratings")
    if not isinstance(ratings, list) or not ratings:
        raise ValidationFailed(
            "ratings must be a list with one entry per response.", field="ratings"
        )
    clean: list[dict[str, Any]] = []
    for item in ratings:
        if not isinstance(item, dict) or not _is_int(item.get("response")):
            raise ValidationFailed("each rating needs a response id.", field="ratings")
        if item.get("thumb") not in ("up", "down"):
            raise ValidationFailed("each rating needs thumb 'up' or 'down'.", field="ratings")
        likert = item.get("likert")
        if likert is not None and (not _is_int(likert) or not 1 <= likert <= 7):
            raise ValidationFailed("likert must be a whole number from 1 to 7.", field="ratings")
        clean.append({"response": item["response"], "thumb": item["thumb"], "likert": likert})
    ids = [c["response"] for c in clean]
    if len(ids) != len(set(ids)) or set(ids) != set(display_order):
        raise ValidationFailed(
            f"ratings must rate each of the task's responses {sorted(display_order)} once.",
            field="ratings",
        )
    return {"payload": {"ratings": clean}}


def _demonstration(raw: dict[str, Any], display_order: Sequence[int]) -> dict[str, Any]:
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("text (the ideal response) must not be empty.", field="text")
    if len(text) > MAX_DEMONSTRATION_CHARS:
        raise ValidationFailed(
            f"text is longer than {MAX_DEMONSTRATION_CHARS} characters.", field="text"
        )
    based_on = raw.get("based_on")
    if based_on is not None and (not _is_int(based_on) or based_on not in display_order):
        raise ValidationFailed(
            "based_on must be the id of one of the task's responses, or null.", field="based_on"
        )
    return {"demonstration_text": text, "based_on_id": based_on, "payload": {}}


VALIDATORS = {
    TaskKind.PAIRWISE: _pairwise,
    TaskKind.RANKING: _ranking,
    TaskKind.RATING: _rating,
    TaskKind.DEMONSTRATION: _demonstration,
}


def validate_payload(
    *, kind: str, raw: object, display_order: Sequence[int], flag_choices: Sequence[str]
) -> CleanJudgment:
    """Check ``raw`` for a task of ``kind`` whose responses were shown in ``display_order``."""
    if not isinstance(raw, dict):
        raise ValidationFailed("The judgment must be a JSON object.")
    if kind not in VALIDATORS:
        raise ValidationFailed(f"Unknown task kind {kind!r}.")
    unknown = sorted(set(raw) - COMMON_KEYS - KIND_KEYS[TaskKind(kind)])
    if unknown:
        raise ValidationFailed(f"Unknown field(s) {unknown} for a {kind} judgment.")
    fields = _common(raw, flag_choices)
    fields.update(VALIDATORS[TaskKind(kind)](raw, display_order))
    return CleanJudgment(kind=kind, **fields)
