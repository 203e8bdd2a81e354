"""AI feedback API: the project's constitution (versioned) and AI labeling passes.

    GET  /api/projects/<id>/constitution/            the current version (members)
    PUT  /api/projects/<id>/constitution/            save principles: version + 1 (managers)
    GET  /api/projects/<id>/constitution/versions/   every version, newest first (members)
    GET  /api/projects/<id>/ai-passes/               passes, newest first (managers)
    POST /api/projects/<id>/ai-passes/               start a pass or a CAI batch (managers): 202
    GET  /api/projects/<id>/ai-passes/<pass_id>/     one pass: progress, stats, cost (managers)
    GET  /api/projects/<id>/ai-passes/<pass_id>/revisions/   a CAI batch's revisions (managers)

The views are thin: validation and writes live in ``annotation/services/constitutions.py`` and
``annotation/services/ai_passes.py``; errors are the usual ``{"error": ..., "field": ...}``.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.pagination import paginate
from annotation.api.scoping import scoped_manager_project, scoped_project
from annotation.errors import NotFound, ValidationFailed
from annotation.models import AIJudgment, AIMethod, AIPass, Constitution
from annotation.services.ai_passes import ai_pass_get, ai_pass_retry, ai_pass_start, start_cai_pass
from annotation.services.constitutions import (
    constitution_current,
    constitution_save,
    constitution_versions,
)


class ConstitutionOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Constitution
        fields = ["version", "principles", "created_by", "created_at"]


class AIPassOut(serializers.ModelSerializer):
    constitution_version = serializers.IntegerField(source="constitution.version", default=None)
    created_by = serializers.CharField(source="created_by.username", default=None)
    tasks = serializers.SerializerMethodField()

    class Meta:
        model = AIPass
        fields = [
            "id",
            "method",
            "model_version",
            "model_path",
            "constitution_version",
            "principle_indexes",
            "queue",
            "tasks",
            "status",
            "progress",
            "done",
            "total",
            "stats",
            "error",
            "attempts",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_tasks(self, obj: AIPass) -> int:
        return len(obj.task_ids)


def _object_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    data = request.data
    if isinstance(data, QueryDict):  # a form body: its values are strings and lists of them
        if data:
            raise ValidationFailed("Send the body as JSON (Content-Type: application/json).")
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    unknown = sorted(str(key)[:60] for key in data if key not in allowed)
    if unknown:
        raise ValidationFailed(
            f"Unknown field(s) {unknown}; known: {', '.join(sorted(allowed))}.", field=unknown[0]
        )
    return dict(data)


EMPTY_CONSTITUTION: dict[str, Any] = {
    "version": None,
    "principles": [],
    "created_by": None,
    "created_at": None,
}


class ConstitutionApi(APIView):
    class ConstitutionIn(serializers.Serializer):
        principles = serializers.ListField(child=serializers.CharField(), min_length=1)

    @extend_schema(
        responses=ConstitutionOut,
        summary="The current constitution (members)",
        description="version null and no principles before the first save.",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = scoped_project(request, project_id)
        current = constitution_current(project=project)
        return Response(ConstitutionOut(current).data if current else EMPTY_CONSTITUTION)

    @extend_schema(
        request=ConstitutionIn,
        responses=ConstitutionOut,
        summary="Save the constitution (managers)",
        description="1 to 50 principles, each non-blank and at most 500 characters (stripped). "
        "A change makes version + 1; the same principles again return the current version.",
    )
    def put(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        body = _object_body(request, {"principles"})
        if "principles" not in body:
            raise ValidationFailed("principles is required.", field="principles")
        saved = constitution_save(project=project, principles=body["principles"], user=request.user)
        return Response(ConstitutionOut(saved).data)


class ConstitutionVersionsApi(APIView):
    @extend_schema(responses=ConstitutionOut(many=True), summary="Constitution history (members)")
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = scoped_project(request, project_id)
        rows = constitution_versions(project=project).select_related("created_by")
        return paginate(request, rows, ConstitutionOut)


class AIPassListApi(APIView):
    class AIPassIn(serializers.Serializer):
        method = serializers.ChoiceField(choices=["reward_model", "llm_judge", "cai"])
        model = serializers.CharField(required=False, allow_blank=True)
        queue = serializers.ChoiceField(choices=["cpu", "gpu"], required=False)
        task_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
        prompt_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
        limit = serializers.IntegerField(required=False, min_value=1)
        principles = serializers.ListField(child=serializers.IntegerField(), required=False)
        verify = serializers.BooleanField(required=False)

    FIELDS = {"method", "model", "queue", "task_ids", "limit", "principles"}
    CAI_FIELDS = {"method", "model", "queue", "prompt_ids", "limit", "principles", "verify"}

    @extend_schema(responses=AIPassOut(many=True), summary="AI labeling passes (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        rows = AIPass.objects.filter(project=project).select_related("constitution", "created_by")
        return paginate(request, rows.order_by("-id"), AIPassOut)

    @extend_schema(
        request=AIPassIn,
        responses={202: AIPassOut},
        summary="Start an AI labeling pass (managers)",
        description="method reward_model (the active reward model) or llm_judge (model: a local "
        "folder, default the installed SmolLM2-135M-Instruct; every principle of the current "
        "constitution, or the indexes in principles). Tasks: every pairwise, non-gold task, or "
        "task_ids; at most limit. queue cpu or gpu. method cai starts a Constitutional AI batch "
        "instead: the model (default the installed SmolLM2) answers each prompt (prompt_ids, or "
        "every train prompt; at most limit), critiques the answer against a principle and "
        "revises it; verify true also makes a pairwise task of each pair for humans.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        raw = request.data
        cai = isinstance(raw, dict) and raw.get("method") == "cai"
        body = _object_body(request, self.CAI_FIELDS if cai else self.FIELDS)
        if "method" not in body:
            raise ValidationFailed(
                "method is required (reward_model, llm_judge or cai).", field="method"
            )
        if cai:
            ai_pass = start_cai_pass(
                project=project,
                user=request.user,
                model=body.get("model", ""),
                queue=body.get("queue", "cpu"),
                prompt_ids=body.get("prompt_ids"),
                limit=body.get("limit"),
                principles=body.get("principles"),
                verify=body.get("verify", False),
            )
            return Response(AIPassOut(ai_pass).data, status=status.HTTP_202_ACCEPTED)
        ai_pass = ai_pass_start(
            project=project,
            user=request.user,
            method=body["method"],
            model=body.get("model", ""),
            queue=body.get("queue", "cpu"),
            task_ids=body.get("task_ids"),
            limit=body.get("limit"),
            principles=body.get("principles"),
        )
        return Response(AIPassOut(ai_pass).data, status=status.HTTP_202_ACCEPTED)


class AIPassDetailApi(APIView):
    @extend_schema(responses=AIPassOut, summary="One AI pass: progress, stats and cost (managers)")
    def get(self, request: Request, project_id: int, pass_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        return Response(AIPassOut(ai_pass_get(project=project, pass_id=pass_id)).data)


class AIPassRetryApi(APIView):
    @extend_schema(
        request=None,
        responses={202: AIPassOut},
        summary="Retry a failed AI pass (managers)",
        description="A failed pass (or Constitutional AI batch) is queued again and resumes where "
        "it stopped: what it stored before the failure is kept. 409 for a pass that has not "
        "failed.",
    )
    def post(self, request: Request, project_id: int, pass_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        ai_pass = ai_pass_retry(project=project, pass_id=pass_id)
        return Response(AIPassOut(ai_pass).data, status=status.HTTP_202_ACCEPTED)


class CAIRevisionOut(serializers.ModelSerializer):
    prompt_id = serializers.IntegerField(source="chosen_response.prompt_id", default=None)
    prompt = serializers.JSONField(source="chosen_response.prompt.messages", default=None)
    original_id = serializers.IntegerField(source="rejected_response_id")
    original = serializers.CharField(source="rejected_response.text", default=None)
    revised_id = serializers.IntegerField(source="chosen_response_id")
    revised = serializers.CharField(source="chosen_response.text", default=None)
    verify_task = serializers.IntegerField(source="task_id")

    class Meta:
        model = AIJudgment
        fields = [
            "id",
            "prompt_id",
            "prompt",
            "principle_index",
            "principle",
            "original_id",
            "original",
            "critique",
            "revised_id",
            "revised",
            "verify_task",
            "tokens",
            "created_at",
        ]


class CAIRevisionsApi(APIView):
    @extend_schema(
        responses=CAIRevisionOut(many=True),
        summary="A Constitutional AI batch's revisions (managers)",
        description="Per usable revision: the prompt, the principle, the original answer, the "
        "critique and the revised answer (model output: untrusted text), in id order.",
    )
    def get(self, request: Request, project_id: int, pass_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        ai_pass = ai_pass_get(project=project, pass_id=pass_id)
        if ai_pass.method != AIMethod.CAI:
            raise NotFound(f"AI pass {pass_id} is not a Constitutional AI batch.")
        rows = (
            AIJudgment.objects.filter(ai_pass=ai_pass)
            .select_related("chosen_response__prompt", "rejected_response")
            .order_by("id")
        )
        return paginate(request, rows, CAIRevisionOut)
