"""The rater's side of the API: next task, skip, submit, revise, own judgments."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.pagination import paginate
from annotation.api.scoping import scoped_project
from annotation.api.serializers import JudgmentOut, assignment_payload, judgment_body
from annotation.errors import NoTaskAvailable
from annotation.models import Judgment
from annotation.models import Response as ResponseRow
from annotation.selectors import is_manager
from annotation.services.assignment import (
    assignment_claim_next,
    assignment_get_for_rater,
    assignment_renew,
    assignment_skip,
)
from annotation.services.judgments import judgment_get_for_rater, judgment_revise, judgment_submit

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Client-chosen key; a retry with the same key and body returns the first result.",
)


def _assignment_body(assignment, texts=None) -> dict:  # type: ignore[no-untyped-def]
    if texts is None:
        texts = dict(
            ResponseRow.objects.filter(id__in=assignment.display_order).values_list("id", "text")
        )
    return assignment_payload(assignment, texts)


class NextIn(serializers.Serializer):
    prefetch = serializers.BooleanField(required=False, default=False)


class NextTaskApi(APIView):
    @extend_schema(
        request=NextIn,
        responses={200: OpenApiTypes.OBJECT, 204: None},
        summary="Claim your next task (or get back the one you hold)",
        description="204 when nothing is left for you. With prefetch=true you may hold one more "
        "lease, so the next task can load while you work on the current one.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = scoped_project(request, project_id)
        data = NextIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            claim = assignment_claim_next(
                project=project, rater=request.user, prefetch=data.validated_data["prefetch"]
            )
        except NoTaskAvailable:
            return Response(status=204)
        body = _assignment_body(claim.assignment, claim.response_texts)
        body["resumed"] = claim.resumed
        return Response(body)


class AssignmentDetailApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="One of your assignments")
    def get(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_rater(assignment_id=assignment_id, rater=request.user)
        return Response(_assignment_body(assignment))


class SkipIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class SkipApi(APIView):
    @extend_schema(request=SkipIn, responses=OpenApiTypes.OBJECT, summary="Skip with a reason")
    def post(self, request: Request, assignment_id: int) -> Response:
        # The service checks ownership (404) before it validates the reason (400).
        body = request.data if isinstance(request.data, dict) else {}
        assignment = assignment_skip(
            assignment_id=assignment_id, rater=request.user, reason=body.get("reason", "")
        )
        return Response({"id": assignment.id, "status": assignment.status})


class RenewApi(APIView):
    @extend_schema(
        request=None,
        responses=OpenApiTypes.OBJECT,
        summary="Keep your lease (heartbeat while the task is on screen)",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_renew(assignment_id=assignment_id, rater=request.user)
        return Response({"id": assignment.id, "expires_at": assignment.expires_at})


class SubmitApi(APIView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: JudgmentOut, 200: JudgmentOut},
        summary="Submit your judgment for a leased task",
        description="Body by task kind: pairwise {choice: A|B|tie|both_bad, strength: 1-4}; "
        "ranking {ranking: [[id,...], ...]} best first; rating {ratings: [{response, thumb, "
        "likert?}]}; demonstration {text, based_on?}. All take flags, rationale, "
        "time_spent_ms. 201 when stored, 200 when the Idempotency-Key was seen before.",
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        result = judgment_submit(
            assignment_id=assignment_id,
            rater=request.user,
            body=request.data,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(judgment_body(result.judgment), status=201 if result.created else 200)


class ReviseApi(APIView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: JudgmentOut, 200: JudgmentOut},
        summary="Revise your judgment (a new revision; the old one is kept)",
    )
    def post(self, request: Request, judgment_id: int) -> Response:
        result = judgment_revise(
            judgment_id=judgment_id,
            rater=request.user,
            body=request.data,
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(judgment_body(result.judgment), status=201 if result.created else 200)


class JudgmentDetailApi(APIView):
    @extend_schema(responses=JudgmentOut, summary="One of your judgments")
    def get(self, request: Request, judgment_id: int) -> Response:
        return Response(
            JudgmentOut(judgment_get_for_rater(judgment_id=judgment_id, rater=request.user)).data
        )


class JudgmentListApi(APIView):
    @extend_schema(
        responses=JudgmentOut(many=True),
        summary="Judgments: your own, or all of the project's for managers",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = scoped_project(request, project_id)
        rows = Judgment.objects.filter(project=project)
        if not is_manager(project=project, user=request.user):
            rows = rows.filter(rater=request.user)
        if request.query_params.get("all_revisions") != "1":
            rows = rows.filter(is_current=True)
        return paginate(request, rows.order_by("id"), JudgmentOut)
