import os

from django.core.management.base import BaseCommand, CommandParser

from annotation.demo import DEMO_PASSWORD, demo_setup


class Command(BaseCommand):
    help = "Create the demo project and demo users (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-model",
            default="",
            help="Local model folder the demo project's loop trains from (set if none is set).",
        )

    def handle(self, *args: object, **options: object) -> None:
        project, logins = demo_setup(base_model=str(options["base_model"]))
        self.stdout.write(f"Demo project: {project.name} (id {project.id})")
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            f"Log in at http://127.0.0.1:{port}/login/ with password {DEMO_PASSWORD!r} as:"
        )
        for username, role in logins:
            self.stdout.write(f"  {username:10s} {role}")
