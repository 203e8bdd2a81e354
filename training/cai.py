"""The supervised Constitutional AI stage: answer, critique against a principle, revise.

Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback", https://arxiv.org/abs/2212.08073
(section 3.1). For each prompt the model

1. answers it (the *original*);
2. is asked to critique that answer against one principle, sampled from the constitution with a
   seed and the prompt's key (so a retry picks the same principle for the same prompt);
3. is asked to rewrite its answer following the critique (the *revised* answer).

Each stage is one batched :func:`training.generate.generate` call over all prompts (chat template,
a response ends at the end of turn). The conversation grows turn by turn, as in the paper::

    user: PROMPT / assistant: ORIGINAL / user: CRITIQUE_REQUEST / assistant: CRITIQUE
    / user: REVISION_REQUEST / assistant: REVISED

A result whose texts are unusable is kept with a ``dropped`` reason instead of a revision to
train on: ``empty`` (nothing left after stripping), ``invalid_text`` (U+FFFD from a cut or
invalid byte sequence, NUL, a lone surrogate: nothing a database or rater should get) or
``identical`` (the revision is the original). This is a small check of its own because
``training`` may not import ``annotation`` (whose ``textcheck`` the workers apply on top).
The kept (revised > original) pairs become DPO pairs and the revised answers SFT examples.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from training.contract.records import PreferencePair, Prompt, SFTExample
from training.contract.render import HH_ASSISTANT
from training.generate import generate
from training.tokenize import Encoder

CRITIQUE_REQUEST = (
    'Critique your previous answer against this principle: "{principle}" '
    "Point out specifically where the answer falls short of it. Do not rewrite the answer yet."
)
REVISION_REQUEST = (
    "Rewrite your previous answer so that it follows the principle, using your critique. "
    "Reply with the rewritten answer only."
)
_INVALID = re.compile("[\x00\ufffd\ud800-\udfff]")
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


@dataclass(frozen=True)
class CAIConfig:
    """Sampling settings shared by the three stages."""

    max_new_tokens: int = 128  # per stage
    temperature: float = 0.7  # 0 = greedy
    top_p: float = 0.95
    max_prompt_length: int = 1024  # the revise stage's conversation holds all earlier turns
    batch_size: int = 8
    seed: int = 0  # principle choice and sampling

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1 or self.max_prompt_length < 8:
            raise ValueError("max_new_tokens and batch_size must be >= 1, max_prompt_length >= 8")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")


@dataclass(frozen=True)
class CAIPrompt:
    key: Any  # the caller's id (a prompt id), echoed back; seeds the principle choice
    prompt: Prompt


@dataclass(frozen=True)
class CAIResult:
    key: Any
    prompt: Prompt
    principle_index: int
    principle: str
    original: str
    critique: str
    revised: str
    tokens: int  # prompt + generated tokens over the three stages
    dropped: str | None = None  # why the revision is unusable (see the module docstring)

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["prompt"] = self.prompt if isinstance(self.prompt, str) else list(self.prompt)
        return row


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A prompt as chat messages; an HH-style string ("\\n\\nHuman: ...\\n\\nAssistant:") is
    split into its turns, any other string is one user turn."""
    if not isinstance(prompt, str):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    text = prompt[: -len(HH_ASSISTANT)] if prompt.endswith(HH_ASSISTANT) else prompt
    parts = _HH_TURN.split(text)
    if len(parts) < 3:
        return [{"role": "user", "content": prompt.strip()}]
    roles = {"Human": "user", "Assistant": "assistant"}
    return [
        {"role": roles[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)
    ]


def pick_principle(principles: Sequence[str], key: Any, seed: int) -> int:
    """The index of the principle for prompt ``key``: a pure function of (seed, key)."""
    return random.Random(f"{seed}:{key!r}").randrange(len(principles))


def drop_reason(original: str, critique: str, revised: str) -> str | None:
    if not original.strip() or not revised.strip():
        return "empty"
    if any(_INVALID.search(t) for t in (original, critique, revised)):
        return "invalid_text"
    if revised.strip() == original.strip():
        return "identical"
    return None


def critique_and_revise(
    model: Any,
    tokenizer: Any,
    items: Sequence[CAIPrompt],
    principles: Sequence[str],
    *,
    config: CAIConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CAIResult]:
    """Answer, critique and revise each prompt (see the module docstring); one result each."""
    config = config or CAIConfig()
    principles = [p.strip() for p in principles if p.strip()]
    if not principles:
        raise ValueError("critique_and_revise needs at least one non-blank principle")
    n = len(items)
    if n == 0:
        return []
    encoder = Encoder(
        tokenizer,
        max_length=config.max_prompt_length + 1,
        max_prompt_length=config.max_prompt_length,
    )
    chosen = [pick_principle(principles, it.key, config.seed) for it in items]
    convs = [as_messages(it.prompt) for it in items]
    tokens = [0] * n

    def stage(number: int) -> list[str]:
        prompts = [tuple(c) for c in convs]
        report = None if progress is None else lambda d, t: progress(number * n + d, 3 * n)
        samples = generate(
            model,
            tokenizer,
            prompts,
            k=1,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            max_prompt_length=config.max_prompt_length,
            batch_size=config.batch_size,
            seed=config.seed * 3 + number,
            progress=report,
            logprobs=False,
        )
        for i, (p, s) in enumerate(zip(prompts, samples, strict=True)):
            tokens[i] += len(encoder.prompt(p)[0]) + len(s[0].token_ids)
        return [s[0].text.strip() for s in samples]

    originals = stage(0)
    for conv, text, index in zip(convs, originals, chosen, strict=True):
        conv.append({"role": "assistant", "content": text})
        conv.append(
            {"role": "user", "content": CRITIQUE_REQUEST.format(principle=principles[index])}
        )
    critiques = stage(1)
    for conv, text in zip(convs, critiques, strict=True):
        conv.append({"role": "assistant", "content": text})
        conv.append({"role": "user", "content": REVISION_REQUEST})
    revised = stage(2)
    return [
        CAIResult(
            key=it.key,
            prompt=it.prompt,
            principle_index=chosen[i],
            principle=principles[chosen[i]],
            original=originals[i],
            critique=critiques[i],
            revised=revised[i],
            tokens=tokens[i],
            dropped=drop_reason(originals[i], critiques[i], revised[i]),
        )
        for i, it in enumerate(items)
    ]


def as_records(results: Sequence[CAIResult]) -> tuple[list[PreferencePair], list[SFTExample]]:
    """The kept results as DPO pairs (revised > original) and SFT examples (the revision)."""
    kept = [r for r in results if r.dropped is None]
    pairs = [PreferencePair(r.prompt, r.revised, r.original) for r in kept]
    return pairs, [SFTExample(r.prompt, r.revised) for r in kept]


def template_hash() -> str:
    """sha256 of the critique and revision requests (stored with each CAI judgment)."""
    import hashlib

    return hashlib.sha256(f"{CRITIQUE_REQUEST}\n{REVISION_REQUEST}".encode()).hexdigest()
