"""The 300 real Glaive conversations LLaMA-Factory ships (../shared/data/llamafactory,
sharegpt with function_call / observation): they build with every record accounted for, the
corpus answers DuckDB queries, and its α-UMi role corpora train with `python -m umi_train.glpft`
on the tiny model. Skipped when ../shared is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_data.__main__ import main
from umi_data.corpus.query import run_query
from umi_train.testing import FAST_OPTIONS, cli_args, single_thread, tiny_model


@pytest.fixture(scope="module")
def glaive_file(shared_data: Path) -> Path:
    path = shared_data / "llamafactory" / "glaive_toolcall_en_demo.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def glaive_corpus(glaive_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("glaive") / "corpus"
    assert main(["build", "sharegpt-tools", str(glaive_file), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


def test_the_300_glaive_conversations_build_with_every_record_accounted(glaive_corpus: Path) -> None:
    manifest = json.loads((glaive_corpus / "manifest.json").read_text())
    counts = manifest["counts"]
    # measured: no conversation needs a reject; 225 of 300 have several user turns (one trajectory each)
    assert (counts["read"], counts["accepted"], counts["rejected"]) == (300, 300, 0)
    assert counts["rejected_by_reason"] == {} and (glaive_corpus / "rejects.jsonl").read_bytes() == b""
    assert counts["outcomes"] == {"answer": 300, "give_up": 0, "unfinished": 0}
    assert counts["turns"] == {"user": 746, "planner": 957, "caller": 211, "observation": 211, "conclusion": 746}
    assert counts["hallucinated_calls"] == 0
    assert {role: entry["total"] for role, entry in manifest["examples"].items()} == {
        "backbone": 957, "planner": 957, "caller": 211, "summarizer": 746}


def test_the_glaive_file_validates(glaive_file: Path, capsys) -> None:
    assert main(["validate", "sharegpt-tools", str(glaive_file)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_the_glaive_corpus_answers_duckdb_queries(glaive_corpus: Path) -> None:
    out = json.loads(run_query([str(glaive_corpus)], "select count(*) as n, count(distinct name) as tools from tool_calls", "json").text)
    assert out[0]["n"] == 211 and out[0]["tools"] > 20
    sql = "select count(*) as n from trajectories where cast(meta->>'user_turns' as integer) > 1"
    assert json.loads(run_query([str(glaive_corpus)], sql, "json").text)[0]["n"] == 225  # multi-turn chats, one trajectory each
    later = json.loads(run_query([str(glaive_corpus)], "select count(*) as n from turns where role = 'user' and index > 0", "json").text)
    assert later[0]["n"] == 746 - 300


def test_the_glaive_corpus_trains_with_glpft(glaive_corpus: Path, tmp_path: Path) -> None:
    from umi_train import glpft

    single_thread()
    model = tiny_model(tmp_path / "tiny", glaive_corpus)
    out = tmp_path / "run"
    args = ["--model", str(model), "--corpus", str(glaive_corpus), "--out", str(out), "--variant", "reuse",
            *cli_args({**FAST_OPTIONS, "max_steps": 2, "eval_fraction": 0, "max_length": 4096})]
    assert glpft.main(args) == 0
    record = json.loads((out / "glpft.json").read_text())
    runs = [f"{stage}/{part}" for stage, summary in record["stages"].items() for part in summary["parts"]]
    assert runs == ["stage1/backbone", "stage2/planner", "stage2/caller", "stage2/summarizer"]
    for run in runs:
        losses = json.loads((out / run / "run.json").read_text())["training"]["loss_history"]
        assert len(losses) == 2 and all(entry["loss"] > 0 for entry in losses)
