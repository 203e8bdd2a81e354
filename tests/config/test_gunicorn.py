"""The web server's settings (config/gunicorn.py) load in gunicorn and say what the docs say."""

from __future__ import annotations

from pathlib import Path

import pytest
from gunicorn.app.base import Application

ROOT = Path(__file__).resolve().parents[2]


class _Loaded(Application):
    def __init__(self, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        super().__init__()

    def init(self, parser, opts, args):  # type: ignore[no-untyped-def]
        return None

    def load_config(self) -> None:
        self.load_config_from_file(str(ROOT / "config" / "gunicorn.py"))

    def load(self):  # type: ignore[no-untyped-def]
        raise AssertionError("not started")


def test_no_keep_alive_and_a_connection_per_thread(monkeypatch):
    cfg = _Loaded({"WEB_WORKERS": "3", "WEB_THREADS": "6"}, monkeypatch).cfg
    assert cfg.worker_class_str == "gthread"
    assert (cfg.workers, cfg.threads) == (3, 6)
    assert cfg.keepalive == 0
    assert cfg.worker_connections == 6  # a worker accepts only when a thread is free
    assert cfg.preload_app
    assert cfg.timeout == 60


def test_keep_alive_when_asked_keeps_room_for_idle_connections(monkeypatch):
    cfg = _Loaded({"WEB_THREADS": "4", "WEB_KEEPALIVE": "5"}, monkeypatch).cfg
    assert cfg.keepalive == 5
    assert cfg.worker_connections > cfg.threads
