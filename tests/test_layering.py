"""The architecture rule, enforced: annotation/ never imports torch or transformers (the web
process stays small), training/ never imports Django or the app (it runs from a JSONL file)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "annotation": {"torch", "transformers", "peft", "accelerate", "trl", "training"},
    "training": {"django", "rest_framework", "annotation", "workers", "celery"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports_anywhere_in_the_package(package):
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imported_modules(path) & FORBIDDEN[package])}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if imported_modules(path) & FORBIDDEN[package]
    ]
    assert not offenders


def test_web_process_does_not_load_torch_at_runtime():
    """Importing every URL and view (what gunicorn loads) leaves torch out of sys.modules, and
    the heavy analytics libraries too (they load on first use, keeping workers small)."""
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'config.settings'); django.setup(); import config.urls, config.wsgi; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "bad = [m for m in ('torch', 'transformers', 'statsmodels', 'pandas', 'pyarrow', "
        "'scipy') if m in sys.modules]; "
        "print('LOADED', bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
