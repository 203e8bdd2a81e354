"""Benchmark: managers' dashboard and training export on a 1,000,000-judgment project.

    .venv/bin/python bench/insight.py [--judgments 1000000] [--keep | --reuse] [--no-export]

Creates a scratch PostgreSQL database (``prefloop_bench_insight`` on 127.0.0.1:5432), migrates
it, generates the project directly in SQL (``INSERT ... SELECT generate_series``: 200 raters, 5
systems, pairwise tasks with 3 judgments each, some gold tasks, skipped/expired leases, a planted
left-position bias in 10 raters), then measures:

- dashboard cold: every section computed from scratch (cache cleared), in a process that has
  imported the statistics libraries as the ``cpu`` worker does at start (that import is timed
  and printed on its own line);
- recompute: what a refresh after new judgments costs (task/response arrays still cached);
- dashboard warm: ``dashboard_get`` (fingerprint + cache hit), the JSON API, the overview and
  raters pages end to end;
- page weight of the overview and raters pages: HTML + the JS and CSS they link, raw and gzip,
  with and without the vendored chart library;
- export: preference pairs, every judgment, JSONL and Parquet, in a fresh child process each,
  reporting rows/s and peak RSS (``VmHWM`` from /proc/self/status).

The cache is Redis (database 13 of 127.0.0.1:6379, cleared by the run) when it answers, as in
production; ``CACHE_URL`` overrides it. Wall times depend on what else the machine runs: the
process CPU time and the load average are printed beside them.

Targets: cold < 5 s, warm < 200 ms, export >= 50,000 pairs/s with peak memory < 300 MB.
The scratch database is dropped at the end unless ``--keep``; ``--reuse`` measures again on a
kept one (applying new migrations first), ``--no-export`` skips the exports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB = "prefloop_bench_insight"
SERVER = "postgresql://postgres@127.0.0.1:5432"
N_RATERS = 200
N_GOLD = 500
GOLD_RATERS = 20
OPEN_SHARE = 0.1  # share of tasks still open (no judgments yet): the queue for the burn-down
BENCH_CACHE_URL = "redis://127.0.0.1:6379/13"


def proc_status(field: str) -> int:
    """A /proc/self/status memory field in bytes (VmHWM = peak RSS, VmRSS = current)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    # The cache production uses (Redis: what the cpu worker writes and the web reads), on a
    # database number of its own since the benchmark clears it. Without Redis, the settings'
    # file cache (it compresses every entry: slower to write the 20 MB task arrays).
    if "CACHE_URL" not in os.environ and redis_answers():
        os.environ["CACHE_URL"] = BENCH_CACHE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def create_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


