"""Login throttling: every credential endpoint locks an account and an address after the limit.

The limits are the real settings (``LOGIN_FAILURE_LIMIT``, ``LOGIN_COOLOFF_SECONDS``; 10 and 15
minutes by default), not test values. The database rolls back after each test, so the attempts
recorded here never lock out another test. Time passes by moving the recorded attempts back.
"""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F
from django.test import Client

from annotation.lockout import client_ip
from tests.csp import inline_code
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
LOCKED = "Too many failed login attempts"


def cool_off() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def pass_time(seconds: float) -> None:
    """As if ``seconds`` went by since every attempt recorded so far."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(seconds=seconds))


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    """Hundreds of password checks here: the throttle is the subject, not the hash's cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(db):
    user = UserFactory(username="alice", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def login(path: str, username: str, password: str, address: str = "10.0.0.1", **extra):
    client = Client(REMOTE_ADDR=address, **extra)
    if path == "/api/token/":
        return client.post(path, {"username": username, "password": password})
    return client.post(path, {"username": username, "password": password, "next": "/"})


def succeeded(path: str, response) -> bool:  # type: ignore[no-untyped-def]
    if path == "/api/token/":
        return response.status_code == 200 and len(response.json()["token"]) == 40
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def refused_as_throttled(path: str, response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, response.content[:300]
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= cool_off()
    if path == "/api/token/":
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"].startswith(LOCKED)
    else:
        assert response["Content-Type"].startswith("text/html")
        assert LOCKED in response.content.decode()
        assert inline_code(response.content.decode()) == []  # the CSP allows none


ENDPOINTS = ["/login/", "/admin/login/", "/api/token/"]


def test_the_default_limits_are_ten_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 10
    assert cool_off() == 900


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_passwords_lock_the_account_and_the_right_one_is_refused(path, user):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = login(path, "alice", "wrong")
        assert response.status_code in (200, 400), response.status_code  # the form's own error

    refused_as_throttled(path, login(path, "alice", "wrong"))
    locked = login(path, "alice", PASSWORD)
    refused_as_throttled(path, locked)
    assert not succeeded(path, locked)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_account_stays_locked_from_another_address(path, user):
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(path, "alice", "wrong", address=f"10.0.1.{n}")

    refused_as_throttled(path, login(path, "alice", PASSWORD, address="10.0.2.1"))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_address_that_failed_too_often_is_refused_for_every_account(path, user):
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(path, f"guess{n}", "wrong", address="10.0.3.1")

    refused_as_throttled(path, login(path, "alice", PASSWORD, address="10.0.3.1"))
    assert succeeded(path, login(path, "alice", PASSWORD, address="10.0.3.2"))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_logins_below_the_limit_are_unaffected(path, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(path, "alice", "wrong")

    assert succeeded(path, login(path, "alice", PASSWORD))
    assert succeeded(path, login(path, "alice", PASSWORD))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_login_works_again_after_the_cool_off(path, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(path, "alice", "wrong")
    pass_time(cool_off() - 60)
    refused = login(path, "alice", PASSWORD)
    refused_as_throttled(path, refused)
    assert 55 <= int(refused["Retry-After"]) <= 60

    pass_time(61)
    assert succeeded(path, login(path, "alice", PASSWORD))


def test_attempts_while_locked_do_not_extend_the_lockout(user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login("/login/", "alice", "wrong")
    pass_time(cool_off() / 2)
    for _ in range(5):
        login("/login/", "alice", "wrong")
    pass_time(cool_off() / 2 + 1)

    assert succeeded("/login/", login("/login/", "alice", PASSWORD))


def test_the_token_endpoint_locks_for_json_bodies_too(user):
    client = Client(REMOTE_ADDR="10.0.4.1")
    body = {"username": "alice", "password": "wrong"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/api/token/", body, content_type="application/json")
    refused_as_throttled("/api/token/", response)
    body["password"] = PASSWORD
    refused_as_throttled(
        "/api/token/", client.post("/api/token/", body, content_type="application/json")
    )


def test_failures_on_one_endpoint_count_on_the_others(user):
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        login(ENDPOINTS[n % 3], "alice", "wrong")

    for path in ENDPOINTS:
        refused_as_throttled(path, login(path, "alice", PASSWORD))


def test_a_forged_forwarded_for_header_does_not_give_a_fresh_address(user):
    for n in range(settings.AXES_FAILURE_LIMIT):
        login("/login/", f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    refused_as_throttled(
        "/login/", login("/login/", "bob", "x", HTTP_X_FORWARDED_FOR="192.0.2.200")
    )


class FakeRequest:
    def __init__(self, remote: str, forwarded: str | None = None) -> None:
        self.META = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            self.META["HTTP_X_FORWARDED_FOR"] = forwarded


def test_client_address_is_the_peer_unless_proxies_are_trusted(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(FakeRequest("10.0.0.9", "1.2.3.4")) == "10.0.0.9"

    settings.TRUSTED_PROXY_COUNT = 1  # one proxy appends the address it saw
    assert client_ip(FakeRequest("10.0.0.9", "6.6.6.6, 1.2.3.4")) == "1.2.3.4"
    assert client_ip(FakeRequest("10.0.0.9", "1.2.3.4")) == "1.2.3.4"
    assert client_ip(FakeRequest("10.0.0.9")) == "10.0.0.9"  # not through the proxy

    settings.TRUSTED_PROXY_COUNT = 2  # a CDN, then our proxy
    assert client_ip(FakeRequest("10.0.0.9", "6.6.6.6, 1.2.3.4, 172.16.0.2")) == "1.2.3.4"
    assert client_ip(FakeRequest("10.0.0.9", "1.2.3.4")) == "10.0.0.9"  # too short: the peer
    assert client_ip(FakeRequest("10.0.0.9", "6.6.6.6, junk, 172.16.0.2")) == "10.0.0.9"
