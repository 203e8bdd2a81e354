"""Creating labeling tasks from a prompt's responses, following the project's settings."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from annotation.models import Project, Task, TaskKind, TaskResponse

MAX_PAIRS_PER_PROMPT = 6  # all pairs up to 4 responses; a random cycle beyond


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    prompt_id: int
    response_ids: tuple[int, ...]
    priority: float = 0.0


def pairs_for(response_ids: Sequence[int], rng: random.Random) -> list[tuple[int, int]]:
    """Which pairs of a prompt's responses to put in front of raters."""
    pairs = list(itertools.combinations(response_ids, 2))
    if len(pairs) <= MAX_PAIRS_PER_PROMPT:
        return pairs
    order = list(response_ids)
    rng.shuffle(order)
    return [(order[i], order[(i + 1) % len(order)]) for i in range(len(order))]


def task_specs_for_prompt(
    *, project: Project, prompt_id: int, response_ids: Sequence[int], rng: random.Random
) -> list[TaskSpec]:
    specs: list[TaskSpec] = []
    kinds = set(project.task_kinds)
    if TaskKind.PAIRWISE in kinds and len(response_ids) >= 2:
        specs += [
            TaskSpec(TaskKind.PAIRWISE, prompt_id, pair) for pair in pairs_for(response_ids, rng)
        ]
    if TaskKind.RANKING in kinds and len(response_ids) >= 3:
        specs.append(
            TaskSpec(TaskKind.RANKING, prompt_id, tuple(response_ids[: project.ranking_size]))
        )
    if TaskKind.RATING in kinds and response_ids:
        specs.append(
            TaskSpec(TaskKind.RATING, prompt_id, tuple(response_ids[: project.ranking_size]))
        )
    if TaskKind.DEMONSTRATION in kinds:
        specs.append(TaskSpec(TaskKind.DEMONSTRATION, prompt_id, tuple(response_ids[:1])))
    return specs


def tasks_create(
    *, project: Project, specs: Sequence[TaskSpec], batch_size: int = 2000
) -> list[Task]:
    """Bulk-create tasks and their ordered responses. Caller holds the transaction."""
    tasks = Task.objects.bulk_create(
        [
            Task(
                project=project,
                kind=spec.kind,
                prompt_id=spec.prompt_id,
                required_judgments=project.overlap,
                priority=spec.priority,
            )
            for spec in specs
        ],
        batch_size=batch_size,
    )
    TaskResponse.objects.bulk_create(
        [
            TaskResponse(task=task, response_id=response_id, position=position)
            for task, spec in zip(tasks, specs, strict=True)
            for position, response_id in enumerate(spec.response_ids)
        ],
        batch_size=batch_size,
    )
    return tasks
