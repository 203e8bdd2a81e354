"""The manager's AI feedback page: the constitution editor, "start an AI pass" (or a
Constitutional AI batch), the passes.

Both forms are plain POST forms (CSRF) that call the same services as the API
(``PUT /api/projects/<id>/constitution/``, ``POST /api/projects/<id>/ai-passes/``), so the rules
and messages are the same; bad input re-renders the page with a 400, the message and what was
typed. The pass list refreshes itself from the API while a pass is queued or running
(``annotation/static/annotation/manage/ai_feedback.js``). Access as on every manager page:
outside the project 404, a member who is not a manager 403.

The AI-vs-human agreement panel is drawn by ``annotation/_ai_agreement.html`` (see
``annotation/insight/ai_agreement.py``); this module only gives it the project and the passes.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.errors import Conflict, DomainError, NotFound, ValidationFailed
from annotation.models import AIMethod, AIPass, AIPassStatus, ModelKind, ModelVersion, Project
from annotation.services.ai_passes import (
    ACTIVE_STATUSES,
    DEFAULT_JUDGE_MODEL,
    ai_pass_retry,
    ai_pass_start,
    default_judge_model,
    start_cai_pass,
)
from annotation.services.constitutions import (
    MAX_PRINCIPLE_CHARS,
    MAX_PRINCIPLES,
    constitution_current,
    constitution_save,
    constitution_versions,
)
from annotation.views.access import manager_project

PASSES_SHOWN = 50
VERSIONS_SHOWN = 20


def principles_from_text(text: str) -> list[str]:
    """One principle per line; blank lines are left out (so a trailing newline is harmless)."""
    return [line for line in text.splitlines() if line.strip()]


def _pass_rows(project: Project) -> list[dict[str, Any]]:
    rows = []
    passes = (
        AIPass.objects.filter(project=project)
        .select_related("constitution", "model_version")
        .order_by("-id")[:PASSES_SHOWN]
    )
    for ai_pass in passes:
        stats = ai_pass.stats or {}
        cai = ai_pass.method == AIMethod.CAI
        rows.append(
            {
                "pass": ai_pass,
                "cai": cai,
                "active": ai_pass.status in ACTIVE_STATUSES,
                "percent": round(100 * ai_pass.progress),
                "model": ai_pass.model_version.name
                if ai_pass.model_version
                else ai_pass.model_path,
                # a folder's name (the whole path in its title): the table fits the page
                "model_short": ai_pass.model_version.name
                if ai_pass.model_version
                else PurePath(ai_pass.model_path).name or ai_pass.model_path,
                # a CAI batch's pairs are its kept (revised, original) pairs
                "pairs": stats.get("kept", 0) if cai else stats.get("pairs", 0),
                "inconsistent": stats.get("inconsistent", 0),
                "flip_percent": round(100 * stats["flip_rate"], 1) if stats.get("pairs") else None,
                "tokens": stats.get("tokens", 0),
                "seconds": stats.get("seconds"),
            }
        )
    return rows


def _page(
    request: HttpRequest,
    project: Project,
    *,
    status: int = 200,
    form: str = "",
    error: DomainError | None = None,
    values: QueryDict | None = None,
) -> HttpResponse:
    current = constitution_current(project=project)
    if form == "constitution" and values is not None:
        text = values.get("principles", "")
    else:
        text = "\n".join(current.principles) if current else ""
    pass_values = values if form == "pass" and values is not None else QueryDict()
    chosen = set(pass_values.getlist("principles"))
    principles = [
        {"index": i, "text": p, "checked": not chosen or str(i) in chosen}
        for i, p in enumerate(current.principles if current else [])
    ]
    reward_model = ModelVersion.objects.filter(
        project=project, kind=ModelKind.REWARD, is_active=True
    ).first()
    passes = _pass_rows(project)
    return render(
        request,
        "annotation/ai_feedback.html",
        {
            "project": project,
            "tab": "ai",
            "constitution": current,
            "constitution_text": text,
            "versions": list(
                constitution_versions(project=project).select_related("created_by")[:VERSIONS_SHOWN]
            ),
            "max_principles": MAX_PRINCIPLES,
            "max_principle_chars": MAX_PRINCIPLE_CHARS,
            "principles": principles,
            "reward_model": reward_model,
            "default_model": default_judge_model(),
            "default_model_name": DEFAULT_JUDGE_MODEL,
            "pass_values": pass_values,
            "passes": passes,
            "any_active": any(row["active"] for row in passes),
            "passes_api": reverse("api-ai-passes", args=[project.id]),
            "form": form,
            "form_error": {"field": error.field or "", "message": error.message} if error else None,
            "statuses": AIPassStatus,
        },
        status=status,
    )


@login_required
@require_GET
def ai_feedback(request: HttpRequest, project_id: int) -> HttpResponse:
    return _page(request, manager_project(request, project_id))


@login_required
@require_POST
def constitution_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    before = constitution_current(project=project)
    try:
        saved = constitution_save(
            project=project,
            principles=principles_from_text(request.POST.get("principles", "")),
            user=request.user,
        )
    except ValidationFailed as exc:
        return _page(
            request, project, status=400, form="constitution", error=exc, values=request.POST
        )
    if before is not None and saved.id == before.id:
        messages.info(request, f"No change: version {saved.version} is still current.")
    else:
        messages.success(request, f"Constitution saved as version {saved.version}.")
    return redirect(reverse("manage-ai-feedback", args=[project.id]) + "#constitution")


def _limit(raw: str, unit: str = "tasks") -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(
            f"limit must be a whole number of {unit} (got {raw[:40]!r}).", field="limit"
        ) from None


def _indexes(values: list[str]) -> list[int] | None:
    try:
        return [int(v) for v in values] or None
    except ValueError:
        raise ValidationFailed(
            "principles: pick principles from the list.", field="principles"
        ) from None


@login_required
@require_POST
def ai_pass_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    post = request.POST
    method = post.get("method", "")
    if method == AIMethod.CAI:
        return _cai_create(request, project)
    try:
        ai_pass = ai_pass_start(
            project=project,
            user=request.user,
            method=method,
            model=post.get("model", "") if method == "llm_judge" else "",
            queue=post.get("queue", "cpu"),
            limit=_limit(post.get("limit", "")),
            principles=_indexes(post.getlist("principles")) if method == "llm_judge" else None,
        )
    except ValidationFailed as exc:
        return _page(request, project, status=400, form="pass", error=exc, values=post)
    messages.success(
        request,
        f"AI pass {ai_pass.id} queued on {ai_pass.queue}: {ai_pass.total} verdicts to make "
        f"({len(ai_pass.task_ids)} tasks). The list below follows it.",
    )
    return redirect(reverse("manage-ai-feedback", args=[project.id]) + "#ai-passes")


def _cai_create(request: HttpRequest, project: Project) -> HttpResponse:
    post = request.POST
    try:
        ai_pass = start_cai_pass(
            project=project,
            user=request.user,
            model=post.get("model", ""),
            queue=post.get("queue", "cpu"),
            limit=_limit(post.get("limit", ""), "prompts"),
            principles=_indexes(post.getlist("principles")),
            verify=post.get("verify") == "1",
        )
    except ValidationFailed as exc:
        return _page(request, project, status=400, form="pass", error=exc, values=post)
    messages.success(
        request,
        f"Constitutional AI batch {ai_pass.id} queued on {ai_pass.queue}: {ai_pass.total} "
        "prompts to answer, critique and revise. The list below follows it.",
    )
    return redirect(reverse("manage-ai-feedback", args=[project.id]) + "#ai-passes")


@login_required
@require_POST
def ai_pass_retry_view(request: HttpRequest, project_id: int, pass_id: int) -> HttpResponse:
    """The failed pass's "Retry" button: queued again, resuming where it stopped."""
    project = manager_project(request, project_id)
    try:
        ai_pass = ai_pass_retry(project=project, pass_id=pass_id)
    except (NotFound, Conflict) as exc:
        return _page(request, project, status=exc.status_code, form="retry", error=exc)
    messages.success(
        request,
        f"AI pass {ai_pass.id} queued again on {ai_pass.queue}: it resumes at {ai_pass.done} of "
        f"{ai_pass.total}.",
    )
    return redirect(reverse("manage-ai-feedback", args=[project.id]) + f"#ai-pass-{ai_pass.id}")
