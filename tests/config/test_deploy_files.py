"""The image's and docker compose's defaults are production settings: DEBUG off, a key required.

No Docker here: the files are parsed, compose's ``${VAR:-default}`` / ``${VAR:?message}`` are
resolved as compose does, and the settings are computed under the values the containers would get.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.config.isolated import REAL_KEY, deploy_warnings, refusal_under, settings_under

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker-cpu", "worker-gpu", "beat")
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


class Unset(Exception):
    """Compose refuses to start: a ``${VAR:?message}`` variable is unset or empty."""


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        given = dotenv.get(name)
        if op == ":?" and not given:
            raise Unset(f"{name}: {arg}")
        if op == ":-" and not given:
            return arg
        return given or ""

    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def container_env(service: str, dotenv: dict[str, str]) -> dict[str, str]:
    env = compose()["services"][service]["environment"]
    return {k: interpolate(str(v), dotenv) for k, v in env.items()}


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in shlex.split(line[4:]))
    return env


def test_the_image_defaults_to_debug_off_and_has_no_key():
    env = dockerfile_env()
    lines = (ROOT / "Dockerfile").read_text().splitlines()

    assert env["DEBUG"] == "0"
    # Neither ENV nor ARG: the key comes from the operator, never from the image.
    assert not [line for line in lines if line.startswith(("ENV", "ARG")) and "SECRET" in line]


def test_the_image_alone_refuses_to_start():
    env = {k: v for k, v in dockerfile_env().items() if k != "DJANGO_SETTINGS_MODULE"}
    assert "not set" in refusal_under(**env)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_app_container_runs_debug_off_and_requires_a_key(service):
    raw = compose()["services"][service]["environment"]

    assert str(raw["DEBUG"]) == "0"
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", raw["SECRET_KEY"])
    with pytest.raises(Unset, match="SECRET_KEY"):
        container_env(service, {})
    with pytest.raises(Unset, match="SECRET_KEY"):
        container_env(service, {"SECRET_KEY": ""})


def test_compose_defaults_are_https_only_and_the_deploy_check_is_clean():
    env = container_env("web", {"SECRET_KEY": REAL_KEY})

    shown = settings_under(**env)
    assert shown["DEBUG"] is False
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] is None  # not trusted until BEHIND_TLS_PROXY=1
    assert deploy_warnings(**env) == set()


def test_compose_behind_a_tls_proxy_is_clean_too():
    dotenv = {"SECRET_KEY": REAL_KEY, "BEHIND_TLS_PROXY": "1", "TRUSTED_PROXY_COUNT": "1"}
    env = container_env("web", dotenv)

    assert settings_under(**env)["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert deploy_warnings(**env) == set()


def test_compose_plain_http_trial_is_an_opt_in_with_honest_warnings():
    dotenv = {"SECRET_KEY": REAL_KEY, "INSECURE_HTTP": "1", "ALLOWED_HOSTS": "labels.lan"}
    env = container_env("web", dotenv)

    shown = settings_under(**env)
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert "http://labels.lan:8000" in shown["CSRF_TRUSTED_ORIGINS"]
    assert deploy_warnings(**env) == {
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    }


def test_the_web_port_is_published_on_localhost_unless_asked():
    (port,) = compose()["services"]["web"]["ports"]

    assert interpolate(port, {}) == "127.0.0.1:8000:8000"
    assert interpolate(port, {"WEB_BIND": "0.0.0.0", "WEB_PORT": "80"}) == "0.0.0.0:80:8000"


def test_the_web_health_check_asks_the_plain_http_health_page():
    check = " ".join(compose()["services"]["web"]["healthcheck"]["test"])

    assert "http://127.0.0.1:8000/healthz/" in check
    assert "ALLOWED_HOSTS" in check  # sends an allowed Host header
