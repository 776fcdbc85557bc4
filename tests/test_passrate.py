"""`python -m umi_agent.passrate` on StableToolBench's data_example, with the official verdicts
replayed by a real OpenAI-compatible judge on loopback (tests/passrate_replay.py): the result
files equal the official pass_rate_results (and preference_results with --win-rate), the pass
rate is ToolEval's number, the requests are ToolEval's (forced function call, temperature 0.2,
max_tokens 1000, its prompt), a rerun asks nothing, and a judge that is down, writes garbage or
refuses tools is counted in one line, never a traceback."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import statistics
from pathlib import Path

import pytest
from passrate_replay import Replay, replay_server

from umi_agent.passrate.__main__ import main
from umi_agent.passrate.judge import prompt
from umi_train.testing import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "stabletoolbench" / "data_example"
KINDS = ("cot", "dfs")
pytestmark = [pytest.mark.skipif(not EXAMPLE.is_dir(), reason=f"needs ../shared ({EXAMPLE} is absent)"),
              pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai client (pip install -e '.[serve]')")]
FAST = ["--judge-retry-wait", "0", "--judge-budget", "0", "--judge-concurrency", "1", "--evaluate-times", "3", "--quiet"]


def official(kind: str) -> dict:
    return json.loads((EXAMPLE / "pass_rate_results" / f"virtual_chatgpt_{kind}" / f"G1_instruction_virtual_chatgpt_{kind}.json").read_text())


def recorded_labels() -> dict[str, list[str]]:
    """query -> the official labels by round (the same query is asked by both runs)."""
    labels: dict[str, list[str]] = {}
    for kind in KINDS:
        for row in official(kind).values():
            if "'name': 'Finish'" in row["final_step"]:
                labels[row["query"]] = [row["is_solved"][str(r)] for r in range(3)]
    return labels


def toolval_score(rows: dict) -> tuple[float, float]:
    """ToolEval's scoring, written out: mean and population std of the round scores x 100."""
    scores = [sum({"AnswerStatus.Solved": 1, "AnswerStatus.Unsure": 0.5}.get(r["is_solved"].get(str(n)), 0) for r in rows.values()) / len(rows)
              for n in range(3)]
    return statistics.fmean(scores) * 100, statistics.pstdev(scores) * 100


def csv_rows(path: Path) -> dict[str, list]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return {row[5]: row[:6] + [ast.literal_eval(row[6])] for row in rows[1:]} | {"header": rows[0]}


def run(inputs: list[Path], out: Path, url: str, *extra: str) -> int:
    return main([*map(str, inputs), "--out", str(out), "--judge-url", url, "--judge-model", "replayed-gpt-4", *FAST, *extra])


def answers(kind: str) -> Path:
    return EXAMPLE / "answer" / f"virtual_chatgpt_{kind}"


def test_pass_rate_equals_the_official_results(tmp_path: Path) -> None:
    replay = Replay(recorded_labels())
    with replay_server(replay) as url:
        assert run([answers("cot"), answers("dfs")], tmp_path, url) == 0
        for kind in KINDS:
            model = f"virtual_chatgpt_{kind}"
            ours = tmp_path / "pass_rate_results" / model / f"G1_instruction_{model}.json"
            assert json.loads(ours.read_text()) == official(kind)
            assert csv_rows(ours.with_suffix(".csv")) == csv_rows(EXAMPLE / "pass_rate_results" / model / f"G1_instruction_{model}.csv")
            result = json.loads((tmp_path / "summary.json").read_text())["groups"]["G1_instruction"][model]
            assert (result["pass_rate"], result["std"]) == pytest.approx(toolval_score(official(kind)))
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["groups"]["G1_instruction"]["virtual_chatgpt_cot"]["pass_rate"] == pytest.approx(200 / 3)
        assert summary["groups"]["G1_instruction"]["virtual_chatgpt_cot"]["rules"] == {"no_finish": 1}
        assert len(replay.requests) == 15  # 588 CoT never reaches the judge: (2 + 3) queries x 3 rounds
        body = replay.requests[0]
        assert (body["temperature"], body["max_tokens"]) == (0.2, 1000)
        assert body["tool_choice"] == {"type": "function", "function": {"name": "check_answer_status"}}
        assert body["tools"][0]["function"]["parameters"]["required"] == ["answer_status", "reason"]
        converted = json.loads((tmp_path / "model_predictions_converted" / "virtual_chatgpt_cot" / "G1_instruction.json").read_text())
        first = converted["1073"]
        assert body["messages"] == [{"role": "user", "content": prompt("check_answer_status", {"query": first["query"], "answer": first["answer"]["final_answer"]})}]
        # a rerun asks nothing: every verdict comes from the cache, with the same files
        before = (tmp_path / "pass_rate_results" / "virtual_chatgpt_cot" / "G1_instruction_virtual_chatgpt_cot.json").read_bytes()
        assert run([answers("cot"), answers("dfs")], tmp_path, url) == 0
        assert len(replay.requests) == 15
        assert (tmp_path / "pass_rate_results" / "virtual_chatgpt_cot" / "G1_instruction_virtual_chatgpt_cot.json").read_bytes() == before
        assert json.loads((tmp_path / "summary.json").read_text())["groups"]["G1_instruction"]["virtual_chatgpt_dfs"]["judge_cache_hits"] == 9


