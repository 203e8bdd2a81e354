"""With DEBUG off the API answers JSON only: DRF's browsable pages (inline styles the CSP forbids)
are a development tool. Checked in a fresh process under production settings, on a throwaway
SQLite database, as a logged-in manager and a token holder asking for HTML."""

from __future__ import annotations

import json

from tests.config.isolated import REAL_KEY, run
from tests.csp import inline_code

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SCRIPT = f"""
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from annotation.models import Membership, Project, Role

user = get_user_model().objects.create_user("maria", password="x" * 12)
project = Project.objects.create(name="P", slug="p", task_kinds=["pairwise"])
Membership.objects.create(project=project, user=user, role=Role.MANAGER)
token = Token.objects.create(user=user).key
session = Client()
session.force_login(user)
answers = {{}}
for who, client, extra in [
    ("session", session, {{}}),
    ("token", Client(), {{"HTTP_AUTHORIZATION": "Token " + token}}),
    ("anonymous", Client(), {{}}),
]:
    for path in ["/api/projects/", f"/api/projects/{{project.id}}/tasks/", "/api/"]:
        for accept in ["text/html", {BROWSER_ACCEPT!r}]:
            r = client.get(path, HTTP_ACCEPT=accept, secure=True, **extra)
            answers[f"{{who}} {{path}} {{accept[:10]}}"] = {{
                "status": r.status_code,
                "type": r["Content-Type"],
                "body": r.content.decode(),
            }}
print(json.dumps(answers))
"""


def test_no_browsable_api_with_debug_off(tmp_path):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": REAL_KEY,
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PREFLOOP_VAR_DIR": str(tmp_path),
    }
    result = run(["-c", SCRIPT], env)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])

    assert len(answers) == 18
    for case, answer in answers.items():
        assert answer["type"] == "application/json", case
        assert inline_code(answer["body"]) == [], case
        json.loads(answer["body"])
    assert answers["session /api/projects/ text/html,"]["status"] == 200
    assert answers["token /api/projects/ text/html,"]["status"] == 200
    assert json.loads(answers["token /api/projects/ text/html,"]["body"])["count"] == 1
    # Only HTML acceptable: 406 in JSON, never the HTML page.
    assert answers["token /api/projects/ text/html"]["status"] == 406
    assert answers["anonymous /api/projects/ text/html,"]["status"] == 401
    assert answers["anonymous /api/ text/html,"]["status"] == 200


def test_debug_on_keeps_the_browsable_api_for_development(api, manager):
    page = api(manager).get("/api/projects/", HTTP_ACCEPT="text/html")

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
