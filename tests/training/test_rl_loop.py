"""The on-policy loop's rules: exact resume, 2-process gloo DDP == one process, LoRA's reference
(the adapter disabled), offloading, GRPO and best-of-n learning, the gold score, the progress
callback, the alarms and the config checks. Tiny models, a few steps each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.test_rl_learning import REWARD, prompts, record, write_sampling_lm
from training.config import ConfigError
from training.rl import best_of_n, grpo, ppo, rloo
from training.rl.config import BestOfNConfig, GRPOConfig, PPOConfig, RLOOConfig
from training.rl.monitors import alarm_events, alarms
from training.rl.rewards import ContainsWord, LengthReward, rule

ROOT = Path(__file__).resolve().parents[2]
RULE = "marker_share:abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> Path:
    return write_sampling_lm(tmp_path_factory.mktemp("rl-loop") / "lm")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=atol, rtol=0, msg=key)


def base(lm: Path, out: Path, **kw) -> dict:
    return {
        "model": str(lm), "output_dir": str(out), "device": "cpu", "max_new_tokens": 6,
        "learning_rate": 3e-3, "seed": 0, **kw,
    }  # fmt: skip


def test_resume_mid_run_gives_the_identical_curve(lm, tmp_path) -> None:
    """Adaptive beta (carried in the checkpoint), reward normalisation, several minibatches."""
    common = {"rollout_batch_size": 4, "ppo_epochs": 2, "num_minibatches": 2, "max_steps": 4}
    common |= {"adaptive_kl": True, "target_kl": 0.5, "kl_horizon": 10, "normalize_rewards": True}
    full = ppo.run(
        PPOConfig(**base(lm, tmp_path / "full", save_every=2, **common)),
        prompts(16, 1),
        prompts(4, 2),
        reward_model=REWARD,
    )
    checkpoint = tmp_path / "full.checkpoints" / "step-2"
    assert (checkpoint / "model.safetensors").is_file()
    resumed = ppo.run(
        PPOConfig(**base(lm, tmp_path / "resumed", resume_from=str(checkpoint), **common)),
        prompts(16, 1),
        prompts(4, 2),
        reward_model=REWARD,
    )
    assert resumed.history == full.history
    assert len({h["kl/beta"] for h in full.history if "kl/beta" in h}) > 1  # beta did adapt
    assert_same_weights(full.artifact_path, resumed.artifact_path, atol=0)


def test_two_process_ddp_equals_one_process(lm, tmp_path) -> None:
    """torchrun, 2 CPU processes on gloo with 2 prompts each == 1 process with 4 (one minibatch
    per pass, two passes; generate() calls of 2 prompts, seeded by their global index)."""
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts(16, 3)))
    common = base(lm, "", train_file=str(data), reward_rule=RULE, generation_batch_size=2,
                  ppo_epochs=2, max_steps=3, learning_rate=1e-3)  # fmt: skip
    single = ppo.run(PPOConfig(**{**common, "output_dir": str(tmp_path / "single")},
                               rollout_batch_size=4))  # fmt: skip
    script = tmp_path / "run_ppo.py"
    script.write_text(
        "import json, os, sys\n"
        "from training.rl import ppo\n"
        "from training.rl.config import PPOConfig\n"
        "r = ppo.run(PPOConfig(**json.loads(sys.argv[1])))\n"
        # rank 0 only: two ranks writing one pipe can interleave their lines
        "if os.environ.get('RANK', '0') == '0':\n"
        "    print(json.dumps(r.history), flush=True)\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ddp_config = {**common, "output_dir": str(tmp_path / "ddp"), "rollout_batch_size": 2}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={port}", str(script), json.dumps(ddp_config)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    histories = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]
    for key in ("objective/scores", "objective/kl", "completions/mean_length"):
        assert [h[key] for h in histories[0]] == pytest.approx(
            [h[key] for h in single.history], abs=1e-4
        )
    # Float noise (different padding widths and reduction orders) reaches ~1e-5 after Adam's
    # normalised updates; the weights move by ~6e-3 in these 6 updates.
    assert_same_weights(single.artifact_path, tmp_path / "ddp", atol=5e-5)


def test_lora_reference_is_the_adapter_disabled(lm, tmp_path) -> None:
    """No second model: before the first update the policy is the reference (LoRA's B = 0), so
    the first rollout's KL is exactly 0; the artifact has the adapter merged."""
    result = rloo.run(
        RLOOConfig(
            **base(
                lm,
                tmp_path / "out",
                lora_r=4,
                rollout_batch_size=2,
                k=2,
                max_steps=2,
                learning_rate=1e-2,
            )
        ),
        prompts(8, 1),
        reward_model=REWARD,
    )
    assert result.history[0]["objective/kl"] == 0.0
    assert result.history[-1]["objective/kl"] != 0.0
    assert not any("lora" in k for k in weights(result.artifact_path))


def test_offloading_gives_the_same_run(lm, tmp_path) -> None:
    kw = {"rollout_batch_size": 2, "k": 2, "max_steps": 2}
    kept = rloo.run(
        RLOOConfig(**base(lm, tmp_path / "a", **kw)), prompts(8, 1), reward_model=REWARD
    )
    moved = rloo.run(
        RLOOConfig(**base(lm, tmp_path / "b", offload_models=True, **kw)),
        prompts(8, 1),
        reward_model=REWARD,
    )
    assert moved.history == kept.history


def test_grpo_s_one_update_rollout_skips_the_policy_pass_with_the_same_run(
    lm, tmp_path, monkeypatch
) -> None:
    """With one update per rollout GRPO's rollout runs no policy forward (the update's gives the
    log-probs and entropy); the run matches the one that takes the pass."""
    import dataclasses

    import training.rl.rollout as rollout

    passes: list[bool] = []
    collect = rollout.collect

    def counted(*args, **kw):
        passes.append(kw.get("policy_pass", True))
        return collect(*args, **kw)

    monkeypatch.setattr("training.rl.engine.collect", counted)
    kw = {"rollout_batch_size": 2, "k": 2, "max_steps": 3, "beta": 0.1, "batch_size": 2}
    fast = grpo.run(GRPOConfig(**base(lm, tmp_path / "a", **kw)), prompts(8, 1), prompts(2, 2),
                    reward_model=REWARD)  # fmt: skip
    assert passes.count(False) == 3  # the training rollouts; evaluation keeps its pass
    monkeypatch.setattr(
        grpo, "METHOD", dataclasses.replace(grpo.METHOD, advantages_need_logprobs=True)
    )
    passes.clear()
    full = grpo.run(GRPOConfig(**base(lm, tmp_path / "b", **kw)), prompts(8, 1), prompts(2, 2),
                    reward_model=REWARD)  # fmt: skip
    assert False not in passes
    assert len(fast.history) == len(full.history) == 4  # evaluation before the first step too
    for a, b in zip(fast.history, full.history, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    assert_same_weights(tmp_path / "a", tmp_path / "b", atol=1e-5)
    # several updates per rollout need the rollout's own log-probs: the pass is taken
    passes.clear()
    grpo.run(GRPOConfig(**base(lm, tmp_path / "c", **{**kw, "max_steps": 1, "ppo_epochs": 2})),
             prompts(8, 1), reward_model=REWARD)  # fmt: skip
    assert passes == [True]


def test_grpo_raises_held_out_reward_and_logs_gold(lm, tmp_path) -> None:
    progress = []
    result = grpo.run(
        GRPOConfig(
            **base(
                lm,
                tmp_path / "out",
                rollout_batch_size=8,
                k=4,
                ppo_epochs=2,
                max_steps=20,
                max_new_tokens=8,
                min_lr_ratio=1.0,
            )
        ),
        prompts(32, 1),
        prompts(16, 2),
        reward_model=REWARD,
        gold=ContainsWord("e"),
        progress=progress.append,
    )
    start, end = result.history[0], result.history[-1]
    record("grpo_beta0.04", {"eval_reward_start": start["eval/scores"],
                             "eval_reward_end": end["eval/scores"], "eval_kl_end": end["eval/kl"],
                             "eval_gold_end": end["eval/gold"]})  # fmt: skip
    assert end["eval/scores"] > start["eval/scores"] + 0.15
    assert "objective/gold" in end
    assert "policy/kl_k3" in end
    assert [p.step for p in progress] == list(range(1, 21))
    assert {p.phase for p in progress} == {"grpo"}


def test_best_of_n_raises_reward_and_resumes_by_round(lm, tmp_path) -> None:
    cfg = base(lm, tmp_path / "out", k=8, keep=1, iterations=2, sft_epochs=3, batch_size=8,
               max_new_tokens=8)  # fmt: skip
    result = best_of_n.run(BestOfNConfig(**cfg), prompts(24, 1), prompts(8, 2), reward_model=REWARD)
    rounds = result.history[1:]
    assert all(r["bon/kept_scores"] > r["objective/scores"] for r in rounds)
    assert result.history[-1]["eval/scores"] > result.history[0]["eval/scores"]
    record("best_of_n", {"eval_reward_start": result.history[0]["eval/scores"],
                         "eval_reward_end": result.history[-1]["eval/scores"]})  # fmt: skip
    again = best_of_n.run(
        BestOfNConfig(**{**cfg, "resume_from": "latest"}), prompts(24, 1), prompts(8, 2),
        reward_model=REWARD,
    )  # fmt: skip
    assert again.history == result.history


def test_alarms_from_the_history() -> None:
    class Cfg:
        alarm_window, length_alarm, kl_alarm = 2, 1.5, 10.0

    steps = [
        {"step": i + 1, "objective/scores": 0.1 * i, "completions/mean_length": 10.0 + 5 * i,
         "objective/kl": 3.0 * i}
        for i in range(5)
    ]  # fmt: skip
    history = []
    for s in steps:
        s.update(alarms(history, s, Cfg))
        history.append(s)
    assert [s["alarm/length"] for s in history] == [0, 0, 0, 1, 1]  # 27.5 / 12.5 > 1.5 at step 4
    assert [s["alarm/kl"] for s in history] == [0, 0, 0, 0, 1]  # 12 > 10
    assert alarm_events(history) == [
        {"step": 4, "alarm": "length", "value": 25.0},
        {"step": 5, "alarm": "kl", "value": 12.0},
    ]


def test_rules_and_config_checks() -> None:
    assert rule("marker_share:ab")(["p"], ["abcd"]) == [0.5]
    assert rule("contains:Paris")(["p"], ["in paris", "no"]) == [1.0, 0.0]
    assert LengthReward(10)(["p"], ["12345"]) == [0.5]
    with pytest.raises(ValueError, match="unknown reward rule"):
        rule("nope")
    with pytest.raises(ConfigError, match="k: must be >= 2"):
        RLOOConfig(model="m", output_dir="o", k=1)
    with pytest.raises(ConfigError, match="num_minibatches"):
        PPOConfig(model="m", output_dir="o", rollout_batch_size=3, num_minibatches=2)
    with pytest.raises(ConfigError, match="reward_rule"):
        PPOConfig(model="m", output_dir="o", reward_model="rm", reward_rule="length")


def test_cli_runs_an_online_trainer_from_toml(lm, tmp_path, capsys) -> None:
    from training.__main__ import main

    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts(4, 1)))
    toml = tmp_path / "rloo.toml"
    toml.write_text(
        f'model = "{lm}"\noutput_dir = "{tmp_path / "out"}"\ntrain_file = "{data}"\n'
        f'reward_rule = "{RULE}"\nrollout_batch_size = 2\nk = 2\nmax_steps = 2\n'
        'max_new_tokens = 4\ndevice = "cpu"\n'
    )
    assert main(["rloo", "--config", str(toml), "--beta=0.1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["kl/beta"] == 0.1
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert main(["rloo", "--config", str(toml), "--k=1"]) == 2  # k >= 2, before any training
