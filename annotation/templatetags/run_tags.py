"""``{% retrain_nav %}``: the manager nav's "Retrain now" (or the active run's progress)."""

from __future__ import annotations

from typing import Any

from django import template

from annotation.selectors import is_manager

register = template.Library()


@register.inclusion_tag("annotation/manage/_retrain_nav.html", takes_context=True)
def retrain_nav(context: template.Context) -> dict[str, Any]:
    """Managers only (labelers never reach these pages; this keeps it so if one is included
    elsewhere). On the runs page the form is on the page itself, so the nav links to it."""
    from annotation.views.runs import retrain_panel

    project, user = context.get("project"), context.get("user")
    if project is None or user is None or not is_manager(project=project, user=user):
        return {"show": False}
    return {
        "show": True,
        "project": project,
        "tab": context.get("tab"),
        "panel": retrain_panel(project),
        "csrf_token": context.get("csrf_token"),
        "prefix": "nav-",
    }
