"""Manager pages for retrain runs: the runs list with "Retrain now", one run live, its JSON.

"Retrain now" is a plain POST form (CSRF) that calls the same service as
``POST /api/projects/<id>/retrain/`` (:func:`annotation.services.loop.retrain_now`), after
:func:`~annotation.services.loop.retrain_blockers` says the project can train. The run page
renders :func:`annotation.run_detail.run_detail` and polls ``runs/<id>/data/`` while the run is
active. Access as on every manager page: outside the project 404, a member who is not a manager
403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotation.errors import Conflict, ValidationFailed
from annotation.models import ACTIVE_RUN_STATUSES, Project, TrainingRun
from annotation.run_detail import run_detail, runs_list
from annotation.run_options import RUN_OPTIONS
from annotation.services.loop import KNOWN_TRAINERS, retrain_blockers, retrain_now
from annotation.views.access import manager_project
from training.contract.trainers import TRAINERS


def _run(project: Project, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.filter(project=project, id=run_id).first()
    if run is None:
        raise Http404(f"Training run {run_id} not found.")
    return run


def retrain_panel(project: Project, values: QueryDict | None = None) -> dict[str, Any]:
    """What the "Retrain now" form shows: the active run, what blocks training, the run options
    (defaults from ``annotation/run_options.py``) and the trainers (the project's ticked)."""
    active = TrainingRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES).first()
    chosen = values.getlist("trainers") if values is not None else list(project.trainers)
    options = []
    for name, option in RUN_OPTIONS.items():
        options.append(
            {
                "name": name,
                "kind": "text" if option.kind is str else "number",
                "default": option.default,
                "min": option.low if option.kind is not str else None,
                "max": option.high if option.kind is not str else None,
                "step": "1" if option.kind is int else "any",
                "help": option.help,
                "value": values.get(f"opt_{name}", "") if values is not None else "",
            }
        )
    return {
        "active_run": active,
        "blockers": retrain_blockers(project=project),
        "options": options,
        "trainers": [
            {"name": t.name, "help": t.summary, "checked": t.name in chosen} for t in TRAINERS
        ],
    }


def retrain_form_values(post: QueryDict) -> tuple[dict[str, Any], list[str]]:
    """The run config and trainers a "Retrain now" form sent. Empty fields keep the default (so
    ``device`` left empty still follows the worker's ``LOOP_DEVICE``). Types are parsed here;
    ranges are checked by the service, against the same table the API uses."""
    unknown = sorted(k for k in post if k.startswith("opt_") and k[4:] not in RUN_OPTIONS)
    if unknown:
        raise ValidationFailed(f"Unknown run option {unknown[0][4:60]!r}.", field=unknown[0])
    config: dict[str, Any] = {}
    for name, option in RUN_OPTIONS.items():
        raw = post.get(f"opt_{name}", "").strip()
        if not raw:
            continue
        if option.kind is str:
            config[name] = raw
            continue
        try:
            config[name] = int(raw) if option.kind is int else float(raw)
        except ValueError:
            kind = "an integer" if option.kind is int else "a number"
            raise ValidationFailed(
                f"{name} must be {kind} (got {raw[:40]!r}).", field=f"config.{name}"
            ) from None
    trainers = [t for t in post.getlist("trainers") if t]
    if not trainers:
        raise ValidationFailed("Pick at least one trainer.", field="trainers")
    bad = [t for t in trainers if t not in KNOWN_TRAINERS]
    if bad:
        raise ValidationFailed(f"Unknown trainer {bad[0][:20]!r}.", field="trainers")
    return config, trainers


def _runs_page(
    request: HttpRequest, project: Project, *, status: int = 200, **context: Any
) -> HttpResponse:
    return render(
        request,
        "annotation/manage/runs.html",
        {
            "project": project,
            "tab": "runs",
            "runs": runs_list(project.id),
            "panel": retrain_panel(project, context.pop("values", None)),
            **context,
        },
        status=status,
    )


@login_required
@require_GET
def runs(request: HttpRequest, project_id: int) -> HttpResponse:
    return _runs_page(request, manager_project(request, project_id))


@login_required
@require_POST
def retrain_start(request: HttpRequest, project_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    blockers = retrain_blockers(project=project)
    if blockers:
        for problem in blockers:
            messages.error(request, f"This project cannot train yet. {problem}")
        return redirect("manage-runs", project_id=project.id)
    try:
        config, trainers = retrain_form_values(request.POST)
        run = retrain_now(project=project, user=request.user, config=config, trainers=trainers)
    except ValidationFailed as exc:
        return _runs_page(
            request,
            project,
            status=400,
            values=request.POST,
            form_error={"field": exc.field or "", "message": exc.message},
        )
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect("manage-runs", project_id=project.id)
    messages.success(request, f"Retrain started: run {run.id}. This page follows it live.")
    return redirect("manage-run", project_id=project.id, run_id=run.id)


@login_required
@require_GET
def run_page(request: HttpRequest, project_id: int, run_id: int) -> HttpResponse:
    project = manager_project(request, project_id)
    run = _run(project, run_id)
    return render(
        request,
        "annotation/manage/run.html",
        {"project": project, "tab": "runs", "run": run, "detail": run_detail(run)},
    )


@login_required
@require_GET
def run_data(request: HttpRequest, project_id: int, run_id: int) -> JsonResponse:
    project = manager_project(request, project_id)
    response = JsonResponse(run_detail(_run(project, run_id)))
    response["Cache-Control"] = "no-store"
    return response
