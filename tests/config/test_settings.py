"""The settings under each environment: refused, development, HTTPS, or the plain-HTTP trial.

Settings are read once, at import, so every combination runs in a fresh subprocess
(``tests/config/isolated.py``) with only the variables named here.
"""

from __future__ import annotations

import pytest

from tests.config.isolated import REAL_KEY, deploy_warnings, refusal_under, run, settings_under

# What `check --deploy` must say of the plain-HTTP trial: no HSTS, no redirect, cookies not Secure.
TRIAL_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (None, "not set"),
        ("", "not set"),
        ("   ", "not set"),
        ("dev-only-insecure-key-do-not-use-in-production", "development key"),
        ("django-insecure-" + "x1y2z3" * 10, "development key"),
        ("hunter2", "too weak"),
        ("a" * 60, "too weak"),
        (REAL_KEY[:40], "too weak"),
    ],
)
def test_debug_off_refuses_to_start_without_a_strong_key(key, why):
    env = {"DEBUG": "0"} if key is None else {"DEBUG": "0", "SECRET_KEY": key}

    message = refusal_under(**env)

    assert "SECRET_KEY must be set to a private random value when DEBUG is off" in message
    assert why in message
    assert "secrets.token_urlsafe(50)" in message  # says how to make one


def test_manage_py_refuses_too():
    result = run(["manage.py", "check"], {"DEBUG": "0", "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("key", [None, "", "short"])
def test_debug_on_runs_with_the_development_key_or_any_key(key):
    env = {"DEBUG": "1"} if key is None else {"DEBUG": "1", "SECRET_KEY": key}

    shown = settings_under(**env)

    assert shown["DEBUG"] is True
    assert shown["SECRET_KEY"] == (key or "dev-only-insecure-key-do-not-use-in-production")
    assert shown["SESSION_COOKIE_SECURE"] is False


def test_no_variables_is_the_embedded_default():
    shown = settings_under()
    assert shown["DEBUG"] is True
    assert shown["SECURE_SSL_REDIRECT"] is False


def test_debug_off_with_a_real_key_is_https_only():
    shown = settings_under(DEBUG="0", SECRET_KEY=REAL_KEY)

    assert shown["DEBUG"] is False
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_HSTS_SECONDS"] >= 31536000
    # X-Forwarded-Proto is anyone's to send: trusted only when a TLS proxy is declared.
    assert shown["SECURE_PROXY_SSL_HEADER"] is None


def test_behind_a_tls_proxy_the_forwarded_proto_is_trusted():
    shown = settings_under(DEBUG="0", SECRET_KEY=REAL_KEY, BEHIND_TLS_PROXY="1")

    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["SECURE_SSL_REDIRECT"] is True


@pytest.mark.parametrize("proxy", ["0", "1"])
def test_deploy_checklist_is_clean_in_the_https_modes(proxy):
    assert deploy_warnings(DEBUG="0", SECRET_KEY=REAL_KEY, BEHIND_TLS_PROXY=proxy) == set()


def test_deploy_checklist_is_clean_under_production_settings():
    """The README's promise, every check (not only security's): no warning at all."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {"DEBUG": "0", "SECRET_KEY": REAL_KEY},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_plain_http_trial_is_explicit_and_works_from_another_host():
    shown = settings_under(
        DEBUG="0", SECRET_KEY=REAL_KEY, INSECURE_HTTP="1", ALLOWED_HOSTS="labels.lan,.corp.example"
    )

    assert shown["DEBUG"] is False
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["CSRF_COOKIE_SECURE"] is False
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0
    assert shown["CSRF_TRUSTED_ORIGINS"] == [
        "http://labels.lan",
        "http://labels.lan:8000",
        "http://*.corp.example",
        "http://*.corp.example:8000",
    ]


def test_the_trial_takes_explicit_trusted_origins_as_given():
    shown = settings_under(
        DEBUG="0",
        SECRET_KEY=REAL_KEY,
        INSECURE_HTTP="1",
        CSRF_TRUSTED_ORIGINS="http://10.1.2.3:9000",
    )
    assert shown["CSRF_TRUSTED_ORIGINS"] == ["http://10.1.2.3:9000"]


def test_the_trial_still_needs_a_real_key():
    assert "not set" in refusal_under(DEBUG="0", INSECURE_HTTP="1")


def test_deploy_checklist_names_what_the_trial_gives_up():
    assert deploy_warnings(DEBUG="0", SECRET_KEY=REAL_KEY, INSECURE_HTTP="1") == TRIAL_WARNINGS


def test_plain_http_and_a_tls_proxy_together_are_refused():
    message = refusal_under(DEBUG="0", SECRET_KEY=REAL_KEY, INSECURE_HTTP="1", BEHIND_TLS_PROXY="1")
    assert "contradict" in message


@pytest.mark.parametrize(
    "env",
    [{"LOGIN_FAILURE_LIMIT": "0"}, {"LOGIN_COOLOFF_SECONDS": "0"}, {"TRUSTED_PROXY_COUNT": "-1"}],
)
def test_login_throttle_settings_are_validated(env):
    assert "must be" in refusal_under(**env)
