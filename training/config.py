"""Configuration: one frozen dataclass per command, validated on construction.

Every field carries its help text in ``metadata["help"]``; the CLI (``python -m training CMD
--help``) prints them, so this file is the single place an option is documented. Configs come
from a TOML file plus ``--key=value`` overrides, or are built in code by the workers.

Batch semantics: ``batch_size`` is the micro-batch *per process*; one optimizer step consumes
``batch_size * grad_accum * world_size`` examples. The set of examples in a step depends only on
that product, so batch 8 x accumulation 1 and batch 2 x accumulation 4 take the same step.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def opt(default: Any, help: str) -> Any:
    """A dataclass field with its help text."""
    return field(default=default, metadata={"help": help})


def _check(cond: bool, name: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{name}: {message}")


def default_cache_dir() -> str:
    return os.environ.get("TRAINING_CACHE_DIR", str(Path.home() / ".cache" / "prefloop-training"))


def _check_report_to(sinks: tuple[str, ...]) -> None:
    from training.tracking import SINK_PACKAGES, missing_package

    for sink in sinks:
        _check(
            sink in SINK_PACKAGES,
            "report_to",
            f"unknown tracker {sink!r}; choose from {', '.join(SINK_PACKAGES)}",
        )
        package = missing_package(sink)
        _check(
            package is None,
            "report_to",
            f"{sink!r} needs the {package} package (pip install {package}, or the 'ml' extra)",
        )
    _check(len(set(sinks)) == len(sinks), "report_to", "names a tracker twice")


@dataclass(frozen=True)
class TrainConfig:
    """Fields shared by every trainer (the optimisation loop)."""

    model: str = opt("", "Path (or locally cached hub id) of the model to start from.")
    output_dir: str = opt("", "Directory the final artifact is written to (atomically).")
    train_file: str = opt("", "JSONL training data (CLI); empty when records are passed in code.")
    eval_file: str = opt("", "JSONL held-out data; empty = hold out `eval_fraction` of train.")
    eval_fraction: float = opt(0.0, "Share of train held out (whole prompts) without eval_file.")
    strict_data: bool = opt(True, "Fail on the first malformed JSONL line (else skip + count).")
    seed: int = opt(0, "Seed for data order, dropout and initialisation.")
    learning_rate: float = opt(5e-5, "Peak AdamW learning rate.")
    weight_decay: float = opt(0.0, "AdamW weight decay.")
    adam_beta1: float = opt(0.9, "AdamW beta1.")
    adam_beta2: float = opt(0.999, "AdamW beta2.")
    adam_epsilon: float = opt(1e-8, "AdamW epsilon.")
    warmup_steps: int = opt(0, "Linear warm-up steps before the cosine decay.")
    min_lr_ratio: float = opt(0.0, "Cosine decays to learning_rate * min_lr_ratio.")
    num_epochs: int = opt(1, "Passes over the training data (ignored when max_steps > 0).")
    max_steps: int = opt(0, "Optimizer steps to run; 0 = num_epochs passes.")
    batch_size: int = opt(8, "Micro-batch size per process.")
    grad_accum: int = opt(1, "Micro-batches accumulated per optimizer step.")
    max_batch_tokens: int = opt(
        0,
        "Cap on a forward pass's padded tokens (sequences x longest); longer micro-batches are "
        "split and accumulated with exact weights, so the update is unchanged. 0 = no cap.",
    )
    max_grad_norm: float = opt(1.0, "Clip the gradient norm to this; 0 disables clipping.")
    max_length: int = opt(512, "Maximum tokens of prompt + response.")
    max_prompt_length: int = opt(256, "Prompts are cut to their last this-many tokens.")
    bucket_window: int = opt(32, "Length bucketing: sort within windows of this many steps.")
    eval_every: int = opt(0, "Evaluate on the held-out split every N steps (0 = only at end).")
    eval_batch_size: int = opt(16, "Batch size for evaluation and reference log-probs.")
    save_every: int = opt(0, "Write a resumable checkpoint every N steps (0 = never).")
    resume_from: str = opt("", "Checkpoint directory to resume from, or 'latest'.")
    device: str = opt("auto", "'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.")
    bf16: bool = opt(True, "bf16 autocast on CUDA (CPU always trains in fp32).")
    gradient_checkpointing: bool = opt(False, "Recompute activations in backward to save memory.")
    lora_r: int = opt(0, "LoRA rank; 0 trains all weights.")
    lora_alpha: int = opt(16, "LoRA alpha.")
    lora_dropout: float = opt(0.0, "LoRA dropout.")
    lora_target_modules: tuple[str, ...] = opt(
        (), "Module names for LoRA; empty = all linear layers."
    )
    log_every: int = opt(1, "Record training metrics every N steps.")
    progress_bar: bool = opt(False, "Show a tqdm progress bar (the CLI turns it on).")
    report_to: tuple[str, ...] = opt(
        (),
        "Experiment trackers that also receive every logged step's metrics: 'tensorboard' "
        "(tensorboardX event files), 'mlflow' (an MLflow run); e.g. tensorboard,mlflow. "
        "Empty = none.",
    )
    logging_dir: str = opt("", "TensorBoard event directory; empty = <output_dir>.tensorboard.")
    mlflow_tracking_uri: str = opt(
        "", "MLflow tracking store; empty = $MLFLOW_TRACKING_URI, else the file store ./mlruns."
    )
    mlflow_experiment: str = opt("prefloop", "MLflow experiment the run is logged under.")
    run_name: str = opt("", "Run name in the trackers; empty = the last two parts of output_dir.")

    def __post_init__(self) -> None:
        _check(bool(self.model), "model", "is required (a local path or cached hub id)")
        _check(bool(self.output_dir), "output_dir", "is required")
        _check(0.0 <= self.eval_fraction < 1.0, "eval_fraction", "must be in [0, 1)")
        _check(self.learning_rate > 0, "learning_rate", "must be > 0")
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _check(
            0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "adam_beta1", "betas in [0,1)"
        )
        _check(self.adam_epsilon > 0, "adam_epsilon", "must be > 0")
        _check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        _check(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]")
        _check(self.num_epochs >= 1, "num_epochs", "must be >= 1")
        _check(self.max_steps >= 0, "max_steps", "must be >= 0")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        _check(self.max_batch_tokens >= 0, "max_batch_tokens", "must be >= 0")
        _check(self.max_grad_norm >= 0, "max_grad_norm", "must be >= 0")
        _check(self.max_length >= 2, "max_length", "must be >= 2")
        _check(
            0 < self.max_prompt_length < self.max_length,
            "max_prompt_length",
            "must be > 0 and < max_length (the response needs room)",
        )
        _check(self.bucket_window >= 1, "bucket_window", "must be >= 1")
        _check(self.eval_every >= 0, "eval_every", "must be >= 0")
        _check(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")
        _check(self.save_every >= 0, "save_every", "must be >= 0")
        _check(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            "device",
            "must be 'auto', 'cpu', 'cuda' or 'cuda:N'",
        )
        _check(self.lora_r >= 0, "lora_r", "must be >= 0")
        _check(self.log_every >= 1, "log_every", "must be >= 1")
        _check_report_to(self.report_to)


@dataclass(frozen=True)
class RewardConfig(TrainConfig):
    """Reward model: Bradley-Terry on preference pairs, scalar head on the backbone."""

    learning_rate: float = opt(1e-4, "Peak AdamW learning rate.")
    use_margin: bool = opt(False, "Subtract the rater's margin inside the sigmoid (Llama 2).")
    center_rewards_coef: float = opt(0.0, "Weight of the reward-centering term (0 = off).")
    freeze_backbone: bool = opt(False, "Train only the pooler and scalar head (a probe).")
    length_debias: str = opt(
        "none",
        "'none', or 'odin': a second head trained to absorb response length and a quality head "
        "kept uncorrelated with it (Chen et al. 2024); only the quality head is saved and scores.",
    )
    odin_correlation_coef: float = opt(
        1.0, "ODIN: weight of |corr(quality, length)| - |corr(length head, length)|."
    )
    odin_orthogonal_coef: float = opt(
        1.0, "ODIN: weight of the heads' orthogonality term |cos(w_quality, w_length)|."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.center_rewards_coef >= 0, "center_rewards_coef", "must be >= 0")
        _check(self.length_debias in ("none", "odin"), "length_debias", "must be 'none' or 'odin'")
        _check(self.odin_correlation_coef >= 0, "odin_correlation_coef", "must be >= 0")
        _check(self.odin_orthogonal_coef >= 0, "odin_orthogonal_coef", "must be >= 0")


@dataclass(frozen=True)
class DPOConfig(TrainConfig):
    """Direct Preference Optimization against a frozen reference (the starting model)."""

    beta: float = opt(0.1, "Inverse temperature of the implicit reward.")
    loss_type: str = opt("sigmoid", "'sigmoid' (DPO, with label_smoothing = cDPO) or 'ipo'.")
    label_smoothing: float = opt(0.0, "cDPO: assumed probability a label is flipped, in [0, 0.5).")
    ref_model: str = opt("", "Reference model path; empty = the starting model.")
    ref_cache_dir: str = opt("", "Where reference log-probs are cached; empty = user cache.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.beta > 0, "beta", "must be > 0")
        _check(self.loss_type in ("sigmoid", "ipo"), "loss_type", "must be 'sigmoid' or 'ipo'")
        _check(0.0 <= self.label_smoothing < 0.5, "label_smoothing", "must be in [0, 0.5)")


@dataclass(frozen=True)
class KTOConfig(TrainConfig):
    """Kahneman-Tversky Optimization on thumbs-up/down examples."""

    beta: float = opt(0.1, "Inverse temperature of the implicit reward.")
    desirable_weight: float = opt(1.0, "Loss weight of desirable examples (lambda_D).")
    undesirable_weight: float = opt(1.0, "Loss weight of undesirable examples (lambda_U).")
    ref_model: str = opt("", "Reference model path; empty = the starting model.")
    ref_cache_dir: str = opt("", "Where reference log-probs are cached; empty = user cache.")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.beta > 0, "beta", "must be > 0")
        _check(self.desirable_weight > 0, "desirable_weight", "must be > 0")
        _check(self.undesirable_weight > 0, "undesirable_weight", "must be > 0")


@dataclass(frozen=True)
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on demonstrations (loss on response tokens only)."""

    learning_rate: float = opt(2e-5, "Peak AdamW learning rate.")


