import os

from django.core.management.base import BaseCommand, CommandParser

from annotation.demo import DEMO_PASSWORD, demo_bootstrap, demo_setup


class Command(BaseCommand):
    help = (
        "Create the demo project and demo users (idempotent); with a base model, queue its first "
        "cycle (candidates from the model) unless it has generated candidates already."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-model",
            default="",
            help="Local model folder the demo project's loop trains from (set if none is set).",
        )
        parser.add_argument(
            "--no-bootstrap",
            action="store_true",
            help="Do not queue the first cycle that samples candidates from the base model.",
        )

    def handle(self, *args: object, **options: object) -> None:
        project, logins = demo_setup(base_model=str(options["base_model"]))
        self.stdout.write(f"Demo project: {project.name} (id {project.id})")
        run = None if options["no_bootstrap"] else demo_bootstrap(project)
        if run is not None:
            self.stdout.write(
                f"Queued run {run.id}: the workers sample candidates from {project.base_model} "
                f"(progress at /manage/projects/{project.id}/runs/{run.id}/)"
            )
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            f"Log in at http://127.0.0.1:{port}/login/ with password {DEMO_PASSWORD!r} as:"
        )
        for username, role in logins:
            self.stdout.write(f"  {username:10s} {role}")
