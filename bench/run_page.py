"""The run page in a real browser: how long from a progress write to the page showing it.

Creates a scratch project with a running run, starts gunicorn (the same entry point as
``bench/ui.py``), logs a manager in with headless Chromium and opens the run page. Then, N times
(default 20), it writes progress exactly as the worker does (``workers.steps.Context.report``,
a new step each time, so the write is never throttled) at a random moment, and waits for the page
to show that step and fraction. It prints the median and p95 of

* ``write -> visible``: from just before the database write to the page's ``#run-app`` carrying
  the new step (the page polls every second, so about half a second is the expected median and
  about a second the worst case, plus the request and the redraw);
* ``request``: the JSON endpoint's time as the browser measured it (Resource Timing).

    python bench/run_page.py                 # SQLite scratch file
    python bench/run_page.py --postgres      # scratch PostgreSQL database prefloop_bench_run
    python bench/run_page.py --updates 50
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ui import gunicorn_site  # bench/ui.py: the same site under gunicorn

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "prefloop_bench_run"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "bench-password-" + secrets.token_hex(4)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def setup(postgres: bool) -> None:
    env = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(40), "LOG_LEVEL": "ERROR"}
    env.update({"SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost"})
    os.environ.update(env)
    if postgres:
        import psycopg

        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
        os.environ["DATABASE_URL"] = ADMIN_DSN.rsplit("/", 1)[0] + f"/{PG_DB}"
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["PREFLOOP_VAR_DIR"] = tempfile.mkdtemp(prefix="prefloop-bench-run-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Playwright's sync API runs an event loop in this thread; the ORM calls stay synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_run() -> tuple[int, int, str]:
    from django.contrib.auth import get_user_model

    from annotation.models import Membership, Project, TrainingRun

    project = Project.objects.create(name="bench runs", slug=f"bench-runs-{secrets.token_hex(3)}")
    user = get_user_model().objects.create_user(
        username=f"manager-{secrets.token_hex(3)}", password=PASSWORD
    )
    Membership.objects.create(project=project, user=user, role="manager")
    run = TrainingRun.objects.create(project=project, status="running", trainers=["rm", "dpo"])
    return project.id, run.id, user.username


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    setup(args.postgres)
    from django.db import connection

    project_id, run_id, username = make_run()
    connection.close()
    with gunicorn_site() as base:
        measure(base, project_id, run_id, username, args.updates, args.postgres)


def measure(
    base: str, project_id: int, run_id: int, username: str, updates: int, postgres: bool
) -> None:
    from playwright.sync_api import sync_playwright

    from annotation.models import Project, TrainingRun
    from annotation.run_steps import RUN_STEPS
    from workers.steps import Context

    run = TrainingRun.objects.get(id=run_id)
    ctx = Context(run=run, project=Project.objects.get(id=project_id), root=Path("."), cfg={})
    rng = random.Random(0)
    latencies: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(base + "/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        page.goto(f"{base}/manage/projects/{project_id}/runs/{run_id}/")
        page.wait_for_selector("#run-app[data-renders]", state="attached")
        for n in range(updates):
            name = RUN_STEPS[n % len(RUN_STEPS)].name
            fraction = round(0.01 + n / (updates + 1), 4)
            time.sleep(rng.uniform(0.2, 1.2))  # a random phase against the page's polling
            t0 = time.perf_counter()
            ctx.report(name, fraction)
            page.wait_for_function(
                "([s, f]) => { const a = document.getElementById('run-app');"
                " return a.dataset.step === s && Number(a.dataset.stepProgress) === f; }",
                arg=[name, fraction],
                polling="raf",
                timeout=10_000,
            )
            latencies.append((time.perf_counter() - t0) * 1000)
        requests = page.evaluate(
            "() => performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/data/')).map(e => e.duration)"
        )
        browser.close()
    db = "postgresql" if postgres else "sqlite"
    print(f"run page, {db}, {updates} updates, polling every 1 s")
    print(
        f"write -> visible: median {statistics.median(latencies):.0f} ms, "
        f"p95 {p95(latencies):.0f} ms, max {max(latencies):.0f} ms"
    )
    print(
        f"JSON request ({len(requests)}): median {statistics.median(requests):.1f} ms, "
        f"p95 {p95(requests):.1f} ms"
    )


if __name__ == "__main__":
    main()
