"""The AI feedback page's agreement panel: ``{% ai_agreement_panel project as panel %}`` gives the
figures (``annotation/insight/ai_agreement.py``, cached) and the project's mixing choice, so the
page view needs nothing of its own; ``|estimate`` and ``|percent_estimate`` print a figure with
its interval."""

from __future__ import annotations

from typing import Any

from django import template

from annotation.insight.ai_agreement import ai_agreement_cached
from annotation.insight.ai_training_rows import eligible_ai_judgments
from annotation.models import AITraining, Project

register = template.Library()

PASSES_SHOWN = 5
NONE = "\u2013"  # an en dash, as the other tables print a missing figure


@register.simple_tag
def ai_agreement_panel(project: Project) -> dict[str, Any]:
    data = ai_agreement_cached(project.id, limit=PASSES_SHOWN)
    passes = data["passes"]
    eligible = eligible_ai_judgments(
        project_id=project.id, min_confidence=project.ai_min_confidence
    )
    return {
        "passes": passes,
        "more_passes": max(0, data["total_passes"] - len(passes)),
        "mixing": {
            "ai_training": project.ai_training,
            "ai_weight": project.ai_weight,
            "ai_min_confidence": project.ai_min_confidence,
            "choices": AITraining.choices,
            "eligible_ai_pairs": eligible.count(),
        },
    }


def _fmt(value: float | None, scale: float, digits: int) -> str:
    return NONE if value is None else f"{value * scale:.{digits}f}"


@register.filter
def estimate(e: dict[str, Any] | None) -> str:
    """``{"value", "low", "high"}`` as ``0.41 [0.30, 0.52]`` (a dash when undefined)."""
    if not e or e.get("value") is None:
        return NONE
    out = _fmt(e["value"], 1, 2)
    if e.get("low") is not None:
        out += f" [{_fmt(e['low'], 1, 2)}, {_fmt(e['high'], 1, 2)}]"
    return out


@register.filter
def percent_estimate(e: dict[str, Any] | None) -> str:
    """A share as ``62 % [55, 70]``."""
    if not e or e.get("value") is None:
        return NONE
    out = f"{_fmt(e['value'], 100, 0)} %"
    if e.get("low") is not None:
        out += f" [{_fmt(e['low'], 100, 0)}, {_fmt(e['high'], 100, 0)}]"
    return out
