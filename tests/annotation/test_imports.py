"""JSONL import: the three accepted forms, all-or-nothing, tasks and imported labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.errors import ValidationFailed
from annotation.importers import parse_jsonl
from annotation.models import Judgment, Prompt, Response, Task
from annotation.services.imports import import_jsonl

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HH_FILE = SHARED_DATA / "hh-rlhf" / "harmless-sample.jsonl"


def lines(*objs):
    return [json.dumps(o) for o in objs]


def test_hh_rlhf_prompt_is_the_shared_prefix():
    dialogue = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant:"
    parsed = parse_jsonl(
        lines({"chosen": dialogue + " A good joke.", "rejected": dialogue + " No."})
    )
    assert not parsed.errors
    record = parsed.records[0]
    assert record.messages == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    assert record.responses == ["A good joke.", "No."]
    assert record.preferred == (0, 1)


def test_trl_standard_and_conversational_forms():
    parsed = parse_jsonl(
        lines(
            {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                ],
                "chosen": [{"role": "assistant", "content": "Paris"}],
                "rejected": [{"role": "assistant", "content": "Lyon"}],
            },
        )
    )
    assert not parsed.errors
    assert parsed.records[1].messages[0] == {"role": "system", "content": "Be brief."}
    assert parsed.records[1].responses == ["Paris", "Lyon"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"prompt": "q"}', "unrecognised line"),
        ('{"prompt": "q", "responses": "a"}', "list of strings"),
        ('{"prompt": "", "responses": ["a"]}', "prompt is empty"),
        ('{"prompt": "q", "responses": ["a", ""]}', "responses[1]"),
        ('{"prompt": "q", "responses": ["a", "a"]}', "same text twice"),
        ('{"prompt": "q", "chosen": "a", "rejected": "a"}', "identical"),
        ('{"prompt": [{"role": "robot", "content": "x"}], "responses": ["a"]}', "role"),
        ('{"chosen": "no turns", "rejected": "at all"}', "Assistant"),
    ],
)
def test_bad_lines_are_reported_with_number_and_reason(line, reason):
    parsed = parse_jsonl(['{"prompt": "fine", "responses": ["ok", "good"]}', line])
    assert parsed.errors
    number, why = parsed.errors[0]
    assert number == 2
    assert reason in why


@pytest.mark.django_db
def test_bad_file_changes_nothing(project):
    good = {"prompt": "q1", "responses": ["a", "b"]}
    with pytest.raises(ValidationFailed, match="line 2: invalid JSON"):
        import_jsonl(project=project, lines=[json.dumps(good), "{oops"])
    assert Prompt.objects.count() == 0
    assert Response.objects.count() == 0
    assert Task.objects.count() == 0


@pytest.mark.django_db
def test_import_creates_tasks_per_project_settings_and_labels(project):
    project.task_kinds = ["pairwise", "ranking"]
    project.ranking_size = 3
    project.save()
    summary = import_jsonl(
        project=project,
        lines=lines(
            {"prompt": "q1", "responses": ["a", "b", "c", "d"]},
            {"prompt": "q2", "chosen": "good", "rejected": "bad"},
        ),
    )
    # q1: C(4,2)=6 pairs + one 3-way ranking; q2: one pair (too few for a ranking).
    assert summary.tasks_created == 8
    assert Task.objects.filter(kind="ranking").get().task_responses.count() == 3
    label = Judgment.objects.get()
    assert label.source == "imported"
    assert label.rater is None
    assert Response.objects.get(id=label.preferred_response_id).text == "good"
    assert all(t.required_judgments == project.overlap for t in Task.objects.all())


@pytest.mark.django_db
def test_reimport_reuses_prompts_and_split_is_stable(project):
    project.eval_share = 0.5
    project.save()
    data = lines(*({"prompt": f"question {i}", "responses": ["x", "y"]} for i in range(40)))
    import_jsonl(project=project, lines=data)
    splits = dict(Prompt.objects.values_list("content_hash", "split"))
    summary = import_jsonl(project=project, lines=data)
    assert summary.prompts_created == 0
    assert summary.prompts_reused == 40
    assert dict(Prompt.objects.values_list("content_hash", "split")) == splits
    assert 5 < list(splits.values()).count("eval") < 35


@pytest.mark.django_db
@pytest.mark.skipif(not HH_FILE.exists(), reason="shared HH-RLHF sample not present")
def test_real_hh_rlhf_sample_imports_whole(project):
    project.task_kinds = ["pairwise"]
    project.save()
    with HH_FILE.open("rb") as handle:
        summary = import_jsonl(project=project, lines=handle)
    assert summary.lines == 1200
    assert summary.labels_imported == 1200
    assert summary.tasks_created == 1200
