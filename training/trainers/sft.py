"""SFT trainer: demonstrations -> a policy (cross-entropy on response tokens only).

The loss is the mean over *all response tokens of the optimizer step* (micro-batches are weighted
by their token counts), so gradient accumulation and multi-process runs give the same update as
one big batch.

Public API for the workers::

    result = training.trainers.sft.run(SFTConfig(...), train_examples, eval_examples)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training.batching import pad_sequences
from training.config import SFTConfig
from training.loop import ProgressCallback, RunResult, fit, init_distributed, seed_everything
from training.losses import sft_loss
from training.modeling import (
    autocast,
    fit_to_context,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    prepare_for_training,
    to_device,
)
from training.records import SFTExample
from training.tokenize import Encoded, Encoder, encode_sft
from training.trainers.common import finish_run, load_splits

NAME = "sft"  # this trainer's entry in training/contract/trainers.py


@dataclass
class State:
    config: SFTConfig
    tokenizer: Any
    model: Any
    device: torch.device
    train: list[Encoded]
    eval: list[Encoded]
    counts: dict[str, int]


def setup(
    config: SFTConfig,
    train_records: Sequence[SFTExample] | None = None,
    eval_records: Sequence[SFTExample] | None = None,
) -> State:
    init_distributed()
    seed_everything(config.seed)
    device = pick_device(config.device)
    train, evals, counts = load_splits(config, "sft", train_records, eval_records)
    tokenizer = load_tokenizer(config.model)
    max_length, max_prompt_length = fit_to_context(
        config.model, config.max_length, config.max_prompt_length
    )
    encoder = Encoder(tokenizer, max_length=max_length, max_prompt_length=max_prompt_length)
    train_enc, eval_enc = encode_sft(encoder, train), encode_sft(encoder, evals)
    counts.update(encoder.report.as_dict())
    model = load_causal_lm(config.model, device)
    model = prepare_for_training(model, config, "CAUSAL_LM")
    return State(config, tokenizer, model, device, train_enc, eval_enc, counts)


def _forward(state: State, model: Any, seqs: Sequence[Encoded]) -> tuple[torch.Tensor, int, int]:
    """Summed response-token NLL, response tokens, all tokens."""
    batch = pad_sequences(
        [(s.prompt_ids, s.response_ids) for s in seqs], state.tokenizer.pad_token_id
    )
    batch = to_device(batch, state.device)
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits  # (B, T, V)
    n_resp = int((batch["labels"][:, 1:] != -100).sum())
    return sft_loss(logits, batch["labels"]).sum(), n_resp, int(batch["attention_mask"].sum())


def train_step(
    state: State, model: Any, seqs: list[Encoded]
) -> tuple[torch.Tensor, dict[str, float]]:
    total, n_resp, n_all = _forward(state, model, seqs)
    return total / max(1, n_resp), {"tokens": float(n_all)}


@torch.no_grad()
def evaluate(state: State, model: Any) -> dict[str, float]:
    """Held-out token-mean loss and perplexity on response tokens."""
    if not state.eval:
        return {}
    model.eval()
    total, count = 0.0, 0
    bs = state.config.eval_batch_size
    order = sorted(state.eval, key=lambda s: -s.length)
    for start in range(0, len(order), bs):
        with autocast(state.device, state.config.bf16):
            loss, n_resp, _ = _forward(state, model, order[start : start + bs])
        total, count = total + loss.item(), count + n_resp
    mean = total / max(1, count)
    return {"loss": mean, "perplexity": float(torch.exp(torch.tensor(mean)))}


def run(
    config: SFTConfig,
    train_records: Sequence[SFTExample] | None = None,
    eval_records: Sequence[SFTExample] | None = None,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Fine-tune on demonstrations; records default to ``config.train_file``/``eval_file``."""
    t0 = time.perf_counter()
    state = setup(config, train_records, eval_records)
    fitted = fit(
        config=config,
        model=state.model,
        items=state.train,
        lengths=[s.length for s in state.train],
        units=[max(1, len(s.response_ids) - (0 if s.prompt_ids else 1)) for s in state.train],
        train_step=lambda m, seqs: train_step(state, m, seqs),
        evaluate=(lambda m: evaluate(state, m)) if state.eval else None,
        progress=progress,
    )
    return finish_run(state, fitted, trainer=NAME, started=t0, data=state.train)
