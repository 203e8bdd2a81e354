"""``Response.text_chars``: the database keeps every response's length, whatever wrote the row."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotation.models import Response
from annotation.services.assignment import assignment_claim_next
from annotation.services.imports import import_jsonl
from annotation.services.judgments import judgment_submit
from tests.factories import PromptFactory, make_task

# Python's len: code points. "é" is one (two UTF-8 bytes), the emoji one (four bytes).
TEXTS = ["", "plain", "héllo wörld", "答案是四十二", "ok 👍", "line\nbreak\ttab"]


def assert_lengths_match() -> None:
    rows = list(Response.objects.values_list("text", "text_chars"))
    assert rows
    assert [chars for _, chars in rows] == [len(text) for text, _ in rows]


@pytest.mark.django_db
def test_create_and_bulk_create_store_the_length_in_characters():
    prompt = PromptFactory()
    one = Response.objects.create(prompt=prompt, text="héllo 👍")
    assert one.text_chars == 7  # returned by the INSERT, no reload needed
    Response.objects.bulk_create([Response(prompt=prompt, text=t) for t in TEXTS])
    Response.objects.bulk_create(
        [Response(prompt=prompt, text="x" * 5000)],
        ignore_conflicts=True,  # the workers' path
    )
    assert_lengths_match()


@pytest.mark.django_db
def test_length_follows_every_text_change_and_raw_sql():
    prompt = PromptFactory()
    response = Response.objects.create(prompt=prompt, text="short")
    response.text = "a good deal longer"
    response.save()
    response.refresh_from_db()
    assert response.text_chars == 18
    Response.objects.filter(id=response.id).update(text="ü")
    table = Response._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (text, origin, source, generation_params, created_at, prompt_id)"
            " VALUES (%s, 'imported', '', '{}', CURRENT_TIMESTAMP, %s)",
            ["written by hand ✓", prompt.id],
        )
    assert_lengths_match()
    assert Response.objects.get(id=response.id).text_chars == 1


@pytest.mark.django_db
def test_import_and_demonstration_paths(project, rater):
    import_jsonl(
        project=project,
        stream=io.BytesIO('{"prompt": "q", "chosen": "Grüße aus Köln", "rejected": "no"}'.encode()),
    )
    make_task(project, kind="demonstration", n_responses=1, priority=5)
    assignment = assignment_claim_next(project=project, rater=rater).assignment
    judgment_submit(assignment_id=assignment.id, rater=rater, body={"text": "Écrit à la main."})
    assert Response.objects.filter(origin="human").get().text_chars == 16
    assert_lengths_match()


@pytest.mark.django_db(transaction=True)
def test_migration_backfills_existing_rows():
    executor = MigrationExecutor(connection)
    before = [("annotation", "0001_initial")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        project = old.get_model("annotation", "Project").objects.create(name="M", slug="m")
        prompt = old.get_model("annotation", "Prompt").objects.create(
            project=project, messages=[], content_hash="h"
        )
        for text in TEXTS:
            old.get_model("annotation", "Response").objects.create(prompt=prompt, text=text)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert Response.objects.count() == len(TEXTS)
    assert_lengths_match()
