"""A demo project made by the project itself (no outside data): a few dozen prompts with
candidate responses of visibly different quality, and tasks of every kind."""

from __future__ import annotations

import random

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.importers import ImportRecord
from annotation.models import Project, Role
from annotation.services.imports import import_records
from annotation.services.projects import membership_set, project_create

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_USERS = [
    ("manager", Role.MANAGER),
    ("rater1", Role.LABELER),
    ("rater2", Role.LABELER),
    ("rater3", Role.LABELER),
]

GUIDELINES = """# How to judge

Prefer the response that **answers the question** correctly, clearly and safely.

1. Correctness first, then helpfulness, then style.
2. A shorter answer is *not* worse if it is complete.
3. Flag anything unsafe or factually wrong.

Keyboard: press `?` on the labeling page for every shortcut.
"""

TOPICS = [
    ("boil an egg", "Put the egg in boiling water for 7 to 9 minutes, then cool it in cold water."),
    (
        "reverse a list in Python",
        "Use `items[::-1]` for a copy or `items.reverse()` in place:\n\n"
        "```python\nitems = [1, 2, 3]\nitems.reverse()\n```",
    ),
    (
        "explain photosynthesis",
        "Plants turn light, water and carbon dioxide into sugar and "
        "oxygen inside their chloroplasts.",
    ),
    (
        "write a haiku about autumn",
        "Crimson leaves drifting\nthe cold wind hums through bare "
        "boughs\nsquirrels count their stores",
    ),
    ("convert Celsius to Fahrenheit", "Multiply by 9/5 and add 32: 20 °C is 68 °F."),
    (
        "choose a strong password",
        "Use a long passphrase of random words and a password manager; never reuse passwords.",
    ),
    ("sort a dictionary by value in Python", "`dict(sorted(d.items(), key=lambda kv: kv[1]))`"),
    (
        "explain what a reward model is",
        "A reward model scores a response to a prompt; it is "
        "trained on human comparisons so that preferred responses score higher.",
    ),
    (
        "summarize the water cycle",
        "Water evaporates, condenses into clouds, falls as "
        "precipitation and flows back to the sea.",
    ),
    ("plan a 3-day trip to Lisbon", "Day 1: Alfama and the castle. Day 2: Belém. Day 3: Sintra."),
]
WEAK = [
    "I don't know.",
    "That is a great question! There are many ways to think about it, and it depends.",
    "Sure. {answer} Also, remember that everything is relative and you should ask an expert.",
]


def demo_records(seed: int = 7) -> list[ImportRecord]:
    rng = random.Random(seed)
    records = []
    line = 0
    for variant in ("How do I", "Can you", "Please"):
        for topic, answer in TOPICS:
            line += 1
            weak = [w.format(answer=answer) for w in rng.sample(WEAK, 2)]
            responses = [answer, *weak, answer.split(".")[0] + "."]
            records.append(
                ImportRecord(
                    line=line,
                    messages=[{"role": "user", "content": f"{variant} {topic}?"}],
                    responses=list(dict.fromkeys(responses)),
                    source="demo",
                )
            )
    return records


def demo_setup(*, base_model: str = "") -> tuple[Project, list[tuple[str, str]]]:
    """Create (or find) the demo project and users. Safe to run more than once. ``base_model``
    (a local model folder) is set on the project if it has none, so "retrain now" can run."""
    users = get_user_model().objects
    with transaction.atomic():
        admin, created = users.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if project is None:
            project = project_create(
                name="Demo: helpful answers",
                slug=DEMO_SLUG,
                owner=admin,
                guidelines=GUIDELINES,
                task_kinds=["pairwise", "ranking", "rating", "demonstration"],
                overlap=2,
                ranking_size=4,
            )
            import_records(project=project, records=demo_records())
        if base_model and not project.base_model:
            project.base_model = base_model
            project.save(update_fields=["base_model"])
        for username, role in DEMO_USERS:
            user, created = users.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            membership_set(project=project, user=user, role=role)
    logins = [("admin", "site admin"), *((u, r) for u, r in DEMO_USERS)]
    return project, logins
