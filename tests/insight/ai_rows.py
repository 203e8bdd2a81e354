"""Hand-built AI passes and verdicts for the agreement and mixing tests (no judge runs)."""

from __future__ import annotations

from typing import Any

from annotation import models
from tests.factories import make_rater, make_task


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


def mixed_project(project: models.Project) -> dict[str, Any]:
    """Three tasks judged by humans and the AI (module docstring of training.contract.mixing):

    t1: human r1 prefers response 0 (strength 3); AI: principle 0 picks 1 (0.9), principle 1
        picks 0 (0.6).
    t2: human r1 tie, r2 prefers 1 (strength 1); AI inconsistent.
    t3: human r2 both bad; AI picks 0 (0.75).
    gold: AI picks 0 (1.0): a gold task never trains.
    """
    r1, r2 = make_rater(project), make_rater(project)
    t1, t2, t3 = (make_task(project) for _ in range(3))
    gold = make_task(project, is_gold=True, gold_answer={"choice": "A"})
    ai = ai_pass(project)
    human(t1, r1, 0, strength=3)
    human(t2, r1, "tie")
    human(t2, r2, 1, strength=1)
    human(t3, r2, "both_bad")
    ids = {
        "t1p0": verdict(ai, t1, 1, confidence=0.9, principle_index=0).id,
        "t1p1": verdict(ai, t1, 0, confidence=0.6, principle_index=1).id,
        "t2": verdict(ai, t2, None).id,
        "t3": verdict(ai, t3, 0, confidence=0.75).id,
        "gold": verdict(ai, gold, 0, confidence=1.0).id,
    }
    text = {}
    for name, task in (("t1", t1), ("t2", t2), ("t3", t3)):
        a, b = responses(task)
        texts = dict(models.Response.objects.filter(id__in=[a, b]).values_list("id", "text"))
        text[name] = (texts[a], texts[b])
    return {"ids": ids, "text": text}
