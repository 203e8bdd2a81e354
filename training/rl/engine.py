"""The on-policy loop every online method shares (beside the offline ``training.loop.fit``).

One step: take this process's share of the step's prompts, roll out (sample, policy/reference
log-probs, values, scores), let the method compute advantages, then ``ppo_epochs`` passes of
``num_minibatches`` optimizer updates over the rollout, then log the monitors
(:mod:`training.rl.monitors`), adapt beta, evaluate, checkpoint. A method supplies only
``advantages`` and a minibatch ``loss`` (:class:`Method`); everything else is here.

The step-driven machinery is :class:`training.session.TrainingSession`, the same one ``fit``
runs on: AdamW with warm-up + cosine over all ``max_steps * ppo_epochs * num_minibatches``
updates, clipping, DDP under ``torchrun`` (gloo on CPU), evaluation on held-out prompts (before
the first step, every ``eval_every`` steps, after the last), the history, a progress callback on
rank 0 after every step, a tqdm bar, TensorBoard/MLflow through ``report_to``, and resumable
checkpoints (weights with the value head, optimizer, scheduler, RNG, history; beta in
``session.extra``). Here: gradient accumulation with exact weights (each forward's loss is
divided by the minibatch's *global* unit count: tokens or sequences), bf16 autocast on CUDA,
and the artifact (the policy, LoRA merged) written atomically by rank 0.

Determinism: the prompts of a step, the sampling seeds and the minibatch order are functions of
(seed, step), and dropout is off, so a run resumed from a checkpoint continues with the identical
curve. Under DDP each process takes a contiguous share of the step's prompts; whitening and loss
normalisation use statistics summed over processes, so with ``num_minibatches = 1`` a 2-process
run equals one process with the doubled ``rollout_batch_size`` (with several minibatches each
process shuffles its own share, as TRL does).
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from training.config import ConfigError
from training.distributed import init_distributed
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
from training.rl.losses import entropy_from_logits
from training.rl.monitors import alarm_events, alarms, rollout_metrics, rollout_sums
from training.rl.policy import ActorCritic, disable_dropout, token_logprobs
from training.rl.rewards import Scorer, move, scorers_for
from training.rl.rollout import Rollout, collect, rollout_seed
from training.session import ProgressCallback, RunResult, TrainingSession, seed_everything
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
    # False: the advantages read no policy log-probs (GRPO), so with one update per rollout the
    # rollout skips the policy's forward and the update's forward supplies them
    advantages_need_logprobs: bool = True


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
    scorer, gold_scorer = scorers_for(config, reward_model, gold, device)
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

    @functools.lru_cache(maxsize=2)
    def orders(epoch: int) -> list[int]:
        order = list(range(len(train)))
        random.Random(config.seed * 7919 + epoch).shuffle(order)
        return order

    # One optimizer update per rollout and advantages without log-probs: the update's forward
    # gives the rollout's policy log-probs and entropy (the same numbers, one forward fewer).
    from_update = not method.advantages_need_logprobs and (
        config.ppo_epochs * config.num_minibatches == 1
    )

    def rollout(
        batch_prompts: list[Prompt],
        seed_of: Callable[[int], int],
        n: int,
        policy_pass: bool = True,
    ) -> Rollout:
        if offload is not None and ref is not None:
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
                policy_pass=policy_pass,
            )
        if offload is not None and ref is not None:
            ref.to(offload)
            move(scorer, offload)
            move(gold_scorer, offload)
        return r

    def evaluate(_: Any) -> dict[str, float]:
        # The same seeds at every evaluation, so evaluations compare alike; every process
        # evaluates the whole held-out set.
        seed_of = lambda c: rollout_seed(config.seed, 10**6, c)  # noqa: E731
        r = rollout(list(evals), seed_of, config.eval_samples)
        beta = session.extra.get("beta", config.beta)
        return {k.removeprefix("eval/"): v for k, v in eval_metrics_of(r, beta).items()}

    session = TrainingSession(
        config=config,
        model=model,
        total_steps=total,
        evaluate=evaluate if evals else None,
        progress=progress,
        phase=method.name,
        updates_per_step=config.ppo_epochs * config.num_minibatches,
    )
    session.extra.setdefault("beta", config.beta)
    with session:
        for step in session.steps():
            beta = session.extra["beta"]
            first = step * global_prompts + rank * rb
            positions = range(first, first + rb)
            batch_prompts = [train[orders(p // len(train))[p % len(train)]] for p in positions]
            base_call = rank * rb // chunk

            def seed_of(c: int, s: int = step, b: int = base_call) -> int:
                return rollout_seed(config.seed, s, b + c)

            r = rollout(batch_prompts, seed_of, k, policy_pass=not from_update)
            extra = method.advantages(r, config, beta, all_sum)
            sums, grad_norm = _update(session, method, r, config, beta, fill=from_update)
            reduced = _reduce({**sums, **{f"r:{k}": v for k, v in rollout_sums(r).items()}})
            rsums = {k[2:]: v for k, v in reduced.items() if k.startswith("r:")}
            record = {k: v[0] / max(v[1], 1e-12) for k, v in reduced.items() if ":" not in k}
            record.update(rollout_metrics(rsums, beta))
            record.update(extra)
            record.update(alarms(session.history, record, config))
            if method.adaptive_beta is not None:
                kl = record["objective/kl"]
                session.extra["beta"] = method.adaptive_beta(beta, kl, config, len(r) * world)
            # Already summed over processes: every process passes the same values ("mean").
            session.end_step(
                {**record, "tokens": float(r.response_mask.sum())}, grad_norm=grad_norm
            )
    fitted = session.fitted()
    last = fitted.history[-1] if fitted.history else {}
    result = RLResult(
        None,
        {**{k: v for k, v in last.items() if k != "step"}, **fitted.eval_metrics},
        fitted.history,
        counts,
        fitted.steps,
        fitted.tokens,
        time.perf_counter() - t0,
        alarms=alarm_events(fitted.history),
    )
    meta = metadata(config, method.name, counts, result.metrics, [list(map(str, train))])
    result.artifact_path = save_final(model.policy, tokenizer, config, meta)
    return result


def fill_from_update(r: Rollout, rows: Tensor, logits: Tensor) -> None:
    """The rollout's policy log-probs and entropy for ``rows`` from the update's forward, before
    its optimizer step (``collect(policy_pass=False)``): the old policy is the current one."""
    mask = r.response_mask[rows]
    detached = logits.detach()
    r.logprobs[rows] = token_logprobs(detached, r.responses[rows]).float() * mask
    r.entropy[rows] = entropy_from_logits(detached).float() * mask


def _update(
    session: TrainingSession,
    method: Method,
    r: Rollout,
    config: RolloutConfig,
    beta: float,
    *,
    fill: bool = False,
) -> tuple[dict[str, Ratio], float]:
    """``ppo_epochs`` passes of ``num_minibatches`` optimizer updates over the rollout; each
    forward's loss is divided by the minibatch's global unit count (exact accumulation).
    ``fill``: the rollout has no policy log-probs yet (:func:`fill_from_update`)."""
    sums: dict[str, Ratio] = {}
    grad_norm = 0.0
    n_mb = len(r) // config.num_minibatches
    for epoch in range(config.ppo_epochs):
        gen = torch.Generator().manual_seed(rollout_seed(config.seed, session.step, 99_991 + epoch))
        perm = torch.randperm(len(r), generator=gen).to(r.input_ids.device)
        for j in range(config.num_minibatches):
            # the minibatch in rollout order: its micro-batches then hold whole prompt groups,
            # whose samples share the prompt's forward (the sum over micro-batches is the same)
            rows = perm[j * n_mb : (j + 1) * n_mb].sort().values
            local = torch.tensor(method.units(r, rows, config), dtype=torch.float64)
            units = float(all_sum(local))
            micro = rows.split(config.batch_size)
            for n, part in enumerate(micro):
                with session.no_sync(n == len(micro) - 1):
                    with autocast(session.device, config.bf16):
                        logits, values = session.model(
                            r.input_ids[part], r.attention_mask[part], r.prompt_width,
                            config.temperature,
                        )  # fmt: skip
                        if fill:
                            fill_from_update(r, part, logits)
                        loss_sum, metrics = method.loss(r, part, logits, values, config, beta)
                    (loss_sum * (session.world / units)).backward()
                loss_units = method.units(r, part, config)
                for key, (num, den) in {
                    "loss": (float(loss_sum.detach()), loss_units),
                    **metrics,
                }.items():
                    old = sums.get(key, (0.0, 0.0))
                    sums[key] = (old[0] + num, old[1] + den)
            grad_norm = session.optimizer_step()
    return sums, grad_norm
