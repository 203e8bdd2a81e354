"""The LLM judge: any local causal LM, its choice read from the answer tokens' log-probabilities.

For each order of a pair the judge sees :func:`training.judges.templates.judge_message` through
its chat template with the generation prompt (the plain format without one), and one forward
gives the next-token logits ``z`` at the last position. With ``a``, ``b`` the ids of the answer
tokens ``A`` and ``B``:

    P(shown first wins) = exp(z_a) / (exp(z_a) + exp(z_b)) = sigmoid(z_a - z_b)

i.e. the distribution renormalised over the two answers (the mass the model puts elsewhere does
not matter, and no text is generated or parsed). Both orders of every pair go through the model
in one batched pass (left padding, explicit position ids so padding does not shift positions,
sorted by length), under ``torch.inference_mode``; the two probabilities are combined by
:func:`training.judges.combine`. ``tokens`` counts the non-padding tokens of both orders.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from training.base_models import default_models_dir
from training.batching import left_pad
from training.judges.templates import ANSWERS, judge_message, template_hash
from training.judges.verdicts import PairToJudge, ProgressFn, Verdict, combine
from training.modeling import context_window, load_causal_lm, load_tokenizer, pick_device
from training.tokenize import render_prompt

DEFAULT_MODEL = "smollm2-135m-instruct"


def default_model_path() -> str:
    """The installed SmolLM2-135M-Instruct (``python -m training base-model install ...``)."""
    return str(default_models_dir() / DEFAULT_MODEL)


def answer_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The ids of the single tokens ``A`` and ``B``; an error for a tokenizer that splits them."""
    ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in ANSWERS]
    if any(len(i) != 1 for i in ids) or ids[0] == ids[1]:
        raise ValueError(f"the judge's tokenizer must encode {ANSWERS} as one token each: {ids}")
    return ids[0][0], ids[1][0]


def cpu_threads() -> int:
    """The cores this process may use (a container's affinity, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LLMJudge:
    """A causal LM as a pairwise judge (see the module docstring)."""

    def __init__(
        self, model: str = "", *, device: str = "auto", batch_size: int = 8, max_length: int = 2048
    ) -> None:
        self.name = model or default_model_path()
        self.template_hash = template_hash()
        self.batch_size = batch_size
        self.device = pick_device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(cpu_threads())
        self.tokenizer = load_tokenizer(self.name)
        self.model = load_causal_lm(self.name, self.device).eval()
        context = context_window(self.model.config)
        self.max_length = min(max_length, context) if context else max_length
        self.answers = answer_token_ids(self.tokenizer)

    def encode(
        self, pair: PairToJudge, swapped: bool, principle: str, guidelines: str
    ) -> list[int]:
        """Token ids of one order's judge prompt (the start cut if it exceeds the window)."""
        a, b = (pair.second, pair.first) if swapped else (pair.first, pair.second)
        message = judge_message(pair.prompt, a, b, principle=principle, guidelines=guidelines)
        text, _ = render_prompt(self.tokenizer, ({"role": "user", "content": message},))
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-self.max_length :]

    @torch.inference_mode()
    def answer_logits(self, seqs: Sequence[Sequence[int]]) -> torch.Tensor:
        """Next-token logits of the two answer tokens after each sequence: (N, 2), in order."""
        out = torch.empty(len(seqs), 2)
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = left_pad([seqs[i] for i in rows], self.tokenizer.pad_token_id)  # (B, T)
            mask = batch["attention_mask"].to(self.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T): padding shifts nothing
            logits = self.model(
                input_ids=batch["input_ids"].to(self.device),
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
                logits_to_keep=1,  # the LM head at the last position only: (B, 1, V)
            ).logits[:, -1]  # (B, V)
            out[rows] = logits[:, list(self.answers)].float().cpu()
        return out

    def judge(
        self,
        pairs: Sequence[PairToJudge],
        *,
        principle: str = "",
        guidelines: str = "",
        progress: ProgressFn | None = None,
    ) -> list[Verdict]:
        verdicts: list[Verdict] = []
        # a chunk of pairs at a time: both orders of each pair in one batched pass
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            seqs = [self.encode(p, False, principle, guidelines) for p in chunk]
            seqs += [self.encode(p, True, principle, guidelines) for p in chunk]
            z = self.answer_logits(seqs)  # (2n, 2)
            p_shown_first = torch.sigmoid(z[:, 0] - z[:, 1]).tolist()  # (2n,)
            n = len(chunk)
            for i, pair in enumerate(chunk):
                tokens = len(seqs[i]) + len(seqs[n + i])
                verdicts.append(
                    combine(pair.key, p_shown_first[i], 1 - p_shown_first[n + i], tokens)
                )
            if progress is not None:
                progress(len(verdicts), len(pairs))
        return verdicts
