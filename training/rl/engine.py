"""The on-policy loop every online method shares (beside the offline ``training.loop.fit``).

One step: take this process's share of the step's prompts, roll out (sample, policy/reference
log-probs, values, scores), let the method compute advantages, then ``ppo_epochs`` passes of
``num_minibatches`` optimizer updates over the rollout, then log the monitors
(:mod:`training.rl.monitors`), adapt beta, evaluate, checkpoint. A method supplies only
``advantages`` and a minibatch ``loss`` (:class:`Method`); everything else is here.

Rules it keeps, the same as ``fit``'s: AdamW with warm-up + cosine over all updates, gradient
accumulation with exact weights (each forward's loss is divided by the minibatch's *global* unit
count: tokens or sequences), clipping, bf16 autocast on CUDA, DDP under ``torchrun`` (gloo on
CPU), a progress callback on rank 0 after every step, a tqdm bar, TensorBoard/MLflow through
``report_to``, resumable checkpoints (weights with the value head, optimizer, scheduler, RNG,
history, beta) and the artifact written atomically by rank 0.

Determinism: the prompts of a step, the sampling seeds and the minibatch order are functions of
(seed, step), and dropout is off, so a run resumed from a checkpoint continues with the identical
curve. Under DDP each process takes a contiguous share of the step's prompts; whitening and loss
normalisation use statistics summed over processes, so with ``num_minibatches = 1`` a 2-process
run equals one process with the doubled ``rollout_batch_size`` (with several minibatches each
process shuffles its own share, as TRL does).
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from training.config import ConfigError
from training.loop import (
    Progress,
    ProgressCallback,
    RunResult,
    barrier,
    checkpoint_root,
    cosine_schedule,
    init_distributed,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)
from training.modeling import (
    autocast,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    prepare_for_training,
)
from training.records import Prompt
from training.rl.config import RolloutConfig
from training.rl.data import load_prompts
from training.rl.monitors import alarm_events, alarms, rollout_metrics, rollout_sums
from training.rl.policy import ActorCritic, disable_dropout
from training.rl.rewards import Scorer, move, resolve
from training.rl.rollout import Rollout, collect, rollout_seed
from training.tracking import open_tracker
from training.trainers.common import metadata, save_final

Ratio = tuple[float, float]  # (numerator, denominator) of a metric, summed then divided


@dataclass(frozen=True)
class Method:
    """What an online method plugs into the loop."""

    name: str
    value_head: bool
    # (rollout, config, beta, reduce) -> metrics; stores advantages etc. in rollout.extra
    advantages: Callable[[Rollout, Any, float, Callable[[Tensor], Tensor]], dict[str, float]]
    # (rollout, rows, logits, values, config, beta) -> (sum of the loss over its units, metrics)
    loss: Callable[
        [Rollout, Tensor, Tensor, Tensor | None, Any, float], tuple[Tensor, dict[str, Ratio]]
    ]
    units: Callable[[Rollout, Tensor, Any], float]  # (rollout, rows, config): tokens or sequences
    adaptive_beta: Callable[[float, float, Any, int], float] | None = None


@dataclass
class RLResult(RunResult):
    """A run's outcome; ``history`` holds the monitors of every step, ``alarms`` the events."""

    alarms: list[dict[str, Any]] = field(default_factory=list)


