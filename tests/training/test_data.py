"""Records, JSONL loaders, tokenization and batching, including every kind of bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.batching import pad_sequences, plan_epoch, split_step, token_chunks
from training.records import (
    DataError,
    PreferencePair,
    SFTExample,
    UnpairedExample,
    load_jsonl,
)
from training.tiny import tiny_tokenizer
from training.tokenize import Encoder, encode_pairs, encode_unpaired, plain_format
from training.trainers.common import hold_out_prompts

HH = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf" / "harmless-sample.jsonl"


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_standard_and_conversational_preference_formats(tmp_path) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    path = write(
        tmp_path,
        [
            json.dumps({"prompt": "Q?", "chosen": " yes", "rejected": " no", "margin": 2}),
            json.dumps(
                {
                    "prompt": msgs,
                    "chosen": [{"role": "assistant", "content": "hello"}],
                    "rejected": [{"role": "assistant", "content": "go away"}],
                }
            ),
            json.dumps(
                {
                    "chosen": "\n\nHuman: x\n\nAssistant: good",
                    "rejected": "\n\nHuman: x\n\nAssistant: bad",
                }
            ),
            json.dumps(
                {
                    "chosen": [*msgs, {"role": "assistant", "content": "a"}],
                    "rejected": [*msgs, {"role": "assistant", "content": "b"}],
                }
            ),
        ],
    )
    pairs, report = load_jsonl(path, "preference")
    assert report.kept == 4
    assert pairs[0] == PreferencePair("Q?", " yes", " no", 2.0)
    assert pairs[1].prompt == ({"role": "user", "content": "hi"},)
    assert (pairs[1].chosen, pairs[1].rejected) == ("hello", "go away")
    assert pairs[2] == PreferencePair("\n\nHuman: x\n\nAssistant:", " good", " bad")
    assert (pairs[3].prompt, pairs[3].chosen) == (({"role": "user", "content": "hi"},), "a")


def test_content_problems_are_skipped_and_counted(tmp_path) -> None:
    path = write(
        tmp_path,
        [
            json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}),
            json.dumps({"prompt": "p", "chosen": "  ", "rejected": "b"}),
            json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}),
        ],
    )
    pairs, report = load_jsonl(path, "preference")
    assert len(pairs) == 1
    assert report.as_dict() == {"kept": 1, "skipped/empty_response": 1, "skipped/identical_pair": 1}


@pytest.mark.parametrize(
    ("kind", "line", "message"),
    [
        ("preference", '{"prompt": "p", "chosen": "a"', "malformed JSON"),
        ("preference", '{"prompt": "p", "chosen": "a"}', "missing field 'chosen' or 'rejected'"),
        ("preference", '{"prompt": 3, "chosen": "a", "rejected": "b"}', "'prompt' must be"),
        ("preference", '{"prompt": "p", "chosen": "a", "rejected": "b", "margin": -1}', "margin"),
        (
            "unpaired",
            '{"prompt": "p", "completion": "a", "label": "yes"}',
            "'label' must be true or false",
        ),
        (
            "unpaired",
            '{"prompt": "p", "completion": "a", "label": 2}',
            "'label' must be true or false",
        ),
        ("sft", '{"messages": [{"role": "user", "content": "x"}]}', "last message must have role"),
        ("sft", "[1, 2]", "expected a JSON object"),
    ],
)
def test_structural_problems_fail_fast_with_the_line(tmp_path, kind, line, message) -> None:
    good = {
        "preference": '{"prompt": "p", "chosen": "a", "rejected": "b"}',
        "unpaired": '{"prompt": "p", "completion": "a", "label": true}',
        "sft": '{"prompt": "p", "completion": "a"}',
    }[kind]
    path = write(tmp_path, [good, line])
    with pytest.raises(DataError, match=rf"data.jsonl:2: .*{message}"):
        load_jsonl(path, kind)
    records, report = load_jsonl(path, kind, strict=False)
    assert len(records) == 1
    assert report.skipped["malformed"] == 1


def test_unpaired_and_sft_formats(tmp_path) -> None:
    path = write(tmp_path, [json.dumps({"prompt": "p", "completion": "c", "label": False})])
    assert load_jsonl(path, "unpaired")[0] == [UnpairedExample("p", "c", False)]
    msgs = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    path = write(tmp_path, [json.dumps({"messages": msgs})])
    assert load_jsonl(path, "sft")[0] == [SFTExample(({"role": "user", "content": "u"},), "a")]


def test_hh_rlhf_file_loads_with_implicit_prompts() -> None:
    if not HH.is_file():
        pytest.skip("shared data not present")
    pairs, report = load_jsonl(HH, "preference")
    assert report.kept + sum(report.skipped.values()) == 1200
    assert all(isinstance(p.prompt, str) and p.prompt.endswith("\n\nAssistant:") for p in pairs)


def test_truncation_keeps_the_end_of_the_prompt_and_caps_the_response() -> None:
    tok = tiny_tokenizer()  # one token per byte, EOS appended to responses
    enc = Encoder(tok, max_length=12, max_prompt_length=8)
    [pair] = encode_pairs(enc, [PreferencePair("0123456789ABCDEF", "abcdefgh", "xy")])
    assert tok.decode(list(pair.chosen.prompt_ids)) == "89ABCDEF"
    assert tok.decode(list(pair.chosen.response_ids)) == "abcd"  # 12 - 8 tokens of room
    assert pair.rejected.response_ids[-1] == tok.eos_token_id  # short response keeps its EOS
    assert enc.report.as_dict() == {"truncated/prompt": 1, "truncated/response": 1}


def test_plain_format_and_chat_template() -> None:
    msgs = ({"role": "user", "content": "hi"},)
    assert plain_format(msgs) == "\n\nHuman: hi\n\nAssistant:"
    plain = Encoder(tiny_tokenizer(), max_length=64, max_prompt_length=32)
    seq = plain.encode(msgs, "yo")
    assert (
        tiny_tokenizer()
        .decode(list(seq.prompt_ids + seq.response_ids))
        .startswith("\n\nHuman: hi\n\nAssistant: yo")
    )
    chat = Encoder(tiny_tokenizer(chat_template=True), max_length=64, max_prompt_length=32)
    seq = chat.encode(msgs, "yo")
    assert tiny_tokenizer().decode(list(seq.prompt_ids)) == "<|user|>hi\n<|assistant|>"


def test_kto_mismatched_pairs_use_another_completion() -> None:
    enc = Encoder(tiny_tokenizer(), max_length=64, max_prompt_length=32)
    ex = [UnpairedExample("p1", "c1", True), UnpairedExample("p2", "c2", False)]
    out = encode_unpaired(enc, ex)
    assert out[0].kl.prompt_ids == out[0].completion.prompt_ids
    assert out[0].kl.response_ids == out[1].completion.response_ids


def test_padding_masks_prompt_and_padding() -> None:
    batch = pad_sequences([((1, 2), (3,)), ((4,), (5, 6, 7))], pad_id=0)
    assert batch["labels"].tolist() == [[-100, -100, 3, -100], [-100, 5, 6, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_bucketing_is_deterministic_and_groups_lengths() -> None:
    lengths = [i % 50 for i in range(400)]
    a = plan_epoch(lengths, 8, seed=0, epoch=0, window=50)
    assert a == plan_epoch(lengths, 8, seed=0, epoch=0, window=50)
    assert a != plan_epoch(lengths, 8, seed=0, epoch=1, window=50)
    assert sorted(i for step in a for i in step) == list(range(400))
    spread = sum(max(lengths[i] for i in s) - min(lengths[i] for i in s) for s in a) / len(a)
    assert spread < 5  # random batches would spread ~40
    assert split_step([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]


def test_bucketing_keeps_a_groups_examples_in_one_step() -> None:
    """60 prompts with 2 completions each (KTO's chosen and rejected), steps of 4: every prompt's
    pair lands in one step, in a plan that is still a seeded shuffle of all 120 examples."""
    groups = [i // 2 for i in range(120)]
    lengths = [(i // 2) % 7 + i % 2 for i in range(120)]  # a pair's two lengths differ
    a = plan_epoch(lengths, 4, seed=0, epoch=0, window=4, groups=groups)
    assert a == plan_epoch(lengths, 4, seed=0, epoch=0, window=4, groups=groups)
    assert a != plan_epoch(lengths, 4, seed=0, epoch=1, window=4, groups=groups)
    assert sorted(i for step in a for i in step) == list(range(120))
    assert all(len({groups[i] for i in step}) == 2 for step in a)
    ungrouped = plan_epoch(lengths, 4, seed=0, epoch=0, window=4)
    assert sum(len({groups[i] for i in step}) for step in ungrouped) > 2 * len(ungrouped)


def test_token_budget_chunks() -> None:
    costs = [10, 10, 6, 6, 6, 30]
    assert token_chunks([0, 1, 2, 3, 4], costs, 20) == [[0, 1], [2, 3, 4]]
    assert token_chunks([5, 0], costs, 20) == [[5], [0]]  # an over-budget item stands alone
    assert token_chunks([0, 1, 2], costs, 0) == [[0, 1, 2]]


def test_held_out_split_keeps_each_prompt_on_one_side() -> None:
    # 20 prompts with 1-4 pairs each; chat prompts too, which are not hashable as loaded.
    records = [
        PreferencePair([{"role": "user", "content": f"q{p}"}] if p % 2 else f"q{p}", f"a{i}", "b")
        for p in range(20)
        for i in range(1 + p % 4)
    ]
    train, held = hold_out_prompts(records, 0.25, seed=3)
    assert sorted(map(repr, train + held)) == sorted(map(repr, records))
    assert not {repr(r.prompt) for r in train} & {repr(r.prompt) for r in held}
    assert int(0.25 * len(records)) <= len(held) < int(0.25 * len(records)) + 4
    assert hold_out_prompts(records, 0.25, seed=3) == (train, held)
    assert hold_out_prompts(records, 0.25, seed=4) != (train, held)


def test_held_out_split_never_takes_the_last_prompt() -> None:
    records = [PreferencePair("only prompt", f"a{i}", "b") for i in range(10)]
    assert hold_out_prompts(records, 0.5, seed=0) == (records, [])
