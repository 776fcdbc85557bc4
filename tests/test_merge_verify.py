"""`merge` verifies what it merges (issue 27): counts come from the shard files, every shard
carries the fingerprint of its whole build, the output is never an input, and a malformed shard
is one line, exit 2, with nothing left behind (docs/guarantees.md)."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Callable

import pytest

from umi_data.__main__ import main
from test_outdir import files, one_line  # noqa: E402  (the same helpers, one copy)

SAMPLE = resources.files("umi_data") / "samples" / "toolbench" / "answer"


def shard(inputs: str, out: Path, spec: str, *extra: str) -> int:
    return main(["build", "toolbench", inputs, "--out", str(out), "--shard", spec, "--no-progress", *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/ (a copy of the sample), s0 and s1 (its two shards), whole (one build)."""
    root = tmp_path_factory.mktemp("shards")
    shutil.copytree(SAMPLE, root / "data")
    for index in range(2):
        assert shard(str(root / "data"), root / f"s{index}", f"{index}/2") == 0
    assert main(["build", "toolbench", str(root / "data"), "--out", str(root / "whole"), "--no-progress"]) == 0
    return root


@pytest.fixture
def shards(built: Path, tmp_path: Path) -> list[Path]:
    copies = [tmp_path / "s0", tmp_path / "s1"]
    for copy in copies:
        shutil.copytree(built / copy.name, copy)
    return copies


def refused(capsys: pytest.CaptureFixture, shards: list[Path], out: Path, *expect: str) -> str:
    before = {s: files(s) for s in shards}
    existed = out.exists()
    capsys.readouterr()
    assert main(["merge", *map(str, shards), "--out", str(out)]) == 2
    err = one_line(capsys)
    assert all(text in err for text in expect), err
    assert {s: files(s) for s in shards} == before  # the shards are untouched
    if not existed:
        assert not out.exists()  # no lock, no empty folder
    return err


def test_the_verified_merge_is_the_whole_build(built: Path, shards: list[Path], tmp_path: Path) -> None:
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "m")]) == 0
    assert files(tmp_path / "m") == files(built / "whole")


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value, indent=2))


@pytest.mark.parametrize("change", [
    lambda m: m["counts"].update(accepted=m["counts"]["accepted"] + 5, read=m["counts"]["read"] + 5),
    lambda m: m["counts"]["turns"].update(caller=99),
    lambda m: m["counts"].update(hallucinated_calls=7),
    lambda m: m["counts"]["rejected_by_reason"].update(invalid_json=3),
    lambda m: m["examples"]["planner"].update(A=40),
])
def test_tampered_counts_are_refused(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture, change: Callable) -> None:
    edit_json(shards[1] / "shard.json", change)
    refused(capsys, shards, tmp_path / "new" / "m", str(shards[1]), "counts")


def test_inputs_changed_between_shard_builds_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    assert shard(str(data), tmp_path / "s0", "0/2") == 0
    (data / "G2_answer" / "1_umi_sample.json").write_text((data / "G2_answer" / "1_umi_sample.json").read_text() + "\n")
    assert shard(str(data), tmp_path / "s1", "1/2") == 0
    refused(capsys, [tmp_path / "s0", tmp_path / "s1"], tmp_path / "m", "another build", "inputs")
    shutil.copy(data / "G1_answer" / "1_umi_sample.json", data / "G1_answer" / "0_added.json")  # a file added: slices shift
    assert shard(str(data), tmp_path / "s0", "0/2") == 0
    shutil.rmtree(tmp_path / "s1")
    (data / "G1_answer" / "0_added.json").unlink()
    assert shard(str(data), tmp_path / "s1", "1/2") == 0
    refused(capsys, [tmp_path / "s0", tmp_path / "s1"], tmp_path / "m", "another build")


