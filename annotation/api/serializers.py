"""Output shapes of the API. Inputs are validated by the services (payloads) or small input
serializers beside each view."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from annotation.models import (
    Assignment,
    Judgment,
    ModelVersion,
    Project,
    Prompt,
    Response,
    Task,
    TrainingRun,
)

PROJECT_SETTINGS = [
    "guidelines",
    "task_kinds",
    "overlap",
    "lease_seconds",
    "gold_rate",
    "flag_choices",
    "ranking_size",
    "eval_share",
    "base_model",
    "samples_per_prompt",
    "temperature",
    "top_p",
    "max_new_tokens",
    "auto_retrain",
    "min_new_judgments",
    "min_interval_minutes",
    "trainers",
]


class ProjectOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "role", "created_at", *PROJECT_SETTINGS]

    def get_role(self, project: Project) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(project.id)


class ProjectIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True, max_length=200_000)
    task_kinds = serializers.ListField(child=serializers.CharField(), required=False)
    overlap = serializers.IntegerField(min_value=1, max_value=50, required=False)
    lease_seconds = serializers.IntegerField(min_value=30, max_value=7 * 86400, required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    flag_choices = serializers.ListField(child=serializers.CharField(), required=False)
    ranking_size = serializers.IntegerField(min_value=2, max_value=16, required=False)
    eval_share = serializers.FloatField(min_value=0, max_value=0.9, required=False)
    base_model = serializers.CharField(max_length=500, required=False, allow_blank=True)
    samples_per_prompt = serializers.IntegerField(min_value=2, max_value=64, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=5, required=False)
    top_p = serializers.FloatField(min_value=0.01, max_value=1, required=False)
    max_new_tokens = serializers.IntegerField(min_value=1, max_value=32_768, required=False)
    auto_retrain = serializers.BooleanField(required=False)
    min_new_judgments = serializers.IntegerField(min_value=1, required=False)
    min_interval_minutes = serializers.IntegerField(min_value=0, required=False)
    trainers = serializers.ListField(child=serializers.CharField(), required=False)


class ProjectUpdateIn(ProjectIn):
    name = serializers.CharField(max_length=200, required=False)
    slug = None  # type: ignore[assignment]


class ResponseOut(serializers.ModelSerializer):
    class Meta:
        model = Response
        fields = ["id", "text"]


class ResponseDetailOut(serializers.ModelSerializer):
    class Meta:
        model = Response
        fields = [
            "id",
            "prompt",
            "text",
            "origin",
            "source",
            "model_version",
            "generation_params",
            "parent",
            "created_at",
        ]


class PromptOut(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "messages", "source", "metadata", "split", "created_at"]


class TaskOut(serializers.ModelSerializer):
    """Manager's view of a task (includes the gold flag and answer)."""

    response_ids = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "kind",
            "prompt",
            "response_ids",
            "required_judgments",
            "judgments_done",
            "slots_taken",
            "status",
            "priority",
            "is_gold",
            "gold_answer",
            "created_at",
        ]

    def get_response_ids(self, task: Task) -> list[int]:
        return [tr.response_id for tr in task.task_responses.all()]


def assignment_payload(assignment: Assignment, texts: dict[int, str]) -> dict[str, Any]:
    """What a rater sees: never whether the task is gold, responses in display order."""
    task = assignment.task
    return {
        "id": assignment.id,
        "project": assignment.project_id,
        "task": {
            "id": task.id,
            "kind": task.kind,
            "prompt": {"id": task.prompt_id, "messages": task.prompt.messages},
        },
        "responses": [
            {"id": rid, "label": chr(ord("A") + i), "text": texts[rid]}
            for i, rid in enumerate(assignment.display_order)
        ],
        "status": assignment.status,
        "claimed_at": assignment.claimed_at,
        "expires_at": assignment.expires_at,
    }


JUDGMENT_FIELDS = [
    "id",
    "task",
    "project",
    "rater",
    "assignment",
    "source",
    "kind",
    "revision",
    "is_current",
    "choice",
    "strength",
    "preferred_response",
    "payload",
    "flags",
    "rationale",
    "time_spent_ms",
    "display_order",
    "created_at",
]
# Foreign keys are rendered as ids.
JUDGMENT_ATTRS = {
    "task": "task_id",
    "project": "project_id",
    "rater": "rater_id",
    "assignment": "assignment_id",
    "preferred_response": "preferred_response_id",
}


def judgment_body(judgment: Judgment) -> dict[str, Any]:
    """``JudgmentOut(judgment).data`` without building a ModelSerializer per response (that was a
    tenth of a submit's CPU); a test keeps the two identical."""
    return {name: getattr(judgment, JUDGMENT_ATTRS.get(name, name)) for name in JUDGMENT_FIELDS}


class JudgmentOut(serializers.ModelSerializer):
    class Meta:
        model = Judgment
        fields = JUDGMENT_FIELDS


class ModelVersionOut(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "kind",
            "trainer",
            "parent",
            "training_run",
            "artifact_path",
            "config",
            "metrics",
            "status",
            "is_active",
            "created_at",
        ]


class TrainingRunOut(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "trainers",
            "config",
            "status",
            "triggered_by",
            "current_step",
            "progress",
            "metrics",
            "curve",
            "timings",
            "error",
            "snapshot_max_judgment_id",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
