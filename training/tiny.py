"""Tiny models built offline, for tests, benchmarks and the demo.

No model hub is reachable from our machines, so everything a test needs is built here from a
`transformers` config with random weights and a byte-level tokenizer built in memory. The result is
written with ``save_pretrained`` (safetensors) so it is loaded by path exactly like a real model.

The tokenizer is byte-level BPE with *no merges*: every UTF-8 byte is one token (256 tokens) plus
three special tokens. It needs no training data, is deterministic, and round-trips any text.

Random weights sample random bytes, which are mostly not UTF-8 and so never reach a rater (the
loop drops unreadable candidates, annotation/textcheck.py). The causal LM's generation config
therefore suppresses every token but printable ASCII, tab, newline and EOS: its samples are
gibberish, but readable gibberish. Log-probabilities stay those of the full distribution
(``training/generate.py`` reads the raw logits).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

EOS = "<|endoftext|>"
PAD = "<|pad|>"

# A minimal chat template (Jinja) in the style of ChatML, used when ``chat_template=True``.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer(*, chat_template: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer (256 byte tokens + EOS + PAD), built in memory."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    fast.add_special_tokens({"eos_token": EOS, "pad_token": PAD})
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def unreadable_token_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Every token of the tiny tokenizer except printable ASCII, tab, newline and EOS."""
    text = "".join(map(chr, range(32, 127))) + "\t\n"
    keep = set(tokenizer(text, add_special_tokens=False)["input_ids"]) | {tokenizer.eos_token_id}
    return [i for i in range(len(tokenizer)) if i not in keep]


def tiny_config(
    tokenizer: PreTrainedTokenizerFast,
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_positions: int = 256,
    dropout: float = 0.0,
    num_labels: int = 1,
) -> GPT2Config:
    """A GPT-2 config sized for CPU tests (~0.1M parameters at the defaults)."""
    # num_labels is a PretrainedConfig keyword that GPT2Config's signature does not list.
    return GPT2Config(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=num_labels,
    )


def write_tiny_causal_lm(
    path: str | Path, *, seed: int = 0, chat_template: bool = False, **config_kwargs: int | float
) -> Path:
    """Write a random tiny GPT-2 causal LM and its tokenizer to ``path``; return the path."""
    import torch

    path = Path(path)
    tokenizer = tiny_tokenizer(chat_template=chat_template)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(tiny_config(tokenizer, **config_kwargs))  # type: ignore[arg-type]
    model.generation_config.suppress_tokens = unreadable_token_ids(tokenizer)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def write_tiny_reward_model(
    path: str | Path, *, seed: int = 0, chat_template: bool = False, **config_kwargs: int | float
) -> Path:
    """Write a random tiny GPT-2 sequence classifier (1 label = scalar reward) and its tokenizer."""
    import torch

    path = Path(path)
    tokenizer = tiny_tokenizer(chat_template=chat_template)
    torch.manual_seed(seed)
    model = GPT2ForSequenceClassification(tiny_config(tokenizer, num_labels=1, **config_kwargs))  # type: ignore[arg-type]
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m training.tiny PATH``: a random tiny causal LM to start a project's loop from
    when no real model can be downloaded (the quick start's demo project uses it)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m training.tiny", description=main.__doc__)
    parser.add_argument("path", help="folder to write the model and tokenizer to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--positions", type=int, default=1024, help="context window (prompt + new tokens)"
    )
    args = parser.parse_args(argv)
    path = write_tiny_causal_lm(
        args.path, seed=args.seed, chat_template=True, n_positions=args.positions
    )
    sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