GENERATE = """
INSERT INTO annotation_project (name, slug, guidelines, task_kinds, overlap, lease_seconds,
    gold_rate, flag_choices, ranking_size, eval_share, base_model, samples_per_prompt, temperature,
    top_p, max_new_tokens, auto_retrain, min_new_judgments, min_interval_minutes, trainers,
    created_at)
VALUES ('Bench', 'bench', '', '["pairwise"]', 3, 600, 0.0, '[]', 4, 0.1, '', 4, 1.0, 1.0, 256,
    false, 200, 60, '["rm", "dpo"]', now() - interval '31 days');

INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
    is_active, date_joined)
SELECT '!', g = 0, CASE WHEN g = 0 THEN 'manager' ELSE 'rater' || g END, '', '', '', false, true,
    now()
FROM generate_series(0, {n_raters}) g;

INSERT INTO annotation_membership (role, created_at, user_id, project_id)
SELECT CASE WHEN username = 'manager' THEN 'manager' ELSE 'labeler' END, now(), id,
    (SELECT id FROM annotation_project)
FROM auth_user;

INSERT INTO annotation_modelversion (name, kind, trainer, artifact_path, config, metrics, status,
    is_active, created_at, project_id)
SELECT 'policy-v' || g, 'policy', 'dpo', '', '{{}}', '{{}}', 'ready', false, now(),
    (SELECT id FROM annotation_project)
FROM generate_series(1, 4) g;
INSERT INTO annotation_modelversion (name, kind, trainer, artifact_path, config, metrics, status,
    is_active, created_at, project_id)
VALUES ('rm-v1', 'reward', 'rm', '', '{{}}', '{{"length_correlation": 0.31}}', 'ready', false,
    now(), (SELECT id FROM annotation_project));

INSERT INTO annotation_prompt (messages, content_hash, source, metadata, split, created_at,
    project_id)
SELECT jsonb_build_array(jsonb_build_object('role', 'user', 'content',
        'Question number ' || g || ': explain something useful in a few sentences.')),
    md5('prompt' || g) || md5('salt' || g), '', '{{}}', 'train',
    now() - interval '30 days' + (g::float / {n_tasks}) * interval '29 days',
    (SELECT id FROM annotation_project)
FROM generate_series(1, {n_tasks}) g;

-- Two responses per prompt; system s = (g + 2k) mod 5: four model versions and one import.
-- text_chars is a generated column: PostgreSQL computes it from the text on insert.
INSERT INTO annotation_response (text, origin, source, generation_params, created_at,
    model_version_id, prompt_id)
SELECT repeat('word ', (10 + ((p.id * 7919 + k * 104729) % 120))::int),
    CASE WHEN s < 4 THEN 'model' ELSE 'imported' END,
    CASE WHEN s < 4 THEN '' ELSE 'imported-reference' END, '{{}}', p.created_at,
    CASE WHEN s < 4 THEN (SELECT min(id) FROM annotation_modelversion) + s END, p.id
FROM (SELECT id, created_at, row_number() OVER (ORDER BY id) AS g FROM annotation_prompt) p,
    LATERAL (SELECT k, ((p.g + 2 * k) % 5)::int AS s FROM generate_series(0, 1) k) ks
ORDER BY p.id, k;

INSERT INTO annotation_task (kind, required_judgments, slots_taken, judgments_done, status,
    priority, is_gold, gold_answer, created_at, project_id, prompt_id)
SELECT 'pairwise', 3, 0, 0, 'open', 0, p.g <= {n_gold},
    CASE WHEN p.g <= {n_gold} THEN jsonb_build_object('preferred_response',
        (SELECT min(r.id) FROM annotation_response r WHERE r.prompt_id = p.id)) END,
    p.created_at, (SELECT id FROM annotation_project), p.id
FROM (SELECT id, created_at, row_number() OVER (ORDER BY id) AS g FROM annotation_prompt) p;

INSERT INTO annotation_taskresponse (position, response_id, task_id)
SELECT (row_number() OVER (PARTITION BY t.id ORDER BY r.id)) - 1, r.id, t.id
FROM annotation_task t JOIN annotation_response r ON r.prompt_id = t.prompt_id;

CREATE TEMP TABLE bt AS
SELECT t.id AS task_id, t.is_gold, row_number() OVER (ORDER BY t.id) AS g,
    min(tr.response_id) FILTER (WHERE tr.position = 0) AS r0,
    min(tr.response_id) FILTER (WHERE tr.position = 1) AS r1,
    min(t.created_at) AS created_at
FROM annotation_task t JOIN annotation_taskresponse tr ON tr.task_id = t.id
GROUP BY t.id, t.is_gold;
CREATE TEMP TABLE br AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS idx
FROM auth_user WHERE username <> 'manager';

-- Judgments: 3 raters per ordinary task (20 per gold task), random display order. The first
-- response wins with a Bradley-Terry probability from its system's strength; 8% ties, 2% both
-- bad; raters 0-9 pick whatever is shown left 70% of the time (planted position bias).
INSERT INTO annotation_judgment (source, kind, revision, is_current, choice, strength, payload,
    flags, rationale, time_spent_ms, display_order, idempotency_key, request_hash, created_at,
    rater_id, project_id, preferred_response_id, task_id)
SELECT 'human', 'pairwise', 1, true, c.choice,
    CASE WHEN c.choice IN ('A', 'B') THEN 1 + floor(c.u3 * 4)::int END,
    '{{}}', '[]', '', (1500 + c.u4 * 60000)::int,
    CASE WHEN c.flip THEN jsonb_build_array(c.r1, c.r0) ELSE jsonb_build_array(c.r0, c.r1) END,
    '', '', c.created_at + c.u4 * interval '1 day', c.rater_id,
    (SELECT id FROM annotation_project),
    CASE c.choice WHEN 'A' THEN CASE WHEN c.flip THEN c.r1 ELSE c.r0 END
                  WHEN 'B' THEN CASE WHEN c.flip THEN c.r0 ELSE c.r1 END END,
    c.task_id
FROM (
    SELECT x.*, CASE
        WHEN x.u1 < 0.08 THEN 'tie'
        WHEN x.u1 < 0.10 THEN 'both_bad'
        WHEN x.rater_idx < 10 THEN CASE WHEN x.u2 < 0.7 THEN 'A' ELSE 'B' END
        WHEN (x.u2 < x.p_first) = NOT x.flip THEN 'A'
        ELSE 'B' END AS choice
    FROM (
        SELECT bt.*, k, br.id AS rater_id, br.idx AS rater_idx,
            random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() < 0.5 AS flip,
            1 / (1 + exp(-((ARRAY[0.0, 0.3, 0.6, 0.9, 0.2])[(bt.g % 5) + 1]
                          - (ARRAY[0.0, 0.3, 0.6, 0.9, 0.2])[((bt.g + 2) % 5) + 1]))) AS p_first
        FROM bt
        CROSS JOIN LATERAL generate_series(0, CASE WHEN bt.is_gold THEN {gold_raters} - 1
                                                   ELSE 2 END) k
        JOIN br ON br.idx = (bt.g * 7 + k * 13) % {n_raters}
        WHERE bt.g <= {n_judged}
    ) x
) c;

UPDATE annotation_task t SET judgments_done = 3, slots_taken = 3, status = 'complete'
FROM bt WHERE bt.task_id = t.id AND bt.g <= {n_judged} AND NOT bt.is_gold;

-- Leases: some skipped and expired (a rater not among the task's three judges).
INSERT INTO annotation_assignment (status, display_order, claimed_at, expires_at, finished_at,
    skip_reason, rater_id, project_id, task_id)
SELECT CASE WHEN bt.g % 4 = 0 THEN 'expired' ELSE 'skipped' END, '[]', bt.created_at,
    bt.created_at + interval '10 minutes', bt.created_at, '', br.id,
    (SELECT id FROM annotation_project), bt.task_id
FROM bt JOIN br ON br.idx = (bt.g * 7 + 3 * 13) % {n_raters}
WHERE bt.g > {n_gold} AND bt.g % 10 < 2;
"""


