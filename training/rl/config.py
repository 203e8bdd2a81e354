"""Configuration of the online-RL trainers: one frozen dataclass per method.

They extend :class:`training.config.TrainConfig` (optimizer, LoRA, checkpoints, devices, trackers)
with the rollout fields. One *step* is one rollout (``rollout_batch_size`` prompts per process,
``k`` samples each) followed by ``ppo_epochs`` passes of ``num_minibatches`` optimizer updates over
it; ``max_steps`` counts rollouts (0 = ``num_epochs`` passes over the prompts). ``batch_size`` is
the micro-batch of one forward pass inside a minibatch (gradient accumulation, exact weights).

The reward is ``reward_model`` (a reward-model artifact path) or ``reward_rule`` (a named rule from
:data:`training.rl.rewards.RULES`, e.g. ``"marker_share:x"``); in code, ``run(...,
reward_model=callable)`` takes any ``(prompts, responses) -> scores`` function.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.config import TrainConfig, _check, opt


@dataclass(frozen=True)
class RolloutConfig(TrainConfig):
    """Fields every online method shares (rollout, reward, monitors)."""

    train_file: str = opt("", "JSONL prompts ({'prompt': string or messages} per line).")
    eval_file: str = opt("", "JSONL held-out prompts; empty = hold out `eval_fraction` of train.")
    learning_rate: float = opt(1e-5, "Peak AdamW learning rate.")
    batch_size: int = opt(16, "Sequences per forward pass inside a minibatch (accumulated).")
    max_length: int = opt(512, "Unused by online methods (prompt + max_new_tokens bound a row).")
    reward_model: str = opt("", "Reward-model artifact path (a sequence classifier, 1 label).")
    reward_rule: str = opt("", "Or a named synthetic reward rule, e.g. 'marker_share:x'.")
    gold_reward_model: str = opt("", "Optional gold scorer path (logged as objective/gold).")
    gold_reward_rule: str = opt("", "Or a named gold rule (see reward_rule).")
    reward_batch_size: int = opt(16, "Responses per reward-model forward.")
    rollout_batch_size: int = opt(8, "Prompts per step per process.")
    generation_batch_size: int = opt(
        0,
        "Prompts per generate() call, each call seeded from (seed, step, global call index); "
        "0 = the whole per-process share. Keep it fixed to compare runs over different numbers "
        "of processes.",
    )
    k: int = opt(1, "Samples per prompt.")
    max_new_tokens: int = opt(32, "Response length limit (tokens).")
    temperature: float = opt(1.0, "Sampling temperature (the policy's log-probs use the same).")
    ppo_epochs: int = opt(1, "Passes over each rollout.")
    num_minibatches: int = opt(1, "Optimizer updates per pass (rollout split into minibatches).")
    beta: float = opt(0.05, "KL coefficient to the reference (0 = no KL leash).")
    missing_eos_penalty: float = opt(
        0.0, "Subtracted from the score of a response that hit max_new_tokens without end of turn."
    )
    offload_models: bool = opt(
        False, "Without LoRA: keep the reference and reward model on CPU while the policy trains."
    )
    eval_samples: int = opt(2, "Samples per held-out prompt at evaluation.")
    eval_max_prompts: int = opt(64, "Evaluate on at most this many held-out prompts.")
    kl_alarm: float = opt(20.0, "Alarm when the mean KL to the reference (nats) passes this.")
    length_alarm: float = opt(
        1.5, "Alarm when reward rises while mean length grows past this ratio of its start."
    )
    alarm_window: int = opt(3, "Steps averaged at the start and now for the length alarm.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.rollout_batch_size >= 1, "rollout_batch_size", "must be >= 1")
        _check(self.generation_batch_size >= 0, "generation_batch_size", "must be >= 0")
        _check(
            self.rollout_batch_size % (self.generation_batch_size or self.rollout_batch_size) == 0,
            "generation_batch_size",
            "must divide rollout_batch_size",
        )
        _check(self.k >= 1, "k", "must be >= 1")
        _check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        _check(self.temperature > 0, "temperature", "must be > 0 (sampling)")
        _check(self.ppo_epochs >= 1, "ppo_epochs", "must be >= 1")
        _check(self.num_minibatches >= 1, "num_minibatches", "must be >= 1")
        _check(
            (self.rollout_batch_size * self.k) % self.num_minibatches == 0,
            "num_minibatches",
            "must divide rollout_batch_size * k",
        )
        _check(self.beta >= 0, "beta", "must be >= 0")
        _check(self.missing_eos_penalty >= 0, "missing_eos_penalty", "must be >= 0")
        _check(self.reward_batch_size >= 1, "reward_batch_size", "must be >= 1")
        _check(self.eval_samples >= 1, "eval_samples", "must be >= 1")
        _check(self.eval_max_prompts >= 0, "eval_max_prompts", "must be >= 0")
        _check(self.kl_alarm >= 0, "kl_alarm", "must be >= 0 (0 = off)")
        _check(self.length_alarm >= 1, "length_alarm", "must be >= 1")
        _check(self.alarm_window >= 1, "alarm_window", "must be >= 1")
        _check(
            not (self.reward_model and self.reward_rule),
            "reward_rule",
            "give reward_model or reward_rule, not both",
        )


@dataclass(frozen=True)
class PPOConfig(RolloutConfig):
    """PPO with a value head (InstructGPT; "The N implementation details of RLHF with PPO")."""

    ppo_epochs: int = opt(4, "Passes over each rollout.")
    gamma: float = opt(1.0, "GAE discount.")
    lam: float = opt(0.95, "GAE lambda.")
    cliprange: float = opt(0.2, "Policy ratio clip epsilon.")
    cliprange_value: float = opt(0.2, "Value clip epsilon (around the rollout-time value).")
    vf_coef: float = opt(0.1, "Weight of the value loss.")
    whiten_advantages: bool = opt(True, "Whiten advantages over the rollout (global statistics).")
    normalize_rewards: bool = opt(
        False, "Whiten the per-token rewards (keeping their mean) before GAE."
    )
    adaptive_kl: bool = opt(False, "Adapt beta towards target_kl (Ziegler et al. 2019).")
    target_kl: float = opt(6.0, "Adaptive KL target (nats per response).")
    kl_horizon: int = opt(10000, "Adaptive KL horizon (episodes).")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 <= self.gamma <= 1, "gamma", "must be in [0, 1]")
        _check(0 <= self.lam <= 1, "lam", "must be in [0, 1]")
        _check(self.cliprange > 0, "cliprange", "must be > 0")
        _check(self.cliprange_value > 0, "cliprange_value", "must be > 0")
        _check(self.vf_coef >= 0, "vf_coef", "must be >= 0")
        _check(self.target_kl > 0, "target_kl", "must be > 0")
        _check(self.kl_horizon >= 1, "kl_horizon", "must be >= 1")


@dataclass(frozen=True)
class RLOOConfig(RolloutConfig):
    """REINFORCE leave-one-out (Ahmadian et al. 2024): k samples per prompt, no critic."""

    k: int = opt(4, "Samples per prompt (>= 2: the leave-one-out baseline).")
    cliprange: float = opt(0.2, "Sequence-level ratio clip epsilon.")
    normalize_advantages: bool = opt(False, "Whiten the advantages over the rollout.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.k >= 2, "k", "must be >= 2 for a leave-one-out baseline")
        _check(self.cliprange > 0, "cliprange", "must be > 0")


@dataclass(frozen=True)
class GRPOConfig(RolloutConfig):
    """GRPO (Shao et al. 2024): group-normalised advantages, k3 KL as a loss term."""

    k: int = opt(4, "Samples per prompt (the group).")
    beta: float = opt(0.04, "Weight of the k3 KL loss term.")
    cliprange: float = opt(0.2, "Token ratio clip epsilon.")
    scale_rewards: str = opt("group", "'group', 'batch' or 'none' (Dr. GRPO) std scaling.")
    loss_type: str = opt(
        "dapo", "'dapo' (token mean over the minibatch, TRL's default) or 'grpo' (per sequence)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.k >= 2, "k", "must be >= 2 for a group baseline")
        _check(self.cliprange > 0, "cliprange", "must be > 0")
        _check(
            self.scale_rewards in ("group", "batch", "none"), "scale_rewards", "group|batch|none"
        )
        _check(self.loss_type in ("dapo", "grpo"), "loss_type", "must be 'dapo' or 'grpo'")


@dataclass(frozen=True)
class BestOfNConfig(RolloutConfig):
    """Best-of-n rejection-sampling fine-tuning (Llama 2): sample n, keep the best, SFT."""

    learning_rate: float = opt(2e-5, "Peak AdamW learning rate of each SFT round.")
    batch_size: int = opt(8, "SFT micro-batch size.")
    k: int = opt(4, "Samples per prompt (n).")
    keep: int = opt(1, "Best samples kept per prompt.")
    iterations: int = opt(1, "Rounds of sample -> keep -> SFT, each from the last round's model.")
    sft_epochs: int = opt(1, "SFT passes over the kept samples in each round.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(1 <= self.keep <= self.k, "keep", "must be in [1, k]")
        _check(self.iterations >= 1, "iterations", "must be >= 1")
        _check(self.sft_epochs >= 1, "sft_epochs", "must be >= 1")
