"""The trained module of the online methods: the policy with an optional scalar value head.

PPO's critic is a linear head on the policy's last hidden state (one trunk, as in TRL's former
``AutoModelForCausalLMWithValueHead``): no second model is held, and one forward gives both the
token log-probs and the values. RLOO, GRPO and best-of-n use the policy alone (no head).

Layout of a batch (as in TRL's PPO): the prompt is left-padded to width ``P``, the response
right-padded to width ``R``; positions are counted from the first real token, so padding never
shifts them. The logits at ``P - 1 .. P + R - 2`` predict the response tokens ``0 .. R - 1``, and
the value at the same position is V(state before response token t). The forward itself packs the
samples of one prompt into one row (:func:`response_forward`); its results keep this layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from training.shared_prefix import pack, shared_prefix_forward


class ActorCritic(nn.Module):
    """``policy`` (a causal LM, maybe peft-wrapped) and ``value_head`` (Linear(H, 1) or None)."""

    def __init__(self, policy: Any, *, value_head: bool) -> None:
        super().__init__()
        self.policy = policy
        hidden = policy.config.hidden_size if value_head else 0
        self.value_head = nn.Linear(hidden, 1) if value_head else None
        if self.value_head is not None:
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, prompt_width: int, temperature: float
    ) -> tuple[Tensor, Tensor | None]:  # logits (B, R, V), values (B, R) or None
        return response_forward(
            self.policy, input_ids, attention_mask, prompt_width, temperature, self.value_head
        )


def response_forward(
    lm: Any,
    input_ids: Tensor,  # (B, P + R)
    attention_mask: Tensor,  # (B, P + R)
    prompt_width: int,
    temperature: float,
    value_head: nn.Module | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Logits of the response positions divided by the temperature, and the values.

    The k samples of a prompt share one forward of it (:mod:`training.shared_prefix`): a row per
    distinct prompt, ``[prompt, sample_1, ..., sample_k]``, the LM head only over the samples.
    The result is laid out as if each sample had had its own row: (B, R, V), zero past a
    sample's end (the response mask hides those positions)."""
    width = input_ids.shape[1] - prompt_width  # R
    real = attention_mask.bool()
    seqs = [
        (
            ids[:prompt_width][keep[:prompt_width]].tolist(),
            ids[prompt_width:][keep[prompt_width:]].tolist(),
        )
        for ids, keep in zip(input_ids.cpu(), real.cpu(), strict=True)
    ]
    batch = pack(seqs, pad_id=0).to(input_ids.device)
    packed, states = shared_prefix_forward(lm, batch, hidden=value_head is not None)
    valid = batch.owners >= 0
    owner, offset = batch.owners[valid], batch.offsets[valid]
    logits = packed.new_zeros((len(input_ids), width, packed.shape[-1]), dtype=torch.float32)
    logits = logits.index_put((owner, offset), packed[valid].float())  # (B, R, V)
    if temperature != 1.0:
        logits = logits / temperature
    values = None
    if value_head is not None:
        assert states is not None
        head = value_head(states[valid].to(next(value_head.parameters()).dtype)).squeeze(-1)  # (n,)
        values = head.new_zeros((len(input_ids), width)).index_put((owner, offset), head)
    return logits, values


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:  # (B, R)
    """log p(token) under ``logits`` (B, R, V) at each response position."""
    return torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)


@contextlib.contextmanager
def reference_of(policy: Any, ref: Any | None) -> Iterator[Any]:
    """The frozen reference: ``ref`` when one is held, else the policy with its LoRA adapter
    disabled (the same weights, so no second copy of the model)."""
    if ref is not None:
        yield ref
        return
    with policy.disable_adapter():
        yield policy


def disable_dropout(model: nn.Module) -> None:
    """Dropout off everywhere: rollout-time and update-time log-probs must agree (TRL does the
    same for PPO), and a resumed run replays the same numbers."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
