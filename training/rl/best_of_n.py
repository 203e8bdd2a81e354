"""Best-of-n rejection-sampling fine-tuning (Llama 2, https://arxiv.org/abs/2307.09288, 3.2.3).

Each round: sample ``k`` (= n) responses per prompt from the current policy (the same seeded
rollout code as PPO), score them, keep the ``keep`` best of each prompt, and fine-tune on them
with the SFT trainer (:mod:`training.trainers.sft`, so its loop, DDP, checkpoints and artifact
rules apply). The next round starts from the last round's model. Iterated, it is the cheapest
reward-model-driven improvement: no critic, no reference in the loss.

Each finished round is an artifact (``<output_dir>.rounds/round-N``; the last round is
``output_dir``) with its monitors beside it (``round-N.json``), so a rerun with ``resume_from``
set skips finished rounds and continues with the identical history. Monitors per round:
``objective/scores`` (all samples), ``bon/kept_scores`` (the kept ones), ``objective/kl`` (of the
samples, to the starting model), lengths, the SFT loss (``sft/loss``), and ``eval/...``.

Public API::

    result = training.rl.best_of_n.run(BestOfNConfig(...), prompts, eval_prompts,
                                       reward_model=..., progress=cb)
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from training.config import SFTConfig, TrainConfig
from training.loop import Progress, ProgressCallback, barrier, init_distributed, seed_everything
from training.modeling import autocast, load_causal_lm, load_tokenizer, pick_device
from training.records import Prompt, SFTExample
from training.rl.config import BestOfNConfig
from training.rl.engine import RLResult, eval_metrics_of, split_prompts
from training.rl.monitors import alarm_events, rollout_metrics, rollout_sums
from training.rl.policy import ActorCritic
from training.rl.rewards import Scorer, scorers_for
from training.rl.rollout import Rollout, collect, rollout_seed


def _sample(
    config: BestOfNConfig,
    model_path: str,
    ref: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    n: int,
    seed_step: int,
    scorer: Scorer,
    gold: Scorer | None,
    device: torch.device,
) -> Rollout:
    model = ActorCritic(load_causal_lm(model_path, device), value_head=False).eval()
    with autocast(device, config.bf16):
        return collect(
            model,
            ref,
            tokenizer,
            prompts,
            k=n,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            max_prompt_length=config.max_prompt_length,
            chunk=config.generation_batch_size or max(1, len(prompts)),
            seed_of=lambda c: rollout_seed(config.seed, seed_step, c),
            scorer=scorer,
            gold=gold,
            missing_eos_penalty=config.missing_eos_penalty,
            batch_size=config.batch_size,
            device=device,
        )


def select_best(r: Rollout, k: int, keep: int) -> list[int]:
    """Indices of the ``keep`` highest-scoring samples of each prompt (ties: the earlier)."""
    chosen = []
    for start in range(0, len(r), k):
        group = r.scores[start : start + k].tolist()
        order = sorted(range(k), key=lambda j: (-group[j], j))[:keep]
        chosen += [start + j for j in sorted(order)]
    return chosen


def _gather(items: list[Any]) -> list[Any]:
    if not dist.is_initialized():
        return items
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]


def run(
    config: BestOfNConfig,
    train_records: Sequence[Prompt] | None = None,
    eval_records: Sequence[Prompt] | None = None,
    progress: ProgressCallback | None = None,
    *,
    reward_model: str | Scorer | None = None,
    gold: str | Scorer | None = None,
) -> RLResult:
    """Rounds of sample -> keep the best -> SFT; see the module docstring."""
    t0 = time.perf_counter()
    rank, world = init_distributed()
    seed_everything(config.seed)
    device = pick_device(config.device)
    train, evals = split_prompts(config, train_records, eval_records)
    tokenizer = load_tokenizer(config.model)
    scorer, gold_scorer = scorers_for(config, reward_model, gold, device)
    ref = load_causal_lm(config.model, device).requires_grad_(False).eval()
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)}
    history: list[dict[str, Any]] = []
    if evals:
        r = _sample(config, config.model, ref, tokenizer, evals, config.eval_samples, -1, scorer,
                    gold_scorer, device)  # fmt: skip
        history.append({"step": 0, **eval_metrics_of(r, 0.0)})
    current, tokens, counts = config.model, 0, {"train_prompts": len(train)}
    for it in range(1, config.iterations + 1):
        last = it == config.iterations
        out = Path(config.output_dir if last else f"{config.output_dir}.rounds/round-{it}")
        side = Path(f"{config.output_dir}.rounds/round-{it}.json")
        if config.resume_from and side.is_file() and (out / "metadata.json").is_file():
            history.append(json.loads(side.read_text(encoding="utf-8")))
            current = str(out)
            continue
        share = train[rank::world]
        r = _sample(config, current, ref, tokenizer, share, config.k, it, scorer, gold_scorer,
                    device)  # fmt: skip
        best = select_best(r, config.k, config.keep)
        examples = _gather([SFTExample(r.prompts[i], r.texts[i]) for i in best])
        kept = _gather([float(r.scores[i]) for i in best])
        sums = {k: float(v) for k, v in zip(*_reduced(rollout_sums(r)), strict=True)}
        tokens += int(sums["tokens"])
        record: dict[str, Any] = {"step": it, **rollout_metrics(sums, 0.0)}
        record["bon/kept_scores"] = sum(kept) / len(kept)
        sft_config = SFTConfig(
            **{
                **shared,
                "model": current,
                "output_dir": str(out),
                "train_file": "",
                "eval_file": "",
                "eval_fraction": 0.0,
                "num_epochs": config.sft_epochs,
                "max_steps": 0,
                "save_every": 0,
                "resume_from": "",
                "progress_bar": False,
                "max_length": config.max_prompt_length + config.max_new_tokens + 2,
            }
        )
        from training.trainers import sft

        sft_result = sft.run(sft_config, examples)
        record["sft/loss"] = sft_result.history[-1]["loss"] if sft_result.history else 0.0
        current = str(sft_result.artifact_path)
        if evals:
            r = _sample(config, current, ref, tokenizer, evals, config.eval_samples, -1, scorer,
                        gold_scorer, device)  # fmt: skip
            record.update(eval_metrics_of(r, 0.0))
        history.append(record)
        if rank == 0:
            side.parent.mkdir(parents=True, exist_ok=True)
            side.write_text(json.dumps(record), encoding="utf-8")
            if progress is not None:
                eta = (time.perf_counter() - t0) / it * (config.iterations - it)
                progress(Progress(it, config.iterations, record["sft/loss"], dict(record), eta))
        barrier()
    final = {k: v for k, v in history[-1].items() if k != "step"} if history else {}
    return RLResult(
        Path(current),
        final,
        history,
        counts,
        config.iterations,
        tokens,
        time.perf_counter() - t0,
        alarms=alarm_events(history),
    )


def _reduced(sums: dict[str, float]) -> tuple[list[str], list[float]]:
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(values)
    return keys, values.tolist()
