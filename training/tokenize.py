"""Turn records into token ids: prompt formatting, masking and the truncation rule.

Prompt formatting:

- a string prompt is used verbatim (it is already formatted, e.g. HH-RLHF's
  ``"\\n\\nHuman: ...\\n\\nAssistant:"``);
- a message list goes through the tokenizer's chat template (``add_generation_prompt=True``) when
  the tokenizer has one;
- otherwise the *plain format* is used (:func:`training.contract.render.plain_format`, shared with
  the exports): each message as ``"\\n\\n{Role}: {content}"`` (roles ``Human``, ``Assistant``,
  ``System``) followed by ``"\\n\\nAssistant:"``, and the response gets a leading space. This is
  the HH-RLHF format, so exported data and public data look alike.

The response is followed by the EOS token when the tokenizer has one. Only response tokens carry
a loss; prompt positions are masked (label ``-100``) in :mod:`training.batching`.

Truncation rule (counted in :class:`TokenizeReport`): the prompt keeps its *last*
``max_prompt_length`` tokens (the end of a conversation matters most); each response is then cut
to the room left, ``max_length - len(prompt) - special tokens``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from training.contract.records import PreferencePair, Prompt, SFTExample, UnpairedExample
from training.contract.render import plain_format


@dataclass
class TokenizeReport:
    """Counts of truncated examples."""

    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {f"truncated/{k}": v for k, v in sorted(self.counts.items())}


@dataclass(frozen=True)
class Encoded:
    """One (prompt, response) sequence. ``label`` is the pair side, KTO label or 0."""

    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


@dataclass(frozen=True)
class EncodedPair:
    chosen: Encoded
    rejected: Encoded
    margin: float = 0.0
    weight: float = 1.0  # the pair's weight in the loss's weighted mean (PreferencePair.weight)

    @property
    def length(self) -> int:
        return max(self.chosen.length, self.rejected.length)


@dataclass(frozen=True)
class EncodedUnpaired:
    completion: Encoded
    kl: Encoded  # the same prompt with another example's completion (KTO's KL estimate)
    desirable: bool

    @property
    def length(self) -> int:
        return max(self.completion.length, self.kl.length)


def render_prompt(tokenizer: Any, prompt: Prompt) -> tuple[str, bool]:
    """The prompt text, and whether responses need the plain format's leading space."""
    if isinstance(prompt, str):
        return prompt, False
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [dict(m) for m in prompt], tokenize=False, add_generation_prompt=True
        )
        return text, False
    return plain_format(prompt), True


class Encoder:
    """Tokenizes prompts and responses with the truncation rule; counts what it cuts."""

    def __init__(self, tokenizer: Any, *, max_length: int, max_prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.report = TokenizeReport()
        eos = tokenizer.eos_token_id
        self._eos = () if eos is None else (eos,)
        self._cache: dict[Any, tuple[tuple[int, ...], bool]] = {}

    def ids(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, prompt: Prompt) -> tuple[tuple[int, ...], bool]:
        key = (
            prompt if isinstance(prompt, str) else tuple((m["role"], m["content"]) for m in prompt)
        )
        if key not in self._cache:
            text, space = render_prompt(self.tokenizer, prompt)
            ids = self.ids(text)
            if len(ids) > self.max_prompt_length:
                self.report.counts["prompt"] += 1
                ids = ids[-self.max_prompt_length :]
            self._cache[key] = (ids, space)
        return self._cache[key]

    def response(self, prompt_ids: tuple[int, ...], text: str, space: bool) -> tuple[int, ...]:
        if space and text and not text[0].isspace():
            text = " " + text
        ids = self.ids(text) + self._eos
        room = self.max_length - len(prompt_ids)
        if len(ids) > room:
            self.report.counts["response"] += 1
            ids = ids[:room]
        return ids

    def encode(self, prompt: Prompt, response: str) -> Encoded:
        prompt_ids, space = self.prompt(prompt)
        return Encoded(prompt_ids, self.response(prompt_ids, response, space))


def encode_pairs(encoder: Encoder, pairs: Sequence[PreferencePair]) -> list[EncodedPair]:
    return [
        EncodedPair(
            encoder.encode(p.prompt, p.chosen),
            encoder.encode(p.prompt, p.rejected),
            p.margin,
            p.weight,
        )
        for p in pairs
    ]


def encode_unpaired(encoder: Encoder, examples: Sequence[UnpairedExample]) -> list[EncodedUnpaired]:
    """Encode KTO examples; example i's KL sequence pairs its prompt with example i-1's completion.

    The mismatched pairing is fixed once (like TRL's) so that reference log-probs for it can be
    precomputed; with a single example the KL sequence is the example itself.
    """
    out = []
    for i, ex in enumerate(examples):
        other = examples[i - 1].completion if len(examples) > 1 else ex.completion
        out.append(
            EncodedUnpaired(
                encoder.encode(ex.prompt, ex.completion),
                encoder.encode(ex.prompt, other),
                ex.desirable,
            )
        )
    return out


def encode_sft(encoder: Encoder, examples: Sequence[SFTExample]) -> list[Encoded]:
    return [encoder.encode(ex.prompt, ex.completion) for ex in examples]


def n_special_tokens(tokenizer: Any) -> int:
    """Special tokens an encoder-style (BERT) reward model adds around prompt and response."""
    return 3 if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None else 0


def classifier_ids(tokenizer: Any, enc: Encoded) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(prefix, rest) ids for a sequence classifier: ``[CLS] prompt [SEP] response [SEP]`` for
    BERT-style tokenizers, plain ``prompt response`` for decoder models."""
    if n_special_tokens(tokenizer):
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        return (cls, *enc.prompt_ids, sep), (*enc.response_ids, sep)
    return enc.prompt_ids, enc.response_ids
