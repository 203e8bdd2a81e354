"""Manager pages: overview (agreement, throughput, bias), raters, leaderboard & runs, exports.

Thin views over :mod:`annotation.insight` (cached dashboard) and the export/exclusion services.
Access: someone outside the project gets 404, a member who is not a manager 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotation.errors import DomainError
from annotation.insight.ai_agreement import dashboard_card
from annotation.insight.columns import with_headers
from annotation.insight.csvout import table_csv
from annotation.insight.dashboard import dashboard_get
from annotation.models import Project, RaterExclusion
from annotation.selectors import MANAGER_ROLES, projects_for_user
from annotation.services.exclusions import rater_exclude, rater_restore
from annotation.services.exports import export_start
from annotation.views import manage_charts as charts
from annotation.views.access import AuthedRequest, manager_project

PAIR_ROWS_SHOWN = 200


def _page(request: AuthedRequest, project: Project, template: str, **context: Any) -> HttpResponse:
    data = context.pop("data", None) or dashboard_get(project.id)
    return render(
        request,
        f"annotation/manage/{template}",
        {"project": project, "data": data, "tables": with_headers(data["tables"]), **context},
    )


@login_required
@require_GET
def manage_index(request: AuthedRequest) -> HttpResponse:
    projects = projects_for_user(user=request.user).order_by("name")
    if not request.user.is_superuser:
        projects = projects.filter(
            memberships__user=request.user, memberships__role__in=MANAGER_ROLES
        )
    return render(request, "annotation/manage/index.html", {"projects": projects})


@login_required
@require_GET
def overview(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    data = dashboard_get(project.id)
    return _page(
        request,
        project,
        "overview.html",
        data=data,
        charts=charts.overview_charts(data),
        tab="overview",
        ai_card=dashboard_card(project.id),
        ai_card_url=_ai_feedback_url(project.id),
    )


def _ai_feedback_url(project_id: int) -> str:
    """The AI feedback page, once its route exists (annotation/views/ai_feedback.py)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("manage-ai-feedback", args=[project_id])
    except NoReverseMatch:
        return ""


@login_required
@require_GET
def raters(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    data = dashboard_get(project.id)
    history = (
        RaterExclusion.objects.filter(project=project)
        .select_related("rater", "excluded_by", "lifted_by")
        .order_by("-created_at", "-id")[:100]
    )
    pairs = with_headers(data["tables"])["cohen_pairs"]
    shown_pairs = {**pairs, "rows": pairs["rows"][:PAIR_ROWS_SHOWN]}
    return _page(
        request,
        project,
        "raters.html",
        data=data,
        history=history,
        shown_pairs=shown_pairs,
        more_pairs=max(0, len(pairs["rows"]) - PAIR_ROWS_SHOWN),
        charts=charts.raters_charts(data),
        tab="raters",
    )


@login_required
@require_POST
def rater_exclusion(request: AuthedRequest, project_id: int, rater_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    try:
        if request.POST.get("action") == "restore":
            rater_restore(project=project, rater_id=rater_id, by=request.user)
            messages.success(request, "The rater's judgments are back in training.")
        else:
            rater_exclude(
                project=project,
                rater_id=rater_id,
                by=request.user,
                reason=request.POST.get("reason", ""),
            )
            messages.success(request, "The rater's judgments are now left out of training.")
    except DomainError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
    return redirect("manage-raters", project_id=project.id)


@login_required
@require_GET
def leaderboard(request: AuthedRequest, project_id: int) -> HttpResponse:
    from annotation.views import leaderboard_charts as lb

    project = manager_project(request, project_id)
    data = dashboard_get(project.id)
    t = data["tables"]
    systems = t["systems"]["rows"]
    return _page(
        request,
        project,
        "leaderboard.html",
        data=data,
        charts=lb.leaderboard_charts(t),
        hacking=lb.hacking_curves(data["curves"]),
        curve_charts=lb.curve_charts(data["curves"]),
        only_system=systems[0][0] if len(systems) == 1 else None,
        same_system_judgments=sum(r[1] for r in systems),
        tab="leaderboard",
    )


@login_required
@require_GET
def exports(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    return render(
        request,
        "annotation/manage/exports.html",
        {"project": project, "tab": "exports"},
    )


@login_required
@require_GET
def export_download(request: AuthedRequest, project_id: int) -> HttpResponseBase:
    project = manager_project(request, project_id)
    try:
        export = export_start(project=project, params=request.GET)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("manage-exports", project_id=project.id)
    content_type = (
        "application/x-ndjson"
        if export.file_format == "jsonl"
        else "application/vnd.apache.parquet"
    )
    response = StreamingHttpResponse(export.chunks(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@login_required
@require_GET
def table_download(request: AuthedRequest, project_id: int, table: str) -> HttpResponse:
    project = manager_project(request, project_id)
    tables = dashboard_get(project.id)["tables"]
    if table not in tables:
        raise Http404(f"No table {table!r}.")
    response = HttpResponse(table_csv(tables[table]), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-{table}.csv"'
    return response
