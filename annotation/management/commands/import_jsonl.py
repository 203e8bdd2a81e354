"""``manage.py import_jsonl``: the same checks and the same all-or-nothing import as the API,
run here and now (no worker), with progress on stderr."""

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import DomainError
from annotation.models import Project
from annotation.services.imports import import_jsonl


class Command(BaseCommand):
    help = (
        "Import prompts/responses from JSONL into a project (all or nothing). Lines: "
        "{prompt, responses}, HH-RLHF {chosen, rejected}, or TRL {prompt, chosen, rejected}."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("project", help="project id or slug")
        parser.add_argument("path", help="JSONL file")
        parser.add_argument("--no-tasks", action="store_true", help="do not create tasks")
        parser.add_argument(
            "--no-labels", action="store_true", help="do not store known preferences as labels"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        key = options["project"]
        project = (
            Project.objects.filter(id=int(key)).first()
            if key.isdigit()
            else Project.objects.filter(slug=key).first()
        )
        if project is None:
            raise CommandError(f"No project {key!r}.")
        path = Path(options["path"])
        try:
            total = path.stat().st_size
            with path.open("rb") as handle:
                summary = import_jsonl(
                    project=project,
                    stream=handle,
                    create_tasks=not options["no_tasks"],
                    store_labels=not options["no_labels"],
                    progress=_Progress(total, self.stderr.write),
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {options['path']}: {exc}") from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for name, value in asdict(summary).items():
            self.stdout.write(f"{name}: {value}")


class _Progress:
    """One stderr line a second: the phase, lines and share of the file done."""

    def __init__(self, total: int, write: Callable[[str], None]) -> None:
        self.total = max(total, 1)
        self.write = write
        self.last = time.monotonic()

    def __call__(self, phase: str, lines: int, offset: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last = now
            self.write(f"{phase}: line {lines}, {100 * offset / self.total:.0f} %")
