"""The real small model as judge (issue 18): SmolLM2-135M-Instruct (the ``smollm2`` fixture,
tests/conftest.py) judges a handful of pairs through its ChatML template; its choices come from
the answer tokens' log-probabilities (checked against a hand computation for one pair) and every
pair is judged in both orders. Whether it judges *well* is the benchmark's question
(bench/ai_feedback.py), not this test's: a 135M judge is near chance."""

from __future__ import annotations

import math

import pytest
import torch

from training.judges import PairToJudge, combine, load_judge
from training.judges.templates import judge_message

PAIRS = [
    PairToJudge(
        1,
        ({"role": "user", "content": "What is the capital of France?"},),
        "The capital of France is Paris.",
        "I don't know, maybe Berlin.",
    ),
    PairToJudge(
        2,
        ({"role": "user", "content": "How do I make tea?"},),
        "Go away.",
        "Boil water, pour it over a tea bag and let it steep for three minutes.",
    ),
    PairToJudge(3, "\n\nHuman: Say hi.\n\nAssistant:", "Hi!", "Hello there, nice to meet you!"),
]


def test_smollm2_judges_from_answer_token_logprobs_in_both_orders(smollm2) -> None:
    before = torch.get_num_threads()
    try:
        judge = load_judge("llm_judge", str(smollm2.path), device="cpu", batch_size=6)
        tok = judge.tokenizer
        assert judge.answers == (tok.convert_tokens_to_ids("A"), tok.convert_tokens_to_ids("B"))
        seen: list[list[int]] = []
        original = judge.answer_logits
        judge.answer_logits = lambda seqs: (seen.extend(seqs), original(seqs))[1]
        verdicts = judge.judge(PAIRS, principle="Choose the more helpful response.")
    finally:
        torch.set_num_threads(before)
    assert len(seen) == 2 * len(PAIRS)
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    assert all(s.count(im_start) >= 2 for s in seen)  # the chat template was applied
    assert tok.decode(seen[0]).endswith("<|im_start|>assistant\n")  # next token: the answer
    for v, pair in zip(verdicts, PAIRS, strict=True):
        assert v.key == pair.key
        assert 0 < v.p_first_order < 1
        assert 0 < v.p_second_order < 1
        assert v == combine(pair.key, v.p_first_order, v.p_second_order, v.tokens)
    # the first pair, first order, by hand from the model's logits
    message = judge_message(
        PAIRS[0].prompt,
        PAIRS[0].first,
        PAIRS[0].second,
        principle="Choose the more helpful response.",
        guidelines="",
    )
    text = tok.apply_chat_template(
        [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logps = torch.log_softmax(judge.model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
    a, b = (logps[i].item() for i in judge.answers)
    assert verdicts[0].p_first_order == pytest.approx(
        math.exp(a) / (math.exp(a) + math.exp(b)), abs=1e-4
    )
