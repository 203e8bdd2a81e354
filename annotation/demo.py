"""A demo project made by the project itself (no outside data): a few dozen prompts with
candidate responses of visibly different quality, and tasks of every kind.

``make run`` gives it the real chat model (SmolLM2-135M-Instruct, installed offline by
``manage.py base_model install``) and :func:`demo_bootstrap` queues its first cycle at once: with no
labels yet the reward-model and policy steps skip, so the workers only sample candidates from the
base model for a few prompts and make tasks of them, beside the hand-written responses. The run
page shows that cycle's progress like any other.
"""

from __future__ import annotations

import random

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.importers import ImportRecord
from annotation.models import (
    ACTIVE_RUN_STATUSES,
    ModelKind,
    ModelVersion,
    Origin,
    Project,
    Response,
    Role,
    TrainingRun,
)
from annotation.services.imports import import_records
from annotation.services.loop import retrain_claim
from annotation.services.projects import membership_set, project_create
from annotation.services.runs import version_activate, version_base

DEMO_SLUG = "demo"
# Until issue 13, ``make run`` wrote a tiny random model to ``var/models/demo-base`` and gave the
# demo project that folder. A database from then still names it: ``demo_setup`` moves such a
# project to the base model it is given (the real one), and makes that model's base version the
# active policy (the tiny model's descendants stay in the registry, inactive).
LEGACY_BASE_NAME = "demo-base"
# Sampling settings for the demo's real model, sized for a 2-core CPU: 4 candidates per prompt
# (one ranking task), up to 80 new tokens (SmolLM2 answers these prompts in 40-80 tokens).
DEMO_GENERATION = {"samples_per_prompt": 4, "max_new_tokens": 80, "temperature": 0.8, "top_p": 0.95}
# The first cycle (run options, annotation/run_options.py): candidates for 8 prompts (32 samples,
# about a minute on 2 cores), random pairs among them and 8 beside a hand-written response.
DEMO_BOOTSTRAP = {
    "prompts_per_cycle": 8,
    "pairs_per_cycle": 16,
    "compare_pairs_per_cycle": 8,
    "eval_prompts": 4,
}
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
    (a local model folder) is set on the project if it has none, or if it still names the old
    tiny ``demo-base`` model (see ``LEGACY_BASE_NAME``), so "retrain now" can run."""
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
        if base_model and _replaceable(project.base_model, base_model):
            _set_base_model(project, base_model)
        for username, role in DEMO_USERS:
            user, created = users.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            membership_set(project=project, user=user, role=role)
    logins = [("admin", "site admin"), *((u, r) for u, r in DEMO_USERS)]
    return project, logins


def _replaceable(current: str, new: str) -> bool:
    """A base model demo_setup may set: none yet, or the legacy tiny model (never a user's)."""
    legacy = current.rstrip("/").rsplit("/", 1)[-1] == LEGACY_BASE_NAME
    return not current or (legacy and current != new)


def _set_base_model(project: Project, base_model: str) -> None:
    """Point the demo at ``base_model`` with the demo's sampling settings. A project moved off
    the legacy model gets the new base as its active policy and no active reward model (both
    were trained on the tiny model, whose vocabulary is not the new one's)."""
    moved = bool(project.base_model)
    project.base_model = base_model
    for name, value in DEMO_GENERATION.items():
        setattr(project, name, value)
    project.save(update_fields=["base_model", *DEMO_GENERATION])
    if moved:
        ModelVersion.objects.filter(project=project, kind=ModelKind.REWARD, is_active=True).update(
            is_active=False
        )
        version_activate(version_id=version_base(project=project).id)


def demo_bootstrap(project: Project) -> TrainingRun | None:
    """Queue the demo's first cycle (``DEMO_BOOTSTRAP``) unless the project has candidates from
    its current base model (or its policies) already, or a cycle is queued or running; the run,
    or None when none was queued. The worker gets it when the transaction commits (a worker
    started later still finds it in the broker; a lost message is re-sent by the policy tick)."""
    if not project.base_model:
        return None
    # candidates of the current base model's era: a demo moved off the tiny model has only
    # the tiny model's, made before the new base version was registered
    base = ModelVersion.objects.filter(
        project=project, trainer="base", artifact_path=project.base_model
    ).first()
    generated = Response.objects.filter(prompt__project=project, origin=Origin.MODEL)
    if base is not None:
        generated = generated.filter(created_at__gte=base.created_at)
    if (
        generated.exists()
        or TrainingRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES).exists()
    ):
        return None
    with transaction.atomic():
        return retrain_claim(project=project, triggered_by="demo", config=dict(DEMO_BOOTSTRAP))
