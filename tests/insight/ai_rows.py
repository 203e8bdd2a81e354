"""Hand-built AI passes and verdicts for the agreement and mixing tests (no judge runs)."""

from __future__ import annotations

from annotation import models


def responses(task: models.Task) -> list[int]:
    return list(task.task_responses.order_by("position").values_list("response_id", flat=True))


def ai_pass(project: models.Project, *, principles: list[str] | None = None) -> models.AIPass:
    constitution = models.Constitution.objects.create(
        project=project,
        version=(project.constitutions.count() + 1),
        principles=principles or ["Be helpful.", "Be harmless."],
    )
    return models.AIPass.objects.create(
        project=project,
        method=models.AIMethod.LLM_JUDGE,
        model_path="fake",
        constitution=constitution,
        status=models.AIPassStatus.SUCCEEDED,
    )


def verdict(
    ai: models.AIPass,
    task: models.Task,
    winner: int | None,
    *,
    confidence: float = 0.8,
    principle_index: int | None = 0,
) -> models.AIJudgment:
    """``winner``: the position (0/1) of the response the AI chose; None = inconsistent."""
    ids = responses(task)
    principles = ai.constitution.principles if ai.constitution else []
    return models.AIJudgment.objects.create(
        ai_pass=ai,
        project=ai.project,
        task=task,
        method=ai.method,
        model_name=ai.model_path,
        constitution=ai.constitution,
        principle_index=principle_index,
        principle=principles[principle_index] if principle_index is not None else "",
        chosen_response_id=None if winner is None else ids[winner],
        rejected_response_id=None if winner is None else ids[1 - winner],
        consistent=winner is not None,
        confidence=None if winner is None else confidence,
        p_first_order=0.5,
        p_second_order=0.5,
    )


def human(task: models.Task, rater, winner: int | str, *, strength: int = 2) -> models.Judgment:
    """A human pairwise judgment: ``winner`` a position (0/1), "tie" or "both_bad"."""
    ids = responses(task)
    if isinstance(winner, int):
        return models.Judgment.objects.create(
            task=task,
            project=task.project,
            rater=rater,
            kind="pairwise",
            choice="A" if winner == 0 else "B",
            strength=strength,
            preferred_response_id=ids[winner],
            display_order=ids,
        )
    return models.Judgment.objects.create(
        task=task, project=task.project, rater=rater, kind="pairwise", choice=winner,
        display_order=ids,
    )  # fmt: skip
