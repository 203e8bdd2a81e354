"""The admin. Every form here is checked like the API's bodies (``annotation/textcheck.py``): text
fields get Django's NUL validator and the site's form check (``annotation/boundary.py``), and the
JSON fields the check below, since a NUL or lone surrogate spelled ``\\u0000`` in JSON text only
appears once it is decoded, and PostgreSQL's ``jsonb`` refuses it (a 500, not a form error)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import JSONField, QuerySet
from django.http import HttpRequest

from annotation import models
from annotation.services.projects import membership_remove
from annotation.textcheck import find_problem


class CheckedJSONFormField(forms.JSONField):
    def to_python(self, value: Any) -> Any:
        converted = super().to_python(value)
        problem = find_problem(converted)
        if problem is not None:
            raise ValidationError(problem.message(), code="invalid")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Shown again as typed: decoded, a lone surrogate could not even be written to the page.
        value = super().bound_data(data, initial)
        if data is not None and find_problem(value) is not None:
            return forms.fields.InvalidJSONInput(data)
        return value


class CheckedModelAdmin(admin.ModelAdmin):
    formfield_overrides = {JSONField: {"form_class": CheckedJSONFormField}}


@admin.register(models.Project)
class ProjectAdmin(CheckedModelAdmin):
    list_display = ["id", "name", "slug", "overlap", "gold_rate", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(models.Membership)
class MembershipAdmin(CheckedModelAdmin):
    """Deleting a membership here goes through the service, so the user's leases end too. Site
    admins may remove a project's last admin (they can manage every project)."""

    list_display = ["id", "project", "user", "role"]
    list_filter = ["role"]
    raw_id_fields = ["project", "user"]

    def delete_model(self, request: HttpRequest, obj: models.Membership) -> None:
        membership_remove(project=obj.project, user=obj.user, keep_an_admin=False)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[models.Membership]) -> None:
        for membership in queryset.select_related("project", "user"):
            membership_remove(project=membership.project, user=membership.user, keep_an_admin=False)


@admin.register(models.Prompt)
class PromptAdmin(CheckedModelAdmin):
    list_display = ["id", "project", "split", "source", "created_at"]
    list_filter = ["split"]
    raw_id_fields = ["project"]


@admin.register(models.Response)
class ResponseAdmin(CheckedModelAdmin):
    list_display = ["id", "prompt", "origin", "source", "model_version", "created_at"]
    list_filter = ["origin"]
    raw_id_fields = ["prompt", "model_version", "generation_run", "parent", "author"]


@admin.register(models.Task)
class TaskAdmin(CheckedModelAdmin):
    list_display = [
        "id",
        "project",
        "kind",
        "status",
        "slots_taken",
        "judgments_done",
        "required_judgments",
        "priority",
        "is_gold",
    ]
    list_filter = ["kind", "status", "is_gold"]
    raw_id_fields = ["project", "prompt", "generation_run"]


@admin.register(models.Assignment)
class AssignmentAdmin(CheckedModelAdmin):
    list_display = ["id", "task", "rater", "status", "claimed_at", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["task", "rater", "project"]


@admin.register(models.Judgment)
class JudgmentAdmin(CheckedModelAdmin):
    list_display = [
        "id",
        "task",
        "rater",
        "kind",
        "choice",
        "strength",
        "revision",
        "is_current",
        "source",
        "created_at",
    ]
    list_filter = ["kind", "source", "is_current"]
    raw_id_fields = ["task", "project", "rater", "assignment", "preferred_response"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # immutable: edits are new revisions through the API


@admin.register(models.ModelVersion)
class ModelVersionAdmin(CheckedModelAdmin):
    list_display = ["id", "project", "name", "kind", "trainer", "status", "is_active"]
    list_filter = ["kind", "trainer", "status"]
    raw_id_fields = ["project", "parent", "training_run"]


@admin.register(models.TrainingRun)
class TrainingRunAdmin(CheckedModelAdmin):
    list_display = ["id", "project", "status", "current_step", "progress", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["project"]


@admin.register(models.RunStep)
class RunStepAdmin(CheckedModelAdmin):
    list_display = ["id", "run", "name", "seconds", "finished_at"]
    raw_id_fields = ["run"]


@admin.register(models.RaterExclusion)
class RaterExclusionAdmin(CheckedModelAdmin):
    list_display = ["id", "project", "rater", "excluded_by", "created_at", "lifted_at"]
    raw_id_fields = ["project", "rater", "excluded_by", "lifted_by"]


@admin.register(models.TaskResponse)
class TaskResponseAdmin(CheckedModelAdmin):
    list_display = ["id", "task", "response", "position"]
    raw_id_fields = ["task", "response"]
