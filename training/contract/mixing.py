"""Human and AI labels in one set of training records: the project's ``ai_training`` choice.

- ``human`` (the default): exactly the records of the human judgments (:func:`build_records`);
  AI verdicts are not read at all.
- ``ai``: only AI pairs, each weight 1; no human record of any kind.
- ``both``: the human records (every pair weight 1) and the AI pairs, each weight ``weight``.

An AI pair is one stored AI verdict that is consistent (both orders picked the same response:
an inconsistent verdict never has a chosen response) with a confidence >= ``min_confidence``
(0 keeps every consistent verdict, including one without a confidence): ``PreferencePair(prompt,
chosen, rejected, margin=0, weight)``. The AI gives no strength, so the margin is 0; a task judged
under several principles gives one pair per principle (aggregation ``every``), or with
``majority`` one pair where the strict majority of its verdicts picked the same response.

A Constitutional AI verdict (``cai``: chosen = the revised answer, rejected = the original) is an
AI pair like any other, (revised ≻ original), and its revised answer is also one SFT example
(``SFTExample(prompt, revised)``, once per revision; SFT examples carry no weight). Most CAI
verdicts have no task (only a batch with ``verify`` makes one): their item is the prompt.

Standard library only, like the rest of the contract: the web process writes exports with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from training.contract.judgments import Item, Records, build_records
from training.contract.records import Message, PreferencePair, SFTExample

MIXES = ("human", "ai", "both")
SOURCES = ("human", "ai", "all")  # an export's filter: "all" is the "both" mix


class AIPairRow(NamedTuple):
    """What the mixing needs of one stored AI verdict."""

    task_id: int
    id: int
    chosen: int | None  # the chosen response's id (None: inconsistent)
    rejected: int | None
    confidence: float | None
    cai: bool = False  # a Constitutional AI verdict: chosen = the revised answer


class AIItem(NamedTuple):
    """One task (or, for CAI verdicts without a task, one prompt: ``task_id`` None) and its AI
    verdicts, in id order."""

    task_id: int | None
    prompt: Sequence[Message]
    texts: Mapping[int, str]  # response id -> text
    verdicts: Sequence[AIPairRow]


@dataclass(frozen=True)
class Mixing:
    """The choice, validated: ``mode`` in :data:`MIXES`, ``weight`` 0..1 (``both``), and
    ``min_confidence`` 0 or 0.5..1 (an AI confidence is the winner's probability, >= 0.5)."""

    mode: str = "human"
    weight: float = 0.5
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MIXES:
            raise ValueError(f"ai_training must be one of {list(MIXES)}, got {self.mode!r}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"ai_weight must be from 0 to 1, got {self.weight!r}")
        if not (self.min_confidence == 0 or 0.5 <= self.min_confidence <= 1):
            raise ValueError(
                f"ai_min_confidence must be 0 or from 0.5 to 1, got {self.min_confidence!r}"
            )

    @property
    def uses_human(self) -> bool:
        return self.mode != "ai"

    @property
    def uses_ai(self) -> bool:
        return self.mode != "human"

    @property
    def ai_weight(self) -> float:
        return 1.0 if self.mode == "ai" else float(self.weight)

    def keeps(self, v: AIPairRow) -> bool:
        """Whether a verdict may train: consistent and confident enough."""
        if v.chosen is None or v.rejected is None:
            return False
        if self.min_confidence == 0:
            return True
        return v.confidence is not None and v.confidence >= self.min_confidence


def ai_pairs(
    item: AIItem, mixing: Mixing, *, aggregation: str = "every"
) -> Iterator[tuple[str, str]]:
    """(chosen text, rejected text) of the item's AI pairs, in verdict id order."""
    kept = [
        v
        for v in item.verdicts
        if mixing.keeps(v) and v.chosen in item.texts and v.rejected in item.texts
    ]
    if aggregation == "majority":
        top = Counter((v.chosen, v.rejected) for v in kept).most_common(2)
        if top and (len(top) == 1 or top[0][1] > top[1][1]):
            chosen, rejected = top[0][0]
            yield item.texts[chosen], item.texts[rejected]  # type: ignore[index]
        return
    for v in kept:
        yield item.texts[v.chosen], item.texts[v.rejected]  # type: ignore[index]


def ai_sft(item: AIItem, mixing: Mixing) -> Iterator[str]:
    """The revised answers of the item's kept CAI verdicts (once per revision), in id order."""
    seen: set[int] = set()
    for v in item.verdicts:
        if not v.cai or not mixing.keeps(v) or v.chosen not in item.texts or v.chosen in seen:
            continue
        if v.rejected not in item.texts:
            continue
        seen.add(v.chosen)  # type: ignore[arg-type]
        yield item.texts[v.chosen]  # type: ignore[index]


def mixed_records(
    human: Iterable[Item],
    ai: Iterable[AIItem],
    mixing: Mixing,
    *,
    aggregation: str = "every",
) -> Records:
    """The records of the choice (module docstring): human records first (by task), then the AI
    records (by task: its pairs, and the SFT examples of CAI revisions). ``counts`` adds
    ``human`` (human records of every type), ``ai`` (AI records: pairs and SFT examples),
    ``ai_sft`` (of which SFT examples) and ``ai_left_out`` (verdicts that were inconsistent or
    below the confidence floor)."""
    out = build_records(human, aggregation=aggregation) if mixing.uses_human else Records()
    n_human = len(out.pairs) + len(out.unpaired) + len(out.sft)
    n_ai = n_sft = left_out = 0
    if mixing.uses_ai:
        weight = mixing.ai_weight
        for item in ai:
            left_out += sum(1 for v in item.verdicts if not mixing.keeps(v))
            prompt = tuple(item.prompt)
            for chosen, rejected in ai_pairs(item, mixing, aggregation=aggregation):
                out.pairs.append(PreferencePair(prompt, chosen, rejected, 0.0, weight))
                n_ai += 1
            for revised in ai_sft(item, mixing):
                out.sft.append(SFTExample(prompt, revised))
                n_sft += 1
    out.counts["pairs"] = len(out.pairs)
    out.counts["sft"] = len(out.sft)
    out.counts["human"] = n_human
    out.counts["ai"] = n_ai + n_sft
    out.counts["ai_sft"] = n_sft
    out.counts["ai_left_out"] = left_out
    return out
