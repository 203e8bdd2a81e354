from __future__ import annotations

import pytest
from django.core.management import call_command

from annotation.demo import DEMO_SLUG
from annotation.models import Membership, Project, Task

pytestmark = pytest.mark.django_db


def test_demo_is_idempotent_and_sets_a_missing_base_model(capsys):
    call_command("demo")
    project = Project.objects.get(slug=DEMO_SLUG)
    tasks = Task.objects.filter(project=project).count()
    assert tasks > 0
    assert project.base_model == ""
    assert set(project.task_kinds) == {"pairwise", "ranking", "rating", "demonstration"}
    call_command("demo", "--base-model", "/models/base")
    call_command("demo", "--base-model", "/models/other")  # an existing base model is kept
    project.refresh_from_db()
    assert project.base_model == "/models/base"
    assert Task.objects.filter(project=project).count() == tasks
    assert Membership.objects.filter(project=project).count() == 5  # admin (owner) + 4 users
    assert "manager" in capsys.readouterr().out
