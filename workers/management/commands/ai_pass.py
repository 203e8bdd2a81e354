"""``manage.py ai_pass``: start an AI labeling pass, or show one (docs/ai-feedback.md).

    python manage.py ai_pass start --project demo --method llm_judge [--model PATH] [--queue gpu]
                                   [--limit N] [--tasks 4,8,15] [--principles 0,2] [--here]
    python manage.py ai_pass start --project demo --method cai [--model PATH] [--queue gpu]
                                   [--limit N] [--prompts 3,5] [--principles 0] [--verify] [--here]
    python manage.py ai_pass show 12

``start`` validates exactly as ``POST /api/projects/<id>/ai-passes/`` does (same services) and
queues the pass for a worker; ``--here`` runs it in this process instead (a machine without a
worker; the judge loads here). ``--method cai`` starts a Constitutional AI batch over prompts
(``--prompts``, default every train prompt) instead of tasks. Both print the pass as JSON:
status, progress, stats and cost. A command of the ``workers`` app because ``--here`` runs the
judge, which the web side never imports.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.errors import DomainError
from annotation.models import AIPass, Project


def _ints(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"expected comma-separated integers, not {value!r}") from None


def _show(ai_pass: AIPass) -> str:
    from annotation.api.ai_feedback import AIPassOut

    return json.dumps(AIPassOut(ai_pass).data, indent=2, default=str)


class Command(BaseCommand):
    help = "Start an AI labeling pass (or a Constitutional AI batch), or show one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        start = actions.add_parser("start", help="Queue (or, with --here, run) a pass.")
        start.add_argument("--project", required=True, help="The project's slug.")
        start.add_argument("--method", required=True, choices=["llm_judge", "reward_model", "cai"])
        start.add_argument("--model", default="", help="llm_judge / cai: a model folder.")
        start.add_argument("--queue", default="cpu", choices=["cpu", "gpu"])
        start.add_argument("--limit", type=int, default=None, help="At most N tasks.")
        start.add_argument("--tasks", default="", help="Comma-separated task ids.")
        start.add_argument("--prompts", default="", help="cai: comma-separated prompt ids.")
        start.add_argument(
            "--verify", action="store_true", help="cai: a pairwise task of each pair for humans."
        )
        start.add_argument("--principles", default="", help="Comma-separated principle indexes.")
        start.add_argument("--here", action="store_true", help="Run it in this process.")
        show = actions.add_parser("show", help="One pass as JSON.")
        show.add_argument("pass_id", type=int)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "show":
            ai_pass = AIPass.objects.filter(id=opts["pass_id"]).first()
            if ai_pass is None:
                raise CommandError(f"AI pass {opts['pass_id']} not found.")
            self.stdout.write(_show(ai_pass))
            return
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        if opts["method"] == "cai":
            self.stdout.write(_show(self._start_cai(project, opts)))
            return
        if opts["prompts"] or opts["verify"]:
            raise CommandError("--prompts and --verify are for --method cai.")
        from annotation.services.ai_passes import ai_pass_start

        try:
            ai_pass = ai_pass_start(
                project=project,
                user=None,
                method=opts["method"],
                model=opts["model"],
                queue=opts["queue"],
                task_ids=_ints(opts["tasks"]) or None,
                limit=opts["limit"],
                principles=_ints(opts["principles"]) or None,
                enqueue=not opts["here"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if opts["here"]:
            from workers.ai_feedback import pass_execute

            pass_execute(pass_id=ai_pass.id)
            ai_pass.refresh_from_db()
        self.stdout.write(_show(ai_pass))

    def _start_cai(self, project: Project, opts: dict[str, Any]) -> AIPass:
        from annotation.services.ai_passes import start_cai_pass

        if opts["tasks"]:
            raise CommandError("--method cai revises prompts: use --prompts, not --tasks.")
        try:
            ai_pass = start_cai_pass(
                project=project,
                user=None,
                model=opts["model"],
                queue=opts["queue"],
                prompt_ids=_ints(opts["prompts"]) or None,
                limit=opts["limit"],
                principles=_ints(opts["principles"]) or None,
                verify=opts["verify"],
                enqueue=not opts["here"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if opts["here"]:
            from workers.cai import cai_execute

            cai_execute(pass_id=ai_pass.id)
            ai_pass.refresh_from_db()
        return ai_pass
