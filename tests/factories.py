"""factory_boy factories for the domain."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from annotation import models
from annotation.services.prompts import messages_hash


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    task_kinds = ["pairwise", "ranking", "rating", "demonstration"]


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = models.Role.LABELER


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prompt

    project = factory.SubFactory(ProjectFactory)
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"Question {n}?"}])
    content_hash = factory.LazyAttribute(lambda o: messages_hash(o.messages))


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Response

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f"Answer number {n}.")


def make_task(
    project: models.Project,
    *,
    kind: str = "pairwise",
    n_responses: int = 2,
    priority: float = 0.0,
    required: int | None = None,
    is_gold: bool = False,
    gold_answer: object = None,
) -> models.Task:
    prompt = PromptFactory(project=project)
    responses = [ResponseFactory(prompt=prompt) for _ in range(n_responses)]
    task = models.Task.objects.create(
        project=project,
        kind=kind,
        prompt=prompt,
        required_judgments=required or project.overlap,
        priority=priority,
        is_gold=is_gold,
        gold_answer=gold_answer if is_gold else None,
    )
    models.TaskResponse.objects.bulk_create(
        models.TaskResponse(task=task, response=r, position=i) for i, r in enumerate(responses)
    )
    return task


def make_rater(project: models.Project, role: str = models.Role.LABELER, **kwargs: object):
    user = UserFactory(**kwargs)
    models.Membership.objects.create(project=project, user=user, role=role)
    return user
