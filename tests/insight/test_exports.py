"""Exports: round trip through `datasets` and `training`, filters, aggregation, access."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from datetime import timedelta
from itertools import combinations

import pytest
from datasets import load_dataset
from django.core.management import call_command
from django.utils import timezone

from annotation import models
from tests.factories import ProjectFactory, make_rater, make_task
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters
from training.contract.render import standard_prompt

pytestmark = pytest.mark.django_db


def _download(client, project, **params) -> bytes:
    response = client.get(f"/api/projects/{project.id}/exports/", params)
    assert response.status_code == 200, getattr(response, "content", b"")[:300]
    return b"".join(response.streaming_content)


def _jsonl(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _expected_pairs(project) -> Counter:
    """Pairs straight from the rows (the oracle the export is compared with)."""
    out: Counter = Counter()
    for j in models.Judgment.objects.filter(
        project=project, kind="pairwise", choice__in=["A", "B"], task__is_gold=False
    ).select_related("task__prompt", "preferred_response"):
        other = j.task.responses.exclude(id=j.preferred_response_id).get()
        out[
            (
                j.task.prompt.messages[0]["content"],
                j.preferred_response.text,
                other.text,
                float(j.strength - 1),
            )
        ] += 1
    return out


@pytest.fixture
def judged(project):
    raters = make_raters(project, 3)
    tasks = make_pairwise_tasks(project, 30)
    judge_pairwise(project, tasks, raters, seed=1, first_wins_prob=0.8, tie_prob=0.1)
    return raters, tasks


def test_jsonl_round_trip_via_datasets(project, manager, api, judged, tmp_path) -> None:
    body = _download(api(manager), project, dataset="preference")
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(body)
    ds = load_dataset("json", data_files=str(path), split="train")
    got = Counter((r["prompt"], r["chosen"], r["rejected"], r["margin"]) for r in ds)
    expected = _expected_pairs(project)
    assert len(ds) == expected.total() > 60  # one row per A/B judgment, ties give none
    assert got == expected


def test_parquet_round_trip_via_datasets(project, manager, api, judged, tmp_path) -> None:
    body = _download(api(manager), project, dataset="preference", file="parquet")
    assert body[:4] == b"PAR1"
    path = tmp_path / "pairs.parquet"
    path.write_bytes(body)
    ds = load_dataset("parquet", data_files=str(path), split="train")
    got = Counter((r["prompt"], r["chosen"], r["rejected"], r["margin"]) for r in ds)
    assert got == _expected_pairs(project)


def test_conversational_parquet_and_training_loader(
    project, manager, api, judged, tmp_path
) -> None:
    from training.records import load_jsonl

    client = api(manager)
    body = _download(client, project, dataset="preference", style="conversational")
    rows = _jsonl(body)
    assert rows[0]["prompt"][0]["role"] == "user"
    assert rows[0]["chosen"][0]["role"] == "assistant"
    path = tmp_path / "conv.jsonl"
    path.write_bytes(body)
    records, report = load_jsonl(path, "preference")
    assert report.kept == len(rows) == _expected_pairs(project).total()
    got = Counter((r.prompt[0]["content"], r.chosen, r.rejected, r.margin) for r in records)
    assert got == _expected_pairs(project)
    pq_path = tmp_path / "conv.parquet"
    pq_path.write_bytes(
        _download(client, project, dataset="preference", style="conversational", file="parquet")
    )
    ds = load_dataset("parquet", data_files=str(pq_path), split="train")
    assert ds[0]["chosen"] == [{"role": "assistant", "content": ds[0]["chosen"][0]["content"]}]
    assert len(ds) == len(rows)


def test_manifest_hash_matches_download(project, manager, api, judged) -> None:
    client = api(manager)
    for file in ("jsonl", "parquet"):
        body = _download(client, project, dataset="preference", file=file)
        manifest = client.get(
            f"/api/projects/{project.id}/exports/manifest/", {"dataset": "preference", "file": file}
        ).json()
        assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["bytes"] == len(body)
        assert manifest["counts"]["rows"] == _expected_pairs(project).total()
        assert manifest["counts"]["judgments"] == 90
        assert manifest["counts"]["tasks"] == 30


def _ranking_task(project, rater, groups_of_positions, n=4):
    task = make_task(project, kind="ranking", n_responses=n)
    ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
    ranking = [[ids[p] for p in group] for group in groups_of_positions]
    models.Judgment.objects.create(
        task=task,
        project=project,
        rater=rater,
        kind="ranking",
        payload={"ranking": ranking},
        display_order=ids,
    )
    return task, ids


def test_ranking_expands_to_all_pairs(project, manager, api) -> None:
    rater = make_rater(project)
    task, ids = _ranking_task(project, rater, [[0], [1], [2], [3]])
    rows = _jsonl(_download(api(manager), project, dataset="preference", kinds="ranking"))
    assert len(rows) == 6  # C(4, 2)
    texts = dict(models.Response.objects.filter(id__in=ids).values_list("id", "text"))
    expected = {
        (texts[ids[a]], texts[ids[b]], float(b - a - 1)) for a, b in combinations(range(4), 2)
    }
    assert {(r["chosen"], r["rejected"], r["margin"]) for r in rows} == expected
    # A tie group gives no pair inside it: [[0, 1], [2, 3]] -> 4 pairs.
    other = make_task(project, kind="ranking", n_responses=4)
    assert other.id != task.id
    _ranking_task(project, rater, [[0, 1], [2, 3]])
    rows = _jsonl(_download(api(manager), project, dataset="preference", kinds="ranking"))
    assert len(rows) == 10


def test_kto_from_thumbs_and_sft_from_demonstrations(project, manager, api) -> None:
    rater = make_rater(project)
    task = make_task(project, kind="rating", n_responses=2)
    a, b = task.task_responses.order_by("position").values_list("response_id", flat=True)
    models.Judgment.objects.create(
        task=task,
        project=project,
        rater=rater,
        kind="rating",
        display_order=[a, b],
        payload={"ratings": [{"response": a, "thumb": "up"}, {"response": b, "thumb": "down"}]},
    )
    demo = make_task(project, kind="demonstration", n_responses=1)
    models.Judgment.objects.create(
        task=demo,
        project=project,
        rater=rater,
        kind="demonstration",
        payload={"text": "The ideal answer.", "based_on": None},
    )
    client = api(manager)
    kto = _jsonl(_download(client, project, dataset="unpaired"))
    texts = dict(models.Response.objects.filter(id__in=[a, b]).values_list("id", "text"))
    assert {(r["completion"], r["label"]) for r in kto} == {(texts[a], True), (texts[b], False)}
    sft = _jsonl(_download(client, project, dataset="sft", style="conversational"))
    assert sft == [
        {"messages": [*demo.prompt.messages, {"role": "assistant", "content": "The ideal answer."}]}
    ]
    sft_std = _jsonl(_download(client, project, dataset="sft"))
    assert sft_std == [
        {"prompt": standard_prompt(demo.prompt.messages), "completion": "The ideal answer."}
    ]


def test_majority_aggregation(project, manager, api) -> None:
    raters = make_raters(project, 3)
    tasks = make_pairwise_tasks(project, 3)
    # Task 0: 3 of 3 prefer the first response; task 1: 2 of 3 prefer the second; task 2: ties.
    judge_pairwise(project, tasks[:1], raters, first_wins_prob=1.0, seed=2)
    judge_pairwise(project, tasks[1:2], raters[:2], first_wins_prob=0.0, seed=3)
    judge_pairwise(project, tasks[1:2], raters[2:], first_wins_prob=1.0, seed=4)
    judge_pairwise(project, tasks[2:], raters, tie_prob=1.0, seed=5)
    client = api(manager)
    every = _jsonl(_download(client, project, dataset="preference"))
    assert len(every) == 6
    majority = _jsonl(_download(client, project, dataset="preference", aggregation="majority"))
    assert len(majority) == 2
    by_prompt = {r["prompt"]: r for r in majority}
    t0, r0 = tasks[0]
    t1, r1 = tasks[1]
    assert by_prompt[t0.prompt.messages[0]["content"]]["chosen"] == r0[0].text
    assert by_prompt[t1.prompt.messages[0]["content"]]["chosen"] == r1[1].text
    # min_agreement 0.9 keeps only the unanimous task (task 1 has 2/3, ties are unanimous but
    # give no pair).
    strict = _jsonl(
        _download(client, project, dataset="preference", aggregation="majority", min_agreement=0.9)
    )
    assert [r["prompt"] for r in strict] == [t0.prompt.messages[0]["content"]]


def test_filters_excluded_raters_gold_dates_kinds(project, manager, api) -> None:
    raters = make_raters(project, 2)
    tasks = make_pairwise_tasks(project, 5)
    old = timezone.now() - timedelta(days=10)
    judge_pairwise(project, tasks, raters[:1], first_wins_prob=1.0, seed=6)
    js = judge_pairwise(project, tasks, raters[1:], first_wins_prob=1.0, seed=7)
    models.Judgment.objects.filter(id__in=[j.id for j in js]).update(created_at=old)
    gold = make_pairwise_tasks(project, 2, is_gold=True, start=50)
    judge_pairwise(project, gold, raters[:1], first_wins_prob=1.0, seed=8)
    client = api(manager)

    def count(**params):
        return len(_jsonl(_download(client, project, dataset="preference", **params)))

    assert count() == 10
    assert count(gold="include") == 12
    assert count(gold="only") == 2
    day = (timezone.now() - timedelta(days=10)).date().isoformat()
    assert count(date_from=day, date_to=day) == 5
    assert count(date_from=(timezone.now() - timedelta(days=1)).date().isoformat()) == 5
    assert count(kinds="ranking") == 0
    response = client.post(
        f"/api/projects/{project.id}/raters/{raters[1].id}/exclusion/",
        {"reason": "careless"},
        format="json",
    )
    assert response.status_code == 201
    assert count() == 5
    assert count(include_excluded="true") == 10
    assert (
        client.delete(f"/api/projects/{project.id}/raters/{raters[1].id}/exclusion/").status_code
        == 200
    )
    assert count() == 10


def test_bad_parameters_are_400(project, manager, api) -> None:
    client = api(manager)
    for params, field in [
        ({"dataset": "bogus"}, "dataset"),
        ({"file": "csv"}, "file"),
        ({"min_agreement": "2"}, "min_agreement"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"kinds": "demonstration"}, "kinds"),
        ({"gold": "maybe"}, "gold"),
        ({"include_excluded": "perhaps"}, "include_excluded"),
    ]:
        response = client.get(f"/api/projects/{project.id}/exports/", params)
        assert response.status_code == 400, params
        assert field in response.json()["error"]


def test_exclusion_is_recorded_and_reversible(project, manager, api) -> None:
    rater = make_rater(project)
    client = api(manager)
    url = f"/api/projects/{project.id}/raters/{rater.id}/exclusion/"
    assert client.post(url, {"reason": "too fast"}, format="json").status_code == 201
    again = client.post(url, {}, format="json")
    assert again.status_code == 409
    assert client.delete(url).status_code == 200
    assert client.delete(url).status_code == 409
    history = client.get(f"/api/projects/{project.id}/exclusions/").json()
    assert len(history) == 1
    assert history[0]["reason"] == "too fast"
    assert history[0]["excluded_by"] == manager.username
    assert history[0]["lifted_by"] == manager.username
    stranger = make_rater(ProjectFactory())
    outsider_url = f"/api/projects/{project.id}/raters/{stranger.id}/exclusion/"
    assert client.post(outsider_url, {}, format="json").status_code == 404


ENDPOINTS = [
    ("get", "/api/projects/{p}/insight/"),
    ("get", "/api/projects/{p}/insight/raters.csv"),
    ("get", "/api/projects/{p}/exclusions/"),
    ("post", "/api/projects/{p}/raters/{r}/exclusion/"),
    ("delete", "/api/projects/{p}/raters/{r}/exclusion/"),
    ("get", "/api/projects/{p}/exports/"),
    ("get", "/api/projects/{p}/exports/manifest/"),
    ("get", "/manage/projects/{p}/"),
    ("get", "/manage/projects/{p}/raters/"),
    ("get", "/manage/projects/{p}/leaderboard/"),
    ("get", "/manage/projects/{p}/exports/"),
    ("get", "/manage/projects/{p}/exports/download/"),
    ("get", "/manage/projects/{p}/csv/raters/"),
    ("post", "/manage/projects/{p}/raters/{r}/exclusion/"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_other_projects_rater_gets_404_and_labeler_403(project, judged, method, url) -> None:
    from django.test import Client

    raters, _ = judged
    outsider = make_rater(ProjectFactory(), role="manager")
    target = url.format(p=project.id, r=raters[0].id)
    for user, status in ((outsider, 404), (raters[1], 403)):
        client = Client()
        client.force_login(user)
        response = getattr(client, method)(target)
        assert response.status_code == status, (user, target, response.status_code)
        if target.startswith("/api/") and status == 404:
            assert "not found" in response.json()["error"].lower()


def test_management_command_writes_file_and_manifest(project, judged, tmp_path) -> None:
    out = tmp_path / "pairs.parquet"
    stdout = io.StringIO()
    call_command(
        "export_training_data",
        "--project",
        project.slug,
        "--out",
        str(out),
        "--aggregation",
        "majority",
        stdout=stdout,
    )
    manifest = json.loads((tmp_path / "pairs.parquet.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["file_format"] == "parquet"
    assert manifest["filters"]["aggregation"] == "majority"
    ds = load_dataset("parquet", data_files=str(out), split="train")
    assert len(ds) == manifest["counts"]["rows"] > 0
    assert json.loads(stdout.getvalue())["sha256"] == manifest["sha256"]


def test_jsonl_encoder_is_json_dumps_byte_for_byte() -> None:
    from annotation.services.exports import _jsonl

    prompt = [{"role": "user", "content": 'Grüße "quoted" \n ✓'}]
    text = "répons\u00e9 <b>&</b>"
    rows = [
        {"prompt": prompt, "chosen": text, "rejected": "x", "margin": 2.0},
        {"prompt": prompt, "chosen": "x", "rejected": text, "margin": 0.0},
        {"prompt": "plain", "completion": text, "label": False},
    ]
    expected = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    assert b"".join(_jsonl(iter(rows))) == expected
