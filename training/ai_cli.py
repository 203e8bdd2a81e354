"""``python -m training judge`` and ``python -m training cai``: AI feedback from the command line.

``judge --model PATH | --reward-model PATH --pairs FILE.jsonl [--principle TEXT]`` judges every
pair of a preference JSONL file (``prompt``/``chosen``/``rejected``, or HH-RLHF's implicit
prompt) in both orders, shown as (chosen, rejected) for even lines and (rejected, chosen) for odd
ones so a judge that always picks one position scores 50 %, and prints its agreement with the
file's label, the flip rate (inconsistent / judged) and the pairs judged per second.

``cai --model PATH --prompts FILE.jsonl --principles FILE --out FILE.jsonl`` runs the supervised
Constitutional AI stage (:mod:`training.cai`) and writes one row per prompt: original, principle,
critique, revised, tokens, and ``dropped`` (why a revision is unusable, or null).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.records import DataError, PreferencePair, load_jsonl

COMMANDS = ("judge", "cai")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "judge",
        help="Judge preference pairs with an LLM judge or a reward model (both orders).",
        description=(__doc__ or "").split("\n\n")[1],
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="PATH", help="a local causal LM as the LLM judge")
    which.add_argument("--reward-model", metavar="PATH", help="a reward-model artifact")
    p.add_argument("--pairs", metavar="FILE.jsonl", required=True, help="preference pairs")
    p.add_argument("--principle", metavar="TEXT", default="", help="the principle to judge by")
    p.add_argument("--guidelines", metavar="TEXT", default="", help="guidelines for the judge")
    p.add_argument("--max-pairs", metavar="N", type=int, default=0, help="0 = every pair")
    p.add_argument("--batch-size", metavar="N", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--out", metavar="FILE.jsonl", default="", help="write every verdict here")

    c = sub.add_parser(
        "cai",
        help="Constitutional AI: answer, critique against a principle, revise.",
        description=(__doc__ or "").split("\n\n")[2],
    )
    c.add_argument("--model", metavar="PATH", required=True, help="a local causal (chat) LM")
    c.add_argument("--prompts", metavar="FILE.jsonl", required=True, help='{"prompt": ...} rows')
    c.add_argument(
        "--principles",
        metavar="FILE",
        required=True,
        help="one principle per line, or a JSON list of strings",
    )
    c.add_argument("--out", metavar="FILE.jsonl", required=True)
    c.add_argument("--max-new-tokens", metavar="N", type=int, default=128)
    c.add_argument("--temperature", type=float, default=0.7)
    c.add_argument("--top-p", type=float, default=0.95)
    c.add_argument("--batch-size", metavar="N", type=int, default=8)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="auto")


def run(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return _judge(args) if command == "judge" else _cai(args)


def judge_labelled(
    judge: Any, pairs: Sequence[PreferencePair], *, principle: str = "", guidelines: str = ""
) -> tuple[dict[str, Any], list[Any]]:
    """Judge labelled pairs, shown as (chosen, rejected) on even rows and (rejected, chosen) on
    odd ones; the figures (agreement with the label, flip rate, speed) and the verdicts.

    ``agreement`` counts an inconsistent verdict as half a match (it is no choice: chance);
    ``agreement_consistent`` is over the consistent verdicts only, with its 95 % Wilson interval.
    """
    from training.evaluate import wilson_interval
    from training.judges import PairToJudge, flip_rate

    todo = [
        PairToJudge(
            i, p.prompt, *((p.chosen, p.rejected) if i % 2 == 0 else (p.rejected, p.chosen))
        )
        for i, p in enumerate(pairs)
    ]
    started = time.perf_counter()
    verdicts = judge.judge(todo, principle=principle, guidelines=guidelines)
    seconds = time.perf_counter() - started
    labels = [i % 2 for i in range(len(todo))]  # where the file's chosen response was shown
    consistent = [(v, y) for v, y in zip(verdicts, labels, strict=True) if v.winner is not None]
    agree = sum(v.winner == y for v, y in consistent)
    n, k = len(verdicts), len(consistent)
    rate = agree / k if k else None
    low, high = wilson_interval(rate or 0.0, k)
    tokens = sum(v.tokens for v in verdicts)
    figures = {
        "model": judge.name,
        "template_hash": judge.template_hash,
        "pairs": n,
        "agreement": (agree + 0.5 * (n - k)) / n if n else None,
        "agreement_consistent": rate,
        "agreement_consistent_low": low if k else None,
        "agreement_consistent_high": high if k else None,
        "flip_rate": flip_rate(verdicts),
        "mean_confidence": sum(v.confidence or 0 for v, _ in consistent) / k if k else None,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "pairs_per_second": n / seconds if seconds > 0 else None,
        "tokens_per_second": tokens / seconds if seconds > 0 else None,
    }
    return figures, verdicts


def _judge(args: dict[str, Any]) -> dict[str, Any]:
    from training.judges import load_judge

    pairs, report = load_jsonl(args["pairs"], "preference")
    if args["max_pairs"] and args["max_pairs"] > 0:
        pairs = pairs[: args["max_pairs"]]
    if not pairs:
        raise DataError(f"{args['pairs']}: no usable preference pairs")
    method, model = (
        ("reward_model", args["reward_model"])
        if args["reward_model"]
        else ("llm_judge", args["model"])
    )
    judge = load_judge(method, model, device=args["device"], batch_size=args["batch_size"])
    figures, verdicts = judge_labelled(
        judge, pairs, principle=args["principle"], guidelines=args["guidelines"]
    )
    if args["out"]:
        rows = [{**v.__dict__, "label": i % 2} for i, v in enumerate(verdicts)]
        Path(args["out"]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"judge": method, **figures, "records": report.as_dict()}


def read_principles(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: not a JSON list ({exc.msg})") from None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DataError(f"{p}: a JSON list of strings is expected")
    else:
        values = text.splitlines()
    principles = [v.strip() for v in values if v.strip()]
    if not principles:
        raise DataError(f"{p}: no principles")
    return principles


def _cai(args: dict[str, Any]) -> dict[str, Any]:
    import torch

    from training.cai import CAIConfig, CAIPrompt, critique_and_revise
    from training.contract.records import as_prompt
    from training.modeling import load_causal_lm, load_tokenizer, pick_device

    principles = read_principles(args["principles"])
    path = Path(args["prompts"])
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "prompt" not in row:
            raise DataError(f"{path}:{lineno}: missing field 'prompt'")
        items.append(CAIPrompt(row.get("id", lineno), as_prompt(row["prompt"], f"{path}:{lineno}")))
    try:
        config = CAIConfig(
            max_new_tokens=args["max_new_tokens"],
            temperature=args["temperature"],
            top_p=args["top_p"],
            batch_size=args["batch_size"],
            seed=args["seed"],
        )
    except ValueError as exc:
        raise DataError(f"cai: {exc}") from None
    device = pick_device(args["device"])
    tokenizer = load_tokenizer(args["model"])
    model = load_causal_lm(args["model"], device)
    started = time.perf_counter()
    with torch.inference_mode():
        results = critique_and_revise(model, tokenizer, items, principles, config=config)
    seconds = time.perf_counter() - started
    Path(args["out"]).write_text(
        "".join(json.dumps(r.as_json(), ensure_ascii=False) + "\n" for r in results),
        encoding="utf-8",
    )
    dropped: dict[str, int] = {}
    for r in results:
        if r.dropped:
            dropped[r.dropped] = dropped.get(r.dropped, 0) + 1
    return {
        "prompts": len(results),
        "kept": sum(r.dropped is None for r in results),
        "dropped": dropped,
        "tokens": sum(r.tokens for r in results),
        "seconds": round(seconds, 3),
        "out": args["out"],
    }
