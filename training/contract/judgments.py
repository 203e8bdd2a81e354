"""Judgments -> training records: the rules, and how the raters of one item are aggregated.

The rules read plain rows (:class:`JudgmentRow`, grouped by task into an :class:`Item`), never
database objects, and say *which* records an item gives; a :class:`Sink` says *how* each record
is written: :func:`build_records` makes the dataclasses the trainers read (the loop), the export
makes TRL rows (``annotation/insight/training_rows.py``). Both go through :func:`item_records`,
so an export and a retrain cycle built from the same judgments hold the same records.

Rules, per judgment kind:

- pairwise ``A``/``B``: one pair (preferred, other) with ``margin = strength - 1`` (0..3: a
  "negligibly better" choice carries no margin);
- pairwise ``tie``: no record (neither side is preferred; kept for metrics, counted ``tie``);
- pairwise ``both_bad``: no pair; both responses become undesirable (KTO) examples;
- ranking (best group first, a group is a tie): every two responses in different groups give one
  pair, ``margin = group distance - 1``; k responses without ties give C(k, 2) pairs;
- rating: thumbs up -> desirable example, thumbs down -> undesirable;
- demonstration: the written text (when not blank) is an SFT example for the prompt.

Aggregation (:data:`AGGREGATIONS`): ``every`` = the records of every judgment (what the loop
trains on: disagreement is signal for Bradley-Terry); ``majority`` = one answer per item where the
raters' strict majority decides (pairwise: the winning response, margin averaged over its voters;
a winning ``both_bad`` gives both responses undesirable; ranking: each response pair's majority
direction, margin averaged; rating: each response's majority thumb; demonstrations are all kept).
:func:`agreement` = share of an item's judgments equal to its most common answer (``None`` for a
single judgment and for demonstrations).

Which judgments are eligible at all (current, not gold, rater not excluded) is decided where they
are read: ``annotation.selectors.eligible_judgments``.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

from training.contract.records import Message, PreferencePair, SFTExample, UnpairedExample

PAIRWISE, RANKING, RATING, DEMONSTRATION = "pairwise", "ranking", "rating", "demonstration"
A, B, TIE, BOTH_BAD = "A", "B", "tie", "both_bad"

# The record type each judgment kind can feed (an export's ``dataset``), in that order.
DATASETS: dict[str, tuple[str, ...]] = {
    "preference": (PAIRWISE, RANKING),
    "unpaired": (RATING, PAIRWISE),
    "sft": (DEMONSTRATION,),
}

R = TypeVar("R", covariant=True)


class JudgmentRow(NamedTuple):
    """What the rules need of one judgment."""

    task_id: int
    id: int
    rater_id: int | None
    kind: str
    choice: str  # pairwise: A, B, tie, both_bad ("" for other kinds)
    strength: int | None  # pairwise A/B: 1..4
    preferred: int | None  # pairwise A/B: the preferred response's id
    payload: Mapping[str, Any]  # ranking {"ranking"}, rating {"ratings"}, demonstration {"text"}


class Item(NamedTuple):
    """One task and its judgments (all of the task's kind, in id order)."""

    task_id: int
    kind: str
    prompt: Sequence[Message]  # the task's conversation
    texts: Mapping[int, str]  # response id -> text, in the task's position order
    judgments: Sequence[JudgmentRow]


class Sink(Protocol[R]):
    """Writes one record; what it returns is what the rules yield."""

    def pair(self, chosen: str, rejected: str, margin: float) -> R: ...
    def unpaired(self, completion: str, desirable: bool) -> R: ...
    def sft(self, completion: str) -> R: ...


Rule = Callable[[Item, Sink[Any]], Iterator[Any]]


def _other(texts: Mapping[int, str], response_id: int) -> str | None:
    """The text of the task's first response that is not ``response_id``."""
    for rid in texts:
        if rid != response_id:
            return texts[rid]
    return None


def _ranking_votes(payload: Mapping[str, Any]) -> Iterator[tuple[int, int, int]]:
    """(better, worse, group distance) for every two responses in different groups."""
    groups = payload.get("ranking", [])
    for (gi, ga), (gj, gb) in itertools.combinations(enumerate(groups), 2):
        for a in ga:
            for b in gb:
                yield a, b, gj - gi


def _strict_winner(votes: Counter[Any]) -> Any:
    top = votes.most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


# -- every judgment -------------------------------------------------------------------------


def _pairwise_every(item: Item, sink: Sink[R]) -> Iterator[R]:
    texts, pair = item.texts, sink.pair
    for j in item.judgments:
        preferred = j.preferred
        if j.choice in (A, B) and preferred is not None and preferred in texts:
            other = _other(texts, preferred)
            if other is not None:
                yield pair(texts[preferred], other, (j.strength or 1) - 1.0)
        elif j.choice == BOTH_BAD:
            for text in texts.values():
                yield sink.unpaired(text, False)


def _ranking_every(item: Item, sink: Sink[R]) -> Iterator[R]:
    texts = item.texts
    for j in item.judgments:
        for a, b, dist in _ranking_votes(j.payload):
            if a in texts and b in texts:
                yield sink.pair(texts[a], texts[b], dist - 1.0)


def _rating_every(item: Item, sink: Sink[R]) -> Iterator[R]:
    texts = item.texts
    for j in item.judgments:
        for r in j.payload.get("ratings", []):
            if r["response"] in texts:
                yield sink.unpaired(texts[r["response"]], r["thumb"] == "up")


def _demonstration(item: Item, sink: Sink[R]) -> Iterator[R]:
    for j in item.judgments:
        text = j.payload.get("text", "")
        if text.strip():
            yield sink.sft(text)


# -- strict majority per item ---------------------------------------------------------------


def _pairwise_majority(item: Item, sink: Sink[R]) -> Iterator[R]:
    texts, js = item.texts, item.judgments
    winner = _strict_winner(
        Counter(j.preferred if j.preferred is not None else j.choice for j in js)
    )
    if winner in texts:
        other = _other(texts, winner)
        margins = [(j.strength or 1) - 1 for j in js if j.preferred == winner]
        if other is not None:
            yield sink.pair(texts[winner], other, sum(margins) / len(margins))
    elif winner == BOTH_BAD:
        for text in texts.values():
            yield sink.unpaired(text, False)


def _ranking_majority(item: Item, sink: Sink[R]) -> Iterator[R]:
    texts = item.texts
    votes: dict[tuple[int, int], list[int]] = defaultdict(list)
    for j in item.judgments:
        for a, b, dist in _ranking_votes(j.payload):
            votes[(a, b)].append(dist - 1)
    for a, b in sorted({(min(k), max(k)) for k in votes}):
        ab, ba = votes.get((a, b), []), votes.get((b, a), [])
        if len(ab) != len(ba) and a in texts and b in texts:
            win, lose, ms = (a, b, ab) if len(ab) > len(ba) else (b, a, ba)
            yield sink.pair(texts[win], texts[lose], sum(ms) / len(ms))


def _rating_majority(item: Item, sink: Sink[R]) -> Iterator[R]:
    texts = item.texts
    thumbs: dict[int, Counter[str]] = defaultdict(Counter)
    for j in item.judgments:
        for r in j.payload.get("ratings", []):
            thumbs[r["response"]][r["thumb"]] += 1
    for rid in sorted(thumbs):
        thumb = _strict_winner(thumbs[rid])
        if thumb is not None and rid in texts:
            yield sink.unpaired(texts[rid], thumb == "up")


AGGREGATIONS: dict[str, dict[str, Rule]] = {
    "every": {
        PAIRWISE: _pairwise_every,
        RANKING: _ranking_every,
        RATING: _rating_every,
        DEMONSTRATION: _demonstration,
    },
    "majority": {
        PAIRWISE: _pairwise_majority,
        RANKING: _ranking_majority,
        RATING: _rating_majority,
        DEMONSTRATION: _demonstration,
    },
}


def item_records(item: Item, sink: Sink[R], *, aggregation: str = "every") -> Iterator[R]:
    """The records of one item, in a deterministic order, each written by ``sink``."""
    return AGGREGATIONS[aggregation][item.kind](item, sink)


def _answer(kind: str, j: JudgmentRow) -> Any:
    if kind == PAIRWISE:
        return j.preferred if j.preferred is not None else j.choice
    if kind == RANKING:
        return tuple(tuple(sorted(g)) for g in j.payload.get("ranking", []))
    return tuple(sorted((r["response"], r["thumb"]) for r in j.payload.get("ratings", [])))


def agreement(item: Item) -> float | None:
    """Share of the item's judgments equal to its most common answer."""
    if item.kind == DEMONSTRATION or len(item.judgments) < 2:
        return None
    answers = Counter(_answer(item.kind, j) for j in item.judgments)
    return answers.most_common(1)[0][1] / len(item.judgments)


# -- the trainers' records ------------------------------------------------------------------


@dataclass
class Records:
    """Records for the three trainer families, and counts of what the rules kept and left."""

    pairs: list[PreferencePair] = field(default_factory=list)
    unpaired: list[UnpairedExample] = field(default_factory=list)
    sft: list[SFTExample] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class _Collect:
    """The sink of :func:`build_records`: the record dataclasses, appended to ``out``."""

    def __init__(self, out: Records, prompt: Sequence[Message]) -> None:
        self.out = out
        self.prompt = tuple(prompt)

    def pair(self, chosen: str, rejected: str, margin: float) -> PreferencePair:
        record = PreferencePair(self.prompt, chosen, rejected, margin)
        self.out.pairs.append(record)
        return record

    def unpaired(self, completion: str, desirable: bool) -> UnpairedExample:
        record = UnpairedExample(self.prompt, completion, desirable)
        self.out.unpaired.append(record)
        return record

    def sft(self, completion: str) -> SFTExample:
        record = SFTExample(self.prompt, completion)
        self.out.sft.append(record)
        return record


def _count_left_out(item: Item, counts: Counter[str]) -> None:
    counts[f"judgments/{item.kind}"] += len(item.judgments)
    if item.kind == PAIRWISE:
        for j in item.judgments:
            if j.choice == BOTH_BAD:
                counts["both_bad"] += 1
            elif not (j.choice in (A, B) and j.preferred in item.texts):
                counts["tie"] += 1
    elif item.kind == RANKING:
        counts["ranking_ties"] += sum(
            len(g) * (len(g) - 1) // 2 for j in item.judgments for g in j.payload.get("ranking", [])
        )


def build_records(items: Iterable[Item], *, aggregation: str = "every") -> Records:
    """Training records of ``items`` in their order (see the module docstring for the rules)."""
    out = Records()
    for item in items:
        _count_left_out(item, out.counts)
        for _ in item_records(item, _Collect(out, item.prompt), aggregation=aggregation):
            pass
    out.counts["pairs"] = len(out.pairs)
    out.counts["unpaired"] = len(out.unpaired)
    out.counts["sft"] = len(out.sft)
    return out
