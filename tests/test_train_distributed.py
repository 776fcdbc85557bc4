"""The unchanged commands under `torchrun --nproc_per_node=2` and `accelerate launch` with the
shipped DDP config, on CPU (gloo); FSDP2 sharding of umi's LoRA model with torch's `fully_shard`.

Both processes must train one model together: the Trainer saw a world size of 2 (a process
that silently trains alone sees 1) and, after DDP's gradient averaging, both ranks end with the
same adapter weights. The no-reuse setup also exercises the rank-0 merge and the barriers
between stages. accelerate runs FSDP only on accelerators (on CPU it falls back to plain data
parallel), so FSDP2 is checked with torch directly: sharded, umi's gathered adapter is
bit-identical to the DDP one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from umi_train.testing import FAST_OPTIONS, cli_args, sample_corpus, tiny_model

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def torchrun_command() -> list[str]:
    """torchrun next to this Python (the venv's), else on PATH; skip with the reason if neither
    it nor a gloo-capable torch.distributed is there."""
    import torch.distributed

    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    beside = Path(sys.executable).parent / "torchrun"
    found = str(beside) if beside.is_file() else shutil.which("torchrun")
    if found is None:
        pytest.skip(f"torchrun not found (looked beside {sys.executable} and on PATH)")
    return [found, "--standalone", "--nproc_per_node=2"]


@pytest.fixture(scope="module")
def model_and_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.getbasetemp() / "umi-train"
    corpus = sample_corpus(root / "corpus")
    return tiny_model(root / "tiny", corpus), corpus


def test_glpft_under_torchrun_trains_one_model_on_two_processes(model_and_corpus, tmp_path: Path) -> None:
    model, corpus = model_and_corpus
    out = tmp_path / "ddp"
    options = {**FAST_OPTIONS, "batch_size": 1, "max_steps": 2, "eval_fraction": 0}
    command = [*torchrun_command(), "-m", "umi_train.glpft", "--model", str(model), "--corpus", str(corpus),
               "--variant", "no-reuse", "--out", str(out), *cli_args(options)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "variant no-reuse complete" in result.stdout
    for run in ("stage1/backbone", "stage2/planner", "stage2/caller", "stage2/summarizer"):
        record = json.loads((out / run / "run.json").read_text())
        training, adapter = record["training"], record["adapter"]
        assert training["world_size"] == 2 and training["global_batch_size"] == 2, run
        assert training["steps"] == 2 and len(training["loss_history"]) == 2, run
        assert len(adapter["sha256_per_rank"]) == 2 and len(set(adapter["sha256_per_rank"])) == 1, run
    assert (out / "stage1" / "merged" / "umi_model.json").is_file() and (out / "glpft.json").is_file()


def test_accelerate_launch_with_the_ddp_config_trains_one_model_on_two_processes(model_and_corpus, tmp_path: Path) -> None:
    """The README's launch line with configs/accelerate/ddp.yaml (`--multi_gpu`: accelerate's
    `--cpu` would start one process); umi passes use_cpu, so the two processes use gloo."""
    torchrun_command()  # the same requirement: gloo
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.is_file():
        pytest.skip(f"accelerate's launcher not found beside {sys.executable}")
    model, corpus = model_and_corpus
    out = tmp_path / "accelerate"
    options = {**FAST_OPTIONS, "batch_size": 1, "max_steps": 2, "eval_fraction": 0}
    command = [str(accelerate), "launch", "--config_file", "configs/accelerate/ddp.yaml", "--num_processes", "2", "-m", "umi_train.sft",
               "--model", str(model), "--corpus", str(corpus), "--role", "planner", "--out", str(out), *cli_args(options)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["training"]["world_size"] == 2 and record["training"]["steps"] == 2
    assert len(record["adapter"]["sha256_per_rank"]) == 2 and len(set(record["adapter"]["sha256_per_rank"])) == 1


def test_fsdp2_sharded_lora_gathers_to_the_ddp_adapter(model_and_corpus, tmp_path: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from umi_train.data import select_examples
    from umi_train.encode import encode

    torchrun = torchrun_command()
    model, corpus = model_and_corpus
    tokenizer = AutoTokenizer.from_pretrained(model)
    encoded = [encode(row["input"], row["target"], tokenizer, 1024) for row in select_examples(corpus, ("planner",), None)]
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in encoded]))
    for mode in ("fsdp", "ddp"):
        command = [*torchrun, str(REPO / "tests" / "fsdp_worker.py"), mode, str(model), str(examples), str(tmp_path)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    fsdp, ddp = (json.loads((tmp_path / f"{mode}.json").read_text()) for mode in ("fsdp", "ddp"))
    assert fsdp["sharded"] and not ddp["sharded"]  # FSDP2 really held DTensor shards
    assert len(set(fsdp["digests"])) == 1 and fsdp["digests"] == ddp["digests"]
    sharded, replicated = (load_file(tmp_path / f"{mode}.safetensors") for mode in ("fsdp", "ddp"))
    assert sharded.keys() == replicated.keys() and len(sharded) == 28
