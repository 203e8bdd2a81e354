"""Generation, scoring and policy evaluation."""

from __future__ import annotations

import pytest
import torch

from training.evaluate import compare_policies
from training.generate import generate, score
from training.modeling import load_causal_lm, load_reward_model, load_tokenizer

PROMPTS = ["Q: apple\nA:", ({"role": "user", "content": "hi"},), "x"]


@pytest.fixture(scope="module")
def lm(tiny_lm):
    return load_causal_lm(str(tiny_lm), torch.device("cpu")), load_tokenizer(str(tiny_lm))


def test_generation_is_seeded_and_returns_token_logprobs(lm) -> None:
    model, tok = lm
    kw = {"k": 2, "max_new_tokens": 6, "batch_size": 4, "temperature": 1.0, "top_p": 0.9}
    a = generate(model, tok, PROMPTS, seed=7, **kw)
    assert a == generate(model, tok, PROMPTS, seed=7, **kw)
    assert a != generate(model, tok, PROMPTS, seed=8, **kw)
    assert [len(s) for s in a] == [2, 2, 2]
    for samples in a:
        for s in samples:
            assert len(s.logprobs) == len(s.token_ids) <= 6
            assert all(lp <= 0 for lp in s.logprobs)


def test_without_logprobs_the_samples_are_the_same(lm) -> None:
    """``logprobs=False`` (the RL rollout) keeps no logits, so it changes memory, not samples."""
    model, tok = lm
    kw = {"k": 2, "max_new_tokens": 6, "batch_size": 4, "temperature": 1.0, "seed": 3}
    full = generate(model, tok, PROMPTS, **kw)
    bare = generate(model, tok, PROMPTS, logprobs=False, **kw)
    assert [[(s.text, s.token_ids, s.stopped) for s in g] for g in bare] == [
        [(s.text, s.token_ids, s.stopped) for s in g] for g in full
    ]
    assert all(s.logprobs == () for g in bare for s in g)


def test_logprobs_match_a_teacher_forced_forward(lm) -> None:
    model, tok = lm
    [[s]] = generate(model, tok, ["abc"], max_new_tokens=5, temperature=0)
    ids = torch.tensor([tok("abc")["input_ids"] + list(s.token_ids)])
    logps = torch.log_softmax(model(ids).logits[0, 2:-1], -1)
    expected = logps.gather(-1, ids[0, 3:, None]).squeeze(-1)
    torch.testing.assert_close(torch.tensor(s.logprobs), expected, atol=1e-4, rtol=1e-4)


def test_scores_do_not_depend_on_batching(tiny_rm) -> None:
    tok = load_tokenizer(str(tiny_rm))
    rm = load_reward_model(str(tiny_rm), torch.device("cpu"), tok.pad_token_id)
    pairs = [("p", "a"), ("prompt two", "a longer response"), ("p", "b")]
    one = score(rm, tok, pairs, batch_size=1)
    assert score(rm, tok, pairs, batch_size=3) == pytest.approx(one, abs=1e-5)


def test_a_policy_against_itself_has_zero_kl(lm, tiny_rm) -> None:
    model, tok = lm
    rm_tok = load_tokenizer(str(tiny_rm))
    rm = load_reward_model(str(tiny_rm), torch.device("cpu"), rm_tok.pad_token_id)
    m = compare_policies(model, model, tok, rm, rm_tok, PROMPTS, max_new_tokens=6)
    assert m["kl"] == pytest.approx(0.0, abs=1e-4)
    assert m["win_rate"] == 0.5  # same seed, same samples: all ties
    assert m["mean_length"] == m["parent_mean_length"]
