"""`python -m umi_data query` is a sandbox: one read-only statement, reading only the given
directories (docs/guarantees.md). Each attack is one line on stderr and exit 2, and leaves no file."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import duckdb
import pytest

from umi_data.__main__ import main
from umi_data.duck import connect

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
