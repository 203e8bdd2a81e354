"""Requests under each deployment mode's settings: what a browser on another host gets.

The settings come from a fresh process under the mode's environment (``tests/config/isolated.py``)
and are applied here, so these are the values production computes, not hand-written ones.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.config.isolated import REAL_KEY, SHOWN, settings_under
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def deployed(settings):
    def apply(**env: str) -> None:
        shown = settings_under(DEBUG="0", SECRET_KEY=REAL_KEY, **env)
        for name in SHOWN:
            if name in ("DEBUG", "SECRET_KEY"):
                continue
            value = shown[name]
            setattr(settings, name, tuple(value) if isinstance(value, list) else value)

    return apply


@pytest.fixture
def alice(db):
    user = UserFactory(username="alice")
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(client: Client, origin: str, **extra: str):  # type: ignore[no-untyped-def]
    page = client.get("/login/", **extra)
    assert page.status_code == 200, page.status_code
    token = client.cookies["csrftoken"].value
    return page, client.post(
        "/login/",
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token},
        HTTP_ORIGIN=origin,
        **extra,
    )


def test_https_mode_redirects_plain_http_but_not_the_health_check(deployed, db):
    deployed(ALLOWED_HOSTS="labels.example")
    client = Client(HTTP_HOST="labels.example")

    response = client.get("/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://labels.example/login/"
    # Without BEHIND_TLS_PROXY a client's X-Forwarded-Proto changes nothing.
    assert client.get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    health = client.get("/healthz/")
    assert health.status_code == 200
    assert health.content == b"ok\n"


def test_behind_a_tls_proxy_a_browser_logs_in_with_secure_cookies(deployed, alice):
    deployed(ALLOWED_HOSTS="labels.example", BEHIND_TLS_PROXY="1")
    client = Client(HTTP_HOST="labels.example", enforce_csrf_checks=True)

    page, response = log_in(client, "https://labels.example", HTTP_X_FORWARDED_PROTO="https")

    assert page.cookies["csrftoken"]["secure"] is True
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response.status_code == 302, response.content[:300]
    assert response.cookies["sessionid"]["secure"] is True
    assert "_auth_user_id" in client.session


def test_the_plain_http_trial_logs_in_from_another_host(deployed, alice):
    deployed(INSECURE_HTTP="1", ALLOWED_HOSTS="labels.lan")
    client = Client(HTTP_HOST="labels.lan:8000", enforce_csrf_checks=True)

    page, response = log_in(client, "http://labels.lan:8000")

    # A Secure cookie would be dropped by a browser on http://labels.lan: no CSRF token, no login.
    assert page.cookies["csrftoken"]["secure"] == ""
    assert "Strict-Transport-Security" not in page
    assert response.status_code == 302, response.content[:300]
    assert response.cookies["sessionid"]["secure"] == ""
    assert "_auth_user_id" in client.session


def test_the_trial_still_refuses_a_cross_site_login(deployed, alice):
    deployed(INSECURE_HTTP="1", ALLOWED_HOSTS="labels.lan")
    client = Client(HTTP_HOST="labels.lan:8000", enforce_csrf_checks=True)

    _, response = log_in(client, "http://evil.example")

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
