"""`python -m umi_data export`: the five training variants in four formats."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from umi_data.__main__ import main
from umi_data.rendering.examples import ROLE_PATHS
from umi_data.rendering.variants import VARIANTS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "umi_data" / "samples" / "toolbench" / "answer"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The train-example corpus (20 instructions) when ../shared is there, else the built-in sample."""
    out = tmp_path_factory.mktemp("corpus")
    shared = REPO.parent / "shared" / "data" / "alpha_umi" / "train-example" / "raw_data_stage_2.json"
    source, path = ("alpha-umi-stage2", shared) if shared.is_file() else ("toolbench", SAMPLE)
    assert main(["build", source, str(path), "--out", str(out), "--no-progress"]) == 0
    return out


def export(corpus: Path, out: Path, variant: str, fmt: str = "jsonl") -> dict:
    assert main(["export", str(corpus), "--variant", variant, "--out", str(out), "--format", fmt]) == 0
    return json.loads((out / "export.json").read_text())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def corpus_rows(corpus: Path, role: str) -> list[dict]:
    return pq.read_table(corpus / f"{ROLE_PATHS[role]}.parquet").to_pylist()


def test_no_reuse_splits_instructions_disjointly_and_covers_all(corpus: Path, tmp_path: Path) -> None:
    manifest = export(corpus, tmp_path / "x", "no-reuse")
    stage1 = {r["instruction_id"] for r in jsonl(tmp_path / "x" / "stage1" / "backbone.jsonl")}
    stage2 = {r["instruction_id"] for part in ("planner", "caller", "summarizer") for r in jsonl(tmp_path / "x" / "stage2" / f"{part}.jsonl")}
    every = {r["instruction_id"] for role in ROLE_PATHS for r in corpus_rows(corpus, role)}
    assert not stage1 & stage2 and stage1 | stage2 == every
    assert manifest["stages"]["stage1"]["split"] == "A" and manifest["stages"]["stage2"] == {**manifest["stages"]["stage2"], "init": "stage1", "split": "B"}
    for role in ROLE_PATHS:  # each stage holds every example of its split, no more
        stage = "stage1" if role == "backbone" else "stage2"
        exported = jsonl(tmp_path / "x" / stage / f"{role}.jsonl")
        assert exported == [r for r in corpus_rows(corpus, role) if r["split"] == ("A" if stage == "stage1" else "B")]


def test_reuse_sees_every_instruction_in_both_stages(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "x", "reuse")
    assert jsonl(tmp_path / "x" / "stage1" / "backbone.jsonl") == corpus_rows(corpus, "backbone")
    for role in ("planner", "caller", "summarizer"):
        assert jsonl(tmp_path / "x" / "stage2" / f"{role}.jsonl") == corpus_rows(corpus, role)


@pytest.mark.parametrize("variant,files", [
    ("one-stage", {"stage2": ["caller.jsonl", "planner.jsonl", "summarizer.jsonl"]}),
    ("multi-task", {"stage2": ["multi_task.jsonl"]}),
    ("single", {"stage1": ["backbone.jsonl"]}),
])
def test_single_stage_variants(corpus: Path, tmp_path: Path, variant: str, files: dict) -> None:
    manifest = export(corpus, tmp_path / "x", variant)
    written = {p.name: sorted(f.name for f in p.iterdir()) for p in (tmp_path / "x").iterdir() if p.is_dir()}
    assert written == files
    assert {stage: entry["init"] for stage, entry in manifest["stages"].items()} == {next(iter(files)): "base"}
    if variant == "multi-task":
        union = [r for role in ("planner", "caller", "summarizer") for r in corpus_rows(corpus, role)]
        assert jsonl(tmp_path / "x" / "stage2" / "multi_task.jsonl") == union


def test_trl_format_is_prompt_completion(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "x", "reuse", "trl")
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "x" / "stage2" / "caller.jsonl"), split="train")
    assert loaded.column_names == ["prompt", "completion"]
    rows = corpus_rows(corpus, "caller")
    assert [r["prompt"] + r["completion"] for r in loaded] == [r["input"] + r["target"] for r in rows]  # the same text
    assert [r["prompt"] for r in loaded] == [r["input"].rstrip() for r in rows]  # ends on a token boundary (test_export_training.py)


def test_llamafactory_format_has_dataset_info(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "x", "no-reuse", "llamafactory")
    info = json.loads((tmp_path / "x" / "dataset_info.json").read_text())
    assert sorted(info) == ["umi_stage1_backbone", "umi_stage2_caller", "umi_stage2_planner", "umi_stage2_summarizer"]
    for entry in info.values():
        records = json.loads((tmp_path / "x" / entry["file_name"]).read_text())
        assert entry["formatting"] == "alpaca" and set(entry["columns"].values()) == {"instruction", "input", "output"}
        assert all(set(r) == {"instruction", "input", "output"} and r["input"] == "" for r in records)
    planner = json.loads((tmp_path / "x" / "stage2" / "planner.json").read_text())
    assert [r["output"] for r in planner] == [r["target"] for r in corpus_rows(corpus, "planner") if r["split"] == "B"]


def test_alpha_umi_format(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "x", "reuse", "alpha-umi")
    records = json.loads((tmp_path / "x" / "stage1" / "train_backbone.json").read_text())
    assert records == [{"input": r["input"], "target": r["target"]} for r in corpus_rows(corpus, "backbone")]


def test_export_is_deterministic_and_replaces_a_previous_export(corpus: Path, tmp_path: Path) -> None:
    export(corpus, tmp_path / "a", "reuse", "trl")
    export(corpus, tmp_path / "b", "single", "trl")
    export(corpus, tmp_path / "b", "reuse", "trl")  # over a previous export: nothing of it is left
    files = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in d.rglob("*") if p.is_file()}  # noqa: E731
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if k != "export.json")


def test_export_refuses_a_foreign_directory_and_a_missing_corpus(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["export", str(corpus), "--variant", "reuse", "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert main(["export", str(tmp_path / "nothing"), "--variant", "reuse", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "no manifest.json" in err and "Traceback" not in err


def test_every_variant_is_documented_in_the_cli_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for variant in VARIANTS.values():
        assert variant.name in text and variant.paper_row in text
