"""Projects and memberships."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import Membership, Project, Role, TaskKind
from annotation.services.assignment import assignment_release_for_rater
from training.contract.trainers import TRAINER_NAMES as REGISTERED_TRAINERS

TRAINER_NAMES = frozenset(REGISTERED_TRAINERS)  # the registry: training/contract/trainers.py


@dataclass(frozen=True)
class Setting:
    """One editable project setting: its type and the bounds an input must keep (checked by
    the API's ``ProjectIn``, which is built from :data:`PROJECT_SETTINGS`)."""

    kind: type  # int, float, bool, str or list (of strings; their values checked below)
    low: float | None = None
    high: float | None = None
    max_length: int | None = None  # str
    choices: tuple[str, ...] = ()  # str: the allowed values (empty: any)


# The one list of a project's editable settings (each a field of ``Project``): the API's input
# and output serializers and the services below all read it. Adding a setting is its field on
# ``Project`` (and migration) plus one entry here.
PROJECT_SETTINGS: dict[str, Setting] = {
    "guidelines": Setting(str, max_length=200_000),
    "task_kinds": Setting(list),
    "overlap": Setting(int, 1, 50),
    "lease_seconds": Setting(int, 30, 7 * 86400),
    "gold_rate": Setting(float, 0, 1),
    "flag_choices": Setting(list),
    "ranking_size": Setting(int, 2, 16),
    "eval_share": Setting(float, 0, 0.9),
    "base_model": Setting(str, max_length=500),
    "samples_per_prompt": Setting(int, 2, 64),
    "temperature": Setting(float, 0, 5),
    "top_p": Setting(float, 0.01, 1),
    "max_new_tokens": Setting(int, 1, 32_768),
    "auto_retrain": Setting(bool),
    "min_new_judgments": Setting(int, 1),
    "min_interval_minutes": Setting(int, 0),
    "trainers": Setting(list),
    # Which labels train (docs/ai-feedback.md, "Agreement and mixing").
    "ai_training": Setting(str, max_length=8, choices=("human", "ai", "both")),
    "ai_weight": Setting(float, 0, 1),
    "ai_min_confidence": Setting(float, 0, 1),  # and 0 or >= 0.5: checked below
}
EDITABLE_FIELDS = frozenset({"name", *PROJECT_SETTINGS})


def _check_settings(values: dict[str, Any]) -> None:
    for name, setting in PROJECT_SETTINGS.items():
        if setting.choices and name in values and values[name] not in setting.choices:
            raise ValidationFailed(
                f"{name} must be one of {list(setting.choices)}, got {values[name]!r}.", field=name
            )
    weight = values.get("ai_weight")
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1
    ):
        raise ValidationFailed(
            f"ai_weight must be a number from 0 to 1, got {weight!r}.", field="ai_weight"
        )
    floor = values.get("ai_min_confidence")
    if floor is not None and (
        isinstance(floor, bool)
        or not isinstance(floor, int | float)
        or not (floor == 0 or 0.5 <= floor <= 1)
    ):
        raise ValidationFailed(
            "ai_min_confidence must be 0 (keep every consistent AI judgment) or from 0.5 to 1 "
            f"(an AI judgment's confidence is at least 0.5), got {floor!r}.",
            field="ai_min_confidence",
        )
    kinds = values.get("task_kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not kinds or not set(kinds) <= set(TaskKind.values)
    ):
        raise ValidationFailed(
            f"task_kinds must be a non-empty subset of {TaskKind.values}.", field="task_kinds"
        )
    trainers = values.get("trainers")
    if trainers is not None and (
        not isinstance(trainers, list)
        or not all(isinstance(t, str) and t in TRAINER_NAMES for t in trainers)
    ):
        raise ValidationFailed(
            f"trainers must be a subset of {sorted(TRAINER_NAMES)}.", field="trainers"
        )
    flags = values.get("flag_choices")
    if flags is not None and (
        not isinstance(flags, list)
        or not all(isinstance(f, str) and 0 < len(f) <= 64 for f in flags)
        or len(set(flags)) != len(flags)
    ):
        raise ValidationFailed(
            "flag_choices must be a list of distinct names of 1-64 characters.",
            field="flag_choices",
        )


def project_create(*, name: str, owner: User, slug: str = "", **settings: Any) -> Project:
    """Create a project; its creator becomes an admin member."""
    unknown = set(settings) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown project setting(s): {sorted(unknown)}.")
    _check_settings(settings)
    slug = slug or slugify(name)[:100]
    if not slug:
        raise ValidationFailed("The project needs a name with letters or digits.", field="name")
    if Project.objects.filter(slug=slug).exists():
        raise Conflict(f"A project with slug {slug!r} already exists.", field="slug")
    with transaction.atomic():
        project = Project.objects.create(name=name, slug=slug, **settings)
        Membership.objects.create(project=project, user=owner, role=Role.ADMIN)
    return project


def project_update(*, project: Project, **changes: Any) -> Project:
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown project setting(s): {sorted(unknown)}.")
    _check_settings(changes)
    for field, value in changes.items():
        setattr(project, field, value)
    project.full_clean(exclude=["slug"])
    project.save(update_fields=list(changes))
    return project


def membership_set(*, project: Project, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(f"role must be one of {Role.values}.", field="role")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def membership_remove(*, project: Project, user: User, keep_an_admin: bool = True) -> int:
    """Take the user out of the project and end their live leases at once (their slots go back
    to the queue); their judgments stay. From the next request on every project route, lease
    and judgment id answers them 404. With ``keep_an_admin`` the last admin cannot be removed
    (409): someone must be able to manage the project. Locks the membership row (and the
    project's admin rows when the user is an admin).
    Returns how many leases ended."""
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(project=project, user=user).first()
        )
        if membership is None:
            raise NotFound(f"{user.username} is not a member of this project.")
        if keep_an_admin and membership.role == Role.ADMIN:
            admins = Membership.objects.select_for_update().filter(project=project, role=Role.ADMIN)
            if len(admins) <= 1:
                raise Conflict(
                    f"{user.username} is the project's last admin; make another member an "
                    "admin first."
                )
        membership.delete()
        return assignment_release_for_rater(project_id=project.id, rater_id=user.id)
