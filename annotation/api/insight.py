"""Managers' API: the dashboard (JSON and CSV per table), rater exclusions, training exports.

Every view starts with ``scoped_manager_project``: someone outside the project gets 404 (the
project "does not exist" for them), a member who is not a manager gets 403.
"""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.scoping import scoped_manager_project
from annotation.errors import NotFound
from annotation.insight.csvout import table_csv
from annotation.insight.dashboard import dashboard_get
from annotation.models import RaterExclusion
from annotation.services.exclusions import rater_exclude, rater_restore
from annotation.services.exports import export_manifest, export_start

EXPORT_PARAMS = [
    OpenApiParameter("dataset", str, enum=["preference", "unpaired", "sft"]),
    OpenApiParameter("style", str, enum=["standard", "conversational"]),
    OpenApiParameter("file", str, enum=["jsonl", "parquet"]),
    OpenApiParameter("aggregation", str, enum=["every", "majority"]),
    OpenApiParameter("kinds", str, description="Comma-separated task kinds."),
    OpenApiParameter("date_from", str, description="YYYY-MM-DD or ISO date-time (inclusive)."),
    OpenApiParameter(
        "date_to", str, description="YYYY-MM-DD (whole day) or date-time (exclusive)."
    ),
    OpenApiParameter("min_agreement", float, description="0..1: item agreement threshold."),
    OpenApiParameter("include_excluded", bool),
    OpenApiParameter("gold", str, enum=["exclude", "include", "only"]),
    OpenApiParameter(
        "source",
        str,
        enum=["human", "ai", "all"],
        description=(
            "human (default): human judgments only; ai: only AI pairs (consistent, confidence "
            ">= the project's ai_min_confidence, weight 1); all: both, AI pairs weighted "
            "ai_weight. With AI rows each row has weight and source. Preference dataset only."
        ),
    ),
]


class InsightApi(APIView):
    @extend_schema(
        summary="Dashboard: agreement, raters, throughput, bias, leaderboard, runs",
        parameters=[OpenApiParameter("refresh", bool)],
        responses=dict,
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        refresh = request.query_params.get("refresh") in ("1", "true")
        return Response(dashboard_get(project.id, refresh=refresh))


class InsightTableCsvApi(APIView):
    @extend_schema(summary="One dashboard table as CSV", responses={200: str})
    def get(self, request: Request, project_id: int, table: str) -> HttpResponse:
        project = scoped_manager_project(request, project_id)
        tables = dashboard_get(project.id)["tables"]
        if table not in tables:
            raise NotFound(f"No table {table!r}; tables are {sorted(tables)}.")
        response = HttpResponse(table_csv(tables[table]), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{project.slug}-{table}.csv"'
        return response


class ExclusionIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ExclusionOut(serializers.Serializer):
    id = serializers.IntegerField()
    rater_id = serializers.IntegerField()
    rater = serializers.CharField(source="rater.username")
    reason = serializers.CharField()
    excluded_by = serializers.CharField(source="excluded_by.username", default=None)
    created_at = serializers.DateTimeField()
    lifted_at = serializers.DateTimeField()
    lifted_by = serializers.CharField(source="lifted_by.username", default=None)


class ExclusionListApi(APIView):
    @extend_schema(summary="Exclusion history (live and lifted)", responses=ExclusionOut(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        rows = (
            RaterExclusion.objects.filter(project=project)
            .select_related("rater", "excluded_by", "lifted_by")
            .order_by("-created_at", "-id")
        )
        return Response(ExclusionOut(rows, many=True).data)


class RaterExclusionApi(APIView):
    @extend_schema(
        summary="Exclude a rater's judgments from training",
        request=ExclusionIn,
        responses={201: ExclusionOut},
    )
    def post(self, request: Request, project_id: int, rater_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        data = ExclusionIn(data=request.data)
        data.is_valid(raise_exception=True)
        row = rater_exclude(
            project=project,
            rater_id=rater_id,
            by=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(ExclusionOut(row).data, status=201)

    @extend_schema(summary="Restore a rater's judgments to training", responses=ExclusionOut)
    def delete(self, request: Request, project_id: int, rater_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        row = rater_restore(project=project, rater_id=rater_id, by=request.user)
        return Response(ExclusionOut(row).data)


class ExportApi(APIView):
    @extend_schema(
        summary="Download training data (streamed JSONL or Parquet)",
        parameters=EXPORT_PARAMS,
        responses={200: bytes},
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = scoped_manager_project(request, project_id)
        export = export_start(project=project, params=request.query_params)
        content_type = (
            "application/x-ndjson"
            if export.file_format == "jsonl"
            else "application/vnd.apache.parquet"
        )
        response = StreamingHttpResponse(export.chunks(), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response


class ExportManifestApi(APIView):
    @extend_schema(
        summary="Counts and sha256 of the export the same parameters download",
        parameters=EXPORT_PARAMS,
        responses=dict,
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        return Response(export_manifest(project=project, params=request.query_params))
