"""`build`: the corpus directory, its manifest, schema-valid rows, determinism, atomicity."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.corpus.rows import TRAJECTORY_SCHEMA, row_to_document
from umi_data.sources import discover_files, get_source, read_source
from umi_data import read_trajectories

REPO = Path(__file__).resolve().parents[1]
SAMPLE = resources.files("umi_data") / "samples" / "toolbench" / "answer"
TRAJECTORY_JSON_SCHEMA = json.loads((REPO / "schemas" / "trajectory.schema.json").read_text())


def build(source: str, inputs: list, out: Path, **kw):
    return build_corpus(BuildConfig(source=source, inputs=[str(p) for p in inputs], **kw), out, progress=False)


def tree_bytes(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def assert_rows_valid(corpus: Path) -> int:
    """Every Parquet row, decoded, validates against schemas/trajectory.schema.json."""
    validator = jsonschema.Draft202012Validator(TRAJECTORY_JSON_SCHEMA)
    rows = pq.read_table(corpus / "trajectories.parquet").to_pylist()
    for row in rows:
        errors = list(validator.iter_errors(row_to_document(row)))
        assert not errors, f"{row['id']}: {errors[0].json_path}: {errors[0].message}"
    return len(rows)


def test_sample_corpus_layout_and_manifest(tmp_path: Path) -> None:
    result = build("toolbench", [SAMPLE], tmp_path / "c")
    out = tmp_path / "c"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        ".umi-lock", "README.md", "card/lengths.png", "card/stats.json", "card/steps.png", "card/tools.png", "global/backbone.jsonl", "global/backbone.parquet",
        "inputs.jsonl", "local/caller.jsonl", "local/caller.parquet", "local/planner.jsonl", "local/planner.parquet",
        "local/summarizer.jsonl", "local/summarizer.parquet",
        "manifest.json", "rejects.jsonl", "trajectories.parquet",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == result.manifest
    counts = manifest["counts"]
    assert counts["read"] == counts["accepted"] + counts["rejected"] == 4
    assert counts["rejected_by_reason"] == {"invalid_data": 1}
    assert counts["hallucinated_calls"] == 1  # the sample calls an invented moon-weather tool
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert entry["bytes"] == (out / name).stat().st_size
    inputs = [json.loads(line) for line in (out / "inputs.jsonl").read_text().splitlines()]
    assert [i["file"] for i in inputs] == sorted(i["file"] for i in inputs) and len(inputs) == manifest["inputs"]["files"] == 4
    combined = hashlib.sha256("".join(f"{i['file']}\0{i['sha256']}\n" for i in inputs).encode()).hexdigest()
    assert manifest["inputs"] == {"files": 4, "bytes": sum(i["bytes"] for i in inputs), "sha256": combined, "list": "inputs.jsonl"}
    assert len((out / "rejects.jsonl").read_text().splitlines()) == counts["rejected"]
    assert pq.read_schema(out / "trajectories.parquet").equals(TRAJECTORY_SCHEMA, check_metadata=False)
    assert assert_rows_valid(out) == counts["accepted"]


def test_round_trip_through_parquet(tmp_path: Path) -> None:
    build("toolbench", [SAMPLE], tmp_path / "c")
    direct = [t for t in read_source(get_source("toolbench"), discover_files([SAMPLE])) if not hasattr(t, "reason")]
    assert list(read_trajectories(tmp_path / "c" / "trajectories.parquet")) == direct


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    build("toolbench", [SAMPLE], tmp_path / "a")
    build("toolbench", [SAMPLE], tmp_path / "b")
    build("toolbench", [SAMPLE], tmp_path / "a")  # over an existing corpus
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_empty_result_still_has_a_typed_parquet(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.json").write_text("[]")
    result = build("toolbench", [tmp_path / "in"], tmp_path / "c")
    assert result.manifest["counts"]["accepted"] == 0
    table = pq.read_table(tmp_path / "c" / "trajectories.parquet")
    assert table.num_rows == 0 and table.schema.equals(TRAJECTORY_SCHEMA, check_metadata=False)


def test_failed_build_leaves_no_manifest_and_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "c"
    build("toolbench", [SAMPLE], out)
    before = (out / "trajectories.parquet").read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("umi_data.building.parts.trajectory_to_row", explode)
    with pytest.raises(RuntimeError):
        build("toolbench", [SAMPLE], out)
    assert not (out / "manifest.json").exists()  # incomplete directories are recognisable
    assert (out / "trajectories.parquet").read_bytes() == before  # the old file was never half-overwritten
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "source,relative,accepted",
    [
        ("toolbench", "toolbench/answer", 13),
        ("alpha-umi-stage1", "alpha_umi/train-example/raw_data_stage_1.json", 20),
        ("alpha-umi-stage2", "alpha_umi/train-example/raw_data_stage_2.json", 20),
        ("alpha-umi-stage2", "alpha_umi/test/out_of_domain.json", 400),
    ],
)
def test_real_files_build_valid_rows(shared_data: Path, tmp_path: Path, source: str, relative: str, accepted: int) -> None:
    result = build(source, [shared_data / relative], tmp_path / "c")
    assert result.manifest["counts"]["accepted"] == accepted
    assert assert_rows_valid(tmp_path / "c") == accepted


def test_cli_toolbench_acceptance(toolbench_answer: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "umi_data", "build", "toolbench", str(toolbench_answer), "--out", str(tmp_path / "D")],
        capture_output=True, text=True, check=True,
    )
    assert done.stdout.strip().splitlines()[-1].startswith("read 15, accepted 13 (answer 9, give_up 4; 37 calls), rejected 2 (invalid_data: 2)")
    counts = json.loads((tmp_path / "D" / "manifest.json").read_text())["counts"]
    assert (counts["read"], counts["accepted"], counts["rejected"], counts["turns"]["caller"]) == (15, 13, 2, 37)
    assert counts["outcomes"] == {"answer": 9, "give_up": 4, "unfinished": 0}


def test_exclusion_lists_from_files(toolbench_answer: Path, tmp_path: Path) -> None:
    ids = tmp_path / "test_query_ids"
    ids.mkdir()
    (ids / "G2_instruction.json").write_text(json.dumps({"10": 1, "999": 1}))
    result = build("toolbench", [toolbench_answer], tmp_path / "c", exclude_test_ids=[str(ids)])
    counts = result.manifest["counts"]
    assert counts["rejected_by_reason"] == {"excluded_test_query": 1, "invalid_data": 2}
    assert result.manifest["exclusion_lists"][0]["group"] == "G2"


def test_data_cli_imports_no_training_stack(tmp_path: Path) -> None:
    code = (
        "import sys, runpy; sys.argv = ['umi_data', 'build', 'toolbench', %r, '--out', %r];"
        "import umi_data.__main__ as m; m.main(sys.argv[1:]);"
        "heavy = [n for n in ('torch', 'transformers', 'peft', 'ray') if n in sys.modules]; print('HEAVY', heavy)"
    ) % (str(SAMPLE), str(tmp_path / "c"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
