import os

from django.core.management.base import BaseCommand

from annotation.demo import DEMO_PASSWORD, demo_setup


class Command(BaseCommand):
    help = "Create the demo project and demo users (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        project, logins = demo_setup()
        self.stdout.write(f"Demo project: {project.name} (id {project.id})")
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            f"Log in at http://127.0.0.1:{port}/login/ with password {DEMO_PASSWORD!r} as:"
        )
        for username, role in logins:
            self.stdout.write(f"  {username:10s} {role}")
