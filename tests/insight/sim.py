"""Simulated projects for the insight tests: tasks, raters and judgments created in bulk."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
from django.utils import timezone

from annotation import models
from annotation.services.prompts import messages_hash
from tests.factories import make_rater


def make_pairwise_tasks(
    project: models.Project,
    n: int,
    *,
    systems: tuple[str, str] = ("sys-a", "sys-b"),
    lengths: tuple[int, int] = (20, 60),
    is_gold: bool = False,
    start: int = 0,
) -> list[tuple[models.Task, list[models.Response]]]:
    """n pairwise tasks; response 0 from systems[0] (length lengths[0]), 1 from systems[1]."""
    prompts = models.Prompt.objects.bulk_create(
        models.Prompt(
            project=project,
            messages=[{"role": "user", "content": f"Q{start + i} {project.slug}?"}],
            content_hash=messages_hash(
                [{"role": "user", "content": f"Q{start + i} {project.slug}?"}]
            ),
        )
        for i in range(n)
    )
    responses = models.Response.objects.bulk_create(
        models.Response(prompt=p, text=f"{k}:{p.id}:".ljust(lengths[k], "x"), source=systems[k])
        for p in prompts
        for k in range(2)
    )
    tasks = models.Task.objects.bulk_create(
        models.Task(
            project=project,
            kind="pairwise",
            prompt=p,
            required_judgments=project.overlap,
            is_gold=is_gold,
            gold_answer={"preferred_response": responses[2 * i].id} if is_gold else None,
        )
        for i, p in enumerate(prompts)
    )
    models.TaskResponse.objects.bulk_create(
        models.TaskResponse(task=t, response=responses[2 * i + k], position=k)
        for i, t in enumerate(tasks)
        for k in range(2)
    )
    return [(t, responses[2 * i : 2 * i + 2]) for i, t in enumerate(tasks)]


def judge_pairwise(
    project: models.Project,
    tasks: list[tuple[models.Task, list[models.Response]]],
    raters: list,
    *,
    seed: int = 0,
    left_prob: float | None = None,
    first_wins_prob: float = 0.8,
    per_task: int | None = None,
    tie_prob: float = 0.0,
    time_ms: int = 20_000,
    created_at=None,
) -> list[models.Judgment]:
    """Each task judged by ``per_task`` raters (default: all). Display order is random.

    Unbiased raters (``left_prob`` None) prefer the task's first response with probability
    ``first_wins_prob``; biased raters pick whatever was shown left with ``left_prob``."""
    rng = np.random.default_rng(seed)
    created_at = created_at or timezone.now()
    judgments, assignments = [], []
    for task, responses in tasks:
        chosen_raters = (
            raters if per_task is None else list(rng.choice(raters, per_task, replace=False))
        )
        for rater in chosen_raters:
            order = [r.id for r in responses]
            if rng.random() < 0.5:
                order.reverse()
            if rng.random() < tie_prob:
                choice, strength, preferred = "tie", None, None
            else:
                if left_prob is not None:
                    choice = "A" if rng.random() < left_prob else "B"
                else:
                    first_wins = rng.random() < first_wins_prob
                    winner = responses[0].id if first_wins else responses[1].id
                    choice = "A" if order[0] == winner else "B"
                preferred = order[0] if choice == "A" else order[1]
                strength = int(rng.integers(1, 5))
            assignments.append(
                models.Assignment(
                    task=task,
                    rater=rater,
                    project=project,
                    status="submitted",
                    display_order=order,
                    claimed_at=created_at,
                    expires_at=created_at + timedelta(minutes=10),
                    finished_at=created_at,
                )
            )
            judgments.append(
                models.Judgment(
                    task=task,
                    project=project,
                    rater=rater,
                    kind="pairwise",
                    choice=choice,
                    strength=strength,
                    preferred_response_id=preferred,
                    display_order=order,
                    time_spent_ms=time_ms,
                )
            )
    models.Assignment.objects.bulk_create(assignments)
    created = models.Judgment.objects.bulk_create(judgments)
    return created


def make_raters(project: models.Project, n: int, prefix: str = "r") -> list:
    return [make_rater(project, username=f"{prefix}{project.id}-{i}") for i in range(n)]


def pairs(iterable):
    return itertools.combinations(iterable, 2)
