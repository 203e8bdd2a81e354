"""A manager leaves a rater's judgments out of training and stops them labeling, and can take
that back.

Each decision is a :class:`RaterExclusion` row; restoring stamps ``lifted_at``/``lifted_by`` on it
instead of deleting it, so the history of who excluded whom, when and why stays on record. The
database allows one live exclusion per (project, rater) (``one_live_exclusion_per_rater``).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.errors import Conflict, NotFound, ValidationFailed
from annotation.models import Membership, Project, RaterExclusion
from annotation.services.assignment import assignment_release_for_rater

MAX_REASON_CHARS = 500


def _check_member(*, project: Project, rater_id: int) -> None:
    if not Membership.objects.filter(project=project, user_id=rater_id).exists():
        raise NotFound(f"Rater {rater_id} is not a member of this project.")


def rater_exclude(*, project: Project, rater_id: int, by: User, reason: str = "") -> RaterExclusion:
    """Record a live exclusion and end the rater's live leases (their slots go back to the
    queue; an excluded rater takes and answers no more tasks until restored). The partial unique
    constraint makes two concurrent exclusions of the same rater end in one row and one
    Conflict; the rater's active assignment rows are locked while their leases end."""
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise ValidationFailed(
            f"reason must be text of at most {MAX_REASON_CHARS} characters.", field="reason"
        )
    _check_member(project=project, rater_id=rater_id)
    try:
        with transaction.atomic():
            exclusion = RaterExclusion.objects.create(
                project=project, rater_id=rater_id, excluded_by=by, reason=reason
            )
            assignment_release_for_rater(project_id=project.id, rater_id=rater_id)
            return exclusion
    except IntegrityError:
        raise Conflict(f"Rater {rater_id} is already excluded from training.") from None


def rater_restore(*, project: Project, rater_id: int, by: User) -> RaterExclusion:
    """Lift the live exclusion. Locks the live exclusion row (SELECT ... FOR UPDATE)."""
    _check_member(project=project, rater_id=rater_id)
    with transaction.atomic():
        live = (
            RaterExclusion.objects.select_for_update()
            .filter(project=project, rater_id=rater_id, lifted_at__isnull=True)
            .first()
        )
        if live is None:
            raise Conflict(f"Rater {rater_id} is not excluded; there is nothing to restore.")
        live.lifted_at = timezone.now()
        live.lifted_by = by
        live.save(update_fields=["lifted_at", "lifted_by"])
        return live
