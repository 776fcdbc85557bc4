"""`build --compat alpha-umi`: role corpora, the official files, HF datasets loading."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from umi_data.__main__ import main
from umi_data.corpus.layout import load_corpus
from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS, assign_split

OFFICIAL_FILES = ["train_backbone", "train_planner", "train_caller", "train_summarizer"]


def build_compat(source: str, path: Path, out: Path) -> dict:
    assert main(["build", source, str(path), "--compat", "alpha-umi", "--out", str(out), "--no-progress"]) == 0
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("source,name", [("alpha-umi-stage1", "raw_data_stage_1.json"), ("alpha-umi-stage2", "raw_data_stage_2.json")])
def test_official_files_reproduced_exactly(train_example: Path, tmp_path: Path, source: str, name: str) -> None:
    manifest = build_compat(source, train_example / name, tmp_path / "c")
    for file in OFFICIAL_FILES + ["raw_data_stage_2"] + (["raw_data_stage_1"] if source.endswith("1") else []):
        ours = json.loads((tmp_path / "c" / "alpha_umi" / f"{file}.json").read_text())
        assert ours == json.loads((train_example / f"{file}.json").read_text()), file
    assert {role: c["total"] for role, c in manifest["examples"].items()} == {"backbone": 79, "planner": 79, "caller": 59, "summarizer": 14}


def test_role_rows_match_official_records(train_example: Path, tmp_path: Path) -> None:
    build_compat("alpha-umi-stage1", train_example / "raw_data_stage_1.json", tmp_path / "c")
    for role in EXAMPLE_ROLES:
        rows = pq.read_table(tmp_path / "c" / f"{ROLE_PATHS[role]}.parquet").to_pylist()
        official = json.loads((train_example / f"train_{role}.json").read_text())
        assert [(r["input"], r["target"]) for r in rows] == [(o["input"], o["target"]) for o in official]
        assert all(r["split"] == assign_split(r["instruction_id"]) and r["role"] == role for r in rows)
        assert len({r["example_id"] for r in rows}) == len(rows)
        jsonl = [json.loads(line) for line in (tmp_path / "c" / f"{ROLE_PATHS[role]}.jsonl").read_text().splitlines()]
        assert jsonl == rows


def test_toolbench_compat_counts(toolbench_answer: Path, tmp_path: Path) -> None:
    manifest = build_compat("toolbench", toolbench_answer, tmp_path / "c")
    sizes = {f: len(json.loads((tmp_path / "c" / "alpha_umi" / f"{f}.json").read_text())) for f in OFFICIAL_FILES + ["raw_data_stage_1", "raw_data_stage_2"]}
    assert sizes == {"train_backbone": 50, "train_planner": 50, "train_caller": 37, "train_summarizer": 9, "raw_data_stage_1": 13, "raw_data_stage_2": 13}
    backbone = pq.read_table(tmp_path / "c" / "global" / "backbone.parquet").column("input").to_pylist()
    assert len(backbone) - len(set(backbone)) == 4  # the official stale input of the 4 give-ups
    assert manifest["examples"]["backbone"]["total"] == 50


def test_load_dataset_offline_matches_manifest(train_example: Path, tmp_path: Path, monkeypatch) -> None:
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    manifest = build_compat("alpha-umi-stage1", train_example / "raw_data_stage_1.json", tmp_path / "c")
    for role in EXAMPLE_ROLES:
        loaded = datasets.load_dataset(str(tmp_path / "c"), role, split="train")
        assert loaded.num_rows == manifest["examples"][role]["total"]
        assert load_corpus(tmp_path / "c", role).num_rows == loaded.num_rows
    assert datasets.load_dataset(str(tmp_path / "c"), "trajectories", split="train").num_rows == 20
    with pytest.raises(ValueError, match="unknown role 'critic'"):
        load_corpus(tmp_path / "c", "critic")


def test_compat_build_is_deterministic(train_example: Path, tmp_path: Path) -> None:
    for out in ("a", "b"):
        build_compat("alpha-umi-stage1", train_example / "raw_data_stage_1.json", tmp_path / out)
    files = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}  # noqa: E731
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_compat_build_survives_unusual_chains(tmp_path: Path) -> None:
    """A plain-text (non-envelope) observation and a stage-1 chain without a system message
    must not crash a compat build. As in the official stage 2, the chain's first two messages
    (here the user's and the first call) are skipped and the observation, which holds no
    `"response":`, is ""; no stage-1 file is written for a chain that cannot be rebuilt."""
    record = {
        "tools": [{"Name": "echo_for_t", "function": "echo", "input": {"text": "string, what to echo"}}],
        "instruction": "Echo hi",
        "chains": [
            {"role": "user", "content": "\nEcho hi\nBegin!\n"},
            {"role": "assistant", "content": None, "function_call": {"name": "echo_for_t", "arguments": '{"text": "hi"}'}},
            {"role": "function", "name": "echo_for_t", "content": "plain hi"},
            {"role": "assistant", "content": None,
             "function_call": {"name": "Finish", "arguments": '{"return_type": "give_answer", "final_answer": "hi"}'}},
        ],
    }
    path = tmp_path / "s1.json"
    path.write_text(json.dumps([record]))
    build_compat("alpha-umi-stage1", path, tmp_path / "c")
    stage2 = json.loads((tmp_path / "c" / "alpha_umi" / "raw_data_stage_2.json").read_text())
    assert stage2[0]["conversations"] == [
        {"from": "user", "value": "Echo hi"},
        {"from": "observation", "value": ""},
        {"from": "assistant", "value": " Next: conclusion."},
        {"from": "conclusion", "value": "hi"},
    ]
    assert not (tmp_path / "c" / "alpha_umi" / "raw_data_stage_1.json").exists()
    assert json.loads((tmp_path / "c" / "alpha_umi" / "train_caller.json").read_text()) == []
    summarizer = json.loads((tmp_path / "c" / "alpha_umi" / "train_summarizer.json").read_text())
    assert [r["target"] for r in summarizer] == ["hi"]


SAMPLE = Path(__file__).resolve().parents[1] / "umi_data" / "samples" / "toolbench" / "answer"


def test_default_build_writes_role_corpora_loadable_offline(tmp_path: Path, monkeypatch) -> None:
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert main(["build", "toolbench", str(SAMPLE), "--out", str(tmp_path / "c"), "--no-progress", "--seed", "3"]) == 0
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["config"]["split_seed"] == 3 and "alpha_umi" not in {p.name for p in (tmp_path / "c").iterdir()}
    for role in EXAMPLE_ROLES:
        loaded = datasets.load_dataset(str(tmp_path / "c"), role, split="train")
        assert loaded.num_rows == manifest["examples"][role]["total"] > 0
        counts = manifest["examples"][role]
        assert counts["A"] + counts["B"] == counts["total"]
        assert all(r["split"] == assign_split(r["instruction_id"], seed=3) for r in loaded)
    assert isinstance(load_corpus(tmp_path / "c", "planner"), datasets.Dataset)


def test_default_build_is_deterministic(tmp_path: Path) -> None:
    for out in ("a", "b"):
        assert main(["build", "toolbench", str(SAMPLE), "--out", str(tmp_path / out), "--no-progress"]) == 0
    files = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}  # noqa: E731
    assert files(tmp_path / "a") == files(tmp_path / "b")


@pytest.mark.parametrize("compat", [[], ["--compat", "alpha-umi"]])
def test_test_set_turns_without_decision_are_history_only(shared_data: Path, tmp_path: Path, compat: list) -> None:
    """The static test set has 111 assistant turns without `Next:`: both modes build it, and only
    the 1,547 decisions become planner examples."""
    path = shared_data / "alpha_umi" / "test" / "out_of_domain.json"
    assert main(["build", "alpha-umi-stage2", str(path), "--out", str(tmp_path / "c"), "--no-progress", *compat]) == 0
    examples = json.loads((tmp_path / "c" / "manifest.json").read_text())["examples"]
    assert {role: c["total"] for role, c in examples.items() if role != "backbone"} == {"planner": 1547, "caller": 1146, "summarizer": 293}
    # compat trains the backbone on the one `conclusion: none` (item 273); default does not
    assert examples["backbone"]["total"] == (1547 if compat else 1546)


def test_load_dataset_never_serves_a_stale_cache(tmp_path: Path, monkeypatch) -> None:
    """`datasets` caches local directories by name and card YAML: two corpora called `c`, or one
    rebuilt in place with another split seed, must still load their own rows."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    splits = {}
    for seed in (1, 2, 5, 7):
        assert main(["build", "toolbench", str(SAMPLE), "--out", str(tmp_path / "c"), "--no-progress", "--seed", str(seed)]) == 0
        loaded = datasets.load_dataset(str(tmp_path / "c"), "planner", split="train")
        splits[seed] = [r["split"] for r in loaded]
        assert splits[seed] == [assign_split(r["instruction_id"], seed=seed) for r in loaded]
    assert len(set(map(tuple, splits.values()))) > 1  # the seeds do give different splits
    assert main(["build", "alpha-umi-stage2" if (SHARED_STAGE2).is_file() else "toolbench",
                 str(SHARED_STAGE2 if SHARED_STAGE2.is_file() else SAMPLE / "G1_answer"),
                 "--out", str(tmp_path / "other" / "c"), "--no-progress"]) == 0
    other = json.loads((tmp_path / "other" / "c" / "manifest.json").read_text())["examples"]["planner"]["total"]
    assert datasets.load_dataset(str(tmp_path / "other" / "c"), "planner", split="train").num_rows == other != len(splits[1])


SHARED_STAGE2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpha_umi" / "train-example" / "raw_data_stage_2.json"
