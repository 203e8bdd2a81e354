from __future__ import annotations

import shutil
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, make_rater


@pytest.fixture
def project(db):
    return ProjectFactory(overlap=2)


@pytest.fixture
def rater(project):
    return make_rater(project)


@pytest.fixture
def manager(project):
    return make_rater(project, role="manager")


@pytest.fixture
def api():
    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Each test gets an empty in-process cache: no state leaks between tests or CI runs."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": uuid.uuid4().hex,
        }
    }


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory):
    """The real SmolLM2-135M-Instruct, converted once per test run from the packaged GGUF
    (``training.base_models``; ~20 s, 540 MB, removed at the end): an ``InstallResult``."""
    from training.base_models import install_base_model

    root = tmp_path_factory.mktemp("base-models")
    yield install_base_model("smollm2-135m-instruct", root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["statement", "orm"])
def write_path(request, monkeypatch):
    """Run a test through both implementations of claim and submit: the single PostgreSQL
    statements and the ORM path (the one SQLite uses, and PostgreSQL's fallback)."""
    from annotation.services import pg_statements

    if request.param == "statement":
        if connection.vendor != "postgresql":
            pytest.skip("the single-statement path is PostgreSQL only")
    else:
        monkeypatch.setattr(pg_statements, "enabled", lambda: False)
    return request.param
