"""Loop options: LoRA, gradient checkpointing, progress reporting, reference-cache reuse."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from training.config import ConfigError, DPOConfig, SFTConfig
from training.loop import Progress
from training.records import SFTExample
from training.trainers import dpo, sft


def test_lora_with_gradient_checkpointing_saves_a_merged_model(
    tiny_lm, train_pairs, tmp_path
) -> None:
    config = DPOConfig(
        model=str(tiny_lm),
        output_dir=str(tmp_path / "out"),
        ref_cache_dir=str(tmp_path / "c"),
        max_steps=2,
        lora_r=4,
        gradient_checkpointing=True,
        learning_rate=1e-3,
    )
    result = dpo.run(config, train_pairs[:32])
    saved = load_file(str(result.artifact_path / "model.safetensors"))
    base = load_file(str(tiny_lm / "model.safetensors"))
    assert saved.keys() == base.keys()  # merged: no adapter weights, same layout as the base
    assert any(not (saved[k] == base[k]).all() for k in base)


def test_progress_callback_reports_step_loss_and_eta(tiny_lm, train_pairs, tmp_path) -> None:
    events: list[Progress] = []
    examples = [SFTExample(p.prompt, p.chosen) for p in train_pairs[:32]]
    config = SFTConfig(
        model=str(tiny_lm), output_dir=str(tmp_path / "o"), max_steps=3, batch_size=4
    )
    sft.run(config, examples, examples[:4], progress=events.append)
    assert [e.step for e in events] == [1, 2, 3]
    assert all(e.total_steps == 3 and e.loss > 0 and e.eta_seconds >= 0 for e in events)
    assert events[-1].eta_seconds == 0
    assert "eval/loss" in events[-1].metrics


def test_reference_logps_are_cached_by_data_and_model(
    tiny_lm, train_pairs, tmp_path, monkeypatch
) -> None:
    cache = tmp_path / "c"
    common = {"model": str(tiny_lm), "ref_cache_dir": str(cache), "max_steps": 1}
    dpo.run(DPOConfig(output_dir=str(tmp_path / "a"), **common), train_pairs[:16])
    assert len(list(cache.glob("*.safetensors"))) == 1

    import training.reference

    def fail(*args, **kwargs):
        raise AssertionError("reference pass should come from the cache")

    monkeypatch.setattr(training.reference, "compute_logps", fail)
    dpo.run(DPOConfig(output_dir=str(tmp_path / "b"), **common), train_pairs[:16])
    monkeypatch.undo()
    dpo.run(DPOConfig(output_dir=str(tmp_path / "c2"), **common), train_pairs[:17])  # new data
    assert len(list(cache.glob("*.safetensors"))) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("beta", 0.0, "beta: must be > 0"),
        ("label_smoothing", 0.5, "label_smoothing"),
        ("loss_type", "hinge", "loss_type"),
        ("max_prompt_length", 600, "max_prompt_length"),
        ("batch_size", 0, "batch_size"),
    ],
)
def test_config_validation_names_the_field(field, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        DPOConfig(model="m", output_dir="o", **{field: value})
