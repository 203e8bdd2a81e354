"""Prefix sharing (training/shared_prefix.py): one row per prompt gives each response the
log-probs a forward of ``prompt + response`` alone gives, with the same gradients."""

from __future__ import annotations

import pytest
import torch

from training.modeling import load_causal_lm
from training.shared_prefix import PAD, PROMPT, pack, prompt_batches, shared_prefix_logps

SEQS = [
    ((5, 6, 7), (8, 9)),  # prompt A, answer 1
    ((5, 6), (10, 11, 12)),  # prompt B
    ((5, 6, 7), (13,)),  # prompt A, answer 2
    ((5, 6, 7), (14, 15, 16, 17)),  # prompt A, answer 3
]


def test_pack_lays_out_one_end_aligned_row_per_prompt():
    """Row A is 3 + 2 + 1 + 4 = 10 columns, row B 2 + 3 = 5, padded in front to 10. Positions
    restart at 3 for each of A's answers; an answer's first token is predicted from the
    prompt's last column (A: column 2; B: 5 + 1 = 6), the next ones from the column before."""
    b = pack(SEQS, pad_id=0)
    assert b.input_ids.tolist() == [
        [5, 6, 7, 8, 9, 13, 14, 15, 16, 17],
        [0, 0, 0, 0, 0, 5, 6, 10, 11, 12],
    ]
    assert b.position_ids.tolist() == [
        [0, 1, 2, 3, 4, 3, 3, 4, 5, 6],
        [0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
    ]
    assert b.segments.tolist() == [
        [PROMPT] * 3 + [0, 0, 1, 2, 2, 2, 2],
        [PAD] * 5 + [PROMPT] * 2 + [0, 0, 0],
    ]
    assert b.targets[0].tolist() == [8, 9, 13, 14, 15, 16, 17]
    assert b.sources[0].tolist() == [2, 3, 2, 2, 6, 7, 8]
    assert b.owners[0].tolist() == [0, 0, 2, 3, 3, 3, 3]
    # row B has 3 targets; its unused slots belong to nobody and read the last column
    assert b.targets[1, :3].tolist() == [10, 11, 12]
    assert b.sources[1].tolist() == [6, 7, 8, 9, 9, 9, 9]
    assert b.owners[1].tolist() == [1, 1, 1, -1, -1, -1, -1]
    assert b.lengths.tolist() == [2, 3, 1, 4]


def test_the_mask_hides_sibling_answers_and_padding():
    b = pack(SEQS, pad_id=0)
    allowed = b.attention_mask("sdpa")[:, 0]
    assert allowed[0, 5].tolist() == [True] * 3 + [False, False, True] + [False] * 4  # answer 2
    assert allowed[0, 7].tolist() == [True] * 3 + [False] * 3 + [True, True, False, False]
    assert allowed[1, 7].tolist() == [False] * 5 + [True] * 3 + [False] * 2  # no padding
    assert allowed[1, 2].tolist() == [True] * 3 + [False] * 7  # padding: padding only
    additive = b.attention_mask("eager")[:, 0]
    assert ((additive == 0) == allowed).all()
    assert additive.min() == torch.finfo(torch.float32).min
    with pytest.raises(ValueError, match="'flash_attention_2'"):
        b.attention_mask("flash_attention_2")


def separate_logps(model, seqs) -> torch.Tensor:
    """The independent reference: one plain forward per sequence, log_softmax, summed."""
    out = []
    for prompt, response in seqs:
        ids = torch.tensor([[*prompt, *response]])
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        picks = [logp[len(prompt) + t - 1, tok] for t, tok in enumerate(response)]
        out.append(torch.stack(picks).sum())
    return torch.stack(out)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_logps_and_gradients_equal_separate_forwards(tiny_lm, attention):
    model = load_causal_lm(str(tiny_lm), torch.device("cpu"))
    model.config._attn_implementation = attention
    model.eval()
    seqs = [(tuple(p), tuple(r)) for p, r in SEQS]
    expected = separate_logps(model, seqs)
    (expected * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    logps, lengths = shared_prefix_logps(model, pack(seqs, pad_id=0), len(seqs))
    (logps * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
    torch.testing.assert_close(logps, expected, rtol=1e-5, atol=1e-5)
    assert lengths.tolist() == [2, 3, 1, 4]
    # float32 sums in another order (one packed row against four): a small gradient entry can
    # differ by ~1e-6 (seen once under load), while a mask that lets samples see each other moves
    # them by ~3
    for got, want in zip((p.grad for p in model.parameters()), grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_an_empty_prompt_leaves_the_first_token_unscored(tiny_lm):
    model = load_causal_lm(str(tiny_lm), torch.device("cpu")).eval()
    seqs = [((), (8, 9, 10)), ((5,), (8,))]
    batch = pack(seqs, pad_id=0)
    assert batch.lengths.tolist() == [2, 1]
    logps, _ = shared_prefix_logps(model, batch, 2)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([[8, 9, 10]])).logits[0], -1)
    torch.testing.assert_close(logps[0], logp[0, 9] + logp[1, 10], rtol=1e-5, atol=1e-5)


def test_prompt_batches_keep_a_prompts_sequences_together():
    prompts = [(1, 2), (3,), (1, 2), (4, 5, 6), (3,), (1, 2)]
    # longest prompt first; (1, 2)'s three sequences never split; at most 3 per batch
    assert prompt_batches(prompts, 3) == [[3], [0, 2, 5], [1, 4]]
    assert prompt_batches(prompts, 8) == [[3, 0, 2, 5, 1, 4]]
    assert prompt_batches(prompts, 1) == [[3], [0, 2, 5], [1, 4]]


def test_the_rollout_forward_matches_a_forward_per_sample(tiny_lm):
    """training/rl/policy.response_forward packs a prompt's samples; its logits and values are
    each sample's own forward's, in the rollout layout (left-padded prompt, right-padded
    response), and zero past a sample's end."""
    from torch import nn

    from training.rl.policy import response_forward

    model = load_causal_lm(str(tiny_lm), torch.device("cpu")).eval()
    head = nn.Linear(model.config.hidden_size, 1)
    samples = [((5, 6, 7), (8, 9, 10)), ((5, 6, 7), (11,)), ((4, 5), (12, 13)), ((4, 5), (9, 8))]
    ids = torch.tensor(
        [[5, 6, 7, 8, 9, 10], [5, 6, 7, 11, 0, 0], [0, 4, 5, 12, 13, 0], [0, 4, 5, 9, 8, 0]]
    )
    mask = (ids != 0).long()  # token 0 is the padding here
    logits, values = response_forward(model, ids, mask, 3, 0.5, head)
    assert logits.shape == (4, 3, model.config.vocab_size)
    assert values.shape == (4, 3)
    for row, (prompt, response) in enumerate(samples):
        out = model(input_ids=torch.tensor([[*prompt, *response]]), output_hidden_states=True)
        span = slice(len(prompt) - 1, len(prompt) + len(response) - 1)
        torch.testing.assert_close(logits[row, : len(response)], out.logits[0, span] / 0.5)
        want = head(out.hidden_states[-1][0, span]).squeeze(-1)
        torch.testing.assert_close(values[row, : len(response)], want)
        assert not logits[row, len(response) :].any()
        assert not values[row, len(response) :].any()
