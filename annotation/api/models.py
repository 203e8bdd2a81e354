"""Model versions and training runs (read-only here; the workers write them)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.pagination import paginate
from annotation.api.scoping import scoped_manager_project
from annotation.api.serializers import ModelVersionOut, TrainingRunOut
from annotation.models import ModelVersion, TrainingRun


class ModelVersionListApi(APIView):
    @extend_schema(responses=ModelVersionOut(many=True), summary="Model versions (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        rows = ModelVersion.objects.filter(project=project).order_by("-id")
        return paginate(request, rows, ModelVersionOut)


class TrainingRunListApi(APIView):
    @extend_schema(responses=TrainingRunOut(many=True), summary="Training runs (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        rows = TrainingRun.objects.filter(project=project).order_by("-id")
        return paginate(request, rows, TrainingRunOut)
