"""AI judges (training/judges): the both-order protocol, the consistency rule, the fake judge,
and the LLM judge reading its choice from the answer tokens' log-probabilities."""

from __future__ import annotations

import math

import pytest

from training.judges import PairToJudge, Verdict, combine, flip_rate, load_judge
from training.judges.fake import FakeJudge


def test_combine_consistent_first_second_and_inconsistent() -> None:
    assert combine("k", 0.8, 0.6) == Verdict("k", 0, pytest.approx(0.7), 0.8, 0.6, 0)
    second = combine("k", 0.2, 0.4, tokens=5)
    assert (second.winner, second.confidence, second.tokens) == (1, pytest.approx(0.7), 5)
    for p1, p2 in ((0.8, 0.3), (0.3, 0.8), (0.5, 0.9), (0.5, 0.5)):
        v = combine("k", p1, p2)
        assert v.winner is None
        assert v.confidence is None
        assert (v.p_first_order, v.p_second_order) == (p1, p2)


def test_fake_judge_runs_both_orders_with_position_bias() -> None:
    judge = load_judge("fake", "marker=good,bias=0.5,scale=2")
    pairs = [
        PairToJudge(1, "q", "good good", "bad"),  # clear: first
        PairToJudge(2, "q", "plain", "also plain"),  # equal: the bias decides each order
        PairToJudge(3, "q", "meh", "good"),  # clear: second
    ]
    seen: list[tuple[int, int]] = []
    first, tie, second = judge.judge(pairs, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # shown first: sigmoid(2 * (2 - 0) + 0.5); shown second: 1 - sigmoid(2 * (0 - 2) + 0.5)
    assert first.p_first_order == pytest.approx(sig(4.5))
    assert first.p_second_order == pytest.approx(1 - sig(-3.5))
    assert first.winner == 0
    assert first.confidence == pytest.approx((sig(4.5) + 1 - sig(-3.5)) / 2)
    # equal scores: the first-shown response wins in both orders, so the orders disagree
    assert tie.winner is None
    assert tie.confidence is None
    assert tie.p_first_order == pytest.approx(sig(0.5))
    assert tie.p_second_order == pytest.approx(1 - sig(0.5))
    assert second.winner == 1
    assert 0.5 < second.confidence < 1
    assert flip_rate([first, tie, second]) == pytest.approx(1 / 3)
    assert first.tokens == 2 * (1 + 2 + 1)


def test_fake_judge_without_bias_is_consistent_when_scores_differ() -> None:
    judge = FakeJudge(bias=0.0, noise=1.0)  # the hash breaks every tie
    pairs = [PairToJudge(i, "q", f"answer {i}", f"reply {i}") for i in range(20)]
    verdicts = judge.judge(pairs)
    assert flip_rate(verdicts) == 0
    assert {v.winner for v in verdicts} == {0, 1}
    assert judge.judge(pairs) == verdicts  # deterministic
    assert all(v.p_first_order == pytest.approx(v.p_second_order) for v in verdicts)


def test_fake_judge_spec_and_unknown_method() -> None:
    assert load_judge("fake", "").name == FakeJudge().name
    assert load_judge("fake", "/some/model/path").name == FakeJudge().name
    assert FakeJudge.from_spec("marker=yes,noise=0.5") == FakeJudge(marker="yes", noise=0.5)
    with pytest.raises(ValueError, match="unknown setting"):
        FakeJudge.from_spec("colour=red")
    with pytest.raises(ValueError, match="numbers"):
        FakeJudge.from_spec("bias=high")
    with pytest.raises(ValueError, match="unknown judge method"):
        load_judge("oracle", "")
    assert len(load_judge("fake", "").template_hash) == 64


# --- the LLM judge on a tiny random chat model ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_chat_lm(tmp_path_factory: pytest.TempPathFactory):
    from training.tiny import write_tiny_causal_lm

    return write_tiny_causal_lm(
        tmp_path_factory.mktemp("judge") / "lm", chat_template=True, n_positions=1024
    )


PAIRS = [
    PairToJudge("a", ({"role": "user", "content": "Name a fruit."},), "An apple.", "A rock."),
    PairToJudge("b", "\n\nHuman: hi there\n\nAssistant:", "Hello! How can I help?", "no"),
    PairToJudge("c", ({"role": "user", "content": "2+2?"},), "4", "It is four, of course."),
]


def _hand_p_shown_first(judge, pair: PairToJudge, swapped: bool, principle: str) -> float:
    """P(shown first wins) from the model's own logits, one unpadded sequence at a time."""
    import torch

    from training.judges.templates import judge_message

    a, b = (pair.second, pair.first) if swapped else (pair.first, pair.second)
    message = judge_message(pair.prompt, a, b, principle=principle, guidelines="Be kind.")
    text = judge.tokenizer.apply_chat_template(
        [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
    )
    ids = judge.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = judge.model(input_ids=torch.tensor([ids])).logits[0, -1]  # (V,)
    logps = torch.log_softmax(logits, -1)
    lp_a = logps[judge.tokenizer.convert_tokens_to_ids("A")].item()
    lp_b = logps[judge.tokenizer.convert_tokens_to_ids("B")].item()
    return math.exp(lp_a) / (math.exp(lp_a) + math.exp(lp_b))


def test_llm_judge_reads_answer_token_logprobs_in_both_orders(tiny_chat_lm) -> None:
    judge = load_judge("llm_judge", str(tiny_chat_lm), device="cpu", batch_size=2)
    seen: list[list[int]] = []
    original = judge.answer_logits
    judge.answer_logits = lambda seqs: (seen.extend(seqs), original(seqs))[1]
    verdicts = judge.judge(PAIRS, principle="Be helpful.", guidelines="Be kind.")
    assert [v.key for v in verdicts] == ["a", "b", "c"]
    assert len(seen) == 2 * len(PAIRS)  # every pair in both orders
    for pair, v in zip(PAIRS, verdicts, strict=True):
        p1 = _hand_p_shown_first(judge, pair, swapped=False, principle="Be helpful.")
        p2 = 1 - _hand_p_shown_first(judge, pair, swapped=True, principle="Be helpful.")
        assert v.p_first_order == pytest.approx(p1, abs=1e-5)
        assert v.p_second_order == pytest.approx(p2, abs=1e-5)
        assert v == combine(pair.key, v.p_first_order, v.p_second_order, v.tokens)
        assert v.tokens > 0
    assert sum(v.tokens for v in verdicts) == sum(len(s) for s in seen)
    assert len(judge.template_hash) == 64
    # the batch (left padding, sorted by length) changes nothing
    alone = load_judge("llm_judge", str(tiny_chat_lm), device="cpu", batch_size=1)
    again = alone.judge(PAIRS, principle="Be helpful.", guidelines="Be kind.")
    for v, w in zip(verdicts, again, strict=True):
        assert w.p_first_order == pytest.approx(v.p_first_order, abs=1e-5)
        assert w.p_second_order == pytest.approx(v.p_second_order, abs=1e-5)


def test_llm_judge_prompt_names_principle_and_swaps_responses() -> None:
    from training.judges.templates import DEFAULT_PRINCIPLE, judge_message, template_hash

    text = judge_message(PAIRS[0].prompt, "first one", "second one", principle="", guidelines="")
    assert DEFAULT_PRINCIPLE in text
    assert "Guidelines" not in text
    assert text.index("first one") < text.index("second one")
    assert text.endswith("A or B.")
    assert "User: Name a fruit." in text
    hh = judge_message(PAIRS[1].prompt, "x", "y", principle="Be brief.", guidelines="G")
    assert "Principle: Be brief." in hh
    assert "Guidelines:\nG" in hh
    assert "Human: hi there" in hh
    assert not hh.split("[Response A]")[0].rstrip().endswith("Assistant:")
    assert template_hash() == template_hash()


def test_reward_model_judge_is_order_free(tiny_rm) -> None:
    from training.generate import score

    judge = load_judge("reward_model", str(tiny_rm), device="cpu", batch_size=2)
    assert judge.template_hash == ""
    verdicts = judge.judge(PAIRS)
    firsts = score(judge.model, judge.tokenizer, [(p.prompt, p.first) for p in PAIRS])
    seconds = score(judge.model, judge.tokenizer, [(p.prompt, p.second) for p in PAIRS])
    for v, r1, r2 in zip(verdicts, firsts, seconds, strict=True):
        p = 1 / (1 + math.exp(-(r1 - r2)))
        assert v.p_first_order == pytest.approx(p, abs=1e-5)
        assert v.p_second_order == v.p_first_order
        assert v.winner == (0 if r1 > r2 else 1)
        assert v.confidence == pytest.approx(max(p, 1 - p), abs=1e-5)
        assert v.tokens > 0
    assert flip_rate(verdicts) == 0
    with pytest.raises(ValueError, match="artifact path"):
        load_judge("reward_model", "")


def test_judge_cli_prints_agreement_flip_rate_and_speed(tiny_chat_lm, tiny_rm, tmp_path, capsys):
    import json

    from training.__main__ import main

    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {
            "chosen": "\n\nHuman: hi\n\nAssistant: Hello!",
            "rejected": "\n\nHuman: hi\n\nAssistant: no",
        },
        {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5"},
        {"prompt": "Q: sky?\nA:", "chosen": " blue", "rejected": " green"},
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.jsonl"
    argv = ["judge", "--pairs", str(pairs), "--device", "cpu", "--principle", "Be right."]
    assert main([*argv, "--model", str(tiny_chat_lm), "--out", str(out)]) == 0
    llm = json.loads(capsys.readouterr().out)
    assert llm["pairs"] == 3
    assert 0 <= llm["agreement"] <= 1
    assert 0 <= llm["flip_rate"] <= 1
    assert llm["pairs_per_second"] > 0
    assert llm["tokens"] > 0
    assert len(out.read_text().splitlines()) == 3
    assert main([*argv, "--reward-model", str(tiny_rm)]) == 0
    rm = json.loads(capsys.readouterr().out)
    assert rm["flip_rate"] == 0
    assert rm["template_hash"] == ""
    assert main(["judge", "--pairs", str(tmp_path / "nope.jsonl"), "--model", "x"]) == 2
    with pytest.raises(SystemExit):
        main(["judge", "--pairs", str(pairs)])  # --model or --reward-model is required
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--help"])
    helptext = capsys.readouterr().out
    assert "judge" in helptext
    assert "cai" in helptext


def test_bench_ai_feedback_runs_and_prints_its_table(tiny_chat_lm, tiny_rm, capsys) -> None:
    """bench/ai_feedback.py keeps running: both judges on 4 HH pairs (tiny models)."""
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("bench_ai", root / "bench" / "ai_feedback.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_ai"] = bench
    spec.loader.exec_module(bench)
    if not bench.HH.is_file():
        pytest.skip("shared HH-RLHF sample not present")
    argv = ["--pairs", "4", "--llm", str(tiny_chat_lm), "--rm", str(tiny_rm), "--max-length", "128"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "reward_model" in out
    assert "llm_judge" in out
    assert "flip rate" in out
