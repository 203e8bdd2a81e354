from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from annotation.selectors import is_manager, projects_for_user
from annotation.views.access import AuthedRequest
from annotation.views.rater_stats import judged_today, tasks_left


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    """The rater's projects, with what is left for them and what they did today."""
    rows = [
        {
            "project": project,
            "left": tasks_left(project=project, rater=request.user),
            "today": judged_today(project=project, rater=request.user),
            "manager": is_manager(project=project, user=request.user),
        }
        for project in projects_for_user(user=request.user).order_by("name")
    ]
    return render(request, "annotation/home.html", {"rows": rows})
