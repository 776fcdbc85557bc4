"""`build --workers N`, `build --shard I/N` + `merge`: the same bytes as one sequential build
(trajectories, role corpora, official files, rejects, manifest, card), and a `--help` that
imports none of the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import umi_data.building.build
import umi_data.building.workers
from test_build_golden import golden_inputs
from umi_data.building.build import BuildConfig, build_corpus
from umi_data.building.manifest import rewrite_card
from umi_data.building.shards import merge_shards

REPO = Path(__file__).resolve().parents[1]


def tree_bytes(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return golden_inputs(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("compat", [None, "alpha-umi"])
def test_workers_write_the_same_bytes(inputs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compat: str | None) -> None:
    config = BuildConfig(source="toolbench", inputs=inputs, compat=compat)
    build_corpus(config, tmp_path / "one", progress=False, workers=1)
    monkeypatch.setattr(umi_data.building.build, "PART_FILES", 5)  # many parts: row groups and stale inputs cross them
    build_corpus(config, tmp_path / "two", progress=False, workers=2)
    assert tree_bytes(tmp_path / "two") == tree_bytes(tmp_path / "one")
    assert_card_as_from_the_files(tmp_path / "two")


def test_worker_parts_travel_through_files_that_are_removed(inputs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # where the build's part files go
    made: list[str] = []
    real = umi_data.building.workers._load_part
    monkeypatch.setattr(umi_data.building.workers, "_load_part", lambda path: made.append(path) or real(path))
    monkeypatch.setattr(umi_data.building.build, "PART_FILES", 40)
    build_corpus(BuildConfig(source="toolbench", inputs=inputs), tmp_path / "out", progress=False, workers=2)
    assert len(made) > 1 and all(Path(path).parent.parent == spool for path in made)
    assert list(spool.iterdir()) == []


def assert_card_as_from_the_files(corpus: Path) -> None:
    """The build's card measures lengths as it writes (`CorpusWriter.lengths`), compat's stale
    backbone inputs resolved: `card DIR`, which reads them back from the Parquet files, gives the
    same bytes."""
    before = tree_bytes(corpus)
    rewrite_card(corpus)
    assert tree_bytes(corpus) == before


@pytest.mark.parametrize("compat", [None, "alpha-umi"])
@pytest.mark.parametrize("count", [3, 10])
def test_shards_merge_into_the_same_corpus(inputs: list[str], tmp_path: Path, compat: str | None, count: int) -> None:
    # The sample, the broken files and the give-up-first files: with 10 shards each file is its
    # own shard, so compat's stale backbone input must travel across several shards.
    small = inputs[1:]
    config = BuildConfig(source="toolbench", inputs=small, compat=compat)
    build_corpus(config, tmp_path / "whole", progress=False)
    shards = [tmp_path / f"shard-{i}" for i in range(count)]
    for index, shard in enumerate(shards):
        build_corpus(config, shard, progress=False, shard=(index, count))
    result = merge_shards(list(reversed(shards)), tmp_path / "merged")
    assert tree_bytes(tmp_path / "merged") == tree_bytes(tmp_path / "whole")
    assert_card_as_from_the_files(tmp_path / "merged")
    assert [r.locator for r in result.rejects] == [json.loads(line)["locator"] for line in (tmp_path / "whole" / "rejects.jsonl").read_text().splitlines()]


def test_shard_and_merge_commands(inputs: list[str], tmp_path: Path) -> None:
    def umi(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "umi_data", *args], capture_output=True, text=True, cwd=REPO)

    inputs = inputs[1:]  # the sample, broken and give-up-first files: the commands' plumbing, quickly
    for index in range(2):
        done = umi("build", "toolbench", *inputs, "--out", str(tmp_path / f"s{index}"), "--shard", f"{index}/2", "--no-progress")
        assert done.returncode == 0, done.stderr
    assert umi("build", "toolbench", *inputs, "--out", str(tmp_path / "whole"), "--workers", "2", "--no-progress").returncode == 0
    done = umi("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("read 10, accepted 6")
    assert tree_bytes(tmp_path / "merged") == tree_bytes(tmp_path / "whole")

    missing = umi("merge", str(tmp_path / "s1"), "--out", str(tmp_path / "bad"))
    assert missing.returncode == 2 and "expected shards 0/2 to 1/2, each once; got 1/2" in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong = umi("build", "toolbench", *inputs, "--out", str(tmp_path / "x"), "--shard", "2/2")
    assert wrong.returncode == 2 and "0 <= I < N" in wrong.stderr


@pytest.mark.parametrize("argv", [["--help"], ["build", "--help"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['python -m umi_data', *{argv!r}]\n"
        "try:\n    runpy.run_module('umi_data', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'pydantic', 'polars', 'duckdb', 'jsonschema',"
        " 'matplotlib', 'numpy', 'torch', 'transformers', 'datasets'})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "usage: umi-data" in done.stdout
    assert "HEAVY []" in done.stderr, done.stderr


def test_streamed_file_list_is_sorted_by_relative_path(tmp_path: Path) -> None:
    # Walking level by level must give the order of sorting whole relative paths: "a-b.json" and
    # "a.json" sort before "a/…" ("-" and "." are below "/"), "a0.json" after it.
    from umi_data.sources.base import discover_files, iter_files

    names = ["a/x.json", "a-b.json", "a.json", "a0.json", "a/b/c.json", "a/b-c/d.json", "B.json", ".hidden.json", "a/y.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    expected = sorted(n for n in names if n.endswith(".json") and not n.rsplit("/", 1)[-1].startswith("."))
    assert [f.name for f in iter_files([tmp_path])] == expected == [f.name for f in discover_files([tmp_path])]


def test_data_commands_take_the_lean_arrow_pool_unless_one_was_chosen() -> None:
    """`build`, `merge` and `card` switch Arrow to jemalloc (flatter peak memory, measured in
    umi_data/building/memory.py) when this pyarrow has it, and keep a pool the user chose."""
    import os
    import subprocess
    import sys

    import pyarrow as pa

    from umi_data.building.memory import LEAN_POOL, POOL_VARIABLE

    code = "from umi_data.building.memory import use_lean_memory_pool; print(use_lean_memory_pool())"
    env = {k: v for k, v in os.environ.items() if k != POOL_VARIABLE}

    def pool(**extra: str) -> str:
        return subprocess.run([sys.executable, "-c", code], env=env | extra, capture_output=True, text=True, check=True).stdout.strip()

    supported = pa.supported_memory_backends()
    assert pool() == (LEAN_POOL if LEAN_POOL in supported else pa.default_memory_pool().backend_name)
    other = next(name for name in ("system", "mimalloc") if name in supported)
    assert pool(**{POOL_VARIABLE: other}) == other
