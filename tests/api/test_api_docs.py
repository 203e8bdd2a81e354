"""``/api/schema/`` and ``/api/docs/``: public by default, private with ``API_DOCS_PUBLIC=0``,
and the docs page runs under the site's CSP without an exception."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.middleware import CONTENT_SECURITY_POLICY
from tests.csp import inline_code

pytestmark = pytest.mark.django_db


def test_schema_and_docs_are_public_by_default():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/projects/" in schema.json()["paths"]
    assert Client().get("/api/docs/").status_code == 200


def test_the_docs_page_is_csp_clean_with_the_site_policy():
    page = Client().get("/api/docs/")

    assert page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in page["Content-Security-Policy"]
    html = page.content.decode()
    assert inline_code(html) == []
    assert '<script src="/api/docs/?script="></script>' in html
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_with_docs_private_anonymous_callers_are_refused(settings):
    settings.API_DOCS_PUBLIC = False

    schema = APIClient().get("/api/schema/")
    assert schema.status_code == 401
    docs = Client().get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"] == "/login/?next=/api/docs/"
    assert APIClient().get("/api/").json()["docs_public"] is False


def test_with_docs_private_members_and_token_holders_get_them(settings, rater):
    settings.API_DOCS_PUBLIC = False
    browser = Client()
    browser.force_login(rater)
    token = Token.objects.create(user=rater)

    assert browser.get("/api/docs/").status_code == 200
    assert browser.get("/api/docs/?script=").status_code == 200
    by_token = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/schema/")
    assert by_token.status_code == 200
