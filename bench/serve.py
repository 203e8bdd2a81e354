"""Labeling throughput under a production server.

Starts gunicorn (several workers) on a scratch PostgreSQL database, fills a project with N
pairwise tasks (prompt ~20 words, two responses ~100 words), and runs C concurrent simulated
raters (each its own user and token) over HTTP for a fixed time, each looping next -> submit.
Prints loops/s, p50/p95/p99 of each call and the ratio p99/p50, errors, over-assigned tasks,
server memory, and the ratio of next-task latency at the largest N to the smallest. The server
runs with the production settings (``config/gunicorn.py``); ``--workers``, ``--threads`` and
``--keepalive`` override them. ``--probe`` also times every request inside the server and samples
PostgreSQL's wait events, and prints where the slowest 1 % went (``bench/serve_probe.py``).

    python bench/serve.py                      # N = 10k, 100k; C = 1, 8, 32; 15 s each
    python bench/serve.py --sizes 10000 --concurrency 1 8 --seconds 5
    python bench/serve.py --sizes 100000 --concurrency 32 --probe
    BENCH_SERVE_DB=my_scratch python bench/serve.py ...   # another scratch database
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_SERVE_DB", "prefloop_bench_serve")
DSN = ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB_NAME}"
PROBE = Path(__file__).with_name("serve_probe.py")
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


def start_server(
    port: int, overrides: list[str], probe_dir: str | None = None
) -> subprocess.Popen[bytes]:
    """gunicorn with the production settings (``config/gunicorn.py``, or the probe's copy of
    them) and the command line's overrides."""
    env = server_env()
    config = ROOT / "config" / "gunicorn.py"
    if probe_dir is not None:
        env["BENCH_PROBE_DIR"] = probe_dir
        config = PROBE
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(config),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *overrides,
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz/")
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
    rater_tag = token[:8]
    n = 0
    while time.monotonic() < deadline:
        n += 1
        bench_id = f"{rater_tag}-{n}"
        sent = time.time()
        t0 = time.perf_counter()
        try:
            conn.request(
                "POST",
                f"/api/projects/{project_id}/next/",
                next_body,
                {**headers, "X-Bench-Id": f"{bench_id}n"},
            )
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            out.append(("next", 0.0, 599, "", sent))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        out.append(("next", (time.perf_counter() - t0) * 1000, resp.status, f"{bench_id}n", sent))
        if resp.status != 200:
            if resp.status == 204:
                break
            continue
        assignment = json.loads(body)
        submit = json.dumps({"choice": "A", "strength": 2, "time_spent_ms": 1200})
        sent = time.time()
        t0 = time.perf_counter()
        try:
            conn.request(
                "POST",
                f"/api/assignments/{assignment['id']}/judgment/",
                submit,
                {**headers, "Idempotency-Key": uuid.uuid4().hex, "X-Bench-Id": f"{bench_id}s"},
            )
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            out.append(("submit", 0.0, 599, "", sent))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        out.append(("submit", (time.perf_counter() - t0) * 1000, resp.status, f"{bench_id}s", sent))


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
        ok = [r[1] for r in results if r[0] == call and r[2] in (200, 201)]
        stats[call] = (percentile(ok, 50), percentile(ok, 95), percentile(ok, 99))
    stats["loops"] = sum(1 for r in results if r[0] == "submit" and r[2] == 201)
    stats["errors"] = sum(1 for r in results if r[2] not in (200, 201, 204))
    stats["results"] = results
    return stats


