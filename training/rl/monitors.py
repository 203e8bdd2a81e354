"""Reward-hacking monitors: what every online step logs, and the alarms read from the history.

Per step (``RunResult.history``, the trackers and the progress callback), TRL-style names:

| key | meaning |
|---|---|
| ``objective/scores`` | mean reward-model score of the rollout (before the length penalty) |
| ``objective/kl`` | mean over responses of sum_t (log pi - log ref): KL(pi || ref) per response |
| ``objective/sqrt_kl`` | sqrt of it, the x axis of the over-optimisation curve (Gao et al. 2022) |
| ``objective/entropy`` | mean per-token entropy of the policy on its samples |
| ``objective/rlhf_reward`` | scores - beta * KL, what the KL-regularised objective maximises |
| ``objective/gold`` | mean gold score, when a gold scorer is given |
| ``completions/mean_length`` | mean response length (tokens, end of turn included) |
| ``completions/clipped_ratio`` | share of responses that hit the length limit without end of turn |
| ``policy/clipfrac`` | share of tokens whose ratio was clipped in the updates |
| ``val/error`` | mean squared error of the value head against the returns (PPO) |
| ``alarm/length`` | 1: reward rose while mean length grew past ``length_alarm`` x its start |
| ``alarm/kl`` | 1 when ``objective/kl`` passed ``kl_alarm`` |

Sums are reduced over processes before the means, so a 2-process step reports the whole batch.
Alarms are a function of the history, so a resumed run raises the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from training.rl.losses import kl_k1
from training.rl.rollout import Rollout


def rollout_sums(r: Rollout) -> dict[str, float]:
    """Sums over this process's rollout; :func:`rollout_metrics` turns the reduced sums into
    means."""
    mask = r.response_mask
    kl = (kl_k1(r.logprobs, r.ref_logprobs) * mask).sum(-1)  # (B,)
    sums = {
        "n": float(len(r)),
        "tokens": float(mask.sum()),
        "scores": float(r.raw_scores.sum()),
        "kl": float(kl.sum()),
        "entropy": float((r.entropy * mask).sum()),
        "length": float(mask.sum()),
        "truncated": float(r.truncated.float().sum()),
    }
    if r.gold is not None:
        sums["gold"] = float(r.gold.sum())
    return sums


def rollout_metrics(sums: dict[str, float], beta: float) -> dict[str, float]:
    n, tokens = max(sums["n"], 1.0), max(sums["tokens"], 1.0)
    kl = sums["kl"] / n
    out = {
        "objective/scores": sums["scores"] / n,
        "objective/kl": kl,
        "objective/sqrt_kl": math.sqrt(max(kl, 0.0)),
        "objective/entropy": sums["entropy"] / tokens,
        "objective/rlhf_reward": sums["scores"] / n - beta * kl,
        "completions/mean_length": sums["length"] / n,
        "completions/clipped_ratio": sums["truncated"] / n,
        "kl/beta": beta,
    }
    if "gold" in sums:
        out["objective/gold"] = sums["gold"] / n
    return out


def alarms(
    history: Sequence[dict[str, Any]], record: dict[str, float], config: Any
) -> dict[str, float]:
    """``alarm/length`` and ``alarm/kl`` for ``record``, given the steps before it."""
    steps = [h for h in history if "objective/scores" in h] + [record]
    w = config.alarm_window
    length_alarm = 0.0
    if len(steps) >= 2 * w:
        first, last = steps[:w], steps[-w:]

        def mean(rows: list[dict[str, Any]], key: str) -> float:
            return sum(row[key] for row in rows) / len(rows)

        rose = mean(last, "objective/scores") > mean(first, "objective/scores")
        start = max(mean(first, "completions/mean_length"), 1e-9)
        grew = mean(last, "completions/mean_length") / start > config.length_alarm
        length_alarm = float(rose and grew)
    kl_alarm = float(bool(config.kl_alarm) and record["objective/kl"] > config.kl_alarm)
    return {"alarm/length": length_alarm, "alarm/kl": kl_alarm}


def alarm_events(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step where an alarm turned on: ``{"step", "alarm", "value"}``, for the run record."""
    events, previous = [], {"alarm/length": 0.0, "alarm/kl": 0.0}
    for h in history:
        for key in previous:
            if h.get(key, 0.0) and not previous[key]:
                value = h["completions/mean_length"] if key == "alarm/length" else h["objective/kl"]
                events.append({"step": h["step"], "alarm": key.split("/")[1], "value": value})
            previous[key] = h.get(key, previous[key])
    return events