def test_converted_inputs_and_unsure_go_to_parse_answer_status(tmp_path: Path) -> None:
    """The converted predictions score the same; an Unsure verdict asks parse_answer_status with
    the whole answer (ToolEval's json.dumps of it), whose label counts."""
    labels = {query: ["Unsure"] for query in recorded_labels()}
    replay = Replay(labels)
    replay.arguments = lambda function, text, original=replay.arguments: (  # type: ignore[method-assign]
        {"answer_status": "Unsure" if function == "check_answer_status" else "Solved", "reason": "r"})
    with replay_server(replay) as url:
        assert run([EXAMPLE / "model_predictions_converted" / "virtual_chatgpt_dfs"], tmp_path, url) == 0
    assert [b["tool_choice"]["function"]["name"] for b in replay.requests[:2]] == ["check_answer_status", "parse_answer_status"]
    converted = json.loads((EXAMPLE / "model_predictions_converted" / "virtual_chatgpt_dfs" / "G1_instruction.json").read_text())
    first = next(iter(converted.values()))
    assert replay.requests[1]["messages"][0]["content"] == prompt("parse_answer_status", {"query": first["query"], "answer": json.dumps(first["answer"])})
    result = json.loads((tmp_path / "summary.json").read_text())["groups"]["G1_instruction"]["virtual_chatgpt_dfs"]
    assert (result["pass_rate"], result["judge_calls"]) == (100.0, 18)


def test_win_rate_equals_the_official_preference(tmp_path: Path) -> None:
    """ToolEval's preference of the DFS run over the CoT run, the judge's picks replayed from
    preference_results: the same JSON, labels and win rate."""
    converted = {k: json.loads((EXAMPLE / "model_predictions_converted" / f"virtual_chatgpt_{k}" / "G1_instruction.json").read_text()) for k in KINDS}
    final = {k: {a["query"]: a["answer"]["final_answer"] for a in converted[k].values()} for k in KINDS}
    query = {qid: a["query"] for qid, a in converted["cot"].items()}
    picks = {query["1073"]: [final["cot"][query["1073"]]] + [final["dfs"][query["1073"]]] * 2,
             query["608"]: [final["dfs"][query["608"]]] * 3}
    with replay_server(Replay(recorded_labels(), picks)) as url:
        assert run([answers("dfs")], tmp_path, url, "--win-rate", str(answers("cot"))) == 0
    name = "G1_instruction_virtual_chatgpt_cot_virtual_chatgpt_dfs"
    expected = json.loads((EXAMPLE / "preference_results" / f"{name}.json").read_text())
    assert json.loads((tmp_path / "preference_results" / f"{name}.json").read_text()) == expected
    assert csv_like(tmp_path / "preference_results" / f"{name}.csv") == csv_like(EXAMPLE / "preference_results" / f"{name}.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {m: r["pass_rate"] for m, r in summary["groups"]["G1_instruction"].items()} == pytest.approx(
        {"virtual_chatgpt_dfs": 100.0, "virtual_chatgpt_cot": 200 / 3})
    outcome = summary["win_rate"]["G1_instruction"]
    assert (outcome["win_rate"], outcome["tie_rate"], outcome["queries"]) == (1.0, 0.0, 3)


