"""DuckDB views over corpus directories, the `query` command, and the recipes of docs/recipes.md."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import umi_data
from umi_data.__main__ import main
from umi_data.corpus.duck import connect

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "umi_data" / "samples" / "toolbench" / "answer"
RECIPES = re.findall(r"<!-- recipe: (\w+) -->.*?```sql\n(.*?)```", (REPO / "docs" / "recipes.md").read_text(), flags=re.S)


def build(source: str, path: Path, out: Path) -> dict:
    assert main(["build", source, str(path), "--out", str(out), "--no-progress"]) == 0
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "c"
    build("toolbench", SAMPLE, out)
    return out


@pytest.fixture(scope="module")
def toolbench(toolbench_answer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toolbench") / "c"
    build("toolbench", toolbench_answer, out)
    return out


def test_counts_equal_the_manifest(toolbench: Path) -> None:
    manifest = json.loads((toolbench / "manifest.json").read_text())
    db = connect(toolbench)
    assert db.sql("select count(*) from tool_calls").fetchall()[0][0] == manifest["counts"]["turns"]["caller"] == 37
    by_role = dict(db.sql("select role, count(*) from examples group by 1").fetchall())
    assert by_role == {role: c["total"] for role, c in manifest["examples"].items()}
    assert db.sql("select count(*) from turns").fetchall()[0][0] == sum(manifest["counts"]["turns"].values())
    assert db.sql("select count(*) from rejects").fetchall()[0][0] == manifest["counts"]["rejected"] == 2


def test_views_agree_with_the_trajectories(sample: Path) -> None:
    trajectories = list(umi_data.read_trajectories(sample / "trajectories.parquet"))
    expected_calls = []
    for t in trajectories:
        for i, turn in enumerate(t.turns):
            if turn.role == "caller":
                after = t.turns[i + 1] if i + 1 < len(t.turns) else None
                observed = after is not None and after.role == "observation"
                expected_calls.append((t.id, i, turn.name, turn.hallucinated, after.error if observed else None, after.response if observed else None))
    db = connect(sample)
    calls = db.sql("select trajectory_id, index, name, hallucinated, error, response from tool_calls order by 1, 2").fetchall()
    assert calls == sorted(expected_calls)
    tools = db.sql("select trajectory_id, name from tools order by 1, 2").fetchall()
    assert tools == sorted((t.id, tool.name) for t in trajectories for tool in t.tools)
    roles = db.sql("select trajectory_id, index, role from turns order by 1, 2").fetchall()
    assert roles == sorted((t.id, i, turn.role) for t in trajectories for i, turn in enumerate(t.turns))
    planner = db.sql("select thought, next, name from turns where role = 'planner' order by trajectory_id, index limit 1").fetchall()[0]
    assert planner[2] is None  # fields of other roles are null


def test_two_corpora_at_once(sample: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    build("toolbench", SAMPLE / "G1_answer", other)
    db = connect(sample, other)
    per_corpus = dict(db.sql("select corpus, count(*) from trajectories group by 1").fetchall())
    assert per_corpus == {str(sample.resolve()): 3, str(other.resolve()): 2}
    examples = dict(db.sql("select corpus, count(*) from examples group by 1").fetchall())
    assert sum(examples.values()) == sum(
        c["total"] for d in (sample, other) for c in json.loads((d / "manifest.json").read_text())["examples"].values()
    )


def test_recipes_are_right(sample: Path, tmp_path: Path) -> None:
    names = [name for name, _ in RECIPES]
    assert names == [
        "hallucination_rate", "top_tools", "steps_per_outcome", "give_up_rate_per_group",
        "example_length_per_role", "instructions_in_both_splits", "no_reuse_leak",
    ]
    assert main(["export", str(sample), "--variant", "no-reuse", "--out", str(tmp_path / "x")]) == 0
    db = connect(sample, readable=[tmp_path / "x"])  # the sandbox reads the export only when asked to
    results = {name: db.sql(sql.replace("EXPORT", str(tmp_path / "x"))).fetchall() for name, sql in RECIPES}
    trajectories = list(umi_data.read_trajectories(sample / "trajectories.parquet"))
    calls = [turn for t in trajectories for turn in t.turns if turn.role == "caller"]
    assert results["hallucination_rate"] == [("toolbench", len(calls), 1, round(1 / len(calls), 4))]
    top = collections.Counter(turn.name for turn in calls)
    assert [(name, n) for name, n, _ in results["top_tools"]] == sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    steps = collections.defaultdict(list)
    for t in trajectories:
        steps[t.outcome].append(sum(turn.role == "planner" and turn.next is not None for turn in t.turns))
    assert results["steps_per_outcome"] == [(o, len(s), round(sum(s) / len(s), 2), max(s)) for o, s in sorted(steps.items())]
    groups = collections.defaultdict(list)
    for t in trajectories:
        groups[t.meta["group"]].append(t.outcome == "give_up")
    assert results["give_up_rate_per_group"] == [(g, len(v), round(sum(v) / len(v), 4)) for g, v in sorted(groups.items())]
    assert [r[:2] for r in results["example_length_per_role"]] == sorted(
        (role, c["total"]) for role, c in json.loads((sample / "manifest.json").read_text())["examples"].items()
    )
    assert results["instructions_in_both_splits"] == [] and results["no_reuse_leak"] == []


def test_leak_check_finds_a_leak(sample: Path, tmp_path: Path) -> None:
    """The no-reuse leak recipe does return rows when the stages share an instruction (a reuse export)."""
    assert main(["export", str(sample), "--variant", "reuse", "--out", str(tmp_path / "x")]) == 0
    sql = dict(RECIPES)["no_reuse_leak"].replace("EXPORT", str(tmp_path / "x"))
    assert len(connect(sample, readable=[tmp_path / "x"]).sql(sql).fetchall()) == 3


def test_query_command_formats(sample: Path, capsys: pytest.CaptureFixture) -> None:
    sql = "select role, count(*) as n from examples group by 1 order by 1"
    assert main(["query", str(sample), sql, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"role": r, "n": n} for r, n in connect(sample).sql(sql).fetchall()]
    assert main(["query", str(sample), sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "role,n"
    assert main(["query", str(sample), sql]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["role", "n"] and table[-1] == f"({len(rows)} rows)"
    assert main(["query", str(sample), "select meta from trajectories limit 1", "--format", "json"]) == 0
    assert json.loads(json.loads(capsys.readouterr().out)[0]["meta"])["group"] in ("G1", "G2")


def test_query_errors_are_one_line_messages(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["query", str(sample), "select nope from nowhere"]) == 2
    assert main(["query", str(tmp_path / "missing"), "select 1"]) == 2
    assert main(["query", "select 1"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "no manifest.json" in err and "Traceback" not in err


def test_data_commands_import_no_training_stack(sample: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from umi_data.__main__ import main\n"
        f"assert main(['build', 'toolbench', {str(SAMPLE)!r}, '--out', {str(tmp_path / 'c')!r}, '--no-progress']) == 0\n"
        f"assert main(['query', {str(sample)!r}, 'select count(*) from examples']) == 0\n"
        f"assert main(['card', {str(sample)!r}]) == 0\n"
        f"assert main(['export', {str(sample)!r}, '--variant', 'reuse', '--out', {str(tmp_path / 'x')!r}]) == 0\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
