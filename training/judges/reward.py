"""The reward-model judge: a trained reward model's score difference as a choice and strength.

Both responses are scored (:func:`training.generate.score`, the scorer the loop uses), and

    P(first wins) = sigmoid(r(first) - r(second))

the Bradley-Terry probability the model was trained on. A reward model scores each response on
its own, so the order it is shown in cannot matter: ``p_first_order == p_second_order``, the flip
rate is 0 by construction (an exact tie, P = 0.5, is no choice and the one way to be
"inconsistent") and the two "orders" are one computation, not two runs. Principle and
guidelines are ignored (the reward model learnt its own criteria). ``template_hash`` is "".
Tokens counts the (prompt, response) tokens of both responses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from training.generate import score
from training.judges.verdicts import PairToJudge, ProgressFn, Verdict, combine
from training.modeling import load_reward_model, load_tokenizer, pick_device
from training.tokenize import Encoder, n_special_tokens

MAX_LENGTH, MAX_PROMPT_LENGTH = 512, 256  # the scorer's defaults


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


class RewardModelJudge:
    """A reward-model artifact as a pairwise judge (see the module docstring)."""

    template_hash = ""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        batch_size: int = 8,
        max_length: int = MAX_LENGTH,
        max_prompt_length: int = MAX_PROMPT_LENGTH,
    ) -> None:
        if not model:
            raise ValueError("the reward-model judge needs a reward model artifact path")
        self.name = model
        self.batch_size = batch_size
        self.lengths = {"max_length": max_length, "max_prompt_length": max_prompt_length}
        self.device = pick_device(device)
        self.tokenizer = load_tokenizer(model)
        self.model = load_reward_model(model, self.device, self.tokenizer.pad_token_id)
        self._encoder = Encoder(
            self.tokenizer,
            max_length=max_length - n_special_tokens(self.tokenizer),
            max_prompt_length=max_prompt_length,
        )

    def judge(
        self,
        pairs: Sequence[PairToJudge],
        *,
        principle: str = "",
        guidelines: str = "",
        progress: ProgressFn | None = None,
    ) -> list[Verdict]:
        verdicts: list[Verdict] = []
        step = max(1, self.batch_size * 4)
        for start in range(0, len(pairs), step):
            chunk = pairs[start : start + step]
            items = [(p.prompt, p.first) for p in chunk] + [(p.prompt, p.second) for p in chunk]
            with torch.inference_mode():
                rewards = score(
                    self.model,
                    self.tokenizer,
                    items,
                    batch_size=self.batch_size,
                    **self.lengths,
                )
            n = len(chunk)
            for i, pair in enumerate(chunk):
                p = _sigmoid(rewards[i] - rewards[n + i])
                tokens = sum(
                    self._encoder.encode(pair.prompt, r).length for r in (pair.first, pair.second)
                )
                verdicts.append(combine(pair.key, p, p, tokens))
            if progress is not None:
                progress(len(verdicts), len(pairs))
        return verdicts
