"""The unchanged commands under `torchrun --nproc_per_node=2` on CPU (gloo).

Both processes must train one model together: the Trainer saw a world size of 2 (a process
that silently trains alone sees 1) and, after DDP's gradient averaging, both ranks end with the
same adapter weights. The no-reuse setup also exercises the rank-0 merge and the barriers
between stages."""

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
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "variant no-reuse complete" in result.stdout
    for run in ("stage1/backbone", "stage2/planner", "stage2/caller", "stage2/summarizer"):
        record = json.loads((out / run / "run.json").read_text())
        training, adapter = record["training"], record["adapter"]
        assert training["world_size"] == 2 and training["global_batch_size"] == 2, run
        assert training["steps"] == 2 and len(training["loss_history"]) == 2, run
        assert len(adapter["sha256_per_rank"]) == 2 and len(set(adapter["sha256_per_rank"])) == 1, run
    assert (out / "stage1" / "merged" / "umi_model.json").is_file() and (out / "glpft.json").is_file()
