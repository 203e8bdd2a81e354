"""The AI feedback tables' invariants, held by the database (migration 0008_ai_feedback)."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connections, transaction

from annotation import models
from annotation.services.constitutions import constitution_save
from tests.factories import ProjectFactory, make_rater, make_task


def refused(**fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectFactory(**fields)


@pytest.mark.django_db
def test_the_project_mixing_settings_keep_their_ranges():
    for fields in (
        {"ai_training": "robots"},
        {"ai_weight": -0.1},
        {"ai_weight": 1.5},
        {"ai_min_confidence": 0.3},
        {"ai_min_confidence": 1.01},
    ):
        refused(**fields)
    for fields in ({"ai_min_confidence": 0}, {"ai_min_confidence": 0.5}, {"ai_weight": 1}):
        ProjectFactory(**fields)
    assert (models.Project().ai_training, models.Project().ai_weight) == ("human", 0.5)


@pytest.mark.django_db
def test_one_verdict_per_pass_task_and_principle_also_without_a_principle(project):
    task = make_task(project)
    ai_pass = models.AIPass.objects.create(project=project, method="reward_model", total=1)

    def verdict(**fields):
        return models.AIJudgment.objects.create(
            ai_pass=ai_pass,
            project=project,
            task=task,
            method="reward_model",
            model_name="rm",
            consistent=False,
            **fields,
        )

    verdict()
    with pytest.raises(IntegrityError), transaction.atomic():
        verdict()  # principle_index NULL twice: still one per (pass, task)
    verdict(principle_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        verdict(principle_index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        verdict(principle_index=1, confidence=0.4)
    for bad in ({"progress": 1.5}, {"queue": "tpu"}, {"done": 2, "total": 1}):
        with pytest.raises(IntegrityError), transaction.atomic():
            models.AIPass.objects.create(project=project, method="llm_judge", **bad)


@pytest.mark.django_db(transaction=True)
def test_managers_saving_at_once_get_consecutive_versions():
    project = ProjectFactory()
    managers = [make_rater(project, role="manager") for _ in range(4)]
    barrier = threading.Barrier(len(managers))
    errors: list[str] = []

    def save(n, user):
        try:
            barrier.wait()
            constitution_save(project=project, principles=[f"principle {n}"], user=user)
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(n, m)) for n, m in enumerate(managers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = models.Constitution.objects.filter(project=project).values_list("version", flat=True)
    assert sorted(versions) == [1, 2, 3, 4]
