"""`python -m umi_train.tiny`: an ordinary HF model directory, a few hundred thousand parameters,
Llama's special tokens (the literal `</s>` of α-UMi texts is EOS), the same bytes for the same seed."""

from __future__ import annotations

import json
from pathlib import Path

from umi_train import tiny
from umi_train.testing import sample_corpus, single_thread


def test_tiny_model_directory_is_deterministic_and_loadable(tmp_path: Path, capsys) -> None:
    single_thread()
    corpus = sample_corpus(tmp_path / "corpus")
    for name in ("a", "b"):
        assert tiny.main(["--corpus", str(corpus), "--out", str(tmp_path / name), "--seed", "3"]) == 0
    files = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "umi_model.json"} <= set(files)
    assert all((tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes() for name in files)
    assert "parameters" in capsys.readouterr().out

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tmp_path / "a"), AutoTokenizer.from_pretrained(tmp_path / "a")
    assert model.config.model_type == "llama" and model.config.max_position_embeddings >= 2048
    assert 100_000 <= sum(p.numel() for p in model.parameters()) <= 1_000_000
    assert [tokenizer.unk_token, tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token] == ["<unk>", "<s>", "</s>", "<pad>"]
    assert tokenizer("done</s>", add_special_tokens=False).input_ids[-1] == tokenizer.eos_token_id
    assert tokenizer("done").input_ids[0] == tokenizer.bos_token_id  # like Llama's tokenizer
    card = json.loads((tmp_path / "a" / "umi_model.json").read_text())
    assert card["kind"] == "umi-tiny" and card["config"]["seed"] == 3 and card["corpus"]["manifest_sha256"]
    assert tiny.main(["--corpus", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c")]) == 2
