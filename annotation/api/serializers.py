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
from annotation.services.projects import PROJECT_SETTINGS, Setting
from annotation.services.runs import run_config_shown


class ProjectOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "role", "created_at", *PROJECT_SETTINGS]

    def get_role(self, project: Project) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(project.id)


def setting_field(setting: Setting) -> serializers.Field:
    """The input field of one project setting (optional: a missing one keeps its value)."""
    if setting.kind is list:
        return serializers.ListField(child=serializers.CharField(), required=False)
    if setting.kind is str and setting.choices:
        return serializers.ChoiceField(choices=list(setting.choices), required=False)
    if setting.kind is str:
        return serializers.CharField(
            max_length=setting.max_length, required=False, allow_blank=True
        )
    if setting.kind is bool:
        return serializers.BooleanField(required=False)
    number = serializers.IntegerField if setting.kind is int else serializers.FloatField
    return number(min_value=setting.low, max_value=setting.high, required=False)


class ProjectIn(serializers.Serializer):
    """A new project: its name, an optional slug, and any of the settings in
    ``annotation.services.projects.PROJECT_SETTINGS`` (fields built from that list)."""

    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        settings = {name: setting_field(s) for name, s in PROJECT_SETTINGS.items()}
        return {**super().get_fields(), **settings}


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
    config = serializers.SerializerMethodField()

    def get_config(self, run: TrainingRun) -> dict[str, Any]:
        return run_config_shown(run.config)

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
