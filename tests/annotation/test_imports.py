"""JSONL import: the three accepted forms, all-or-nothing, tasks and imported labels; the checks on
every line (bad characters, deep nesting, non-finite numbers, length caps, line length) and the
streaming reader's memory."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from annotation.errors import ValidationFailed
from annotation.importers import Limits, iter_parsed, parse_jsonl
from annotation.models import Judgment, Prompt, Response, Task
from annotation.services import imports
from annotation.services.imports import ImportRejected, import_jsonl

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HH_FILE = SHARED_DATA / "hh-rlhf" / "harmless-sample.jsonl"
GOOD = '{"prompt": "fine", "responses": ["ok", "good"]}'
DEEP = "[" * 100_000 + "]" * 100_000


def lines(*objs):
    return [json.dumps(o) for o in objs]


def jsonl(*raw: str) -> io.BytesIO:
    return io.BytesIO("".join(line + "\n" for line in raw).encode("utf-8", "surrogatepass"))


def row_counts():
    return {m.__name__: m.objects.count() for m in apps.get_app_config("annotation").get_models()}


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


BAD_LINES = [
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
    # what the probe of the running site sent (500s before)
    ('{"prompt": "a\\u0000b", "responses": ["x", "y"]}', "prompt: contains a NUL"),
    ('{"prompt": [{"role": "user", "content": "\\ud800"}], "responses": ["x"]}', "prompt[0]"),
    ('{"prompt": "q", "responses": ["x", "y\\udfff"]}', "responses[1]: contains a lone surrogate"),
    ('{"prompt": "q", "chosen": "x\\u0000", "rejected": "y"}', "chosen: contains a NUL"),
    (
        '{"chosen": "\\n\\nHuman: hi\\u0000\\n\\nAssistant: a", "rejected": "b"}',
        "chosen: contains a NUL",
    ),
    ('{"prompt": "q", "responses": ["x"], "metadata": {"k\\u0000": 1}}', "metadata: a key"),
    ('{"prompt": "q", "responses": ["x"], "metadata": {"\\udc00": 1}}', "lone surrogate"),
    ('{"prompt": "q", "responses": ["x"], "metadata": {"score": NaN}}', "metadata.score: nan"),
    ('{"prompt": "q", "responses": ["x"], "metadata": {"s": -Infinity}}', "not a finite"),
    ('{"prompt": "q", "responses": ["x"], "metadata": {"s": 1e999}}', "metadata.s: inf"),
    ('{"prompt": "q", "responses": ["x"], "metadata": ' + DEEP + "}", "nested deeper than 32"),
    ('{"prompt": "q", "responses": ["x"], "metadata": {"n": ' + "9" * 5000 + "}}", "JSON"),
    (DEEP, "nested deeper than 32"),
    ('{"prompt": "q", "responses": ["x"], "source": "s\\u0000"}', "source: contains a NUL"),
    ('{"prompt": "' + "p" * 100_001 + '", "responses": ["x"]}', "PROMPT_MAX_CHARS"),
    ('{"prompt": "q", "responses": ["x", "' + "r" * 100_001 + '"]}', "responses[1] is 100001"),
    ('{"prompt": "q", "chosen": "' + "c" * 100_001 + '", "rejected": "y"}', "chosen is"),
    ('{"prompt": "q", "responses": ' + json.dumps([str(i) for i in range(101)]) + "}", "101"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_lines_are_reported_with_number_and_reason(line, reason):
    parsed = parse_jsonl([GOOD, line, GOOD])
    assert len(parsed.records) == 2
    assert len(parsed.errors) == 1
    number, why = parsed.errors[0]
    assert number == 2
    assert reason in why


def test_prompt_cap_counts_every_message_of_a_conversation():
    turns = [{"role": "user", "content": "x" * 40_000}] * 3
    parsed = parse_jsonl(lines({"prompt": turns, "responses": ["a"]}))
    assert parsed.errors == [
        (1, "prompt is 120000 characters long; at most 100000 are accepted (PROMPT_MAX_CHARS)")
    ]
    hh = "\n\nHuman: " + "h" * 100_001 + "\n\nAssistant:"
    parsed = parse_jsonl(lines({"chosen": hh + " yes", "rejected": hh + " no"}))
    assert "prompt (the dialogue before the last reply) is 100001" in parsed.errors[0][1]


class Synthetic:
    """A binary stream of ``head`` + ``size`` bytes of filler + ``tail``, never held whole; it
    records the largest piece any read handed out."""

    def __init__(self, head: bytes, size: int, tail: bytes) -> None:
        self.parts = [(head, len(head)), (b"a", size), (tail, len(tail))]
        self.position = 0
        self.largest = 0
        self.total = sum(n for _, n in self.parts)

    def readline(self, limit: int = -1) -> bytes:
        out = bytearray()
        budget = limit if limit >= 0 else 1 << 62
        while budget > 0 and self.position < self.total:
            start = 0
            for data, n in self.parts:
                if self.position < start + n:
                    offset = self.position - start
                    if len(data) == 1 and n > 1:  # filler
                        take = min(budget, n - offset)
                        out += data * take
                    else:
                        rest = data[offset:]
                        cut = rest.find(b"\n")
                        take = min(budget, cut + 1 if cut >= 0 else len(rest))
                        out += rest[:take]
                    self.position += take
                    budget -= take
                    break
                start += n
            if out.endswith(b"\n"):
                break
        self.largest = max(self.largest, len(out))
        return bytes(out)


def test_an_oversized_line_is_refused_while_read_and_never_held():
    head = (GOOD + '\n{"prompt": "').encode()
    tail = ('", "responses": ["x"]}\n' + GOOD + "\n{oops\n").encode()
    stream = Synthetic(head, 50_000_000, tail)  # a 50 MB line between good ones
    limits = Limits(line_bytes=1_000_000)

    tracemalloc.start()
    t0 = time.perf_counter()
    parsed = list(iter_parsed(stream, limits))
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert [(p.number, p.error is None) for p in parsed] == [
        (1, True),
        (2, False),
        (3, True),
        (4, False),
    ]
    assert "longer than 1000000 bytes (IMPORT_MAX_LINE_BYTES)" in str(parsed[1].error)
    assert "invalid JSON" in str(parsed[3].error)
    assert parsed[-1].offset == stream.total
    assert stream.largest <= limits.line_bytes + 1  # never more than the limit read at once
    assert peak < 8_000_000, peak  # a few copies of one limit's worth, not 50 MB
    assert seconds < 10


def test_memory_of_the_check_does_not_grow_with_the_file(settings):
    def peak_for(n: int) -> int:
        data = jsonl(*(json.dumps({"prompt": f"q{i}", "responses": ["a", "b"]}) for i in range(n)))
        tracemalloc.start()
        check = imports.import_check(stream=data, limits=imports.import_limits())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert check.records == n
        return peak

    assert peak_for(20_000) < 2 * peak_for(2_000) + 100_000


@pytest.mark.django_db
def test_bad_file_changes_nothing(project):
    good = {"prompt": "q1", "responses": ["a", "b"]}
    before = row_counts()
    with pytest.raises(ValidationFailed, match="line 2: invalid JSON"):
        import_jsonl(project=project, stream=jsonl(json.dumps(good), "{oops"))
    assert row_counts() == before


@pytest.mark.django_db
def test_every_bad_line_is_reported_and_nothing_is_written(project):
    bad = [line for line, _ in BAD_LINES]
    before = row_counts()
    with pytest.raises(ImportRejected) as caught:
        import_jsonl(project=project, stream=jsonl(GOOD, *bad, GOOD))
    assert caught.value.error_count == len(bad)
    assert [n for n, _ in caught.value.errors] == list(range(2, len(bad) + 2))
    for (_, why), (_, reason) in zip(caught.value.errors, BAD_LINES, strict=True):
        assert reason in why
    assert row_counts() == before


@pytest.mark.django_db
def test_a_twenty_megabyte_prompt_is_refused(project, settings):
    settings.IMPORT_MAX_LINE_BYTES = 30_000_000  # past the line cap: the prompt cap answers
    line = json.dumps({"prompt": "p" * 20_000_000, "responses": ["a", "b"]})
    before = row_counts()
    with pytest.raises(ImportRejected, match=r"line 1: prompt is 20000000 characters long"):
        import_jsonl(project=project, stream=jsonl(line))
    assert row_counts() == before
    settings.IMPORT_MAX_LINE_BYTES = 4_000_000  # the default: the line cap answers first
    with pytest.raises(ImportRejected, match=r"line 1: the line is longer than 4000000 bytes"):
        import_jsonl(project=project, stream=jsonl(line))
    assert row_counts() == before


@pytest.mark.django_db
def test_the_caps_are_settings(project, settings):
    settings.PROMPT_MAX_CHARS = 5
    settings.RESPONSE_MAX_CHARS = 3
    with pytest.raises(ImportRejected) as caught:
        import_jsonl(
            project=project,
            stream=jsonl(
                '{"prompt": "123456", "responses": ["a"]}',
                '{"prompt": "12345", "responses": ["abcd"]}',
                '{"prompt": "12345", "responses": ["abc"]}',
            ),
        )
    assert caught.value.errors == [
        (1, "prompt is 6 characters long; at most 5 are accepted (PROMPT_MAX_CHARS)"),
        (2, "responses[0] is 4 characters long; at most 3 are accepted (RESPONSE_MAX_CHARS)"),
    ]


@pytest.mark.django_db
def test_import_creates_tasks_per_project_settings_and_labels(project):
    project.task_kinds = ["pairwise", "ranking"]
    project.ranking_size = 3
    project.save()
    summary = import_jsonl(
        project=project,
        stream=jsonl(
            *lines(
                {"prompt": "q1", "responses": ["a", "b", "c", "d"]},
                {"prompt": "q2", "chosen": "good", "rejected": "bad"},
            )
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
def test_a_prompt_without_responses_is_imported_alone(project):
    project.task_kinds = ["pairwise", "demonstration"]
    project.save()
    summary = import_jsonl(project=project, stream=jsonl('{"prompt": "q", "responses": []}'))
    assert (summary.prompts_created, summary.responses_created) == (1, 0)
    assert list(Task.objects.values_list("kind", flat=True)) == ["demonstration"]


@pytest.mark.django_db
def test_reimport_reuses_prompts_and_split_is_stable(project):
    project.eval_share = 0.5
    project.save()
    data = lines(*({"prompt": f"question {i}", "responses": ["x", "y"]} for i in range(40)))
    import_jsonl(project=project, stream=jsonl(*data))
    splits = dict(Prompt.objects.values_list("content_hash", "split"))
    summary = import_jsonl(project=project, stream=jsonl(*data))
    assert summary.prompts_created == 0
    assert summary.prompts_reused == 40
    assert dict(Prompt.objects.values_list("content_hash", "split")) == splits
    assert 5 < list(splits.values()).count("eval") < 35


@pytest.mark.django_db
def test_batches_count_and_deduplicate_like_one_batch(project, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_LINES", 3)
    import_jsonl(project=project, stream=jsonl(*lines({"prompt": "old", "responses": ["o"]})))
    data = [{"prompt": f"q{i % 4}", "responses": [f"a{i}", f"b{i}"]} for i in range(10)]
    data.append({"prompt": "old", "responses": ["p"]})
    seen = []
    summary = import_jsonl(
        project=project,
        stream=jsonl(*lines(*data)),
        progress=lambda phase, n, offset: seen.append((phase, n)),
    )
    assert (summary.lines, summary.prompts_created, summary.prompts_reused) == (11, 4, 1)
    assert summary.responses_created == 21
    assert Prompt.objects.filter(project=project).count() == 5
    assert [n for phase, n in seen if phase == "writing"] == [3, 6, 9, 11]
    assert [n for phase, n in seen if phase == "checking"] == list(range(1, 12))


def test_the_command_refuses_a_bad_file_and_names_the_line(project, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(jsonl(GOOD, '{"prompt": "q", "responses": ["x\\u0000"]}').getvalue())
    before = row_counts()
    with pytest.raises(CommandError, match=r"line 2: responses\[0\]: contains a NUL"):
        call_command("import_jsonl", str(project.id), str(path))
    assert row_counts() == before
    path.write_bytes(jsonl(GOOD).getvalue())
    out = io.StringIO()
    call_command("import_jsonl", project.slug, str(path), stdout=out)
    assert "prompts_created: 1" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.skipif(not HH_FILE.exists(), reason="shared HH-RLHF sample not present")
def test_real_hh_rlhf_sample_imports_whole(project):
    project.task_kinds = ["pairwise"]
    project.save()
    with HH_FILE.open("rb") as handle:
        summary = import_jsonl(project=project, stream=handle)
    assert summary.lines == 1200
    assert summary.labels_imported == 1200
    assert summary.tasks_created == 1200
