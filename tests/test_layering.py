"""The architecture rule, enforced: annotation/ never imports torch or transformers (the web
process stays small) nor the worker (``workers/``; it sends tasks by name through
``config/celery.py``), training/ never imports Django or the app (it runs from a JSONL file), and
no module imports itself back through others, not even lazily inside a function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "annotation": {
        "torch",
        "transformers",
        "peft",
        "accelerate",
        "trl",
        "training",
        "workers",
        "celery",  # the app is config/celery.py; annotation sends through it, by task name
    },
    "training": {"django", "rest_framework", "annotation", "workers", "celery"},
}
# The one way through: the data contract (training/contract/, standard library only) is what the
# exports share with the loop and the trainers.
ALLOWED = {"annotation": ("training.contract",)}
CONTRACT = ROOT / "training" / "contract"


def dotted_imports(path: Path) -> set[str]:
    """Dotted names of the absolute imports in ``path``, anywhere (``ast.walk`` enters function
    bodies, so a lazy import inside a function counts)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imported_modules(path: Path, allowed: tuple[str, ...] = ()) -> set[str]:
    """Top-level names of everything ``path`` imports, leaving out ``allowed`` modules (and
    their submodules)."""
    return {
        name.split(".")[0]
        for name in dotted_imports(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports_anywhere_in_the_package(package):
    allowed = ALLOWED.get(package, ())
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(found)}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := imported_modules(path, allowed) & FORBIDDEN[package])
    ]
    assert not offenders


def test_the_data_contract_imports_only_the_standard_library():
    """training/contract/ imports the standard library and itself, nothing else (no torch, no
    Django, no numpy), and ``import training.contract`` loads none of them at runtime."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(CONTRACT.rglob("*.py"))
        for name in sorted(dotted_imports(path))
        if name.split(".")[0] not in sys.stdlib_module_names
        and not (name == "training.contract" or name.startswith("training.contract."))
    ]
    assert not offenders
    code = (
        "import sys, training.contract; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'django', 'numpy') "
        "or (m.startswith('training.') and not m.startswith('training.contract'))]; "
        "print('LOADED', bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- import cycles

GRAPH_PACKAGES = ("annotation", "workers", "training", "config")


def module_names() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages."""
    names = {}
    for package in GRAPH_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of the four packages it imports, at the top or inside a function
    (``from a.b import c`` counts as ``a.b.c`` when that is a module, else ``a.b``)."""
    modules = module_names()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
                targets.update(known(f"{base}.{alias.name}") for alias in node.names)
        graph[module] = {t for t in targets if t and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_not_even_lazy_ones():
    """A cycle hidden in a function-level import (two modules each needing the other) means a
    piece that belongs in a third module both can import."""
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_lazy_mutual_import():
    graph = {"w.pipelines": {"w.candidates"}, "w.candidates": {"w.pipelines", "w.steps"}}
    graph["w.steps"] = set()
    assert cycles(graph) == [["w.candidates", "w.pipelines"]]
    # function bodies are read: workers/tasks.py imports the pipeline inside its task
    assert "workers.pipelines" in import_graph()["workers.tasks"]


def test_web_process_does_not_load_torch_at_runtime():
    """Importing every URL and view (what gunicorn loads) leaves torch out of sys.modules, and
    the heavy analytics libraries too (they load on first use, keeping workers small). Celery and
    the task modules load only when a task is sent (``config.celery_app`` is lazy), and the
    ``workers`` app registers nothing but its package."""
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'config.settings'); django.setup(); import config.urls, config.wsgi; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "bad = [m for m in ('torch', 'transformers', 'statsmodels', 'pandas', 'pyarrow', "
        "'scipy', 'celery', 'config.celery', 'workers.tasks', 'workers.pipelines') "
        "if m in sys.modules]; "
        "print('LOADED', bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
