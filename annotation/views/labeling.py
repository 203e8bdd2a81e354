"""The rater's pages: the labeling page and the task fragment its script swaps in.

The page renders the first task on the server (no round trip before the rater can read). After
that the script asks ``label_next`` for the next task *while the rater works on the current one*
(``prefetch``), so a submit swaps in HTML that is already in memory. Answers go to the JSON API
(annotation/api/labeling.py) through the script's persistent submit queue.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from annotation.errors import DomainError, NoTaskAvailable, NotFound
from annotation.models import Assignment, Project
from annotation.selectors import project_get_for_user
from annotation.services.assignment import assignment_claim_next
from annotation.views.access import AuthedRequest
from annotation.views.rater_stats import judged_today
from annotation.views.task_view import task_context

TASK_TEMPLATE = "annotation/label/_task.html"
REFUSED_TEMPLATE = "annotation/label/refused.html"
UNDO_SECONDS = 10


def _project(request: AuthedRequest, project_id: int) -> Project:
    try:
        project, _role = project_get_for_user(project_id=project_id, user=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from None
    return project


def _claim(request: AuthedRequest, project: Project, *, prefetch: bool) -> Assignment | None:
    try:
        claim = assignment_claim_next(project=project, rater=request.user, prefetch=prefetch)
    except NoTaskAvailable:
        return None
    return claim.assignment


@login_required
@require_GET
def label_page(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = _project(request, project_id)
    try:
        assignment = _claim(request, project, prefetch=False)
    except DomainError as exc:
        context = {"project": project, "message": exc.message}
        return render(request, REFUSED_TEMPLATE, context, status=exc.status_code)
    context = {
        "project": project,
        "today": judged_today(project=project, rater=request.user),
        "undo_seconds": UNDO_SECONDS,
        "has_task": assignment is not None,
    }
    if assignment is not None:
        context.update(task_context(assignment=assignment, project=project))
    return render(request, "annotation/label.html", context)


@login_required
@require_POST
def label_next(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The HTML of the rater's next task (``prefetch=1``: one more than the one on screen).

    204 when nothing is left. The assignment id travels in the ``X-Assignment-Id`` header. A
    refusal is text with its status; ``X-Refusal-Code`` marks one that is final (excluded).
    """
    project = _project(request, project_id)
    prefetch = request.POST.get("prefetch") in {"1", "true"}
    try:
        assignment = _claim(request, project, prefetch=prefetch)
    except DomainError as exc:
        refused = HttpResponse(exc.message, status=exc.status_code, content_type="text/plain")
        if exc.code:
            refused["X-Refusal-Code"] = exc.code  # final: the script stops asking
        return refused
    if assignment is None:
        return HttpResponse(status=204)
    html = render_to_string(
        TASK_TEMPLATE, task_context(assignment=assignment, project=project), request=request
    )
    response = HttpResponse(html)
    response["X-Assignment-Id"] = str(assignment.id)
    response["Cache-Control"] = "no-store"
    return response
