"""A deterministic judge for tests: prefers the response with more of a marker word.

The probability that the response *shown first* wins is

    P = sigmoid(scale * (s(shown first) - s(shown second)) + bias)

with ``s(text)`` = how often ``marker`` occurs in the text (case-insensitive), plus
``noise * h(text)`` where ``h`` is a hash of the text in [0, 1) (a reproducible tie-breaker that
makes verdicts vary between otherwise alike pairs). ``bias`` > 0 is a position bias towards the
response shown first: a pair whose marker counts are equal (or differ by less than the bias can
outweigh) comes out *inconsistent* across the two orders, as real LLM judges do. Principle and
guidelines are ignored. Tokens are whitespace-separated words of prompt and both responses, twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from training.contract.records import Prompt
from training.judges.verdicts import PairToJudge, ProgressFn, Verdict, combine


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _prompt_words(prompt: Prompt) -> int:
    text = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
    return len(text.split())


@dataclass(frozen=True)
class FakeJudge:
    marker: str = "good"
    bias: float = 0.5  # logit added in favour of the response shown first
    scale: float = 2.0  # logit per marker occurrence of difference
    noise: float = 0.0  # weight of the text hash in the score

    @property
    def name(self) -> str:
        return f"fake:marker={self.marker},bias={self.bias},scale={self.scale},noise={self.noise}"

    @property
    def template_hash(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    @classmethod
    def from_spec(cls, spec: str) -> FakeJudge:
        """``"marker=good,bias=0.5,scale=2,noise=0"`` (any subset; "" or a path: the defaults)."""
        if "=" not in spec:
            return cls()
        values: dict[str, str] = {}
        for part in spec.removeprefix("fake:").split(","):
            name, _, value = part.partition("=")
            if name.strip() not in ("marker", "bias", "scale", "noise"):
                raise ValueError(f"fake judge spec: unknown setting {name.strip()!r}")
            values[name.strip()] = value.strip()
        try:
            return cls(
                marker=values.get("marker", cls.marker),
                bias=float(values.get("bias", cls.bias)),
                scale=float(values.get("scale", cls.scale)),
                noise=float(values.get("noise", cls.noise)),
            )
        except ValueError:
            raise ValueError(
                f"fake judge spec: bias, scale and noise must be numbers: {spec!r}"
            ) from None

    def score(self, text: str) -> float:
        count = text.lower().count(self.marker.lower()) if self.marker else 0
        digest = hashlib.sha256(text.encode()).digest()
        return count + self.noise * int.from_bytes(digest[:8], "big") / 2**64

    def p_shown_first_wins(self, shown_first: str, shown_second: str) -> float:
        gap = self.score(shown_first) - self.score(shown_second)
        return _sigmoid(self.scale * gap + self.bias)

    def judge(
        self,
        pairs: Sequence[PairToJudge],
        *,
        principle: str = "",
        guidelines: str = "",
        progress: ProgressFn | None = None,
    ) -> list[Verdict]:
        out = []
        for n, pair in enumerate(pairs, start=1):
            p_first = self.p_shown_first_wins(pair.first, pair.second)
            p_second = 1 - self.p_shown_first_wins(pair.second, pair.first)
            words = _prompt_words(pair.prompt) + len(pair.first.split()) + len(pair.second.split())
            out.append(combine(pair.key, p_first, p_second, tokens=2 * words))
            if progress is not None:
                progress(n, len(pairs))
        return out
