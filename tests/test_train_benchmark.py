"""benchmarks/train_throughput.py runs, compares the collations on the same tokens, prints their
padding shares (none when packed), ends with `ratio: X.XX`.

(The acceptance number, >= 2x on the ToolBench example corpus, is a full run of the script:
`python benchmarks/train_throughput.py`; here it runs two steps on the built-in sample.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from umi_train.testing import sample_corpus, single_thread, tiny_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


def test_throughput_benchmark_reports_a_ratio(tmp_path_factory: pytest.TempPathFactory, capsys) -> None:
    single_thread()
    root = tmp_path_factory.getbasetemp() / "umi-train"
    corpus = sample_corpus(root / "corpus")
    model = tiny_model(root / "tiny", corpus)
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert benchmark.main(["--corpus", str(corpus), "--model", str(model), "--max-length", "1024", "--max-steps", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    measured = [re.search(r": (\d+) trained tokens, padding (\d+\.\d)% of (\d+) positions", line).groups() for line in lines[-4:-1]]
    tokens = [int(found[0]) for found in measured]
    assert tokens[0] == tokens[1] == tokens[2] > 0  # the same examples, so the same trained tokens
    padding = [float(found[1]) for found in measured]
    assert padding[0] > padding[1] > 0 and padding[2] == 0.0 and int(measured[2][2]) == tokens[2]  # max-length, dynamic, packed
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1]) and float(lines[-1].split()[1]) > 1.0
