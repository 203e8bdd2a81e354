"""Labeling throughput under a production server.

Starts gunicorn (several workers) on a scratch PostgreSQL database, fills a project with N
pairwise tasks (prompt ~20 words, two responses ~100 words), and runs C concurrent simulated
raters (each its own user and token) over HTTP for a fixed time, each looping next -> submit.
Prints loops/s, p50/p95/p99 of each call, errors, over-assigned tasks, server memory, and the
ratio of next-task latency at the largest N to the smallest.

    python bench/serve.py                      # N = 10k, 100k; C = 1, 8, 32; 15 s each
    python bench/serve.py --sizes 10000 --concurrency 1 8 --seconds 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "prefloop_bench_serve"
DSN = ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB_NAME}"
PROMPT_WORDS = "please explain in plain words how this thing works and why it matters to us"
RESPONSE_WORDS = "the answer depends on several factors that we consider one at a time here "


def server_env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": DSN,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "ERROR",
    }


def recreate_database() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=server_env(),
        check=True,
    )


def setup_project_and_raters(n_raters: int) -> tuple[int, list[str]]:
    """Create the project and rater users with API tokens through Django itself."""
    code = f"""
import django, os, json
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from annotation.models import Project, Membership
project = Project.objects.create(name='bench', slug='bench', overlap=1, lease_seconds=600)
tokens = []
for i in range({n_raters}):
    user = get_user_model().objects.create(username=f'rater{{i}}')
    Membership.objects.create(project=project, user=user, role='labeler')
    tokens.append(Token.objects.create(user=user).key)
