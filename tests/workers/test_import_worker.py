"""A large upload end to end on real processes: the web answers 202, a ``celery worker``
subprocess (Redis, PostgreSQL) imports the stored file, and the job's URL shows the outcome."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import ImportJob, Prompt
from tests.factories import ProjectFactory, make_rater
from tests.workers.conftest import wait_for


def row_counts():
    return {m.__name__: m.objects.count() for m in apps.get_app_config("annotation").get_models()}


@pytest.mark.django_db(transaction=True)
def test_a_large_upload_is_imported_by_the_cpu_worker(
    broker, start_worker, api, settings, tmp_path
):
    settings.IMPORT_DIR = tmp_path / "imports"
    settings.IMPORT_SYNC_MAX_BYTES = 1000
    worker = start_worker(broker, IMPORT_DIR=str(settings.IMPORT_DIR))
    project = ProjectFactory(task_kinds=["pairwise"])
    client = api(make_rater(project, role="manager"))

    def upload(content: bytes) -> dict:
        file = SimpleUploadedFile("data.jsonl", content)
        answer = client.post(
            f"/api/projects/{project.id}/import/", {"file": file}, format="multipart"
        )
        assert answer.status_code == 202, answer.content
        return answer.json()

    def outcome(job: dict) -> dict:
        def done() -> bool:
            return client.get(job["url"]).json()["status"] in ("succeeded", "failed")

        wait_for(done, 60, f"import job {job['id']}", worker.tail())
        return client.get(job["url"]).json()

    good = b"".join(
        json.dumps({"prompt": f"q{i}", "chosen": f"yes {i}", "rejected": "no"}).encode() + b"\n"
        for i in range(2000)
    )
    result = outcome(upload(good))
    assert result["status"] == "succeeded", result
    assert result["summary"]["prompts_created"] == 2000
    assert result["summary"]["labels_imported"] == 2000
    assert result["progress"]["progress"] == 1.0
    assert Prompt.objects.filter(project=project).count() == 2000

    before = row_counts()
    bad = good.replace(b'"q5"', b'"q\\u0000"').replace(b'"q7"', b'"q\\ud800"')
    result = outcome(upload(bad))
    assert result["status"] == "failed", result
    assert [e["line"] for e in result["errors"]] == [6, 8]
    assert "prompt: contains a NUL" in result["errors"][0]["reason"]
    assert "prompt: contains a lone surrogate" in result["errors"][1]["reason"]
    assert {**row_counts(), "ImportJob": before["ImportJob"]} == before
    assert ImportJob.objects.count() == 2
    assert list(settings.IMPORT_DIR.iterdir()) == []
