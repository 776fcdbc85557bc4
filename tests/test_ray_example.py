"""examples/ray_build.py: shards mapped over a local Ray, merged into the corpus one `build`
writes. Skips when ray (the optional extra `umi[ray]`) is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from test_build_golden import golden_inputs
from test_build_parallel import tree_bytes
from umi_data.building.build import BuildConfig, build_corpus

REPO = Path(__file__).resolve().parents[1]


def test_ray_example_builds_the_same_corpus(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'umi[ray]')")
    inputs = golden_inputs(tmp_path / "in")[1:]  # the sample, broken and give-up-first files: quick
    build_corpus(BuildConfig(source="toolbench", inputs=inputs, compat="alpha-umi"), tmp_path / "whole", progress=False)
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "ray_build.py"), "toolbench", *inputs, "--out", str(tmp_path / "ray"),
         "--shards", "4", "--num-cpus", "2", "--compat", "alpha-umi", "--work", str(tmp_path / "shards")],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(str(tmp_path / "ray"))
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [f"shard-{i}" for i in range(4)]
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "whole")