def test_relative_inputs_from_two_working_directories(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    for place in ("here", "there"):
        shutil.copytree(SAMPLE, tmp_path / place / "data")
    (tmp_path / "there" / "data" / "G2_answer" / "2_umi_sample.json").unlink()
    monkeypatch.chdir(tmp_path / "here")
    assert shard("data", tmp_path / "s0", "0/2") == 0
    monkeypatch.chdir(tmp_path / "there")
    assert shard("data", tmp_path / "s1", "1/2") == 0
    refused(capsys, [tmp_path / "s0", tmp_path / "s1"], tmp_path / "m", "another build", "inputs")


def test_shards_of_different_options_are_refused_by_name(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert shard(str(built / "data"), tmp_path / "s1", "1/2", "--seed", "7") == 0
    refused(capsys, [built / "s0", tmp_path / "s1"], tmp_path / "m", str(tmp_path / "s1"), "config")
    assert shard(str(built / "data"), tmp_path / "t1", "1/3") == 0
    refused(capsys, [built / "s0", tmp_path / "t1"], tmp_path / "m")


def test_the_output_is_never_an_input(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for out in (shards[0], shards[1] / "merged", tmp_path, shards[0] / ".." / "s1"):
        refused(capsys, shards, out, "shard")


@pytest.mark.parametrize("damage", [
    lambda s: (s / "shard.json").write_text("{not json"),
    lambda s: (s / "shard.json").write_text("[1, 2]"),
    lambda s: (s / "shard.json").write_text("{}"),
    lambda s: edit_json(s / "shard.json", lambda m: m.update(shard="1/2")),
    lambda s: edit_json(s / "shard.json", lambda m: m.update(shard=[1])),
    lambda s: edit_json(s / "shard.json", lambda m: m.pop("stale")),
    lambda s: edit_json(s / "shard.json", lambda m: m["stale"].update(rows=-1)),
    lambda s: edit_json(s / "shard.json", lambda m: m.update(counts=None)),
    lambda s: edit_json(s / "shard.json", lambda m: m.update(official_rows={"../../x": 1})),
    lambda s: edit_json(s / "shard.json", lambda m: [m.pop("fingerprint"), m.pop("build"), m.pop("files")]),  # an older umi's shard
    lambda s: edit_json(s / "shard.json", lambda m: m["build"]["config"].update(split_seed=1)),
    lambda s: (s / "shard.json").unlink(),
    lambda s: (s / "trajectories.parquet").write_bytes((s / "trajectories.parquet").read_bytes()[:300]),
    lambda s: (s / "trajectories.parquet").unlink(),
    lambda s: (s / "local" / "caller.parquet").write_bytes(b"PAR1"),
    lambda s: (s / "rejects.jsonl").write_text("not json\n"),
    lambda s: (s / "inputs.jsonl").write_text(""),
    lambda s: ((s / "local" / "planner.jsonl").unlink(), (s / "local" / "planner.jsonl").symlink_to("/etc/hostname")),
    lambda s: shutil.rmtree(s / "global"),
])
def test_a_malformed_shard_is_one_line_and_leaves_nothing(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture, damage: Callable) -> None:
    damage(shards[1])
    refused(capsys, shards, tmp_path / "new" / "deeper" / "m", str(shards[1]))
    assert not (tmp_path / "new").exists()


def test_options_this_umi_does_not_know_are_one_line(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Even a consistently edited shard.json (fingerprint recomputed) with an unknown option."""
    from umi_data.building.shard_checks import build_fingerprint

    for directory in shards:
        def change(m: dict) -> None:
            m["config"]["colour"] = "red"
            m["build"]["config"] = m["config"]
            b = m["build"]
            m["fingerprint"] = build_fingerprint(b["umi_version"], b["config"], b["shards"], b["exclusion_lists"], b["inputs"])[1]
        edit_json(directory / "shard.json", change)
    refused(capsys, shards, tmp_path / "m", "options")


def test_the_same_shard_twice_is_refused(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    refused(capsys, [shards[0], shards[0]], tmp_path / "m", "each once")


def test_a_shard_that_accepts_nothing_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    (data / "G2_answer" / "3_broken.json").write_text("{broken")  # the last file: shard 4/5 accepts nothing
    for index in range(5):
        assert shard(str(data), tmp_path / f"s{index}", f"{index}/5") == 0
    err = capsys.readouterr().err
    assert "right source" not in err
    assert main(["merge", *(str(tmp_path / f"s{i}") for i in range(5)), "--out", str(tmp_path / "m")]) == 0
    assert main(["build", "toolbench", str(data), "--out", str(tmp_path / "whole"), "--no-progress"]) == 0
    assert files(tmp_path / "m") == files(tmp_path / "whole")