def csv_like(path: Path) -> dict[str, list[str]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return {row[7]: row for row in rows[1:]} | {"header": rows[0]}


@pytest.mark.parametrize("mode", ["garbage", "down", "too-long"])
def test_a_judge_that_fails_is_counted_in_one_line(mode: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    replay = Replay(recorded_labels(), mode=mode)
    with replay_server(replay) as url:
        url = url if mode != "down" else f"http://127.0.0.1:{free_port()}/v1"
        assert run([answers("cot")], tmp_path, url) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "6 verdicts missing" in err
    result = json.loads((tmp_path / "summary.json").read_text())["groups"]["G1_instruction"]["virtual_chatgpt_cot"]
    assert (result["judge_errors"], result["pass_rate"], result["labels"]["missing"]) == (6, 0.0, 6)
    if mode != "down":
        assert len(replay.requests) == 18  # 3 tries per verdict, as ToolEval's tenacity
        assert json.loads((tmp_path / "summary.json").read_text())["judge"]["content_mode"] is False
    else:
        assert "judge unusable" in err
    rows = json.loads((tmp_path / "pass_rate_results" / "virtual_chatgpt_cot" / "G1_instruction_virtual_chatgpt_cot.json").read_text())
    assert rows["588"]["is_solved"] == {"0": "AnswerStatus.Unsolved", "1": "AnswerStatus.Unsolved", "2": "AnswerStatus.Unsolved"}
    assert rows["1073"]["is_solved"] == {}


@pytest.mark.parametrize("mode", ["refuse-tools", "text-json"])
def test_a_judge_without_function_calls_is_read_from_its_text(mode: str, tmp_path: Path) -> None:
    """HTTP 422 on `tools`: the rest of the run asks without them and reads the JSON in the text;
    a reply with JSON text instead of a tool call is read the same way."""
    replay = Replay(recorded_labels(), mode=mode)
    with replay_server(replay) as url:
        assert run([answers("cot")], tmp_path, url) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["judge"]["content_mode"] is (mode == "refuse-tools")
    assert all(("tools" in body) is (mode == "text-json") for body in replay.requests[1:])
    assert summary["groups"]["G1_instruction"]["virtual_chatgpt_cot"]["pass_rate"] == pytest.approx(200 / 3)
    assert summary["groups"]["G1_instruction"]["virtual_chatgpt_cot"]["content_fallbacks"] == 6


def test_test_ids_and_no_judge(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Only queries in the test ids count; a run the rules decide needs no judge at all."""
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps({"588": 0}))
    assert main([str(answers("cot")), "--out", str(tmp_path / "r"), "--test-ids", str(ids), "--quiet"]) == 0
    result = json.loads((tmp_path / "r" / "summary.json").read_text())["groups"]["G1_instruction"]["virtual_chatgpt_cot"]
    assert (result["evaluated"], result["pass_rate"], result["answered_share"], result["judge_calls"]) == (1, 0.0, 0.0, 0)
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert main([str(answers("cot")), "--out", str(tmp_path / "r"), "--judge-url", "http://127.0.0.1:1/v1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "missing" in err and "--judge-model" in err


def test_rejects_and_methods_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A directory with two methods needs --method; a broken answer file is a counted reject in
    the summary, the rest is scored; a converted file that is not an object is one line, exit 2."""
    group = tmp_path / "run" / "G1_instruction"
    group.mkdir(parents=True)
    for kind in KINDS:
        for path in (answers(kind) / "G1_instruction").glob("*.json"):
            (group / path.name).write_bytes(path.read_bytes())
    (group / "7_CoT@1.json").write_text('{"answer_generation": {"valid_data": true}}')
    assert main([str(group), "--out", str(tmp_path / "r")]) == 2
    assert "give --method" in capsys.readouterr().err
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps(["588", "7"]))
    assert main([str(group), "--method", "CoT@1", "--test-ids", str(ids), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    result = json.loads((tmp_path / "r" / "summary.json").read_text())["groups"]["G1_instruction"]["run"]
    assert (result["converted"], result["evaluated"], result["method"]) == (3, 1, "CoT@1")
    assert [(r["file"], r["reason"]) for r in result["rejects"]] == [("7_CoT@1.json", "bad answer")]
    bad = tmp_path / "G2_instruction.json"
    bad.write_text("[1, 2]")
    assert main([str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "got array" in err and len(err.strip().splitlines()) == 1
