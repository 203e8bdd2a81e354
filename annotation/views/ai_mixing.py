"""The AI feedback page's "Which labels train" form: the project's ``ai_training``,
``ai_weight`` and ``ai_min_confidence`` through the same service and checks as the API's
``PATCH /api/projects/<id>/``. Bad input re-renders the page with a 400 and the message, and
changes nothing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.errors import ValidationFailed
from annotation.services.projects import project_update
from annotation.views.access import manager_project


def _number(post: QueryDict, name: str) -> float:
    raw = post.get(name, "").strip()
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number (got {raw[:40]!r}).", field=name) from None


@login_required
@require_POST
def ai_mixing_save(request: HttpRequest, project_id: int) -> HttpResponse:
    from annotation.views.ai_feedback import _page  # the page this form lives on

    project = manager_project(request, project_id)
    post = request.POST
    try:
        project_update(
            project=project,
            ai_training=post.get("ai_training", ""),
            ai_weight=_number(post, "ai_weight"),
            ai_min_confidence=_number(post, "ai_min_confidence"),
        )
    except ValidationFailed as exc:
        project.refresh_from_db()
        return _page(request, project, status=400, form="mixing", error=exc, values=post)
    messages.success(request, f"Training mix saved: {project.get_ai_training_display()}.")
    return redirect(reverse("manage-ai-feedback", args=[project.id]) + "#ai-mixing")
