"""The committed JSON Schema documents, and `validate` over raw source files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from umi_data.__main__ import main
from umi_data.schema_docs import render_schema_files, validate_files

REPO = Path(__file__).resolve().parents[1]


def test_committed_schemas_match_the_models() -> None:
    expected = render_schema_files()
    committed = {p.relative_to(REPO / "schemas").as_posix(): p.read_text("utf-8") for p in (REPO / "schemas").rglob("*.json")}
    stale = sorted(name for name in expected.keys() | committed.keys() if expected.get(name) != committed.get(name))
    assert not stale, f"schemas/ is stale for {stale}: run `python -m umi_data schemas`"


@pytest.mark.parametrize("name", sorted(render_schema_files()))
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(render_schema_files()[name]))


def test_schemas_command_writes_the_files(tmp_path: Path, capsys) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    written = {p.relative_to(tmp_path).as_posix(): p.read_text("utf-8") for p in tmp_path.rglob("*.json")}
    assert written == render_schema_files()


@pytest.mark.parametrize(
    "source,relative",
    [
        ("toolbench", "toolbench/answer"),
        ("alpha-umi-stage1", "alpha_umi/train-example/raw_data_stage_1.json"),
        ("alpha-umi-stage2", "alpha_umi/train-example/raw_data_stage_2.json"),
        ("alpha-umi-stage2", "alpha_umi/test/out_of_domain.json"),
    ],
)
def test_real_files_validate(shared_data: Path, source: str, relative: str) -> None:
    checked, problems = validate_files(source, [str(shared_data / relative)])
    # no schema problem; what remains is what `build` rejects (ToolBench's own valid_data: false)
    assert checked >= 1 and [p.message.split(":")[0] for p in problems] == (["invalid_data"] * 2 if source == "toolbench" else [])


def test_validate_reports_every_error_with_its_path(tmp_path: Path, capsys) -> None:
    bad = [
        {"tools": [{"Name": "a", "function": "f", "input": {"x": 3}}], "instruction": "q", "conversations": [{"from": "user", "value": "q"}]},
        {"tools": [], "instruction": 7, "conversations": [{"from": "robot", "value": "hi"}]},
    ]
    path = tmp_path / "stage2.json"
    path.write_text(json.dumps(bad))
    assert main(["validate", "alpha-umi-stage2", str(path)]) == 1
    out = capsys.readouterr().out
    for where in ("$[0].tools[0].input.x", "$[1].instruction", "$[1].conversations[0].from"):
        assert f"{path}: {where}: " in out
    assert "5 problem(s); build would reject 2 record(s) (wrong_type: 2)" in out  # 3 schema errors, 2 records rejected