def generate(n_judgments: int) -> dict[str, int]:
    from django.db import connection

    per_task = 3
    gold_judgments = N_GOLD * GOLD_RATERS
    n_judged = N_GOLD + (n_judgments - gold_judgments) // per_task
    n_tasks = int(n_judged / (1 - OPEN_SHARE))
    sql = GENERATE.format(
        n_raters=N_RATERS,
        n_tasks=n_tasks,
        n_gold=N_GOLD,
        gold_raters=GOLD_RATERS,
        n_judged=n_judged,
    )
    with connection.cursor() as cursor:
        for statement in sql.split(";\n"):
            if statement.strip():
                cursor.execute(statement)
        # What autovacuum does after a bulk load (hint bits, visibility map, statistics); a
        # benchmark that skipped it would time the first reads writing hint bits instead.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT count(*) FROM annotation_judgment")
        judgments = cursor.fetchone()[0]
        cursor.execute("SELECT id FROM annotation_project")
        project_id = cursor.fetchone()[0]
    return {"project_id": project_id, "tasks": n_tasks, "judgments": judgments}


def existing_data() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM annotation_project WHERE slug = 'bench'")
        project_id = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM annotation_task")
        tasks = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM annotation_judgment")
        judgments = cursor.fetchone()[0]
    return {"project_id": project_id, "tasks": tasks, "judgments": judgments}


