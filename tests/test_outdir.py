"""The output-directory policy, the lock and file modes (umi_data.plumbing.outdir; docs/guarantees.md)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from umi_data.__main__ import main
from umi_data.building.config import CORPUS_OUTPUT
from umi_data.plumbing.outdir import FILE_MODE, LOCK_FILE, OutDirError, OutDirLocked, Output, atomic_open, claim_out_dir

REPO = Path(__file__).resolve().parents[1]
SAMPLE = resources.files("umi_data") / "samples" / "toolbench" / "answer"


def build(out: Path, *extra: str) -> int:
    return main(["build", "toolbench", str(SAMPLE), "--out", str(out), "--no-progress", *extra])


def files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def users_dir(tmp_path: Path) -> Path:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    (mine / "data.csv").write_text("1,2")
    return mine


def test_build_refuses_a_directory_it_did_not_write(users_dir: Path, capsys: pytest.CaptureFixture) -> None:
    before = files(users_dir)
    assert build(users_dir) == 2
    assert "not written by `umi-data build`" in one_line(capsys)
    assert files(users_dir) == before  # nothing written, not even the lock file


def test_force_writes_beside_foreign_files_but_never_replaces_one(users_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(users_dir, "--force") == 2  # README.md would be the data card
    assert "--force never replaces files umi did not write, and README.md is there" in one_line(capsys)
    (users_dir / "README.md").unlink()
    assert build(users_dir, "--force") == 0
    assert (users_dir / "data.csv").read_text() == "1,2" and (users_dir / "manifest.json").is_file()
    assert build(users_dir) == 0  # now it is a corpus directory: rebuilt without --force, data.csv kept
    assert (users_dir / "data.csv").read_text() == "1,2"


def test_each_command_refuses_the_other_commands_directories(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path / "c") == 0
    assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(tmp_path / "x")]) == 0
    assert build(tmp_path / "x") == 2
    assert "written by `umi-data export`" in one_line(capsys)
    assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(tmp_path / "c")]) == 2
    assert "written by `umi-data build`" in one_line(capsys)
    assert main(["synth", "--n", "2", "--out", str(tmp_path / "c")]) == 2
    one_line(capsys)


def test_a_rebuild_replaces_the_whole_corpus(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert build(out, "--compat", "alpha-umi") == 0
    assert (out / "alpha_umi").is_dir()
    (out / "notes.txt").write_text("mine")  # a file the user put there
    assert build(out) == 0
    assert not (out / "alpha_umi").exists()  # no stale compat files presented as current
    assert build(tmp_path / "fresh") == 0
    assert files(out) == {**files(tmp_path / "fresh"), "notes.txt": b"mine"}


def test_a_killed_build_is_recognised_and_its_temp_files_removed(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert build(out, "--compat", "alpha-umi") == 0
    # as a build killed half-way leaves it: no manifest, temporary files, the lock file's record
    (out / "manifest.json").unlink()
    (out / ".trajectories.parquet.x1y2z3w4.tmp").write_bytes(b"half")
    (out / "local" / ".planner.parquet.a1b2c3d4.tmp").write_bytes(b"half")
    assert build(out) == 0
    assert build(tmp_path / "fresh") == 0
    assert files(out) == files(tmp_path / "fresh")


def test_a_second_writer_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    assert build(out) == 0
    before = files(out)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from umi_data.building.config import CORPUS_OUTPUT\n"
        "from umi_data.plumbing.outdir import claim_out_dir\n"
        f"with claim_out_dir(Path({str(out)!r}), CORPUS_OUTPUT):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert build(out) == 2
        assert "`umi-data build` is writing there right now (locked)" in one_line(capsys)
        assert main(["card", str(out)]) == 2
        one_line(capsys)
        assert main(["export", str(out), "--variant", "reuse", "--out", str(out)]) == 2
        one_line(capsys)
    finally:
        holder.communicate("\n", timeout=60)
    assert files(out) == before
    assert build(out) == 0 and main(["card", str(out)]) == 0  # the lock is gone with its holder


def test_export_holds_the_lock_of_its_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path / "c") == 0
    from umi_data.exports.export import EXPORT_OUTPUT

    with claim_out_dir(tmp_path / "x", EXPORT_OUTPUT):
        assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(tmp_path / "x")]) == 2
        assert "is writing there right now" in one_line(capsys)
    with pytest.raises(OutDirLocked):
        with claim_out_dir(tmp_path / "y", EXPORT_OUTPUT), claim_out_dir(tmp_path / "y", EXPORT_OUTPUT):
            pass


def test_files_get_the_usual_mode(tmp_path: Path) -> None:
    assert FILE_MODE == 0o666 & ~_umask()
    assert build(tmp_path / "c") == 0
    assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(tmp_path / "x")]) == 0
    for directory in (tmp_path / "c", tmp_path / "x"):
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.rglob("*") if p.is_file()}
        assert modes and set(modes.values()) == {FILE_MODE}, modes
    from umi_agent.jsonio import write_json

    write_json(tmp_path / "m.json", {"a": 1})
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == FILE_MODE


def test_files_follow_a_stricter_umask(tmp_path: Path) -> None:
    code = (
        "import os, stat, sys\n"
        "os.umask(0o077)\n"
        "from pathlib import Path\n"
        "from umi_data.plumbing.outdir import atomic_open\n"
        "with atomic_open(Path(sys.argv[1])) as f: f.write(b'x')\n"
        "print(oct(stat.S_IMODE(os.stat(sys.argv[1]).st_mode)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f")], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "0o600"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_build_that_accepts_nothing_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "in").mkdir()
    for n in range(3):
        (tmp_path / "in" / f"{n}.json").write_text(json.dumps({"not": "toolbench"}))
    assert main(["build", "toolbench", str(tmp_path / "in"), "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    err = one_line(capsys)
    assert "no record was accepted (of 3 read)" in err
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["counts"]["accepted"] == 0  # kept for inspection


def test_sweep_keeps_what_the_command_does_not_own(tmp_path: Path) -> None:
    output = Output(command="test", markers=("done",), owns=("a", "done"))
    out = tmp_path / "o"
    with claim_out_dir(out, output) as claim:
        (out / "a").mkdir()
        (out / "a" / "old").write_text("old")
        (out / "a" / "new").write_text("new")
        (out / ".a.tmp12345.tmp").write_text("temp")
        (out / "user").write_text("mine")
        claim.sweep(["a/new"])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [LOCK_FILE, "a", "a/new", "user"]
    with pytest.raises(OutDirError, match="written by `test`"):
        with claim_out_dir(out, Output(command="other", markers=(), owns=())):
            pass


@pytest.mark.parametrize("command,marker", [(["synth", "--n", "2"], "tasks.jsonl"), (["build", "toolbench", "SAMPLE"], "manifest.json")])
def test_a_marker_file_name_never_makes_a_directory_umis(tmp_path: Path, capsys: pytest.CaptureFixture, command: list, marker: str) -> None:
    """A user's folder that happens to hold a file with the name a command writes last keeps
    every file: the command refuses it (no lock, no record), with --force too where it would
    replace one."""
    from importlib.resources import files

    sample = files("umi_data") / "samples" / "toolbench" / "answer"
    out = tmp_path / "mine"
    (out / "answer").mkdir(parents=True)
    (out / "answer" / "my_notes.txt").write_text("mine")
    (out / "local").mkdir()
    (out / "local" / "my.parquet").write_text("mine")
    (out / marker).write_text("{}\n")
    argv = [str(sample) if a == "SAMPLE" else a for a in command]
    assert main([*argv, "--out", str(out)]) == 2
    assert "was not written by" in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["answer/my_notes.txt", "local/my.parquet", marker]


def test_synth_replaces_its_own_output_and_refuses_others(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "s"
    assert main(["synth", "--n", "3", "--out", str(out)]) == 0
    (out / ".answer.killed_1.tmp").mkdir()  # a staging directory of a killed run
    assert main(["synth", "--n", "2", "--out", str(out)]) == 0
    assert not (out / ".answer.killed_1.tmp").exists()
    assert len(list((out / "answer" / "G1_answer").iterdir())) == 2
    capsys.readouterr()


def test_atomic_open_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "f.json") as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_corpus_output_owns_everything_build_writes(tmp_path: Path) -> None:
    assert build(tmp_path / "c", "--compat", "alpha-umi") == 0
    top = {p.name for p in (tmp_path / "c").iterdir()} - {LOCK_FILE}
    assert top <= set(CORPUS_OUTPUT.owns)


def test_merge_follows_the_build_policy(users_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["build", "toolbench", str(SAMPLE), "--out", str(tmp_path / "s0"), "--shard", "0/1", "--no-progress"]) == 0
    before = files(users_dir)
    assert main(["merge", str(tmp_path / "s0"), "--out", str(users_dir)]) == 2
    assert "not written by `umi-data build`" in one_line(capsys)
    assert files(users_dir) == before
    assert build(tmp_path / "c", "--compat", "alpha-umi") == 0
    assert main(["merge", str(tmp_path / "s0"), "--out", str(tmp_path / "c")]) == 0  # over a corpus: replaced as a whole
    assert not (tmp_path / "c" / "alpha_umi").exists()


# --- issue 27: ownership by record, never by a file name -----------------------------------------


def test_a_directory_with_only_a_file_named_manifest_is_not_a_corpus(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A user's directory holding some manifest.json (and local/, card/, global/) is refused, not swept."""
    mine = tmp_path / "mine"
    for name in ("local", "card", "global"):
        (mine / name).mkdir(parents=True)
        (mine / name / "keep.txt").write_text(name)
    (mine / "README.md").write_text("my readme")
    for manifest in ('{"name": "my-app", "version": "1.0"}', '{"kind": "umi-corpus", "files": {}}', "not json"):
        (mine / "manifest.json").write_text(manifest)
        before = files(mine)
        assert build(mine) == 2
        assert "was not written by `umi-data build`" in one_line(capsys)
        assert files(mine) == before