class WaitSampler:
    """Samples what PostgreSQL's backends of the bench database are doing every 10 ms during the
    load (``pg_stat_activity``): how often one is waiting on a lock, on I/O, on the client."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            while not self._stop.wait(0.01):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (DB_NAME,),
                ).fetchall()
                self.samples += 1
                for state, wtype, event in rows:
                    key = f"{state}:{wtype or '-'}:{event or '-'}"
                    self.counts[key] = self.counts.get(key, 0) + 1

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        busy = sorted(self.counts.items(), key=lambda kv: -kv[1])[:6]
        per = ", ".join(f"{k} {v / max(self.samples, 1):.2f}" for k, v in busy)
        return f"backends per sample ({self.samples} samples): {per}"


def probe_report(results: list, probe_dir: str) -> None:
    """Where the slowest 1 % of each call went, from the server's own per-request timings."""
    server: dict[str, tuple] = {}
    for path in Path(probe_dir).glob("*.tsv"):
        for line in path.read_text().splitlines():
            bench_id, pid, start, end, db, connect, gc_s = line.split("\t")
            server[bench_id] = (int(pid), float(start), float(end), float(db), float(connect))
            server[bench_id] += (float(gc_s),)
    raters_per_worker: dict[int, set[str]] = {}
    for bench_id, row in server.items():
        raters_per_worker.setdefault(row[0], set()).add(bench_id.split("-")[0])
    spread = sorted(len(v) for v in raters_per_worker.values())
    print(f"{'':21}raters served by each worker (kept-alive connections stay on one): {spread}")
    for call in ("next", "submit"):
        rows = []
        for c, ms, status, bench_id, _sent in results:
            if c != call or status not in (200, 201) or bench_id not in server:
                continue
            pid, start, end, db, connect, gc_s = server[bench_id]
            handler = (end - start) * 1000
            rows.append((ms, handler, db * 1000, connect * 1000, gc_s * 1000, ms - handler))
        if not rows:
            continue
        rows.sort()
        cut = rows[int(len(rows) * 0.99) :]
        mid = rows[int(len(rows) * 0.45) : int(len(rows) * 0.55)]

        def mean(part: list, i: int) -> float:
            return sum(r[i] for r in part) / len(part)

        for label, part in (("p45-55", mid), ("slowest 1%", cut)):
            print(
                f"{'':21}{call} {label:>10} ({len(part)}): client {mean(part, 0):6.1f} ms = "
                f"handler {mean(part, 1):6.1f} (DB {mean(part, 2):5.1f}, connect "
                f"{mean(part, 3):4.1f}, GC {mean(part, 4):4.1f}) + queue/network "
                f"{mean(part, 5):6.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of the same load before each cell, not counted: a fresh server's first "
        "requests open its database connections and prepare its statements (0: count them)",
    )
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers (default: config/gunicorn.py's)"
    )
    parser.add_argument("--threads", type=int, help="threads per gunicorn worker (default: same)")
    parser.add_argument(
        "--keepalive", type=int, help="gunicorn keep-alive seconds, 0 = off (default: same)"
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="time each request inside the server and sample PostgreSQL's wait events, and "
        "print where the slowest 1%% went (bench/serve_probe.py)",
    )
    parser.add_argument(
        "--orm-path",
        action="store_true",
        help="claim and submit through the ORM instead of the single statements (implies --probe)",
    )
    args = parser.parse_args()
    args.probe = args.probe or args.orm_path
    if args.orm_path:
        os.environ["BENCH_ORM_PATH"] = "1"
    overrides = []
    for option, flag in (
        ("workers", "--workers"),
        ("threads", "--threads"),
        ("keepalive", "--keep-alive"),
    ):
        if getattr(args, option) is not None:
            overrides += [flag, str(getattr(args, option))]
    if args.keepalive or args.threads:  # config/gunicorn.py derives it from these two
        connections = (args.threads or 4) + (1000 if args.keepalive else 0)
        overrides += ["--worker-connections", str(connections)]

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
            probe_dir = tempfile.mkdtemp(prefix="bench-serve-probe-") if args.probe else None
            server = start_server(port, overrides, probe_dir)
            try:
                if args.warmup > 0:  # every thread's first request opens its connection
                    run_load(port, project_id, tokens[:concurrency], args.warmup)
                meter = CpuMeter(server.pid)
                sampler = WaitSampler() if args.probe else None
                stats = run_load(port, project_id, tokens[:concurrency], args.seconds)
                waits = sampler.stop() if sampler else ""
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
            print(
                f"{'':21}p99/p50: next {n99 / n50:.2f}, submit {s99 / s50:.2f} (target: next "
                f"<= 3.00 at C=32)",
                flush=True,
            )
            per_loop = 1000 / max(stats["loops"], 1)
            print(
                f"{'':21}CPU per loop: server {server_cpu * per_loop:.1f} ms, "
                f"PostgreSQL {db_cpu * per_loop:.1f} ms, load generator "
                f"{stats['client_cpu'] * per_loop:.1f} ms; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if probe_dir is not None:
                probe_report(stats["results"], probe_dir)
                print(f"{'':21}{waits}", flush=True)
                shutil.rmtree(probe_dir, ignore_errors=True)
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