def page_weight(html: bytes) -> dict[str, int]:
    """Bytes a first visit downloads: the HTML and every stylesheet and script it links (from
    the static files), raw and gzipped (level 6, as a web server would), with and without the
    vendored chart library (``annotation/vendor/``)."""
    import gzip
    import re

    from django.conf import settings
    from django.contrib.staticfiles import finders

    prefix = re.escape(settings.STATIC_URL.encode())
    names = re.findall(rb'(?:src|href)="' + prefix + rb'([^"]+)"', html)
    files = {"html": html}
    for name in dict.fromkeys(n.decode() for n in names):
        found = finders.find(name)
        assert found, name
        files[name] = Path(found).read_bytes()
    library = [n for n in files if n.startswith("annotation/vendor/")]

    def total(parts: list[str], zipped: bool) -> int:
        return sum(len(gzip.compress(files[n], 6)) if zipped else len(files[n]) for n in parts)

    own = [n for n in files if n not in library]
    return {
        "html": len(html),
        "js": sum(len(b) for n, b in files.items() if n.endswith(".js")),
        "css": sum(len(b) for n, b in files.items() if n.endswith(".css")),
        "total": total(list(files), False),
        "total_gzip": total(list(files), True),
        "without_chart_library": total(own, False),
        "without_chart_library_gzip": total(own, True),
        "chart_library": total(library, False),
        "chart_library_gzip": total(library, True),
    }


def bench_dashboard(project_id: int) -> dict[str, object]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    from annotation.insight.dashboard import dashboard_get
    from annotation.metrics import preload

    # What the cpu worker does once at start (workers/tasks.py): timed apart, since a worker
    # pays it once per start, not per dashboard.
    import_s = preload()
    cache.clear()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    data = dashboard_get(project_id)
    cold = time.perf_counter() - t0
    cold_cpu = time.process_time() - cpu0
    t0 = time.perf_counter()
    recomputed = dashboard_get(project_id, refresh=True)
    recompute = time.perf_counter() - t0
    warm = []
    for _ in range(20):
        t0 = time.perf_counter()
        dashboard_get(project_id)
        warm.append(time.perf_counter() - t0)
    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="manager"))
    api, page, raters_page = [], [], []
    for _ in range(5):
        t0 = time.perf_counter()
        response = client.get(f"/api/projects/{project_id}/insight/")
        assert response.status_code == 200
        api.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        response = client.get(f"/manage/projects/{project_id}/")
        assert response.status_code == 200
        page.append(time.perf_counter() - t0)
        overview_html = response.content
        t0 = time.perf_counter()
        response = client.get(f"/manage/projects/{project_id}/raters/")
        assert response.status_code == 200
        raters_page.append(time.perf_counter() - t0)
        raters_html = response.content
    bias = {row[0]: row for row in data["tables"]["bias"]["rows"]}
    return {
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "analytics_import_s": round(import_s, 3),
        "cold_s": round(cold, 3),
        "cold_process_cpu_s": round(cold_cpu, 3),
        "load_average_before_cold": load_before,
        "cold_sections_s": data["timings"],
        "recompute_s": round(recompute, 3),
        "recompute_sections_s": recomputed["timings"],
        "load_average": os.getloadavg(),
        "warm_get_median_ms": round(statistics.median(warm) * 1000, 2),
        "warm_get_max_ms": round(max(warm) * 1000, 2),
        "warm_api_median_ms": round(statistics.median(api) * 1000, 1),
        "warm_overview_page_median_ms": round(statistics.median(page) * 1000, 1),
        "warm_raters_page_median_ms": round(statistics.median(raters_page) * 1000, 1),
        "overview_page_weight": page_weight(overview_html),
        "raters_page_weight": page_weight(raters_html),
        "pairwise_judgments": data["summary"]["pairwise_judgments"],
        "position_bias_row": bias.get("position: chose left/first shown"),
        "agreement_rows": data["tables"]["agreement"]["rows"],
        "leaderboard": [r[:5] for r in data["tables"]["leaderboard"]["rows"]],
        "cohen_pairs": len(data["tables"]["cohen_pairs"]["rows"]),
    }