@dataclass(frozen=True)
class GenerateConfig:
    """Sample k responses per prompt."""

    model: str = opt("", "Path of the policy to sample from.")
    prompts_file: str = opt("", "JSONL with a 'prompt' field (string or messages) per line.")
    output_file: str = opt("", "JSONL to write: prompt, k samples with text and token logprobs.")
    k: int = opt(2, "Responses per prompt.")
    temperature: float = opt(1.0, "Sampling temperature (0 = greedy).")
    top_p: float = opt(1.0, "Nucleus sampling threshold.")
    max_new_tokens: int = opt(64, "Maximum generated tokens per response.")
    max_prompt_length: int = opt(256, "Prompts are cut to their last this-many tokens.")
    batch_size: int = opt(8, "Prompts per generation batch.")
    seed: int = opt(0, "Sampling seed.")
    device: str = opt("auto", "'auto', 'cpu' or 'cuda[:N]'.")

    def __post_init__(self) -> None:
        _check(bool(self.model), "model", "is required")
        _check(self.k >= 1, "k", "must be >= 1")
        _check(self.temperature >= 0, "temperature", "must be >= 0")
        _check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        _check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        _check(self.max_prompt_length >= 1, "max_prompt_length", "must be >= 1")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")


@dataclass(frozen=True)
class ScoreConfig:
    """Score (prompt, response) pairs with a reward model."""

    model: str = opt("", "Path of the reward model.")
    input_file: str = opt("", "JSONL with 'prompt' and 'response' (or 'completion') per line.")
    output_file: str = opt("", "JSONL to write: the input lines with a 'reward' field.")
    batch_size: int = opt(16, "Pairs per scoring batch.")
    max_length: int = opt(512, "Maximum tokens of prompt + response.")
    max_prompt_length: int = opt(256, "Prompts are cut to their last this-many tokens.")
    device: str = opt("auto", "'auto', 'cpu' or 'cuda[:N]'.")

    def __post_init__(self) -> None:
        _check(bool(self.model), "model", "is required")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(0 < self.max_prompt_length < self.max_length, "max_prompt_length", "< max_length")


