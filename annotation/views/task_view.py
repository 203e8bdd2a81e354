"""What the labeling page shows for one assignment: a pure function from rows to template context.

Every piece of untrusted text (prompt turns, responses, guidelines) is rendered here through the
sanitiser (annotation/rendering.py); templates autoescape everything else (flag names, user names).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from annotation.models import Assignment, Project, Response, TaskKind
from annotation.payloads import PAIRWISE_STRENGTHS
from annotation.rendering import render_markdown

MAX_DIFF_TOKENS = 5000  # above this the diff view says so instead of spending time
LIKERT = range(1, 8)
# A word with the whitespace after it: no token is "just a space", which would otherwise be the
# most common element and make the matcher quadratic.
_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class ShownResponse:
    id: int
    label: str
    text: str
    html: SafeString
    diff: SafeString | None = None


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(a: str, b: str) -> tuple[SafeString, SafeString]:
    """Escaped HTML of ``a`` with words missing from ``b`` marked <del>, and ``b`` with <ins>."""
    ta, tb = _tokens(a), _tokens(b)
    if len(ta) > MAX_DIFF_TOKENS or len(tb) > MAX_DIFF_TOKENS:
        note = escape("These responses are too long to compare word by word.")
        return mark_safe(note), mark_safe(note)
    left: list[str] = []
    right: list[str] = []
    # autojunk: tokens that make up more than 1% of a long text ("the", "a") only match next to
    # other matches, which keeps long texts fast at little cost to the result.
    matcher = difflib.SequenceMatcher(None, ta, tb, autojunk=True)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = escape("".join(ta[i1:i2])), escape("".join(tb[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if old:
            left.append(f"<del>{old}</del>")
        if new:
            right.append(f"<ins>{new}</ins>")
    return mark_safe("".join(left)), mark_safe("".join(right))


def task_context(*, assignment: Assignment, project: Project) -> dict[str, Any]:
    task = assignment.task
    rows = Response.objects.in_bulk(assignment.display_order)
    responses = [
        ShownResponse(
            id=rid,
            label=chr(ord("A") + i),
            text=rows[rid].text,
            html=mark_safe(render_markdown(rows[rid].text)),
        )
        for i, rid in enumerate(assignment.display_order)
    ]
    if task.kind == TaskKind.PAIRWISE and len(responses) == 2:
        left, right = word_diff(responses[0].text, responses[1].text)
        responses = [
            ShownResponse(r.id, r.label, r.text, r.html, diff)
            for r, diff in zip(responses, (left, right), strict=True)
        ]
    messages = [
        {
            "role": str(m.get("role", "user")) if isinstance(m, dict) else "user",
            "html": mark_safe(
                render_markdown(str(m.get("content", "")) if isinstance(m, dict) else str(m))
            ),
        }
        for m in (task.prompt.messages or [])
    ]
    return {
        "assignment": assignment,
        "kind": task.kind,
        "messages": messages,
        "multi_turn": len(messages) > 1,
        "responses": responses,
        "response_ids": ",".join(str(r.id) for r in responses),
        "ranks": range(1, len(responses) + 1),
        "strengths": sorted(PAIRWISE_STRENGTHS.items()),
        "likert": LIKERT,
        "flags": list(project.flag_choices or []),
    }