def all_sum(t: Tensor) -> Tensor:
    """Sum over processes (identity on one)."""
    if not dist.is_initialized():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def _reduce(sums: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(sums)
    flat = [v for k in keys for v in (sums[k] if isinstance(sums[k], tuple) else (sums[k],))]
    values = all_sum(torch.tensor(flat, dtype=torch.float64)).tolist()
    out: dict[str, Any] = {}
    for k in keys:
        width = len(sums[k]) if isinstance(sums[k], tuple) else 1
        out[k] = tuple(values[:width]) if width > 1 else values[0]
        values = values[width:]
    return out


def eval_metrics_of(r: Rollout, beta: float) -> dict[str, float]:
    """The held-out metrics of an evaluation rollout: ``eval/scores``, ``eval/kl``,
    ``eval/sqrt_kl``, ``eval/mean_length``, ``eval/clipped_ratio`` and ``eval/gold``."""
    m = rollout_metrics(rollout_sums(r), beta)
    out = {
        "eval/scores": m["objective/scores"],
        "eval/kl": m["objective/kl"],
        "eval/sqrt_kl": m["objective/sqrt_kl"],
        "eval/mean_length": m["completions/mean_length"],
        "eval/clipped_ratio": m["completions/clipped_ratio"],
    }
    if "objective/gold" in m:
        out["eval/gold"] = m["objective/gold"]
    return out


def split_prompts(config: RolloutConfig, prompts: Any, eval_prompts: Any) -> tuple[list, list]:
    train = list(prompts) if prompts is not None else None
    if train is None:
        if not config.train_file:
            raise ConfigError("train_file: required when no prompts are passed in")
        train = load_prompts(config.train_file)
    if eval_prompts is not None:
        evals = list(eval_prompts)
    elif config.eval_file:
        evals = load_prompts(config.eval_file)
    elif config.eval_fraction > 0 and len(train) > 1:
        order = list(range(len(train)))
        random.Random(config.seed).shuffle(order)
        held = set(order[: max(1, int(len(train) * config.eval_fraction))])
        evals = [p for i, p in enumerate(train) if i in held]
        train = [p for i, p in enumerate(train) if i not in held]
    else:
        evals = []
    if not train:
        raise ValueError("no training prompts")
    return train, evals[: config.eval_max_prompts or None]


def _resume_path(config: RolloutConfig) -> Path | None:
    if not config.resume_from or config.resume_from != "latest":
        return Path(config.resume_from) if config.resume_from else None
    root = checkpoint_root(config)
    steps = sorted(root.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    return steps[-1] if steps else None


def run_online(
    config: RolloutConfig,
    method: Method,
    prompts: Sequence[Prompt] | None = None,
    eval_prompts: Sequence[Prompt] | None = None,
    *,
    reward_model: str | Scorer | None = None,
    gold: str | Scorer | None = None,
    progress: ProgressCallback | None = None,
) -> RLResult:
    """Train a policy on its own samples with ``method``; see the module docstring."""
    t0 = time.perf_counter()
    rank, world = init_distributed()
    seed_everything(config.seed)
    device = pick_device(config.device)
    train, evals = split_prompts(config, prompts, eval_prompts)
    counts = {"train_prompts": len(train), "eval_prompts": len(evals)}
    tokenizer = load_tokenizer(config.model)
    kw = {"device": device, "batch_size": config.reward_batch_size}
    scorer = resolve(reward_model, path=config.reward_model, rule_spec=config.reward_rule, **kw)
    if scorer is None:
        raise ConfigError("reward_model: a reward-model path or reward_rule is required")
    gold_scorer = resolve(
        gold, path=config.gold_reward_model, rule_spec=config.gold_reward_rule, **kw
    )
    ref = None
    if config.lora_r == 0:  # with LoRA the reference is the policy with the adapter disabled
        ref = load_causal_lm(config.model, device).requires_grad_(False).eval()
        disable_dropout(ref)
    policy = prepare_for_training(load_causal_lm(config.model, device), config, "CAUSAL_LM")
    model = ActorCritic(policy, value_head=method.value_head).to(device)
    disable_dropout(model)
    offload = torch.device("cpu") if config.offload_models and ref is not None else None

    rb, k = config.rollout_batch_size, config.k
    chunk = config.generation_batch_size or rb
    global_prompts = rb * world
    total = config.max_steps or config.num_epochs * math.ceil(len(train) / global_prompts)
    per_step = config.ppo_epochs * config.num_minibatches
    value_lr = getattr(config, "value_learning_rate", 0.0) or config.learning_rate
    groups = [{"params": [p for p in model.policy.parameters() if p.requires_grad]}]
    if model.value_head is not None:
        groups.append({"params": list(model.value_head.parameters()), "lr": value_lr})
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        cosine_schedule(config.warmup_steps, total * per_step, config.min_lr_ratio),
    )
    history: list[dict[str, Any]] = []
    eval_metrics: dict[str, float] = {}
    start, tokens, beta = 0, 0, config.beta
    resume = _resume_path(config)
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, scheduler)
        start, history, tokens = state["step"], state["history"], state["tokens"]
        beta, eval_metrics = state["beta"], state.get("eval_metrics", {})
    trained: Any = model
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    @functools.lru_cache(maxsize=2)
    def orders(epoch: int) -> list[int]:
        order = list(range(len(train)))
        random.Random(config.seed * 7919 + epoch).shuffle(order)
        return order

    def rollout(batch_prompts: list[Prompt], seed_of: Callable[[int], int], n: int) -> Rollout:
        if offload is not None:
            ref.to(device)
            move(scorer, device)
            move(gold_scorer, device)
        with autocast(device, config.bf16):
            r = collect(
                model,
                ref,
                tokenizer,
                batch_prompts,
                k=n,
                temperature=config.temperature,
                max_new_tokens=config.max_new_tokens,
                max_prompt_length=config.max_prompt_length,
                chunk=chunk,
                seed_of=seed_of,
                scorer=scorer,
                gold=gold_scorer,
                missing_eos_penalty=config.missing_eos_penalty,
                batch_size=config.batch_size,
                device=device,
            )
        if offload is not None:
            ref.to(offload)
            move(scorer, offload)
            move(gold_scorer, offload)
        return r

    def evaluate() -> dict[str, float]:
        # The same seeds at every evaluation, so evaluations compare alike.
        r = rollout(list(evals), lambda c: rollout_seed(config.seed, 10**6, c), config.eval_samples)
        return eval_metrics_of(r, beta)  # every process evaluates the whole held-out set

    with open_tracker(config, main_process=rank == 0) as tracker:
        bar = None
        if config.progress_bar and rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=start, desc=method.name, unit="step")
        if evals and start == 0:
            eval_metrics = evaluate()
            history.append({"step": 0, **eval_metrics})
            tracker.log(0, eval_metrics)
        t1 = time.perf_counter()
        for step in range(start, total):
            first = step * global_prompts + rank * rb
            positions = range(first, first + rb)
            batch_prompts = [train[orders(p // len(train))[p % len(train)]] for p in positions]
            base_call = rank * rb // chunk
            r = rollout(
                batch_prompts,
                lambda c, s=step, b=base_call: rollout_seed(config.seed, s, b + c),
                k,
            )
            extra = method.advantages(r, config, beta, all_sum)
            sums: dict[str, Any] = {}
            grad_norm = 0.0
            n_mb = len(r) // config.num_minibatches
            model.train()
            for epoch in range(config.ppo_epochs):
                gen = torch.Generator().manual_seed(rollout_seed(config.seed, step, 99_991 + epoch))
                perm = torch.randperm(len(r), generator=gen).to(device)
                for j in range(config.num_minibatches):
                    rows = perm[j * n_mb : (j + 1) * n_mb]
                    local = torch.tensor(method.units(r, rows, config), dtype=torch.float64)
                    units = float(all_sum(local))
                    micro = rows.split(config.batch_size)
                    for n, part in enumerate(micro):
                        sync = world == 1 or n == len(micro) - 1
                        ctx = contextlib.nullcontext() if sync else trained.no_sync()
                        with ctx:
                            with autocast(device, config.bf16):
                                logits, values = trained(
                                    r.input_ids[part],
                                    r.attention_mask[part],
                                    r.prompt_width,
                                    config.temperature,
                                )
                                loss_sum, metrics = method.loss(
                                    r, part, logits, values, config, beta
                                )
                            (loss_sum * (world / units)).backward()
                        for key, (num, den) in {
                            "loss": (float(loss_sum.detach()), method.units(r, part, config)),
                            **metrics,
                        }.items():
                            old = sums.get(key, (0.0, 0.0))
                            sums[key] = (old[0] + num, old[1] + den)
                    if config.max_grad_norm > 0:
                        grad_norm = float(
                            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                        )
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            model.eval()
            reduced = _reduce({**sums, **{f"r:{k}": v for k, v in rollout_sums(r).items()}})
            rsums = {k[2:]: v for k, v in reduced.items() if k.startswith("r:")}
            tokens += int(rsums["tokens"])
            done = step + 1
            record: dict[str, Any] = {"step": done}
            record.update({k: v[0] / max(v[1], 1e-12) for k, v in reduced.items() if ":" not in k})
            record.update(rollout_metrics(rsums, beta))
            record.update(extra)
            record.update({"grad_norm": grad_norm, "lr": scheduler.get_last_lr()[0]})
            record.update(alarms(history, record, config))
            if method.adaptive_beta is not None:
                beta = method.adaptive_beta(beta, record["objective/kl"], config, len(r) * world)
            logged = done % config.log_every == 0 or done == total
            evaluated = bool(evals) and (
                done == total or bool(config.eval_every and done % config.eval_every == 0)
            )
            if evaluated:
                eval_metrics = evaluate()
                record.update(eval_metrics)
            if logged or evaluated:
                history.append(record)
                tracker.log(done, record)
            if progress is not None and rank == 0:
                elapsed = time.perf_counter() - t1
                eta = elapsed / (done - start) * (total - done)
                progress(Progress(done, total, record["loss"], dict(record), eta))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(reward=f"{record['objective/scores']:.3f}")
            if config.save_every and done % config.save_every == 0 and done < total:
                if rank == 0:
                    state = {
                        "step": done,
                        "history": history,
                        "tokens": tokens,
                        "beta": beta,
                        "eval_metrics": eval_metrics,
                    }
                    save_checkpoint(
                        checkpoint_root(config) / f"step-{done}",
                        model,
                        optimizer,
                        scheduler,
                        state,
                    )
                barrier()
        if bar is not None:
            bar.close()
    final = {k: v for k, v in history[-1].items() if k != "step"} if history else {}
    result = RLResult(
        None,
        {**final, **eval_metrics},
        history,
        counts,
        total,
        tokens,
        time.perf_counter() - t0,
        alarms=alarm_events(history),
    )
    meta = metadata(config, method.name, counts, result.metrics, [list(map(str, train))])
    result.artifact_path = save_final(model.policy, tokenizer, config, meta)
    return result
