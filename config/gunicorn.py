"""gunicorn settings of the web process (``gunicorn -c config/gunicorn.py config.wsgi``).

Why each setting (figures in docs/architecture.md, "Tail latency"):

* ``gthread`` workers, one process per core plus a few threads each: a request spends about half
  its time waiting for PostgreSQL, so threads keep a core busy while one of them waits.
* **No keep-alive, and a worker takes a connection only when a thread is free**
  (``worker_connections = threads``). A kept-alive connection stays with the worker that first
  accepted it; under load one worker ended up holding 21 of 32 raters' connections and served
  each of them at a fraction of the others' speed (next-task p99 44 times its p50). Without it every
  request waits in the kernel's accept queue, in arrival order, for the first worker that has a
  thread free. The extra TCP handshake per request costs well under a millisecond on a local
  network; behind a proxy that keeps its own upstream connections (nginx ``keepalive``) turn it
  back on with ``WEB_KEEPALIVE``.
* ``preload_app``: Django, every view and the URL configuration are imported once in the master
  before the fork, not on each worker's first requests (the first second of a fresh worker was
  the slowest 1 % of the benchmark). Then ``gc.freeze()`` moves those long-lived objects out of
  the collector's generations, so a full collection in a worker no longer walks all of Django.
  No database connection is opened before the fork.

Environment: ``WEB_WORKERS`` (default: 2 per core this process may use, at most 16),
``WEB_THREADS`` (4), ``WEB_KEEPALIVE``
(seconds, 0 = off), ``WEB_TIMEOUT`` (60 s), ``PORT`` (8000).
"""

from __future__ import annotations

import gc
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", min(2 * len(os.sched_getaffinity(0)), 16)))
threads = int(os.environ.get("WEB_THREADS", 4))
keepalive = int(os.environ.get("WEB_KEEPALIVE", 0))
# With keep-alive a worker must also hold its idle connections; without, one per thread.
worker_connections = threads + (1000 if keepalive else 0)
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
graceful_timeout = 30
preload_app = True


def when_ready(server):  # type: ignore[no-untyped-def]
    """In the master, after the application is loaded and before the workers are forked."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    gc.collect()
    gc.freeze()
