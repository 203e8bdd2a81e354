"""The loop's API: "retrain now", one run's live progress and steps, the policy's status."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.scoping import scoped_manager_project
from annotation.api.serializers import TrainingRunOut
from annotation.errors import NotFound, ValidationFailed
from annotation.models import RunStep, TrainingRun
from annotation.services.loop import new_judgment_count, retrain_due, retrain_now
from annotation.services.runs import run_active


class RetrainApi(APIView):
    class Input(serializers.Serializer):
        config = serializers.JSONField(required=False, default=dict)

    class StatusOut(serializers.Serializer):
        due = serializers.BooleanField()
        reason = serializers.CharField()
        new_judgments = serializers.IntegerField()
        active_run = serializers.IntegerField(allow_null=True)

    @extend_schema(responses=StatusOut, summary="Retrain policy status (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        due, reason = retrain_due(project=project)
        active = run_active(project=project)
        return Response(
            {
                "due": due,
                "reason": reason,
                "new_judgments": new_judgment_count(project=project),
                "active_run": active.id if active else None,
            }
        )

    @extend_schema(request=Input, responses={202: TrainingRunOut}, summary="Retrain now")
    def post(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise ValidationFailed("The body must be a JSON object (or empty).")
        unknown = sorted(str(key)[:60] for key in data if key != "config")
        if unknown:
            raise ValidationFailed(
                f'Unknown field(s) {unknown}: the body is {{"config": {{run options}}}}.',
                field=unknown[0],
            )
        body = self.Input(data=data)
        body.is_valid(raise_exception=True)
        run = retrain_now(project=project, user=request.user, config=body.validated_data["config"])
        return Response(TrainingRunOut(run).data, status=status.HTTP_202_ACCEPTED)


class RunStepOut(serializers.ModelSerializer):
    class Meta:
        model = RunStep
        fields = ["name", "result", "seconds", "finished_at"]


class TrainingRunDetailApi(APIView):
    @extend_schema(responses=TrainingRunOut, summary="One run with its finished steps")
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        run = TrainingRun.objects.filter(project=project, id=run_id).first()
        if run is None:
            raise NotFound(f"Training run {run_id} not found.")
        data = dict(TrainingRunOut(run).data)
        data["steps"] = RunStepOut(run.steps.order_by("id"), many=True).data
        data["versions"] = list(
            run.versions.order_by("id").values(
                "id", "name", "kind", "trainer", "status", "is_active"
            )
        )
        return Response(data)
