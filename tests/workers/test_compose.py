"""docker-compose.yml parses and names every service the operations doc promises."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "beat"}


def load() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_names_every_service_with_a_health_check():
    compose = load()

    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        assert "healthcheck" in service, name
        assert service["healthcheck"]["test"], name


def test_workers_share_the_artifact_volume_and_queues_are_split():
    services = load()["services"]

    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        assert "artifacts:/artifacts" in services[name]["volumes"], name
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert "-Q gpu --pool prefork --concurrency 1" in services["worker-gpu"]["command"]
    assert services["worker-gpu"]["gpus"] == "all"
    assert "-Q cpu" in services["worker-cpu"]["command"]
    assert "beat" in services["beat"]["command"]
    assert "gunicorn" in services["web"]["command"]
    for name in ("worker-cpu", "worker-gpu", "beat"):  # the Celery app is config/celery.py
        assert services[name]["command"].startswith("celery -A config "), name
    env = services["web"]["environment"]
    assert int(env["CELERY_VISIBILITY_TIMEOUT"].split("-")[-1].rstrip("}")) > int(
        env["CELERY_TASK_TIME_LIMIT"].split("-")[-1].rstrip("}")
    )
