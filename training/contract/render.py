"""Prompt text without a chat template: the HH-RLHF ("plain") format.

``plain_format`` writes each message as ``"\\n\\n{Role}: {content}"`` (roles ``Human``,
``Assistant``, ``System``; another role is capitalized) and ends with ``"\\n\\nAssistant:"``, the
cue for the response. It is what :mod:`training.tokenize` uses for a tokenizer without a chat
template, and what a ``standard`` export writes for a conversation (:func:`standard_prompt`), so
exported data and public HH-RLHF data look alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PLAIN_ROLES = {"user": "Human", "assistant": "Assistant", "system": "System"}
HH_ASSISTANT = "\n\nAssistant:"


def plain_format(messages: Sequence[Mapping[str, str]]) -> str:
    """``"\\n\\nHuman: hi\\n\\nAssistant:"`` for ``[{"role": "user", "content": "hi"}]``."""
    turns = "".join(
        f"\n\n{PLAIN_ROLES.get(m['role'], m['role'].capitalize())}: {m['content']}"
        for m in messages
    )
    return turns + HH_ASSISTANT


def standard_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt string of a TRL "standard" row: a single user turn is its text (the common
    case, as TRL's own datasets write it); any other conversation is :func:`plain_format`."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0]["content"]
    return plain_format(messages)
