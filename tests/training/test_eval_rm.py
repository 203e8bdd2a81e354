"""``python -m training eval-rm``: a reward model's plain and length-balanced accuracy on a pairs
file (the explicit prompt/chosen/rejected format and HH-RLHF's implicit-prompt dialogues)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.__main__ import main
from training.generate import score
from training.modeling import load_reward_model, load_tokenizer
from training.pair_accuracy import length_balanced_accuracy

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    {"prompt": "Q: apple\nA:", "chosen": " river", "rejected": " stone cloud tiger"},
    {"prompt": "Q: lemon\nA:", "chosen": " piano rocket", "rejected": " go"},
    {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello there",
        "rejected": "\n\nHuman: hi\n\nAssistant: no",
    },
    {"prompt": "Q: cloud\nA:", "chosen": " same", "rejected": " size"},
]


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def expected(tiny_rm: Path) -> dict[str, float]:
    tok = load_tokenizer(str(tiny_rm))
    model = load_reward_model(str(tiny_rm), torch.device("cpu"), tok.pad_token_id)
    prompts = [r.get("prompt", "\n\nHuman: hi\n\nAssistant:") for r in ROWS]
    chosen = [r["chosen"].removeprefix("\n\nHuman: hi\n\nAssistant:") for r in ROWS]
    rejected = [r["rejected"].removeprefix("\n\nHuman: hi\n\nAssistant:") for r in ROWS]
    c = score(model, tok, list(zip(prompts, chosen, strict=True)))
    r = score(model, tok, list(zip(prompts, rejected, strict=True)))
    return length_balanced_accuracy(c, r, [len(x) for x in chosen], [len(x) for x in rejected])


def test_json_figures_match_the_function(tiny_rm, pairs_file, capsys) -> None:
    assert main(["eval-rm", f"--reward-model={tiny_rm}", f"--pairs={pairs_file}", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = expected(tiny_rm)
    assert (got["pairs"], got["pairs_longer_preferred"], got["pairs_equal_length"]) == (4, 2, 1)
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    assert got["records"] == {"kept": 4}


def test_text_report_and_both_spellings(tiny_rm, pairs_file, tmp_path, capsys) -> None:
    out_file = tmp_path / "figures.json"
    argv = ["eval-rm", f"--reward_model={tiny_rm}", f"--pairs={pairs_file}"]
    assert main([*argv, f"--output-file={out_file}", "--max_pairs=3"]) == 0
    text = capsys.readouterr().out
    assert "length-balanced accuracy" in text
    assert 'agrees with "shorter wins"' in text
    assert "3 (2 preferred longer, 1 preferred shorter, 0 of equal length)" in text
    assert json.loads(out_file.read_text())["pairs"] == 3


def test_bad_input_fails_with_status_2_naming_the_problem(tiny_rm, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q"\n')
    assert main(["eval-rm", f"--reward-model={tiny_rm}", f"--pairs={bad}"]) == 2
    assert f"{bad}:2: malformed JSON" in capsys.readouterr().err
    assert main(["eval-rm", f"--reward-model={tiny_rm}"]) == 2
    assert "pairs: is required" in capsys.readouterr().err
    assert main(["eval-rm", f"--reward-model={tiny_rm}", f"--pairs={tmp_path / 'no.jsonl'}"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_help_documents_the_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training", "eval-rm", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for option in ("--reward-model", "--pairs", "--json", "length-balanced"):
        assert option in proc.stdout
