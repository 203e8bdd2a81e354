"""A project's constitution: validation, versioning (immutable rows), the no-op re-save."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotation.errors import ValidationFailed
from annotation.models import Constitution
from annotation.services.constitutions import (
    constitution_current,
    constitution_save,
    constitution_versions,
)

pytestmark = pytest.mark.django_db


def test_no_constitution_before_the_first_save(project):
    assert constitution_current(project=project) is None
    assert list(constitution_versions(project=project)) == []


def test_each_change_is_a_new_version_and_the_old_one_stays(project, manager):
    first = constitution_save(
        project=project, principles=["  Be helpful. ", "Be honest."], user=manager
    )
    assert (first.version, first.principles, first.created_by) == (
        1,
        ["Be helpful.", "Be honest."],
        manager,
    )
    second = constitution_save(
        project=project, principles=["Be honest.", "Be helpful."], user=manager
    )
    assert second.version == 2
    assert constitution_current(project=project) == second
    assert [c.version for c in constitution_versions(project=project)] == [2, 1]
    first.refresh_from_db()
    assert first.principles == ["Be helpful.", "Be honest."]


def test_saving_the_same_principles_is_a_no_op(project, manager):
    first = constitution_save(project=project, principles=["Be helpful."], user=manager)
    again = constitution_save(project=project, principles=[" Be helpful.\n"], user=manager)
    assert again == first
    assert Constitution.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(
    ("principles", "message"),
    [
        ([], "1 to 50 principles; got 0"),
        (["x"] * 51, "got 51"),
        ("Be helpful.", "must be a list"),
        (["ok", "   "], "Principle 2 is blank"),
        (["ok", 3], "Principle 2 must be a string"),
        (["x" * 501], "501 characters; the limit is 500"),
        (["bad\x00text"], "NUL character"),
        (["lone \ud800 surrogate"], "lone surrogate"),
    ],
)
def test_bad_principles_are_refused_naming_the_problem(project, manager, principles, message):
    with pytest.raises(ValidationFailed, match=message) as caught:
        constitution_save(project=project, principles=principles, user=manager)
    assert caught.value.field == "principles"
    assert not Constitution.objects.exists()


def test_the_limits_themselves_are_accepted(project, manager):
    saved = constitution_save(project=project, principles=["x" * 500] * 50, user=manager)
    assert len(saved.principles) == 50


def test_one_row_per_project_and_version_in_the_database(project, manager):
    constitution_save(project=project, principles=["a"], user=manager)
    with pytest.raises(IntegrityError), transaction.atomic():
        Constitution.objects.create(project=project, version=1, principles=["b"])
