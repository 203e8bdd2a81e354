"""Write a project's training data (TRL formats) to a file, with ``<file>.manifest.json``.

    python manage.py export_training_data --project demo --out var/exports/demo-pairs.jsonl \
        --dataset preference --style conversational --aggregation majority --min-agreement 0.6

The file format follows the extension (.jsonl or .parquet) unless ``--file`` says otherwise.
Filters are the same as the API's (docs/insight.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.errors import DomainError
from annotation.models import Project
from annotation.services.exports import export_write


class Command(BaseCommand):
    help = "Export training data (preference pairs, KTO examples or SFT) as JSONL or Parquet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug or id.")
        parser.add_argument("--out", required=True, help="Output file (.jsonl or .parquet).")
        parser.add_argument("--dataset", default="preference", help="preference|unpaired|sft")
        parser.add_argument("--style", default="standard", help="standard|conversational")
        parser.add_argument("--file", default=None, help="jsonl|parquet (default: from --out)")
        parser.add_argument("--aggregation", default="every", help="every|majority")
        parser.add_argument("--kinds", default="", help="Comma-separated task kinds.")
        parser.add_argument("--date-from", default="")
        parser.add_argument("--date-to", default="")
        parser.add_argument("--min-agreement", default="")
        parser.add_argument("--include-excluded", action="store_true")
        parser.add_argument("--gold", default="exclude", help="exclude|include|only")

    def handle(self, *args: Any, **opts: Any) -> None:
        ref = opts["project"]
        project = Project.objects.filter(slug=ref).first()
        if project is None and str(ref).isdigit():
            project = Project.objects.filter(pk=int(ref)).first()
        if project is None:
            raise CommandError(f"No project with slug or id {ref!r}.")
        out = Path(opts["out"])
        file_format = opts["file"] or ("parquet" if out.suffix == ".parquet" else "jsonl")
        params = {
            "dataset": opts["dataset"],
            "style": opts["style"],
            "file": file_format,
            "aggregation": opts["aggregation"],
            "kinds": opts["kinds"],
            "date_from": opts["date_from"],
            "date_to": opts["date_to"],
            "min_agreement": opts["min_agreement"],
            "include_excluded": "true" if opts["include_excluded"] else "",
            "gold": opts["gold"],
        }
        try:
            manifest = export_write(project=project, params=params, path=out)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(manifest, indent=2))