@dataclass(frozen=True)
class EvalConfig:
    """Compare a policy with its parent on held-out prompts, judged by a reward model."""

    policy: str = opt("", "Path of the new policy.")
    parent: str = opt("", "Path of the parent policy (also the KL reference).")
    reward_model: str = opt("", "Path of the reward model that judges.")
    prompts_file: str = opt("", "JSONL with a 'prompt' field per line (held-out prompts).")
    output_file: str = opt("", "Optional JSON file for the metrics.")
    max_prompts: int = opt(0, "Use at most this many prompts (0 = all).")
    temperature: float = opt(1.0, "Sampling temperature.")
    top_p: float = opt(1.0, "Nucleus sampling threshold.")
    max_new_tokens: int = opt(64, "Maximum generated tokens per response.")
    max_prompt_length: int = opt(256, "Prompts are cut to their last this-many tokens.")
    batch_size: int = opt(8, "Batch size for generation and scoring.")
    seed: int = opt(0, "Sampling seed.")
    device: str = opt("auto", "'auto', 'cpu' or 'cuda[:N]'.")

    def __post_init__(self) -> None:
        for name in ("policy", "parent", "reward_model"):
            _check(bool(getattr(self, name)), name, "is required")
        _check(self.max_prompts >= 0, "max_prompts", "must be >= 0")
        _check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")


