"""POST /api/projects/<id>/import/ and the background import job: what the probe of the running
site found (500s on bad characters, deep nesting and NaN; a 20 MB prompt accepted; a 50 MB line
holding a web worker), the 202 + job contract for large uploads, and the job's status URL."""

from __future__ import annotations

import json
import time

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.errors import ValidationFailed
from annotation.models import ImportJob, Prompt, Response
from annotation.services import import_jobs
from tests.factories import ProjectFactory, make_rater

pytestmark = pytest.mark.django_db
GOOD = b'{"prompt": "fine", "responses": ["ok", "good"]}\n'


def row_counts():
    return {m.__name__: m.objects.count() for m in apps.get_app_config("annotation").get_models()}


def upload(client, project, content: bytes, name: str = "data.jsonl", **extra):
    file = SimpleUploadedFile(name, content, content_type="application/jsonl")
    return client.post(
        f"/api/projects/{project.id}/import/", {"file": file, **extra}, format="multipart"
    )


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"
    return settings.IMPORT_DIR


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b'{"prompt": "a\\u0000b", "responses": ["x", "y"]}', "prompt: contains a NUL"),
        (b'{"prompt": "q", "responses": ["x", "\\ud83d"]}', "responses[1]: contains a lone"),
        (b'{"prompt": "q", "responses": ["x"], "metadata": {"k\\u0000": 1}}', "metadata: a key"),
        (b'{"prompt": "q", "responses": ["x"], "metadata": {"s": NaN}}', "metadata.s: nan"),
        (
            b'{"prompt": "q", "responses": ["x"], "metadata": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}",
            "nested deeper",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    ],
)
def test_bad_characters_nesting_and_nan_are_400_naming_line_and_field(
    api, project, manager, settings, line, field
):
    settings.IMPORT_SYNC_MAX_BYTES = 1_000_000  # the deep lines are 200 kB: still in the request
    before = row_counts()
    response = upload(api(manager), project, GOOD + line + b"\n" + GOOD)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "1 bad line(s): line 2: " in error
    assert field in error
    assert row_counts() == before


def test_small_upload_is_imported_in_the_request(api, project, manager, settings):
    lines = b"\n".join(
        json.dumps({"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad"}).encode()
        for i in range(5)
    )
    assert len(lines) < settings.IMPORT_SYNC_MAX_BYTES
    response = upload(api(manager), project, lines)
    assert response.status_code == 201
    assert response.json()["prompts_created"] == 5
    assert not ImportJob.objects.exists()


def _big_file(n: int = 3000) -> bytes:
    return b"".join(
        json.dumps({"prompt": f"question {i}", "chosen": f"yes {i}", "rejected": "no"}).encode()
        + b"\n"
        for i in range(n)
    )


def test_large_upload_is_stored_queued_and_enqueued_on_commit(
    api, project, manager, settings, import_dir, django_capture_on_commit_callbacks, monkeypatch
):
    settings.IMPORT_SYNC_MAX_BYTES = 1000
    sent: list[int] = []
    monkeypatch.setattr(import_jobs, "enqueue_import", sent.append)
    content = _big_file()
    before = row_counts()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(api(manager), project, content, name="prefs.jsonl")

    assert response.status_code == 202, response.content
    body = response.json()
    job = ImportJob.objects.get()
    assert body["id"] == job.id
    assert body["url"] == f"/api/projects/{project.id}/imports/{job.id}/"
    assert body["status"] == "queued"
    assert (job.original_name, job.total_bytes, job.created_by) == (
        "prefs.jsonl",
        len(content),
        manager,
    )
    assert (import_dir / job.file_name).read_bytes() == content
    assert [p.name for p in import_dir.iterdir()] == [job.file_name]  # no partial file left
    assert {**row_counts(), "ImportJob": 0} == before  # nothing imported yet
    assert len(callbacks) == 1
    assert sent == []  # the message goes out only after the commit
    callbacks[0]()
    assert sent == [job.id]

    from workers.tasks import run_import_job

    assert run_import_job(job.id) == "succeeded"  # the task function, run here
    assert run_import_job(job.id) == "skipped"  # a duplicate message does nothing
    status = api(manager).get(body["url"]).json()
    assert status["status"] == "succeeded"
    assert status["summary"]["prompts_created"] == 3000
    assert status["summary"]["labels_imported"] == 3000
    assert status["progress"]["progress"] == 1.0
    assert status["progress"]["bytes_done"] == len(content)
    assert Prompt.objects.filter(project=project).count() == 3000
    assert not (import_dir / job.file_name).exists()  # removed when the job ended


