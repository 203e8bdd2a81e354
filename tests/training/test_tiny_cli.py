from __future__ import annotations

from transformers import AutoModelForCausalLM, AutoTokenizer

from training.tiny import main


def test_tiny_cli_writes_a_loadable_chat_model(tmp_path, capsys):
    assert main([str(tmp_path / "base"), "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "base")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    assert model.config.vocab_size >= len(tokenizer)
    assert tokenizer.chat_template
    assert model.config.max_position_embeddings == 1024  # room for a prompt + 256 new tokens
