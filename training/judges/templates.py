"""The LLM judge's prompt template, and its hash (stored with every AI judgment).

The template is one user turn, sent through the judge model's chat template with the generation
prompt, so the judge's next token is its answer. The two answer tokens are ``A`` and ``B``; the
judge reads their log-probabilities, never generated text. Long inputs are cut by characters
(the conversation keeps its end, each response its start) so one pair stays a bounded cost.
"""

from __future__ import annotations

import hashlib

from training.contract.records import Prompt
from training.contract.render import HH_ASSISTANT

TEMPLATE = """You are comparing two responses of an AI assistant to the same conversation.
{guidelines}Principle: {principle}

[Conversation]
{conversation}

[Response A]
{response_a}

[Response B]
{response_b}

Which response follows the principle better? Answer with one letter: A or B."""

GUIDELINES = "Guidelines:\n{guidelines}\n\n"
DEFAULT_PRINCIPLE = "Choose the response that is more helpful, honest and harmless."
ANSWERS = ("A", "B")  # the answer tokens: response shown first, response shown second

MAX_CONVERSATION_CHARS = 2000
MAX_RESPONSE_CHARS = 1500
MAX_GUIDELINES_CHARS = 1500


def template_hash() -> str:
    """sha256 of everything that shapes the judge's prompt: the template and its answer tokens."""
    text = "\n".join([TEMPLATE, GUIDELINES, DEFAULT_PRINCIPLE, *ANSWERS])
    return hashlib.sha256(text.encode()).hexdigest()


def conversation_text(prompt: Prompt) -> str:
    """A message list as ``User: ...`` lines; an HH-style string without its final cue."""
    if isinstance(prompt, str):
        text = prompt.strip()
        cue = HH_ASSISTANT.strip()
        text = text[: -len(cue)].rstrip() if text.endswith(cue) else text
    else:
        text = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)
    return text[-MAX_CONVERSATION_CHARS:]


def judge_message(
    prompt: Prompt, shown_first: str, shown_second: str, *, principle: str, guidelines: str
) -> str:
    """The user turn asking the judge to compare ``shown_first`` (A) with ``shown_second`` (B)."""
    guide = guidelines.strip()[:MAX_GUIDELINES_CHARS]
    return TEMPLATE.format(
        guidelines=GUIDELINES.format(guidelines=guide) if guide else "",
        principle=principle.strip() or DEFAULT_PRINCIPLE,
        conversation=conversation_text(prompt),
        response_a=shown_first.strip()[:MAX_RESPONSE_CHARS],
        response_b=shown_second.strip()[:MAX_RESPONSE_CHARS],
    )
