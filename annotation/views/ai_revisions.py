"""One Constitutional AI batch for the reviewer: each prompt's original answer, the principle it
was critiqued against, the critique, and the revised answer, side by side.

Everything shown is model output (untrusted): the template renders it as escaped plain text
(autoescape, ``white-space: pre-wrap``), never as HTML or markdown. Originals whose revision was
dropped (identical, empty, invalid) are listed with the reason, and prompts whose original could
not be stored at all are counted. Access as on every manager page (404 outside, 403 raters).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.models import AIJudgment, AIMethod, AIPass, Origin, Response
from annotation.views.access import manager_project

SHOWN = 200


def _last_user_turn(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content", ""))
    return str(messages)


@login_required
@require_GET
def cai_pass_detail(request: HttpRequest, project_id: int, pass_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    ai_pass = (
        AIPass.objects.filter(project=project, id=pass_id, method=AIMethod.CAI)
        .select_related("constitution")
        .first()
    )
    if ai_pass is None:
        raise Http404(f"No Constitutional AI batch {pass_id} in this project.")
    judgments = (
        AIJudgment.objects.filter(ai_pass=ai_pass)
        .select_related("chosen_response__prompt", "rejected_response")
        .order_by("id")[:SHOWN]
    )
    pairs = [
        {
            "id": j.id,
            "task_id": j.task_id,
            "prompt": _last_user_turn(j.chosen_response.prompt.messages)
            if j.chosen_response
            else "",
            "principle": j.principle,
            "critique": j.critique,
            "original": j.rejected_response.text if j.rejected_response else "",
            "revised": j.chosen_response.text if j.chosen_response else "",
        }
        for j in judgments
    ]
    dropped = [
        {
            "prompt": _last_user_turn(r.prompt.messages),
            "original": r.text,
            "reason": r.generation_params.get("dropped"),
        }
        for r in Response.objects.filter(
            prompt__project=project,
            origin=Origin.MODEL,
            generation_params__ai_pass=ai_pass.id,
            generation_params__dropped__isnull=False,
        )
        .exclude(generation_params__dropped=None)
        .select_related("prompt")
        .order_by("id")[:SHOWN]
    ]
    return render(
        request,
        "annotation/ai_revisions.html",
        {
            "project": project,
            "tab": "ai",
            "ai_pass": ai_pass,
            "pairs": pairs,
            "total_pairs": AIJudgment.objects.filter(ai_pass=ai_pass).count(),
            "shown": SHOWN,
            "dropped": dropped,
            "unusable": len((ai_pass.stats or {}).get("unusable") or {}),
        },
    )
