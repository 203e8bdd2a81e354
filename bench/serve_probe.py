"""gunicorn hooks that time every request inside the server (``bench/serve.py --probe``).

Loaded with ``gunicorn -c bench/serve_probe.py``: the production settings
(``config/gunicorn.py``) plus these hooks. For each request it writes one line to
``$BENCH_PROBE_DIR/<pid>.tsv``: the client's ``X-Bench-Id``, the worker pid, when the handler
started and ended (wall clock), the time spent in database calls, the time spent opening a
database connection, and the time this process spent in garbage collection while the request
was being handled. The load generator joins these to its own timings: what the client waited
beyond the handler is queueing (in the kernel's accept queue or in a worker's thread pool) plus
the network. With ``BENCH_ORM_PATH`` set, claim and submit take the ORM path instead of the
single statements (``bench/serve.py --orm-path``).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.gunicorn import *  # noqa: F403 (the production settings and hooks)

_state = threading.local()
_gc = {"total": 0.0, "started": 0.0}
_out: dict = {}


def _gc_callback(phase: str, info: dict) -> None:
    if phase == "start":
        _gc["started"] = time.perf_counter()
    else:
        _gc["total"] += time.perf_counter() - _gc["started"]


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    gc.callbacks.append(_gc_callback)
    if os.environ.get("BENCH_ORM_PATH"):
        # Claim and submit through the ORM, as on SQLite (the tests' write_path="orm").
        from annotation.services import pg_statements

        pg_statements.enabled = lambda: False
    import psycopg
    from django.db.backends.base.base import BaseDatabaseWrapper

    # The hot path's prepared statements run on raw psycopg cursors, the ORM's on Django's
    # (subclasses): timing psycopg's execute covers both.
    execute = psycopg.Cursor.execute

    def timed_execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(self, *args, **kwargs)
        finally:
            _state.db = getattr(_state, "db", 0.0) + time.perf_counter() - t0

    psycopg.Cursor.execute = timed_execute
    connect = BaseDatabaseWrapper.connect

    def timed_connect(self):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return connect(self)
        finally:
            _state.connect = getattr(_state, "connect", 0.0) + time.perf_counter() - t0

    BaseDatabaseWrapper.connect = timed_connect


def pre_request(worker, req):  # type: ignore[no-untyped-def]
    _state.db = 0.0
    _state.connect = 0.0
    _state.gc = _gc["total"]
    _state.start = time.time()


def post_request(worker, req, environ, resp):  # type: ignore[no-untyped-def]
    end = time.time()
    bench_id = environ.get("HTTP_X_BENCH_ID", "-")
    if "file" not in _out:
        _out["file"] = open(  # noqa: SIM115 (closed by the process exit)
            Path(os.environ["BENCH_PROBE_DIR"]) / f"{os.getpid()}.tsv", "a", buffering=1
        )
    _out["file"].write(
        f"{bench_id}\t{os.getpid()}\t{_state.start:.6f}\t{end:.6f}\t{_state.db:.6f}\t"
        f"{_state.connect:.6f}\t{_gc['total'] - _state.gc:.6f}\n"
    )
