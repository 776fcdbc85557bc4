"""`python -m umi_data query` is a sandbox: one read-only statement, reading only the given
directories (docs/guarantees.md). Each attack is one line on stderr and exit 2, and leaves no file."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from umi_data.__main__ import main
from umi_data.corpus.duck import connect

SAMPLE = resources.files("umi_data") / "samples" / "toolbench" / "answer"


def build(out: Path) -> Path:
    assert main(["build", "toolbench", str(SAMPLE), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("sandbox") / "corpus")


def refused(capsys: pytest.CaptureFixture, *args: str) -> str:
    assert main(["query", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_reading_a_file_outside_the_corpora_is_refused(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    for sql in (f"select * from read_text('{secret}')", f"select * from read_csv('{secret}')", "select * from glob('/etc/*')",
                f"select * from read_text('{corpus}/../secret.txt')"):
        err = refused(capsys, str(corpus), sql)
        assert "password" not in err and re.search("disabled by configuration|Permission", err), err


@pytest.mark.parametrize("template,created", [
    ("copy (select * from trajectories) to '{tmp}/stolen.csv'", "stolen.csv"),
    ("attach '{tmp}/new.db' as other", "new.db"),
    ("install httpfs", None),
    ("load httpfs", None),
    ("set enable_external_access = true", None),
    ("set threads = 1", None),
    ("pragma enable_profiling", None),
    ("create table t as select 1", None),
    ("select 1; select 2", None),
    ("select 1; copy (select 1) to '{tmp}/two.csv'", "two.csv"),
    ("", None),
])
def test_statements_other_than_one_query_are_refused(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, template: str, created: str | None) -> None:
    err = refused(capsys, str(corpus), template.format(tmp=tmp_path))
    assert "error:" in err
    if created:
        assert not (tmp_path / created).exists()


def test_a_corpus_directory_with_a_quote_in_its_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    quoted = build(tmp_path / "it's a corpus")
    injected = build(tmp_path / "x') union all select * from read_text('etc")
    for directory in (quoted, injected):
        capsys.readouterr()
        assert main(["query", str(directory), "select count(*) as n from trajectories", "--format", "csv"]) == 0
        assert capsys.readouterr().out.splitlines() == ["n", "3"]
    refused(capsys, str(tmp_path / "it's missing"), "select 1")


def test_connect_is_restricted_unless_asked(corpus: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        connect(corpus).sql(f"select * from read_text('{secret}')").fetchall()
    with pytest.raises(duckdb.Error, match="locked"):
        connect(corpus).execute("set enable_external_access = true")
    assert connect(corpus).sql("select count(*) from examples").fetchall()[0][0] > 0
    open_db = connect(corpus, restrict=False)
    assert open_db.sql(f"select content from read_text('{secret}')").fetchall() == [("password",)]


def test_read_only_queries_still_run(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    for sql in ("with t as (select * from trajectories) select count(*) from t", "describe trajectories",
                "summarize select length(input) from examples", "explain select * from turns", "from tool_calls limit 1"):
        capsys.readouterr()
        assert main(["query", str(corpus), sql]) == 0, capsys.readouterr().err


# --- issue 27: read-only by construction, literal paths, bounds, bad corpus files ---------------


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def scratch(corpus: Path, tmp_path: Path) -> Path:
    """A copy of the corpus that a test may try to damage."""
    copy = tmp_path / "c"
    shutil.copytree(corpus, copy)
    return copy


WRITES = [
    "explain analyze copy (select * from trajectories where false) to '{c}/trajectories.parquet' (format parquet)",
    "explain analyze copy (select 1 as x) to '{c}/manifest.json' (format csv)",
    "explain analyze copy (select 1 as x) to '{c}/manifest.json' (format csv, use_tmp_file false)",
    "explain analyze copy (select 1 as x) to '{c}/new.csv'",
    "explain analyze copy (select 1 as x) to '{t}/out.parquet' (format parquet)",
    "explain analyze copy trajectories to '{t}/all.csv'",
    "explain (analyze) copy (select 1 as x) to '{c}/local/x.csv'",
    "explain analyze create table t as select * from trajectories",
    "explain analyze insert into trajectories select * from trajectories",
]


@pytest.mark.parametrize("template", WRITES)
def test_no_statement_writes_a_file(scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture, template: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    before, before_outside = tree(scratch), tree(outside)
    assert main(["query", str(scratch), template.format(c=scratch, t=outside)]) in (0, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    assert tree(scratch) == before and tree(outside) == before_outside
    assert main(["query", str(scratch), "select count(*) as n from trajectories", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "3"]


def test_the_connection_itself_cannot_write(scratch: Path, tmp_path: Path) -> None:
    """Not the statement check: the connection `connect` returns has no file system to write to."""
    db = connect(scratch)
    for sql in (f"copy (select 1) to '{tmp_path}/x.csv'", f"copy (select * from trajectories) to '{scratch}/trajectories.parquet' (format parquet)",
                f"attach '{tmp_path}/x.db' as x", f"select * from read_text('{scratch}/manifest.json')"):
        with pytest.raises(duckdb.Error):
            db.execute(sql)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.db").exists()
    assert db.sql("select count(*) from trajectories").fetchall() == [(3,)]


@pytest.mark.parametrize("pattern,sibling", [("b[12]", "b1"), ("q?", "qa"), ("x*", "xyz"), ("s{1,2}", "s1"), ("d**", "dd")])
def test_glob_characters_in_a_corpus_name_are_literal(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, pattern: str, sibling: str) -> None:
    shutil.copytree(corpus, tmp_path / pattern)
    shutil.copytree(corpus, tmp_path / sibling)
    if pattern == "b[12]":
        shutil.copytree(corpus, tmp_path / "b2")
    capsys.readouterr()
    sql = "select corpus, (select count(*) from trajectories) as t, (select count(*) from examples) as e, (select count(*) from rejects) as r from trajectories group by corpus"
    assert main(["query", str(tmp_path / pattern), sql, "--format", "json"]) == 0, capsys.readouterr().err
    manifest = json.loads((corpus / "manifest.json").read_text())
    examples = sum(c["total"] for c in manifest["examples"].values())
    assert json.loads(capsys.readouterr().out) == [{"corpus": str(tmp_path / pattern), "t": 3, "e": examples, "r": 1}]


def test_a_runaway_query_is_stopped_by_the_timeout(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    start = time.perf_counter()
    sql = "with recursive x(n) as (select 1 union all select n + 1 from x) select count(*) from x"
    assert main(["query", str(corpus), sql, "--timeout", "1"]) == 2
    assert "--timeout 1 s" in one_line(capsys)
    assert main(["query", str(corpus), "select count(*) from range(100000) a, range(100000) b, range(100000) c", "--timeout", "0.5"]) == 2
    assert "--timeout" in one_line(capsys)
    assert time.perf_counter() - start < 30


def one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_printed_rows_are_bounded_and_the_total_reported(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["query", str(corpus), "select range as i from range(250000)", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["i", *map(str, range(1000))]  # the default --max-rows
    assert "first 1000 of 250000 rows" in captured.err
    assert main(["query", str(corpus), "select range as i from range(12)", "--max-rows", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "(12 rows, first 5 shown)" and len(captured.out.splitlines()) == 2 + 5 + 1
    with pytest.raises(SystemExit) as exit_:
        main(["query", str(corpus), "select 1", "--max-rows", "0"])
    assert exit_.value.code == 2
    one_line(capsys)


def test_the_memory_limit_is_set(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["query", str(corpus), "select current_setting('memory_limit') as m", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] in ("1.8 GiB", "1.9 GiB", "2.0 GiB", "1862.6 MiB")
    assert main(["query", str(corpus), "select current_setting('memory_limit') as m", "--format", "csv", "--memory-limit", "0.3"]) == 0
    assert capsys.readouterr().out.splitlines()[1] in ("286.1 MiB", "300.0 MiB", "286.1MiB")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".jsonl"])
def test_out_writes_every_row(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, suffix: str) -> None:
    out = tmp_path / f"result{suffix}"
    assert main(["query", str(corpus), "select range as i, 'r' || range as s from range(2500)", "--out", str(out)]) == 0
    assert "2500 rows -> " in capsys.readouterr().err
    rows = duckdb.sql(f"select count(*), sum(i) from '{out}'" if suffix != ".jsonl" else f"select count(*), sum(i) from read_json('{out}')").fetchall()
    assert rows == [(2500, sum(range(2500)))]
    assert main(["query", str(corpus), "select 1 as i", "--out", str(out)]) == 2  # never over an existing file
    assert "exists" in one_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_out_refuses_unknown_formats_and_the_corpus_itself(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = tree(corpus)
    for out in (tmp_path / "r.txt", corpus / "r.csv", corpus / "local" / "r.parquet", tmp_path / "dangling.csv", tmp_path / "no" / "r.csv"):
        if out.name == "dangling.csv":
            out.symlink_to(tmp_path / "nowhere")
        assert main(["query", str(corpus), "select 1 as i", "--out", str(out)]) == 2
        one_line(capsys)
    assert tree(corpus) == before and not (tmp_path / "nowhere").exists() and not (tmp_path / "no").exists()


def test_sql_from_a_file_or_stdin(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    long_sql = "select count(*) as n from trajectories -- " + "x" * 300_000 + "\n"  # past argv's 128 KiB per argument
    (tmp_path / "q.sql").write_text(long_sql)
    assert main(["query", str(corpus), "--file", str(tmp_path / "q.sql"), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "3"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(long_sql.encode())))
    assert main(["query", str(corpus), "-", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "3"]
    for bad in (tmp_path / "missing.sql", tmp_path):
        assert main(["query", str(corpus), "--file", str(bad)]) == 2
        one_line(capsys)
    (tmp_path / "latin1.sql").write_bytes(b"select '\xe9'")
    assert main(["query", str(corpus), "--file", str(tmp_path / "latin1.sql")]) == 2
    one_line(capsys)


def _outside_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"secret_column_xyz": ["hunter2"], "id": ["1"]}), path)


BREAKS = {
    "missing": lambda c, o: (c / "trajectories.parquet").unlink(),
    "truncated": lambda c, o: (c / "trajectories.parquet").write_bytes((c / "trajectories.parquet").read_bytes()[:500]),
    "emptied": lambda c, o: (c / "trajectories.parquet").write_bytes(b""),
    "mismatched": lambda c, o: shutil.copy(c / "local" / "planner.parquet", c / "trajectories.parquet"),
    "foreign parquet": lambda c, o: _outside_parquet(c / "trajectories.parquet"),
    "symlink outside": lambda c, o: ((c / "trajectories.parquet").unlink(), _outside_parquet(o), (c / "trajectories.parquet").symlink_to(o)),
    "symlinked dir outside": lambda c, o: (shutil.rmtree(c / "local"), o.parent.joinpath("local").mkdir(), (c / "local").symlink_to(o.parent / "local")),
    "dangling symlink": lambda c, o: ((c / "trajectories.parquet").unlink(), (c / "trajectories.parquet").symlink_to(o.parent / "nowhere")),
    "a directory": lambda c, o: ((c / "trajectories.parquet").unlink(), (c / "trajectories.parquet").mkdir()),
    "missing examples": lambda c, o: (c / "local" / "caller.parquet").unlink(),
    "bad manifest": lambda c, o: (c / "manifest.json").write_text("{not json"),
    "manifest a list": lambda c, o: (c / "manifest.json").write_text("[]"),
    "rejects garbage": lambda c, o: (c / "rejects.jsonl").write_bytes(b"\x00" * (c / "rejects.jsonl").stat().st_size),
    "rejects symlink outside": lambda c, o: (o.write_text('{"secret_column_xyz": 1}\n'), (c / "rejects.jsonl").unlink(), (c / "rejects.jsonl").symlink_to(o)),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_bad_corpus_files_are_one_line(scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    outside = tmp_path / "elsewhere" / "secret_name.parquet"
    outside.parent.mkdir()
    BREAKS[name](scratch, outside)
    queries = ["select count(*) from rejects", "select * from rejects"]
    if not name.startswith("rejects"):  # checked when the connection opens, whatever the query reads
        queries += ["select count(*) from trajectories", "select * from turns limit 1", "select 1"]
    for sql in queries:
        assert main(["query", str(scratch), sql]) == 2, sql
        err = one_line(capsys)
        assert "secret_column_xyz" not in err and "secret_name" not in err and "elsewhere" not in err and "hunter2" not in err, err
