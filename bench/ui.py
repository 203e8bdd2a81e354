"""The rater's page in a real browser: submit-to-next latency and page weight.

Fills a scratch project with N tasks (default 100k, all four kinds, markdown responses with code)
with ``bulk_create``, starts gunicorn on it, logs a rater in with headless Chromium and labels T
tasks (default 100) with the keyboard. For every submit it records

* ``in-page``: from the submit key's handler to the next task painted (the page's own clock:
  ``performance.now()`` at the keydown, then one animation frame and a task after the swap);
* ``driver``: from Playwright pressing Enter to the page reporting the new task (adds the
  browser-driver round trips, an upper bound);

and prints median / p95 of both, the share of submits served from the prefetched task, the page
weight (HTML + JS + CSS bytes, raw and gzipped) and the first load (server-rendered first task)
against the cost of the extra round trip a script-fetched first task would add.

    python bench/ui.py                          # SQLite scratch file, 100k tasks, 100 submits
    python bench/ui.py --postgres               # scratch PostgreSQL database prefloop_bench_ui
    python bench/ui.py --tasks 10000 --submits 50 --think-ms 0
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "prefloop_bench_ui"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "bench-password-" + secrets.token_hex(4)
KIND_MIX = ["pairwise"] * 7 + ["ranking", "rating", "demonstration"]

_app = None


def application(environ, start_response):  # type: ignore[no-untyped-def]
    """gunicorn entry point: the site plus its static files (as in production behind a CDN)."""
    global _app
    if _app is None:
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.wsgi import get_wsgi_application

        _app = StaticFilesHandler(get_wsgi_application())
    return _app(environ, start_response)


def response_text(i: int) -> str:
    body = " ".join(["This answer explains the idea step by step with care."] * (3 + i % 5))
    return (
        f"**Answer {i}.** {body}\n\n```python\ndef solve(items):\n"
        f"    return sorted(items, key=lambda x: x[{i % 3}])\n```\n\n"
        "- first point\n- second point\n\nIn short: it depends on the input."
    )


def fill(n_tasks: int, n_prompts: int, seed: int = 1) -> tuple[int, str]:
    """Project with ``n_tasks`` tasks over ``n_prompts`` prompts; returns (project id, user)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotation.models import Membership, Project, Prompt, Response, Task, TaskResponse
    from annotation.services.prompts import messages_hash

    rng = random.Random(seed)
    user_model = get_user_model()
    username = f"bench-rater-{secrets.token_hex(3)}"
    with transaction.atomic():
        project = Project.objects.create(
            name="Bench UI",
            slug=f"bench-ui-{secrets.token_hex(4)}",
            guidelines="# Guidelines\n\nPrefer the **correct** answer.",
            task_kinds=["pairwise", "ranking", "rating", "demonstration"],
            overlap=1,
        )
        rater = user_model.objects.create_user(username=username, password=PASSWORD)
        Membership.objects.create(project=project, user=rater, role="labeler")
        prompts = Prompt.objects.bulk_create(
            [
                Prompt(
                    project=project,
                    messages=(m := [{"role": "user", "content": f"Question {p}: how?"}]),
                    content_hash=messages_hash(m),
                )
                for p in range(n_prompts)
            ],
            batch_size=2000,
        )
        responses = Response.objects.bulk_create(
            [
                Response(prompt=p, text=response_text(i * 4 + j))
                for i, p in enumerate(prompts)
                for j in range(4)
            ],
            batch_size=2000,
        )
        by_prompt = [responses[i * 4 : i * 4 + 4] for i in range(n_prompts)]
        kinds = [rng.choice(KIND_MIX) for _ in range(n_tasks)]
        tasks = Task.objects.bulk_create(
            [
                Task(
                    project=project,
                    kind=kind,
                    prompt=prompts[t % n_prompts],
                    required_judgments=1,
                    priority=rng.random(),
                )
                for t, kind in enumerate(kinds)
            ],
            batch_size=5000,
        )
        size = {"pairwise": 2, "ranking": 4, "rating": 3, "demonstration": 1}
        TaskResponse.objects.bulk_create(
            [
                TaskResponse(task=task, response=r, position=pos)
                for t, task in enumerate(tasks)
                for pos, r in enumerate(rng.sample(by_prompt[t % n_prompts], size[task.kind]))
            ],
            batch_size=5000,
        )
    return project.id, username


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn_site() -> Iterator[str]:
    """The site under gunicorn (2 workers x 4 threads, this module's ``application``) on a free
    port, once it answers; yields its base URL and stops it afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ui:application",
            "--pythonpath",
            f"{ROOT / 'bench'},{ROOT}",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def answer(page, kind: str) -> None:  # type: ignore[no-untyped-def]
    """What a quick rater types for each kind (keyboard only)."""
    kb = page.keyboard
    if kind == "pairwise":
        kb.press("a")
        kb.press("2")
    elif kind == "ranking":
        for key in "1234":
            kb.press(key)
    elif kind == "rating":
        for key in "yny":
            kb.press(key)
    else:
        kb.press("e")
        kb.type(" Edited.")
        kb.press("Escape")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--think-ms", type=int, default=200, help="pause before each submit")
    parser.add_argument("--postgres", action="store_true", help="scratch PostgreSQL database")
    args = parser.parse_args()

    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(40)}
    env.update({"SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "ERROR"})
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    scratch = tempfile.mkdtemp(prefix="prefloop-bench-ui-")
    if args.postgres:
        import psycopg

        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
        env["DATABASE_URL"] = ADMIN_DSN.rsplit("/", 1)[0] + f"/{PG_DB}"
    else:
        env.pop("DATABASE_URL", None)
        env["PREFLOOP_VAR_DIR"] = scratch
    os.environ.update(env)
    if not args.postgres:
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    project_id, username = fill(args.tasks, args.prompts)
    fill_s = time.perf_counter() - started
    connection.close()
    db = "postgresql" if args.postgres else "sqlite"
    print(f"database {db}; {args.tasks} tasks created in {fill_s:.1f} s")

    with gunicorn_site() as base:
        run_browser(base, project_id, username, args)


def run_browser(base: str, project_id: int, username: str, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        weights: dict[str, int] = {}

        def on_response(resp) -> None:  # type: ignore[no-untyped-def]
            kind = resp.request.resource_type
            if kind in {"document", "script", "stylesheet"} and resp.status == 200:
                weights[resp.url] = len(resp.body())

        page.goto(base + "/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.on("response", on_response)
        label_url = f"{base}/projects/{project_id}/label/"
        page.goto(label_url)
        page.wait_for_selector("form.task")
        page.remove_listener("response", on_response)
        raw = sum(weights.values())
        gz = 0
        for url in weights:
            body = urllib.request.urlopen(url).read() if "/static/" in url else None
            gz += len(gzip.compress(body)) if body is not None else 0
        html = page.content().encode()
        gz += len(gzip.compress(html))

        # First load: the server renders the first task into the page.
        loads = []
        for _ in range(10):
            page.goto(label_url)
            page.wait_for_selector("#label-app[data-ready]", state="attached")
            loads.append(
                page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
                )
            )
        # What a script-fetched first task would add: one more request after the page loaded.
        extra = [
            page.evaluate(
                """async url => { const t = performance.now();
                const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken':
                  document.cookie.match(/csrftoken=([^;]+)/)[1], 'Content-Type':
                  'application/x-www-form-urlencoded'}, body: 'prefetch=0'});
                await r.text(); return performance.now() - t; }""",
                f"{label_url}next/",
            )
            for _ in range(10)
        ]

        page.wait_for_timeout(300)
        driver_ms: list[float] = []
        for _ in range(args.submits):
            form = page.wait_for_selector("form.task", timeout=10_000)
            shown = form.get_attribute("data-assignment")
            kind = form.get_attribute("data-kind") or ""
            answer(page, kind)
            page.wait_for_timeout(args.think_ms)
            t0 = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_function(
                "prev => { const s = document.getElementById('label-app').dataset.shown;"
                " return s && s !== prev; }",
                arg=shown,
                polling="raf",
            )
            driver_ms.append((time.perf_counter() - t0) * 1000)
        page.wait_for_function(
            "() => Object.keys(localStorage).filter(k => k.endsWith(':queue'))"
            ".every(k => JSON.parse(localStorage.getItem(k)).length === 0)"
        )
        timings = page.evaluate("window.prefloopTimings")
        browser.close()

    in_page = [t["ms"] for t in timings]
    from_prefetch = sum(1 for t in timings if t.get("prefetched"))
    print(f"page weight: {raw} bytes HTML+JS+CSS ({raw / 1024:.1f} KiB), gzipped {gz} bytes")
    for url, size in sorted(weights.items()):
        print(f"  {size:>7}  {url.replace(base, '')}")
    print(
        f"first load (server-rendered task): DOMContentLoaded median "
        f"{statistics.median(loads):.0f} ms; a script-fetched first task would add median "
        f"{statistics.median(extra):.0f} ms (one more request)"
    )
    print(
        f"submit -> next task interactive over {len(in_page)} submits "
        f"(think time {args.think_ms} ms, {from_prefetch} served from the prefetch):"
    )
    print(
        f"  in-page: median {statistics.median(in_page):.1f} ms, p95 {pct(in_page, 0.95):.1f} ms,"
        f" max {max(in_page):.1f} ms"
    )
    print(
        f"  driver:  median {statistics.median(driver_ms):.1f} ms, "
        f"p95 {pct(driver_ms, 0.95):.1f} ms, max {max(driver_ms):.1f} ms"
    )
    target = statistics.median(in_page) < 150 and raw < 150 * 1024
    print("targets (< 150 ms median, < 150 KB):", "met" if target else "NOT met")


if __name__ == "__main__":
    main()