def test_a_bad_large_upload_fails_with_every_bad_line_and_writes_nothing(
    api, project, manager, settings, import_dir, monkeypatch
):
    settings.IMPORT_SYNC_MAX_BYTES = 1000
    monkeypatch.setattr(import_jobs, "enqueue_import", lambda job_id: None)
    content = _big_file(200) + b'{"prompt": "q\\u0000"}\n' + _big_file(2) + b"{oops\n"
    before = row_counts()
    response = upload(api(manager), project, content)
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert import_jobs.import_job_run(job_id=job.id) == "failed"

    status = api(manager).get(response.json()["url"]).json()
    assert status["status"] == "failed"
    assert status["error_count"] == 2
    assert status["errors"][0] == {"line": 201, "reason": status["errors"][0]["reason"]}
    assert "prompt: contains a NUL" in status["errors"][0]["reason"]
    assert status["errors"][1]["line"] == 204
    assert "nothing was changed" in status["error"]
    assert {**row_counts(), "ImportJob": 0} == before
    assert list(import_dir.iterdir()) == []


def test_a_twenty_megabyte_prompt_is_refused(api, project, manager, settings, monkeypatch):
    monkeypatch.setattr(import_jobs, "enqueue_import", lambda job_id: None)
    content = json.dumps({"prompt": "p" * 20_000_000, "responses": ["a", "b"]}).encode()
    before = row_counts()
    response = upload(api(manager), project, content)
    if response.status_code == 202:  # large: the worker's job refuses it
        import_jobs.import_job_run(job_id=response.json()["id"])
        job = ImportJob.objects.get()
        assert job.status == "failed"
        assert job.errors[0]["line"] == 1
        assert "longer than" in job.errors[0]["reason"]
        before["ImportJob"] = 1
    else:
        assert response.status_code == 400
    assert row_counts() == before
    assert not Response.objects.exists()


def test_a_fifty_megabyte_line_does_not_hold_the_request(api, project, manager, monkeypatch):
    monkeypatch.setattr(import_jobs, "enqueue_import", lambda job_id: None)
    content = b'{"prompt": "' + b"a" * 50_000_000 + b'", "responses": ["x"]}\n'
    client = api(manager)
    t0 = time.perf_counter()
    response = upload(client, project, content)
    seconds = time.perf_counter() - t0
    print(f"50 MB line: the request took {seconds:.2f} s")
    assert response.status_code == 202
    t0 = time.perf_counter()
    assert import_jobs.import_job_run(job_id=response.json()["id"]) == "failed"
    print(f"50 MB line: the worker refused it in {time.perf_counter() - t0:.2f} s")
    assert "longer than 4000000 bytes" in ImportJob.objects.get().errors[0]["reason"]


def test_declared_oversized_body_is_413_before_it_is_read(api, project, manager, settings):
    settings.IMPORT_MAX_BYTES = 10
    response = upload(api(manager), project, GOOD * 10_000)
    assert response.status_code == 413
    assert "larger than 10 bytes" in response.json()["error"]
    assert not ImportJob.objects.exists()