def test_a_copied_manifest_does_not_make_a_corpus(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path / "c") == 0
    mine = tmp_path / "mine"
    (mine / "local").mkdir(parents=True)
    (mine / "local" / "notes.txt").write_text("mine")
    shutil.copy(tmp_path / "c" / "manifest.json", mine / "manifest.json")
    before = files(mine)
    assert build(mine) == 2
    one_line(capsys)
    assert files(mine) == before


def test_a_rebuild_keeps_user_files_inside_the_corpus_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    assert build(out, "--compat", "alpha-umi") == 0
    mine = {"local/notes.txt": b"n", "card/my-plot.png": b"png", "global/extra.parquet": b"x", "alpha_umi/mine.json": b"[]",
            ".README.md.swp": b"swap", ".trajectories.parquet.orig": b"backup", "local/.planner.parquet.swp": b"s"}
    for name, data in mine.items():
        (out / name).write_bytes(data)
    capsys.readouterr()
    assert build(out) == 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "umi did not write" in err, err
    assert all((out / name).read_bytes() == data for name, data in mine.items())
    assert not (out / "alpha_umi" / "train_backbone.json").exists()  # what umi wrote and no longer writes is gone
    assert build(out, "--force") == 0  # --force deletes no editor file either
    assert all((out / name).read_bytes() == data for name, data in mine.items())