print(json.dumps({{'project': project.id, 'tokens': tokens}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=server_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["project"], data["tokens"]


def add_tasks(project_id: int, count: int) -> None:
    """Insert prompts, responses and pairwise tasks in bulk with set-based SQL."""
    with psycopg.connect(DSN, autocommit=False) as conn:
        start = conn.execute(
            "SELECT count(*) FROM annotation_prompt WHERE project_id = %s", (project_id,)
        ).fetchone()[0]
        first_id = conn.execute("SELECT coalesce(max(id), 0) FROM annotation_prompt").fetchone()[0]
        conn.execute(
            """
            INSERT INTO annotation_prompt
                (project_id, messages, content_hash, source, metadata, split, created_at)
            SELECT %(p)s,
                   jsonb_build_array(jsonb_build_object(
                       'role', 'user', 'content', 'Question ' || g || ': ' || %(words)s)),
                   md5('bench' || g), 'bench', '{}'::jsonb, 'train', now()
            FROM generate_series(%(a)s::bigint, %(b)s::bigint) AS g
            """,
            {"p": project_id, "a": start + 1, "b": start + count, "words": PROMPT_WORDS},
        )
        conn.execute(
            """
            INSERT INTO annotation_response
                (prompt_id, text, origin, source, generation_params, created_at)
            SELECT p.id, 'Response ' || side || ' to ' || p.id || ': ' || repeat(%(words)s, 7),
                   'imported', 'bench', '{}'::jsonb, now()
            FROM annotation_prompt p CROSS JOIN (VALUES ('A'), ('B')) AS s(side)
            WHERE p.id > %(first)s
            """,
            {"first": first_id, "words": RESPONSE_WORDS},
        )
        conn.execute(
            """
            INSERT INTO annotation_task
                (project_id, kind, prompt_id, required_judgments, slots_taken, judgments_done,
                 status, priority, is_gold, created_at)
            SELECT %(p)s, 'pairwise', p.id, 1, 0, 0, 'open', random(), false, now()
            FROM annotation_prompt p WHERE p.id > %(first)s
            """,
            {"p": project_id, "first": first_id},
        )
        conn.execute(
            """
            INSERT INTO annotation_taskresponse (task_id, response_id, position)
            SELECT t.id, r.id,
                   row_number() OVER (PARTITION BY t.id ORDER BY r.id) - 1
            FROM annotation_task t JOIN annotation_response r ON r.prompt_id = t.prompt_id
            WHERE t.prompt_id > %(first)s
            """,
            {"first": first_id},
        )
        conn.commit()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def reset_labels(project_id: int) -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute("TRUNCATE annotation_judgment, annotation_assignment CASCADE")
        conn.execute(
            "UPDATE annotation_task SET slots_taken = 0, judgments_done = 0, status = 'open' "
            "WHERE project_id = %s AND (slots_taken > 0 OR status <> 'open')",
            (project_id,),
        )
        conn.execute("VACUUM ANALYZE annotation_task")


def over_assigned(project_id: int) -> int:
    with psycopg.connect(DSN) as conn:
        return conn.execute(
            """
            SELECT count(*) FROM annotation_task t
            WHERE t.project_id = %s AND (t.slots_taken > t.required_judgments
               OR (SELECT count(*) FROM annotation_judgment j
                   WHERE j.task_id = t.id AND j.is_current) > t.required_judgments)
            """,
            (project_id,),
        ).fetchone()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, threads: int = 4) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=server_env(),
        start_new_session=True,
    )
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/schema/")
            conn.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _children(root_pid: int) -> list[int]:
    pids = [root_pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == root_pid:
                pids.append(int(entry.name))
    return pids


def server_rss_mb(root_pid: int) -> float:
    """Resident memory of gunicorn's master and workers, from /proc."""
    total_kb = 0
    for pid in _children(root_pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU seconds spent by the web server (gunicorn tree) and by PostgreSQL during the load, so
    the report can say where the machine's time goes per loop. PostgreSQL backends that start
    during the run count whole; one that exits before the end is missed (the server keeps its
    connections open, so none should)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server_start = _cpu_seconds(_children(server_pid))
        self.db_start = {pid: _cpu_seconds([pid]) for pid in postgres_pids()}

    def stop(self) -> tuple[float, float]:
        server = _cpu_seconds(_children(self.server_pid)) - self.server_start
        db = sum(_cpu_seconds([pid]) - self.db_start.get(pid, 0.0) for pid in postgres_pids())
        return server, db


def rater(port: int, project_id: int, token: str, deadline: float, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    next_body = json.dumps({})
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            conn.request("POST", f"/api/projects/{project_id}/next/", next_body, headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            out.append(("next", 0.0, 599))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        out.append(("next", (time.perf_counter() - t0) * 1000, resp.status))
        if resp.status != 200:
            if resp.status == 204:
                break
            continue
        assignment = json.loads(body)
        submit = json.dumps({"choice": "A", "strength": 2, "time_spent_ms": 1200})
        t0 = time.perf_counter()
        try:
            conn.request(
                "POST",
                f"/api/assignments/{assignment['id']}/judgment/",
                submit,
                {**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            out.append(("submit", 0.0, 599))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        out.append(("submit", (time.perf_counter() - t0) * 1000, resp.status))


def client_process(port: int, project_id: int, tokens: list[str], seconds: float, queue) -> None:
    cpu_start = time.process_time()
    deadline = time.monotonic() + seconds
    out: list = []
    threads = [
        threading.Thread(target=rater, args=(port, project_id, t, deadline, out)) for t in tokens
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((out, time.process_time() - cpu_start))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


def run_load(port: int, project_id: int, tokens: list[str], seconds: float) -> dict:
    processes = min(len(tokens), 4)
    groups = [tokens[i::processes] for i in range(processes)]
    queue: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=client_process, args=(port, project_id, g, seconds, queue))
        for g in groups
    ]
    start = time.monotonic()
    for p in procs:
        p.start()
    returned = [queue.get() for _ in procs]
    results = [r for out, _ in returned for r in out]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    stats: dict = {"elapsed": elapsed, "client_cpu": sum(cpu for _, cpu in returned)}
    for call in ("next", "submit"):
        ok = [ms for c, ms, status in results if c == call and status in (200, 201)]
        stats[call] = (percentile(ok, 50), percentile(ok, 95), percentile(ok, 99))
    stats["loops"] = sum(1 for c, _, s in results if c == "submit" and s == 201)
    stats["errors"] = sum(1 for _, _, s in results if s not in (200, 201, 204))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    recreate_database()
    project_id, tokens = setup_project_and_raters(max(args.concurrency))
    port = free_port()
    rows = []
    next_p50_c1: dict[int, float] = {}
    loaded = 0
    for size in sorted(args.sizes):
        t0 = time.monotonic()
        add_tasks(project_id, size - loaded)
        loaded = size
        print(f"filled {size:,} tasks in {time.monotonic() - t0:.1f}s", flush=True)
        for concurrency in args.concurrency:
            reset_labels(project_id)
            server = start_server(port, args.workers, args.threads)
            try:
                meter = CpuMeter(server.pid)
                stats = run_load(port, project_id, tokens[:concurrency], args.seconds)
                server_cpu, db_cpu = meter.stop()
                memory = server_rss_mb(server.pid)
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            over = over_assigned(project_id)
            loops_per_s = stats["loops"] / stats["elapsed"]
            if concurrency == 1:
                next_p50_c1[size] = stats["next"][0]
            rows.append((size, concurrency, loops_per_s, stats, over, memory))
            n50, n95, n99 = stats["next"]
            s50, s95, s99 = stats["submit"]
            print(
                f"N={size:>7,} C={concurrency:>2}  loops/s={loops_per_s:7.1f}  "
                f"next p50/p95/p99={n50:5.1f}/{n95:5.1f}/{n99:5.1f} ms  "
                f"submit p50/p95/p99={s50:5.1f}/{s95:5.1f}/{s99:5.1f} ms  "
                f"errors={stats['errors']}  over-assigned={over}  server RSS={memory:.0f} MB",
                flush=True,
            )
            per_loop = 1000 / max(stats["loops"], 1)
            print(
                f"{'':21}CPU per loop: server {server_cpu * per_loop:.1f} ms, "
                f"PostgreSQL {db_cpu * per_loop:.1f} ms, load generator "
                f"{stats['client_cpu'] * per_loop:.1f} ms; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    if len(next_p50_c1) >= 2:
        small, large = min(next_p50_c1), max(next_p50_c1)
        print(
            f"next-task p50 at C=1: {next_p50_c1[small]:.2f} ms at {small:,} tasks, "
            f"{next_p50_c1[large]:.2f} ms at {large:,} -> ratio {large // small}x size: "
            f"{next_p50_c1[large] / next_p50_c1[small]:.3f}"
        )
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