def test_a_bad_file_name_is_refused(project, manager, import_dir):
    # Django's multipart parser drops unprintable characters from names; the service checks too.
    upload = SimpleUploadedFile("a\x00b.jsonl", GOOD)
    with pytest.raises(ValidationFailed, match="file name contains a NUL"):
        import_jobs.import_job_create(project=project, user=manager, upload=upload)
    assert not ImportJob.objects.exists()
    assert not import_dir.exists() or list(import_dir.iterdir()) == []


def test_the_job_url_is_for_managers_of_its_project(api, project, manager, settings, monkeypatch):
    settings.IMPORT_SYNC_MAX_BYTES = 10
    monkeypatch.setattr(import_jobs, "enqueue_import", lambda job_id: None)
    url = upload(api(manager), project, GOOD * 10).json()["url"]
    assert api(manager).get(url).status_code == 200
    assert api(make_rater(project)).get(url).status_code == 403
    stranger = make_rater(ProjectFactory(), role="manager")
    assert api(stranger).get(url).status_code == 404
    other = ProjectFactory()
    make_rater(other, role="manager", username="both")
    job = ImportJob.objects.get()
    assert api(manager).get(f"/api/projects/{other.id}/imports/{job.id}/").status_code == 404


def test_progress_while_writing_comes_from_the_cache(project, settings, monkeypatch):
    job = ImportJob.objects.create(project=project, file_name="x.jsonl", total_bytes=1000)
    reporter = import_jobs._Reporter(job)
    reporter("checking", 10, 400)
    job.refresh_from_db()
    assert (job.phase, job.lines_done, job.bytes_done) == ("checking", 10, 400)
    job.status = "running"
    assert import_jobs.import_job_progress(job)["progress"] == 0.2
    reporter.last = 0.0
    reporter("writing", 20, 500)  # inside the import's transaction: not on the row
    job.refresh_from_db()
    assert job.phase == "checking"
    job.status = "running"
    live = import_jobs.import_job_progress(job)
    assert live == {"phase": "writing", "lines_done": 20, "bytes_done": 500, "progress": 0.75}


def test_a_job_whose_worker_died_is_claimed_again_then_given_up(project, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - import_jobs.TIME_LIMIT - timedelta(minutes=1)
    job = ImportJob.objects.create(
        project=project, file_name="gone.jsonl", status="running", started_at=long_ago, attempts=1
    )
    assert import_jobs.import_job_run(job_id=job.id) == "failed"  # claimed; its file is gone
    job.refresh_from_db()
    assert (job.attempts, job.error) == (2, "The uploaded file is gone; upload again.")

    job = ImportJob.objects.create(
        project=project, file_name="x.jsonl", status="running", started_at=long_ago, attempts=3
    )
    assert import_jobs.import_job_run(job_id=job.id) == "skipped"
    job.refresh_from_db()
    assert job.status == "failed"
    assert "stopped during this import 3 times" in job.error
    recent = ImportJob.objects.create(
        project=project, file_name="y.jsonl", status="running", started_at=timezone.now()
    )
    assert import_jobs.import_job_run(job_id=recent.id) == "skipped"  # alive elsewhere
    recent.refresh_from_db()
    assert recent.status == "running"


def test_lost_messages_are_resent_by_the_tick(project, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    sent: list[int] = []
    monkeypatch.setattr(import_jobs, "enqueue_import", sent.append)
    job = ImportJob.objects.create(project=project, file_name="x.jsonl")
    assert import_jobs.import_requeue_stale() == []
    assert import_jobs.import_requeue_stale(now=timezone.now() + timedelta(minutes=11)) == [job.id]
    assert sent == [job.id]


def test_the_task_time_limit_is_the_one_the_service_assumes():
    from workers.tasks import IMPORT_SECONDS, run_import_job

    assert import_jobs.TIME_LIMIT.total_seconds() == IMPORT_SECONDS
    assert run_import_job.time_limit == IMPORT_SECONDS
    from config.celery import TASK_ROUTES

    assert TASK_ROUTES[import_jobs.RUN_IMPORT_TASK] == {"queue": "cpu"}