def test_a_file_umi_wrote_but_the_user_changed_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    assert build(out, "--compat", "alpha-umi") == 0
    edited = out / "alpha_umi" / "train_backbone.json"
    edited.write_text("[]\n")  # the user's edit: not the file umi recorded
    capsys.readouterr()
    assert build(out) == 0
    assert edited.read_text() == "[]\n"
    assert "alpha_umi/train_backbone.json" in capsys.readouterr().err


def test_a_corpus_of_the_current_format_without_a_file_record_is_recognised(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A corpus written before the lock recorded files (the lock names only the command, or no
    lock at all): its manifest's file hashes are the record; user files stay."""
    for lock in ('{"command": "python -m umi_data build", "owns": ["manifest.json"]}', None):
        out = tmp_path / ("locked" if lock else "unlocked")
        assert build(out, "--compat", "alpha-umi") == 0
        if lock:
            (out / LOCK_FILE).write_text(lock)
        else:
            (out / LOCK_FILE).unlink()
        (out / "local" / "notes.txt").write_text("mine")
        assert build(out) == 0
        assert not (out / "alpha_umi").exists() and (out / "local" / "notes.txt").read_text() == "mine"
        assert "local/notes.txt" in capsys.readouterr().err


def test_a_dangling_symlink_out_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert build(tmp_path / "link") == 2
    err = one_line(capsys)
    assert "dangling" in err and "Errno" not in err
    assert not (tmp_path / "nowhere").exists()


def test_out_inside_the_input_tree_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    before = files(data)
    for out in (data / "corpus", data, data / "G1_answer" / "c"):
        assert main(["build", "toolbench", str(data), "--out", str(out), "--no-progress"]) == 2
        assert "inside the input" in one_line(capsys)
    assert files(data) == before


def test_a_failed_build_into_a_new_directory_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "a" / "b" / "c"
    with pytest.raises(RuntimeError):
        with claim_out_dir(out, CORPUS_OUTPUT):
            (out / "local").mkdir()
            (out / "card" / "deep").mkdir(parents=True)
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_an_export_is_recognised_by_its_record_not_its_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build(tmp_path / "c") == 0
    mine = tmp_path / "mine"
    (mine / "stage1").mkdir(parents=True)
    (mine / "stage1" / "notes.txt").write_text("mine")
    (mine / "export.json").write_text('{"kind": "my-own-export"}')
    before = files(mine)
    assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(mine)]) == 2
    one_line(capsys)
    assert files(mine) == before
    x = tmp_path / "x"
    assert main(["export", str(tmp_path / "c"), "--variant", "no-reuse", "--out", str(x)]) == 0
    (x / "stage2" / "notes.txt").write_text("mine")
    (x / LOCK_FILE).unlink()  # as an export written before the lock held a record
    assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(x)]) == 0
    assert main(["export", str(tmp_path / "c"), "--variant", "reuse", "--out", str(tmp_path / "fresh")]) == 0
    assert {**files(tmp_path / "fresh"), "stage2/notes.txt": b"mine"} == files(x)
    assert json.loads((x / LOCK_FILE).read_text())["files"]["export.json"]


def test_a_symlinked_owned_folder_is_never_written_through(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, elsewhere = tmp_path / "c", tmp_path / "elsewhere"
    assert build(out) == 0
    elsewhere.mkdir()
    (elsewhere / "stats.json").write_text("precious")
    shutil.rmtree(out / "card")
    (out / "card").symlink_to(elsewhere)
    for args in ([], ["--force"]):
        assert build(out, *args) == 2
        assert "symbolic link" in one_line(capsys)
    assert main(["card", str(out)]) == 2
    one_line(capsys)
    assert files(elsewhere) == {"stats.json": b"precious"}