def export_child(project_id: int, file_format: str) -> None:
    """Runs in a fresh process so VmHWM is the export's own peak."""
    setup_django()
    from annotation.models import Project
    from annotation.services.exports import export_start

    project = Project.objects.get(id=project_id)
    baseline = proc_status("VmRSS")
    export = export_start(project=project, params={"dataset": "preference", "file": file_format})
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    size = 0
    for chunk in export.chunks():
        size += len(chunk)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    manifest = export.manifest()
    print(
        json.dumps(
            {
                "file": file_format,
                "rows": manifest["counts"]["rows"],
                "judgments": manifest["counts"]["judgments"],
                "seconds": round(seconds, 2),
                "rows_per_s": round(manifest["counts"]["rows"] / seconds),
                "process_cpu_s": round(cpu, 2),
                "load_average": os.getloadavg(),
                "mb": round(size / 1e6, 1),
                "rss_before_mb": round(baseline / 1e6, 1),
                "peak_rss_mb": round(proc_status("VmHWM") / 1e6, 1),
                "sha256": manifest["sha256"][:16],
            }
        )
    )


def bench_export(project_id: int, file_format: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--export-child", str(project_id), file_format],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Measure on the database a previous --keep run left (no generation; implies --keep).",
    )
    parser.add_argument("--no-export", action="store_true", help="Measure the dashboard only.")
    parser.add_argument("--export-child", nargs=2, metavar=("PROJECT", "FORMAT"))
    args = parser.parse_args()
    if args.export_child:
        export_child(int(args.export_child[0]), args.export_child[1])
        return
    if not args.reuse:
        create_database()
    setup_django()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        if args.reuse:
            info = existing_data()
        else:
            t0 = time.perf_counter()
            info = generate(args.judgments)
            print(f"generated {info} in {time.perf_counter() - t0:.1f} s", flush=True)
        results = {"data": info, "dashboard": bench_dashboard(info["project_id"])}
        print(json.dumps(results["dashboard"], indent=1), flush=True)
        formats = () if args.no_export else ("jsonl", "parquet")
        results["export"] = [bench_export(info["project_id"], f) for f in formats]
        for row in results["export"]:
            print(json.dumps(row), flush=True)
        d = results["dashboard"]
        print("\nsummary")
        print(f"  judgments                {info['judgments']:,}")
        print(
            f"  dashboard cold           {d['cold_s']:.2f} s   (target < 5 s; process CPU "
            f"{d['cold_process_cpu_s']:.2f} s)"
        )
        print(
            f"  analytics imports        {d['analytics_import_s']:.2f} s   (once per worker "
            "start, before the cold run)"
        )
        print(f"  recompute (tasks cached) {d['recompute_s']:.2f} s   (after new judgments)")
        print(f"  cache                    {d['cache']}")
        print(
            f"  load average             {d['load_average_before_cold']} before cold, "
            f"{d['load_average']} after"
        )
        print(
            f"  dashboard warm (get)     {d['warm_get_median_ms']:.1f} ms median, "
            f"{d['warm_get_max_ms']:.1f} ms max   (target < 200 ms)"
        )
        print(f"  dashboard warm (API)     {d['warm_api_median_ms']:.1f} ms median")
        print(f"  overview page (warm)     {d['warm_overview_page_median_ms']:.1f} ms median")
        print(f"  raters page (warm)       {d['warm_raters_page_median_ms']:.1f} ms median")
        for name in ("overview", "raters"):
            w = d[f"{name}_page_weight"]
            print(
                f"  {name} page weight    {w['total']:,} B (HTML {w['html']:,}, JS {w['js']:,}, "
                f"CSS {w['css']:,}), gzip {w['total_gzip']:,} B; without the chart library "
                f"{w['without_chart_library']:,} B, gzip {w['without_chart_library_gzip']:,} B"
            )
        for row in results["export"]:
            print(
                f"  export {row['file']} load average {row['load_average']}, "
                f"process CPU {row['process_cpu_s']} s"
            )
            print(
                f"  export {row['file']:<8}         {row['rows_per_s']:,} pairs/s "
                f"({row['rows']:,} pairs, {row['seconds']} s), peak RSS "
                f"{row['peak_rss_mb']} MB   (targets >= 50,000/s, < 300 MB)"
            )
    finally:
        if not (args.keep or args.reuse):
            drop_database()


if __name__ == "__main__":
    main()
