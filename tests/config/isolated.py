"""Django settings computed in a fresh process under a given environment, and nothing else.

Settings are read once, at import; the variables of the shell running the tests (DEBUG,
SECRET_KEY, ...) are left out so that each case sees only what it names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_KEY = secrets.token_urlsafe(50)
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PREFLOOP_VAR_DIR", "VIRTUAL_ENV")
SHOWN = [
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
]
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    f"print(json.dumps({{n: getattr(s, n) for n in {SHOWN!r}}}))"
)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in KEPT}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_under(**env: str) -> dict:
    result = run(["-c", SHOW], env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def refusal_under(**env: str) -> str:
    result = run(["-c", "import django; django.setup()"], env)
    assert result.returncode != 0, "started, but should have refused"
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr.strip().splitlines()[-1]


def deploy_warnings(**env: str) -> set[str]:
    """The security check ids `manage.py check --deploy` reports."""
    result = run(["manage.py", "check", "--deploy"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    return set(re.findall(r"\((security\.[EW]\d+)\)", result.stdout + result.stderr))
