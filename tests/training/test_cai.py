"""The supervised Constitutional AI stage (training/cai.py): answer -> critique -> revise, the
seeded principle choice, the drop rules, the records, and ``python -m training cai``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from training import cai
from training.__main__ import main
from training.cai import CAIConfig, CAIPrompt, as_messages, critique_and_revise
from training.generate import Sample as GenSample

PRINCIPLES = ["Be harmless.", "Be honest.", "Be brief."]


def test_as_messages_splits_hh_strings() -> None:
    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:"
    assert as_messages(hh) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
    ]
    assert as_messages("just text") == [{"role": "user", "content": "just text"}]
    assert as_messages(({"role": "user", "content": "x"},)) == [{"role": "user", "content": "x"}]


def test_principle_choice_is_seeded_per_key() -> None:
    picks = [cai.pick_principle(PRINCIPLES, key, seed=0) for key in range(30)]
    assert picks == [cai.pick_principle(PRINCIPLES, key, seed=0) for key in range(30)]
    assert set(picks) == {0, 1, 2}
    assert picks != [cai.pick_principle(PRINCIPLES, key, seed=1) for key in range(30)]


def test_three_stages_grow_the_conversation(monkeypatch) -> None:
    """A scripted model: what each stage is asked, and what comes out (and what is dropped)."""
    seen: list[list[tuple]] = []
    scripted = {
        0: ["first answer", "same", "", "bad \ufffd"],
        1: ["too rude", "fine", "none", "meh"],
        2: ["kinder answer", "same", "x", "ok"],
    }

    def fake_generate(model, tokenizer, prompts, *, seed, **kw):
        stage = seed % 3
        seen.append(list(prompts))
        assert kw["logprobs"] is False
        return [[GenSample(f" {t} ", (1, 2, 3), ())] for t in scripted[stage]]

    monkeypatch.setattr(cai, "generate", fake_generate)
    monkeypatch.setattr(cai.Encoder, "prompt", lambda self, p: ((0,) * 10, False))
    items = [CAIPrompt(k, ({"role": "user", "content": f"q{k}"},)) for k in range(4)]
    tokenizer = SimpleNamespace(eos_token_id=None)
    results = critique_and_revise(None, tokenizer, items, PRINCIPLES, config=CAIConfig(seed=0))
    assert len(seen) == 3
    first, critique_turns, revise_turns = seen
    assert first[0] == ({"role": "user", "content": "q0"},)
    principle = PRINCIPLES[cai.pick_principle(PRINCIPLES, 0, 0)]
    assert critique_turns[0][1] == {"role": "assistant", "content": "first answer"}
    assert critique_turns[0][2]["role"] == "user"
    assert principle in critique_turns[0][2]["content"]
    assert revise_turns[0][3] == {"role": "assistant", "content": "too rude"}
    assert revise_turns[0][4]["content"] == cai.REVISION_REQUEST
    r = results[0]
    assert (r.original, r.critique, r.revised, r.principle) == (
        "first answer",
        "too rude",
        "kinder answer",
        principle,
    )
    assert r.tokens == 3 * (10 + 3)
    assert [x.dropped for x in results] == [None, "identical", "empty", "invalid_text"]
    pairs, sft = cai.as_records(results)
    assert [(p.chosen, p.rejected) for p in pairs] == [("kinder answer", "first answer")]
    assert [s.completion for s in sft] == ["kinder answer"]


def test_cai_on_a_tiny_model_and_its_cli(tmp_path) -> None:
    from training.tiny import write_tiny_causal_lm

    model = write_tiny_causal_lm(tmp_path / "lm", chat_template=True, n_positions=1024)
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": "p1", "prompt": [{"role": "user", "content": "Say hi."}]}]
    rows.append({"prompt": "\n\nHuman: Name a colour.\n\nAssistant:"})
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    principles = tmp_path / "principles.txt"
    principles.write_text("Be kind.\n\nBe brief.\n")
    out = tmp_path / "out.jsonl"
    argv = ["cai", "--model", str(model), "--prompts", str(prompts), "--principles"]
    argv += [str(principles), "--out", str(out), "--max-new-tokens", "6", "--device", "cpu"]
    assert main(argv) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["key"] for w in written] == ["p1", 2]
    for w in written:
        assert w["principle"] in ("Be kind.", "Be brief.")
        assert set(w) >= {"original", "critique", "revised", "tokens", "dropped"}
        assert w["tokens"] > 0
    principles.write_text("\n")
    assert main(argv) == 2  # no principles: a clear error, nothing run


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="temperature"):
        CAIConfig(temperature=-1)
    with pytest.raises(ValueError, match="non-blank principle"):
        critique_and_revise(None, None, [CAIPrompt(1, "q")], ["  "])
