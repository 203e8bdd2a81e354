"""Fixtures for the loop tests: a real Redis, real ``celery worker`` processes, tiny models.

The worker is a subprocess that talks to the *test* database: pytest-django creates
``test_<name>`` (``TEST_DATABASE_NAME``), so the worker gets a ``DATABASE_URL`` naming it, and the
tests use ``django_db(transaction=True)`` so their rows are committed and visible to it.
Redis: ``LOOP_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/11``); the database number is
flushed at the start of every test that uses it, so keep it private to these tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection

from annotation import models
from annotation.services.prompts import messages_hash
from tests.factories import ProjectFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("LOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
CELERY = str(Path(sys.executable).parent / "celery")
SOLO = ("--pool", "solo", "--concurrency", "1")
# What docker-compose.yml runs on the GPU: one forked child per cycle.
GPU_PREFORK = ("--pool", "prefork", "--concurrency", "1", "--max-tasks-per-child", "1")


def redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def point_app_at(url: str, **transport: object) -> None:
    """Make this (test) process publish to ``url``."""
    from config.celery import app

    if app.conf.broker_url == url:
        return
    app.conf.broker_url = url
    app.conf.broker_transport_options = {"visibility_timeout": 3600, **transport}
    app._pool = None  # connections to the old URL are left to the garbage collector
    app.amqp._producer_pool = None


@pytest.fixture
def needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: real concurrent transactions, and a worker process that shares "
            "the test database (SQLite test databases are private to the test process)"
        )


@pytest.fixture
def broker(needs_postgres: None) -> str:
    if not redis_reachable(REDIS_URL):
        pytest.skip(f"no Redis at {REDIS_URL}")
    redis_flush(REDIS_URL)
    point_app_at(REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    from training.tiny import write_tiny_causal_lm

    return str(write_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "base", seed=0))


class Worker:
    """One ``celery worker`` subprocess (both queues, the given pool) with its log."""

    def __init__(self, env: dict[str, str], log: Path, pool: tuple[str, ...]) -> None:
        self.log = log
        self.handle = log.open("ab")
        self.proc = subprocess.Popen(
            [
                CELERY,
                "-A",
                "config",
                "worker",
                "-Q",
                "cpu,gpu",
                *pool,
                "-n",
                f"loop-test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.tail()}")
            if b"ready." in self.log.read_bytes():
                return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.handle.close()

    def tail(self, n: int = 4000) -> str:
        return self.log.read_bytes()[-n:].decode(errors="replace")


@pytest.fixture
def worker_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    def make(broker_url: str, **extra: str) -> dict[str, str]:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            DATABASE_URL=(
                f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
                f"{db['PORT'] or 5432}/{db['NAME']}"
            ),
            CELERY_BROKER_URL=broker_url,
            LOOP_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
            LOOP_DEVICE="cpu",
            PREFLOOP_VAR_DIR=str(tmp_path / "var"),
            PYTHONUNBUFFERED="1",
            TOKENIZERS_PARALLELISM="false",
            OMP_NUM_THREADS="1",
        )
        env.pop("TEST_DATABASE_NAME", None)
        env.update(extra)
        return env

    return make


@pytest.fixture
def start_worker(
    transactional_db: None, worker_env: Callable[..., dict[str, str]], tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start workers on demand; every one is stopped before the test database is flushed."""
    started: list[Worker] = []

    def start(broker_url: str, *, pool: tuple[str, ...] = SOLO, **extra: str) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = Worker(worker_env(broker_url, **extra), log, pool)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, log: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def make_loop_project(base_model: str, *, prompts: int = 6, eval_prompts: int = 2, **kwargs):
    """A project on the tiny base model with train/eval prompts and no tasks yet."""
    defaults = {
        "task_kinds": ["pairwise"],
        "overlap": 1,
        "base_model": base_model,
        "samples_per_prompt": 3,
        "max_new_tokens": 8,
        "trainers": ["rm", "dpo"],
    }
    project = ProjectFactory(**{**defaults, **kwargs})
    for i in range(prompts + eval_prompts):
        messages = [{"role": "user", "content": f"Tell me about thing {i}."}]
        models.Prompt.objects.create(
            project=project,
            messages=messages,
            content_hash=messages_hash(messages),
            split="train" if i < prompts else "eval",
        )
    return project


def add_pairwise_judgments(project: models.Project, n: int) -> list[models.Judgment]:
    """``n`` human pairwise judgments on imported responses (the longer answer wins)."""
    rater = UserFactory()
    models.Membership.objects.get_or_create(project=project, user=rater)
    prompts = list(models.Prompt.objects.filter(project=project, split="train"))
    out = []
    for i in range(n):
        prompt = prompts[i % len(prompts)]
        a = models.Response.objects.create(prompt=prompt, text=f"a short one {i}")
        b = models.Response.objects.create(prompt=prompt, text=f"a much longer answer number {i}")
        task = models.Task.objects.create(
            project=project, kind="pairwise", prompt=prompt, required_judgments=1
        )
        models.TaskResponse.objects.create(task=task, response=a, position=0)
        models.TaskResponse.objects.create(task=task, response=b, position=1)
        out.append(
            models.Judgment.objects.create(
                task=task,
                project=project,
                rater=rater,
                kind="pairwise",
                choice="B",
                strength=2,
                preferred_response=b,
                display_order=[a.id, b.id],
            )
        )
    return out


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A redis-server of our own on port 6391 (so stopping it disturbs nobody); yields restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = int(os.environ.get("LOOP_TEST_PRIVATE_REDIS_PORT", "6391"))
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--dir",
                    str(tmp_path),
                    "--bind",
                    "127.0.0.1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for(lambda: redis_reachable(f"redis://127.0.0.1:{port}/0"), 10, "private redis")

    def stop() -> None:
        procs[-1].terminate()
        procs[-1].wait(timeout=10)

    start()
    yield type("Redis", (), {"url": f"redis://127.0.0.1:{port}/0", "start": start, "stop": stop})
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=10)
