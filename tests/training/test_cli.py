"""The command line: help for every option, fast failures that name the field or line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.__main__ import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_documents_every_option(command, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(COMMANDS[command][0]):
        assert f"--{f.name}" in out
        assert f.metadata["help"].split()[0] in out


def test_bon_is_best_of_n(tmp_path, capsys) -> None:
    """The issue's short name runs the same trainer with the same checks."""
    cfg = tmp_path / "bon.toml"
    cfg.write_text('model = "m"\noutput_dir = "o"\nk = 2\nkeep = 3\n')
    assert main(["bon", "--config", str(cfg)]) == 2
    assert "keep: must be in [1, k]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bon", "--help"])
    assert "--keep" in capsys.readouterr().out


def test_bad_config_value_names_the_field(tmp_path, capsys) -> None:
    cfg = tmp_path / "dpo.toml"
    cfg.write_text('model = "m"\noutput_dir = "o"\nbeta = 0.0\n')
    assert main(["dpo", "--config", str(cfg)]) == 2
    assert "beta: must be > 0" in capsys.readouterr().err


def test_unknown_key_and_wrong_type_are_rejected(tmp_path, capsys) -> None:
    cfg = tmp_path / "rm.toml"
    cfg.write_text('model = "m"\noutput_dir = "o"\nbatchsize = 4\n')
    assert main(["rm", "--config", str(cfg)]) == 2
    assert "batchsize: unknown option" in capsys.readouterr().err
    assert main(["rm", "--model=m", "--output_dir=o", "--batch_size=four"]) == 2
    assert "batch_size: expected int" in capsys.readouterr().err


def test_bad_data_line_fails_before_training(tiny_lm, tmp_path, capsys) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\nnot json\n')
    code = main(
        ["dpo", f"--model={tiny_lm}", f"--output_dir={tmp_path / 'o'}", f"--train_file={data}"]
    )
    assert code == 2
    assert "pairs.jsonl:2: malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_train_generate_score_eval_end_to_end(tiny_lm, tiny_rm, tmp_path, capsys) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"Q{i}", "chosen": " GOOD", "rejected": " bad"} for i in range(8)]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "sft.toml"
    cfg.write_text(f'model = "{tiny_lm}"\nmax_steps = 2\nbatch_size = 4\n')
    sft_data = tmp_path / "sft.jsonl"
    sft_data.write_text(
        "".join(json.dumps({"prompt": r["prompt"], "completion": " GOOD"}) + "\n" for r in rows)
    )
    assert (
        main(
            [
                "sft",
                "--config",
                str(cfg),
                f"--output_dir={tmp_path / 'sft'}",
                f"--train_file={sft_data}",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "rm",
                f"--model={tiny_rm}",
                f"--output_dir={tmp_path / 'rm'}",
                f"--train_file={pairs}",
                "--max_steps=1",
            ]
        )
        == 0
    )
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Q1"}\n{"prompt": [{"role": "user", "content": "hi"}]}\n')
    out = tmp_path / "gen.jsonl"
    assert (
        main(
            [
                "generate",
                f"--model={tmp_path / 'sft'}",
                f"--prompts_file={prompts}",
                f"--output_file={out}",
                "--k=2",
                "--max_new_tokens=4",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2
    assert len(lines[0]["samples"]) == 2
    scored = tmp_path / "scored.jsonl"
    to_score = tmp_path / "to_score.jsonl"
    to_score.write_text('{"prompt": "Q1", "response": " GOOD"}\n')
    assert (
        main(
            [
                "score",
                f"--model={tmp_path / 'rm'}",
                f"--input_file={to_score}",
                f"--output_file={scored}",
            ]
        )
        == 0
    )
    assert "reward" in json.loads(scored.read_text())
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                f"--policy={tmp_path / 'sft'}",
                f"--parent={tiny_lm}",
                f"--reward_model={tmp_path / 'rm'}",
                f"--prompts_file={prompts}",
                "--max_new_tokens=4",
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert {"win_rate", "mean_reward", "mean_length", "kl"} <= set(metrics)
