"""The exports' ``source`` filter: human (default, today's bytes), ai, all."""

from __future__ import annotations

import io
import json

import pytest

from tests.insight import ai_rows

pytestmark = pytest.mark.django_db


def _get(client, project, **params):
    return client.get(f"/api/projects/{project.id}/exports/", params)


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_source_filter(project, manager, api) -> None:
    data = ai_rows.mixed_project(project)
    (a1, b1), (a2, b2), (a3, b3) = data["text"]["t1"], data["text"]["t2"], data["text"]["t3"]
    project.ai_weight, project.ai_min_confidence = 0.25, 0.7
    project.save()
    client = api(manager)

    default = b"".join(_get(client, project).streaming_content)
    human = _rows(_get(client, project, source="human"))
    assert b"".join(_get(client, project, source="human").streaming_content) == default
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in human] == [
        (a1, b1, 2.0),
        (b2, a2, 0.0),
    ]
    assert "weight" not in human[0]

    ai = _rows(_get(client, project, source="ai"))
    assert [(r["chosen"], r["rejected"], r["margin"], r["weight"], r["source"]) for r in ai] == [
        (b1, a1, 0.0, 1.0, "ai"),  # t1 principle 1 (0.6) is below the floor; t2 inconsistent
        (a3, b3, 0.0, 1.0, "ai"),
    ]
    both = _rows(_get(client, project, source="all"))
    assert [(r["chosen"], r["rejected"], r["weight"], r["source"]) for r in both] == [
        (a1, b1, 1.0, "human"),
        (b2, a2, 1.0, "human"),
        (b1, a1, 0.25, "ai"),
        (a3, b3, 0.25, "ai"),
    ]
    manifest = client.get(f"/api/projects/{project.id}/exports/manifest/", {"source": "all"}).json()
    assert manifest["filters"]["source"] == "all"
    assert (manifest["counts"]["rows"], manifest["counts"]["ai_rows"]) == (4, 2)
    assert manifest["counts"]["skipped"]["ai_below_min_confidence"] == 1


def test_parquet_has_the_weight_and_source_columns(project, manager, api) -> None:
    import pyarrow.parquet as pq

    ai_rows.mixed_project(project)
    response = _get(api(manager), project, source="all", file="parquet")
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.column_names == ["prompt", "chosen", "rejected", "margin", "weight", "source"]
    assert table.column("source").to_pylist().count("ai") == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [({"source": "robots"}, "source"), ({"source": "ai", "dataset": "sft"}, "source")],
)
def test_bad_source_is_400(project, manager, api, params, field) -> None:
    response = _get(api(manager), project, **params)
    assert response.status_code == 400
    assert response.json()["field"] == field
