"""JSONL upload."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.errors import ValidationFailed
from annotation.selectors import project_get_for_manager
from annotation.services.imports import import_jsonl


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
        responses={201: OpenApiTypes.OBJECT},
        summary="Import prompts and responses from a JSONL file (all or nothing)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_get_for_manager(project_id=project_id, user=request.user)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Send the JSONL file in the 'file' form field.", field="file")
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ValidationFailed(
                f"The file is larger than {settings.IMPORT_MAX_BYTES} bytes.", field="file"
            )
        flags = {
            name: str(request.data.get(name, "true")).lower() not in ("0", "false", "no")
            for name in ("create_tasks", "store_labels")
        }
        summary = import_jsonl(project=project, lines=upload, **flags)
        return Response(asdict(summary), status=201)
