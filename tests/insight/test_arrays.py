"""The dashboard's task arrays: one row per two-response pairwise task, lengths in characters."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import models
from annotation.insight.arrays import pairwise_tasks
from tests.factories import make_task


@pytest.mark.django_db
def test_pairwise_tasks_rows_lengths_and_systems(project) -> None:
    version = models.ModelVersion.objects.create(
        project=project, name="policy-v1", kind="policy", trainer="dpo"
    )
    good = make_task(project)
    a, b = (tr.response for tr in good.task_responses.order_by("position"))
    models.Response.objects.filter(id=a.id).update(text="Grüße, 世界 👋", source="human-ref")
    models.Response.objects.filter(id=b.id).update(text="plain", model_version=version)
    gold = make_task(project, is_gold=True, gold_answer={"choice": "tie"})
    three = make_task(project, n_responses=3)  # not a two-response task
    one = make_task(project, n_responses=1)
    make_task(project, kind="ranking", n_responses=2)  # another kind
    gap = make_task(project)  # positions 0 and 2: no second response
    gap.task_responses.filter(position=1).update(position=2)

    t = pairwise_tasks(project.id)

    assert t.task_ids.tolist() == sorted([good.id, gold.id])
    row = int(t.index_of(np.array([good.id]))[0])
    assert (t.first[row], t.second[row]) == (a.id, b.id)
    assert (t.first_len[row], t.second_len[row]) == (len("Grüße, 世界 👋"), 5)
    assert t.system_names[int(t.first_sys[row])] == "human-ref"
    assert t.system_names[int(t.second_sys[row])] == "policy-v1"
    assert t.is_gold.tolist() == [False, True]
    assert t.index_of(np.array([three.id, one.id, gap.id])).tolist() == [-1, -1, -1]


@pytest.mark.django_db
def test_pairwise_tasks_of_an_empty_project(project) -> None:
    t = pairwise_tasks(project.id)
    assert len(t.task_ids) == 0
    assert t.index_of(np.array([1, 2])).tolist() == [-1, -1]


def test_index_of_dense_table_equals_binary_search(monkeypatch) -> None:
    from annotation.insight import arrays

    rng = np.random.default_rng(3)
    ids = np.sort(rng.choice(np.arange(10, 5000), 800, replace=False))
    empty = np.zeros(len(ids), dtype=np.int64)
    t = arrays.PairwiseTasks(ids, empty, empty, empty, empty, empty.astype(bool), empty, empty, {})
    queries = rng.integers(-5, 5100, 3000)
    dense = t.index_of(queries)
    monkeypatch.setattr(arrays, "DENSE_LOOKUP_SLACK", -(10**9))  # forces the binary search
    searched = t.index_of(queries)
    np.testing.assert_array_equal(dense, searched)
    hits = dense >= 0
    np.testing.assert_array_equal(ids[dense[hits]], queries[hits])
    assert set(queries[~hits].tolist()).isdisjoint(ids.tolist())


def test_unique_system_codes_equal_numpy() -> None:
    from annotation.insight.leaderboard import _unique_codes

    rng = np.random.default_rng(4)
    for values in (rng.integers(-3, 40, 1000), np.array([-(2**40), 5, 5]), np.array([], int)):
        codes, inverse = _unique_codes(values)
        expected, expected_inverse = np.unique(values, return_inverse=True)
        np.testing.assert_array_equal(codes, expected)
        np.testing.assert_array_equal(inverse, expected_inverse.ravel())


@pytest.mark.django_db
def test_binary_copy_reads_what_the_cursor_reads() -> None:
    """The PostgreSQL path (one binary COPY read by numpy) against the cursor's rows, with
    negative and 64-bit values, and an empty result."""
    from django.db import connection

    from annotation.insight import arrays

    if connection.vendor != "postgresql":
        pytest.skip("the binary COPY path is PostgreSQL only")
    sql = "SELECT g, -g, g * 4000000000, 0 FROM generate_series(1, %s) AS g"
    with connection.cursor() as cursor:
        cursor.execute(sql, [2500])
        rows = cursor.fetchall()
    np.testing.assert_array_equal(arrays.fetch_int_matrix_sql(sql, [2500], 4), np.array(rows))
    assert arrays.fetch_int_matrix_sql(sql, [0], 4).shape == (0, 4)