@dataclass(frozen=True)
class EvalRMConfig:
    """Accuracy of a reward model on a file of preference pairs: plain, and length-balanced (the
    mean of the accuracies on the pairs whose preferred response is the longer and the shorter
    one, lengths in characters; pairs of equal length count in the plain accuracy only), its two
    parts, and how often the model agrees with the rule "the shorter response wins"."""

    reward_model: str = opt("", "Path of the reward model.")
    pairs: str = opt(
        "",
        "JSONL of preference pairs: prompt/chosen/rejected per line, or HH-RLHF's chosen/rejected "
        "dialogues (the shared prefix is the prompt).",
    )
    max_pairs: int = opt(0, "Use only the first this-many pairs (0 = all).")
    strict_data: bool = opt(True, "Fail on the first malformed JSONL line (else skip + count).")
    batch_size: int = opt(16, "Responses per scoring batch.")
    max_length: int = opt(512, "Maximum tokens of prompt + response.")
    max_prompt_length: int = opt(256, "Prompts are cut to their last this-many tokens.")
    output_file: str = opt("", "Optional JSON file for the figures.")
    device: str = opt("auto", "'auto', 'cpu' or 'cuda[:N]'.")

    def __post_init__(self) -> None:
        _check(bool(self.reward_model), "reward_model", "is required")
        _check(bool(self.pairs), "pairs", "is required (a JSONL file of preference pairs)")
        _check(self.max_pairs >= 0, "max_pairs", "must be >= 0")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(0 < self.max_prompt_length < self.max_length, "max_prompt_length", "< max_length")


def config_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(cls))


def build_config(cls: type, values: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict, rejecting unknown keys and wrong types by field name."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown option for {cls.__name__}")
    coerced = {name: _coerce(known[name], value) for name, value in values.items()}
    return cls(**coerced)


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    """Convert a TOML value or a command-line string to the field's type."""
    typ = str(f.type)
    try:
        if typ == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError
        if typ == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ == "tuple[str, ...]":
            if isinstance(value, str):
                return tuple(v for v in value.split(",") if v)
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ConfigError(f"{f.name}: expected {typ}, got {value!r}") from None
