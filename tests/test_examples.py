"""The examples in examples/ run as documented (tiny data, tiny model) and do what they say:
a corpus built and read back, a DuckDB plot written, a custom source registered and built
(workers included), a role trained and generating."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


def example(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "examples" / name), *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300, cwd=REPO)
    assert done.returncode == 0, f"{name}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example")
    printed = example("build_corpus.py", "--out", out, "--n", "12")
    assert "corpus: 12 trajectories, 0 rejects" in printed and "planner corpus:" in printed, printed
    return out / "corpus"


def test_build_corpus_reads_the_corpus_back(corpus: Path) -> None:
    assert (corpus / "manifest.json").is_file() and (corpus / "local" / "planner.parquet").is_file()


def test_duckdb_plot_writes_a_png(corpus: Path, tmp_path: Path) -> None:
    printed = example("duckdb_plot.py", corpus, "--out", tmp_path / "calls.png")
    assert "tool calls each" in printed
    assert (tmp_path / "calls.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_custom_source_builds_with_a_counted_reject(tmp_path: Path) -> None:
    printed = example("custom_source.py", "--out", tmp_path)
    assert "helpdesk-log: 3 trajectories, 1 rejected" in printed and "reject $[3]: wrong_type" in printed, printed
    import polars as pl

    rows = pl.read_parquet(tmp_path / "corpus" / "trajectories.parquet")
    assert rows["id"].str.starts_with("helpdesk-log-").all() and rows.height == 3


def test_train_role_trains_and_generates(corpus: Path, tmp_path: Path) -> None:
    printed = example("train_role.py", corpus, "--out", tmp_path, "--max-steps", "2")
    assert "planner: 2 steps, loss" in printed and "planner says:" in printed, printed
    assert (tmp_path / "planner" / "run.json").is_file()
