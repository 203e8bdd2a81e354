"""Pages the site itself serves outside the app's templates keep to the Content-Security-Policy."""

from __future__ import annotations

from django.test import Client

from tests.csp import inline_code


def test_the_admin_keeps_scripts_to_files():
    page = Client().get("/admin/login/")
    assert "script-src 'self';" in page["Content-Security-Policy"]
    assert (
        "unsafe-inline" not in page["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )


def test_the_csrf_failure_page_is_csp_clean(db):
    page = Client(enforce_csrf_checks=True).post("/login/", {"username": "a", "password": "b"})

    assert page.status_code == 403
    assert "This form has expired" in page.content.decode()
    assert inline_code(page.content.decode()) == []
