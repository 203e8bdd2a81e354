"""Managers' API: how far each AI pass agrees with the humans (annotation/insight/ai_agreement.py
defines every figure)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.scoping import scoped_manager_project
from annotation.insight.ai_agreement import ai_agreement_cached, ai_pass_option


class AIAgreementApi(APIView):
    @extend_schema(
        summary="AI-vs-human agreement per AI pass (kappa, percent, ceiling, calibration)",
        description=(
            "On the pairwise tasks both humans (eligible A/B judgments) and the AI judged: "
            "percent agreement and Cohen's kappa between each AI verdict and each human vote, "
            "and against the human majority, with 95% bootstrap intervals over tasks; the "
            "human-vs-human ceiling on the same tasks; calibration of the AI's confidence "
            "against the human majority (bins, Brier score, ECE); the flip rate (verdicts whose "
            "two orders disagreed, left out of the agreement). Per principle and overall, "
            "newest pass first. AI verdicts never enter the human agreement of /insight/."
        ),
        parameters=[
            OpenApiParameter("ai_pass", int, description="Only this AI pass (its id)."),
        ],
        responses=dict,
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        ai_pass_id = ai_pass_option(project.id, request.query_params.get("ai_pass"))
        return Response(ai_agreement_cached(project.id, ai_pass_id=ai_pass_id))
