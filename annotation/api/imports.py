"""JSONL upload, and the status of a background import.

An upload up to ``IMPORT_SYNC_MAX_BYTES`` is imported within the request (``201`` with the
counts, or ``400`` listing every bad line). A larger one is stored and imported by the ``cpu``
worker: ``202`` with the job, whose ``url`` (manager-only, project-scoped) shows its progress and
outcome. Both paths run the same checks and the same all-or-nothing import.
"""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.parsers import MultiPartParser
from annotation.api.scoping import scoped_manager_project
from annotation.errors import NotFound, ValidationFailed
from annotation.models import ImportJob
from annotation.services.import_jobs import UploadTooLarge, import_job_create, import_job_progress
from annotation.services.imports import import_jsonl

MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around the file


class ImportJobOut(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "status",
            "original_name",
            "total_bytes",
            "progress",
            "summary",
            "error",
            "error_count",
            "errors",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_url(self, job: ImportJob) -> str:
        return reverse("api-import-job", kwargs={"project_id": job.project_id, "job_id": job.id})

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, job: ImportJob) -> dict[str, object]:
        """{phase, lines_done, bytes_done, progress (0..1)}"""
        return import_job_progress(job)


def _flag(request: Request, name: str) -> bool:
    return str(request.data.get(name, "true")).lower() not in ("0", "false", "no")


class ImportApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "create_tasks": {"type": "boolean"},
                    "store_labels": {"type": "boolean"},
                },
            }
        },
        responses={201: OpenApiTypes.OBJECT, 202: ImportJobOut},
        summary="Import prompts and responses from a JSONL file (all or nothing)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.IMPORT_MAX_BYTES + MULTIPART_SLACK:  # refused before it is read
            raise UploadTooLarge(
                f"The file is larger than {settings.IMPORT_MAX_BYTES} bytes.", field="file"
            )
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Send the JSONL file in the 'file' form field.", field="file")
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise UploadTooLarge(
                f"The file is larger than {settings.IMPORT_MAX_BYTES} bytes.", field="file"
            )
        create_tasks, store_labels = _flag(request, "create_tasks"), _flag(request, "store_labels")
        if upload.size > settings.IMPORT_SYNC_MAX_BYTES:
            job = import_job_create(
                project=project,
                user=request.user,
                upload=upload,
                create_tasks=create_tasks,
                store_labels=store_labels,
            )
            return Response(ImportJobOut(job).data, status=202)
        summary = import_jsonl(
            project=project,
            stream=upload.file,
            create_tasks=create_tasks,
            store_labels=store_labels,
        )
        return Response(asdict(summary), status=201)


class ImportJobDetailApi(APIView):
    @extend_schema(responses=ImportJobOut, summary="A background import's progress and outcome")
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        job = ImportJob.objects.filter(project=project, id=job_id).first()
        if job is None:
            raise NotFound(f"Import job {job_id} not found.")
        return Response(ImportJobOut(job).data)
