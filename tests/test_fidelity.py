"""Honest outcomes and unbreakable builds on data nobody here wrote (../shared/FORMATS.md §7):
ToolAlpaca runs the agent framework stopped are `unfinished`; ToolBench files marked invalid are
`invalid_data` before any shape check; lone surrogates, NaN and huge integers never crash a
build (or `validate`) and get their true reason; input file names that are not UTF-8 are read.

Self-contained: inputs are written under `tmp_path` from small inline records and the package's
ToolBench sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.core import PlannerTurn, Reject, RejectReason, Trajectory, UserTurn
from umi_data.sources import get_source, read_source
from umi_data.sources.base import InputFile
from umi_data.sources.toolalpaca import AGENT_STOP_MESSAGES, extract_arguments
from umi_data.sources.toolbench import parse_json_object
from test_bad_input import stage1_record, stage2_record, toolbench_answer
from test_toolalpaca import FIXTURE, fixture_entries, read_instance, with_final, with_step


def build(tmp_path: Path, source: str, inputs: list[Path], compat: bool = False) -> Any:
    config = BuildConfig(source=source, inputs=[str(p) for p in inputs], compat="alpha-umi" if compat else None)
    return build_corpus(config, tmp_path / "out", progress=False)


# --- ToolAlpaca runs stopped by the agent framework ---------------------------------------------


@pytest.mark.parametrize("message", sorted(AGENT_STOP_MESSAGES))
def test_stopped_run_is_unfinished(message: str, tmp_path: Path) -> None:
    instance = with_final("", message)
    trajectory = read_instance(instance, tmp_path)
    assert isinstance(trajectory, Trajectory), trajectory
    assert trajectory.outcome == "unfinished"
    assert [t.role for t in trajectory.turns] == ["user"] + ["planner", "caller", "observation"] * len(instance["intermediate_steps"])
    assert all(t.role != "conclusion" for t in trajectory.turns)


def test_stopped_runs_make_no_summarizer_example_and_are_counted(tmp_path: Path) -> None:
    entries = fixture_entries()
    entries[0]["Instances"][0] = with_final(None, "Agent stopped due to iteration limit or time limit.")
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    clean = build(tmp_path / "clean", "toolalpaca", [FIXTURE]).manifest
    stopped = build(tmp_path, "toolalpaca", [path]).manifest
    assert stopped["counts"]["outcomes"]["unfinished"] == 1
    assert stopped["counts"]["outcomes"]["answer"] == clean["counts"]["outcomes"]["answer"] - 1
    assert stopped["examples"]["summarizer"]["total"] == clean["examples"]["summarizer"]["total"] - 1
    # its planner steps still train (they are real decisions), only the final ones are gone
    assert stopped["examples"]["planner"]["total"] == clean["examples"]["planner"]["total"] - 1


def test_an_answer_that_mentions_a_stop_is_an_answer(tmp_path: Path) -> None:
    trajectory = read_instance(with_final("", "The agent stopped due to rain; it is sunny now."), tmp_path)
    assert trajectory.outcome == "answer"


# --- ToolBench valid_data: false ------------------------------------------------------------------


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode())
    return path


def read(source: str, path: Path, name: str | None = None) -> list[Trajectory | Reject]:
    return list(read_source(get_source(source), [InputFile(path, name or path.name)]))


@pytest.mark.parametrize("break_it", ["no function", "train_messages empty", "query a number"])
def test_invalid_data_comes_before_the_shape_check(break_it: str, tmp_path: Path) -> None:
    answer = toolbench_answer()
    generation = answer["answer_generation"]
    generation["valid_data"] = False
    if break_it == "no function":
        del generation["function"]
    elif break_it == "train_messages empty":
        generation["train_messages"] = []
    else:
        generation["query"] = 7
    [reject] = read("toolbench", write(tmp_path / "G1_answer" / "1_x.json", answer), "G1_answer/1_x.json")
    assert reject.reason == RejectReason.INVALID_DATA


# --- lone surrogates, NaN, huge integers --------------------------------------------------------

LONE = "\\ud800"  # a lone surrogate escape as it appears inside JSON text


def _observation_with(content: str) -> dict[str, Any]:
    answer = toolbench_answer()
    answer["answer_generation"]["train_messages"][-1][3]["content"] = content
    return answer


@pytest.mark.parametrize("compat", [False, True])
def test_lone_surrogate_in_an_observation_is_invalid_text(compat: bool, tmp_path: Path) -> None:
    # the observation text holds a \ud800 escape that the envelope's JSON decodes to a lone surrogate
    answer = _observation_with('{"error": "", "response": "caf' + LONE + '"}')
    write(tmp_path / "in" / "G1_answer" / "1_x.json", answer)
    write(tmp_path / "in" / "G1_answer" / "2_ok.json", toolbench_answer())
    result = build(tmp_path, "toolbench", [tmp_path / "in"], compat=compat)
    counts = result.manifest["counts"]
    assert counts["read"] == 2 and counts["accepted"] == 1 and counts["rejected_by_reason"] == {"invalid_text": 1}
    [reject] = result.rejects
    assert reject.source_file == "G1_answer/1_x.json"
    assert "$.turns[3].response: a lone surrogate (U+D800)" in reject.detail


def test_lone_surrogate_in_finish_arguments_is_invalid_text(tmp_path: Path) -> None:
    answer = toolbench_answer()
    finish = answer["answer_generation"]["train_messages"][-1][-1]["function_call"]
    finish["arguments"] = '{"return_type": "give_answer", "final_answer": "' + LONE + '"'  # not strict JSON: decoded leniently
    [reject] = read("toolbench", write(tmp_path / "1_x.json", answer))
    assert reject.reason == RejectReason.INVALID_TEXT and "$.turns[" in reject.detail and ".answer" in reject.detail


def test_lone_surrogate_in_the_file_rejects_only_its_record(tmp_path: Path) -> None:
    records = [stage2_record(), stage2_record(), stage2_record()]
    text = json.dumps(records).replace("sunny", "sun\\udc80ny", 1)  # record 0, conversations[3]
    items = read("alpha-umi-stage2", write(tmp_path / "x.json", text.encode()))
    assert [type(i).__name__ for i in items] == ["Reject", "Trajectory", "Trajectory"]
    assert items[0].reason == RejectReason.INVALID_TEXT
    assert items[0].detail.startswith("$[0].conversations[3].value: a lone surrogate (U+DC80)")


def test_nan_in_the_file_is_invalid_json(tmp_path: Path) -> None:
    text = json.dumps([stage1_record()]).replace('"content": "Done."', '"content": NaN')
    [reject] = read("alpha-umi-stage1", write(tmp_path / "x.json", text.encode()))
    assert reject.reason == RejectReason.INVALID_JSON and "NaN is not JSON" in reject.detail


def test_validate_reports_lone_surrogates_with_their_path(tmp_path: Path) -> None:
    in_file = write(tmp_path / "a.json", json.dumps([stage2_record()]).replace("sunny", "\\ud800").encode())
    nested = write(tmp_path / "G1_answer" / "1_b.json", _observation_with('{"error": "", "response": "' + LONE + '"}'))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.run([sys.executable, "-m", "umi_data", "validate", "alpha-umi-stage2", str(in_file)], capture_output=True, text=True, env=env)
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert f"{in_file}: $[0].conversations[3].value: invalid_text: a lone surrogate (U+D800)" in first.stdout
    second = subprocess.run([sys.executable, "-m", "umi_data", "validate", "toolbench", str(nested)], capture_output=True, text=True, env=env)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert "invalid_text: " in second.stdout and "$.turns[3].response" in second.stdout


def test_action_input_with_a_lone_surrogate_is_invalid_text(tmp_path: Path) -> None:
    reject = read_instance(with_step(0, action_input='{"city": "' + LONE + '"}\n...'), tmp_path)
    assert isinstance(reject, Reject) and reject.reason == RejectReason.INVALID_TEXT
    assert "a lone surrogate (U+D800)" in reject.detail and "255 levels" not in reject.detail


@pytest.mark.parametrize("value", ["123456789012345678901234567890", "NaN", "Infinity", "-Infinity", "1e400"])
def test_arguments_that_are_not_strict_json_stay_unparsed(value: str, tmp_path: Path) -> None:
    raw = '{"city": "Lyon", "n": ' + value + "}"
    assert parse_json_object(raw) is None and extract_arguments(raw + "\n...") is None
    trajectory = read_instance(with_step(0, action_input=raw), tmp_path)
    assert isinstance(trajectory, Trajectory), trajectory  # not "nested more than 255 levels deep"
    call = trajectory.turns[2]
    assert (call.raw_arguments, call.arguments) == (raw, None)  # never a null or an inexact float
    result = build(tmp_path, "toolalpaca", [_entries_with(tmp_path, with_step(0, action_input=raw))])
    assert result.manifest["counts"]["accepted"] == 1


def _entries_with(tmp_path: Path, instance: dict[str, Any]) -> Path:
    entries = fixture_entries()[:1]
    entries[0]["Instances"] = [instance]
    return write(tmp_path / "entries.json", entries)


def test_64_bit_integers_still_parse() -> None:
    assert parse_json_object('{"id": 18446744073709551615, "n": -9223372036854775808}') == {
        "id": 18446744073709551615, "n": -9223372036854775808,
    }
    assert parse_json_object('{"phone": "12345678901234567890123"}') == {"phone": "12345678901234567890123"}


def test_the_model_refuses_unstorable_values() -> None:
    turns = [UserTurn(content="q\ud800"), PlannerTurn(next="give_up")]
    with pytest.raises(ValueError, match=r"\$\.turns\[0\]\.content: a lone surrogate"):
        Trajectory(id="t", source="synthetic", instruction="q", instruction_id="i", turns=turns, outcome="give_up")
    with pytest.raises(ValueError, match=r"\$\.meta\.x\[1\]: an integer beyond 64 bits"):
        Trajectory(id="t", source="synthetic", instruction="q", instruction_id="i", turns=[UserTurn(content="q"), turns[1]],
                   outcome="give_up", meta={"x": [1, 2**64]})
    with pytest.raises(ValueError, match="empty_thought"):
        PlannerTurn(thought="x", empty_thought="empty_string")


# --- file names that are not UTF-8 -------------------------------------------------------------


def test_non_utf8_file_name_is_read(tmp_path: Path) -> None:
    root = tmp_path / os.fsdecode(b"in\xe9")  # the input directory's own name too
    (root / "G1_answer").mkdir(parents=True)
    name = os.fsdecode(b"1_caf\xe9.json")
    (root / "G1_answer" / name).write_text(json.dumps(toolbench_answer()), encoding="utf-8")
    (root / "G1_answer" / os.fsdecode(b"2_\xff.json")).write_bytes(b"{not json")
    result = build(tmp_path, "toolbench", [root])
    counts = result.manifest["counts"]
    assert counts["accepted"] == 1 and counts["rejected"] == 1
    listed = [json.loads(line)["file"] for line in (result.out / result.manifest["inputs"]["list"]).read_text("utf-8").splitlines()]
    assert listed == ["G1_answer/1_caf\\xe9.json", "G1_answer/2_\\xff.json"]
    assert result.rejects[0].source_file == "G1_answer/2_\\xff.json"
    assert result.manifest["config"]["inputs"] == [str(tmp_path / "in\\xe9")]
    proc = subprocess.run([sys.executable, "-m", "umi_data", "validate", "toolbench", str(root)], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "2_\\xff.json: $: invalid_json" in proc.stdout


def test_a_decision_cut_off_at_the_end_is_history_not_a_crash(tmp_path: Path) -> None:
    record = stage2_record()
    del record["conversations"][2:]  # user, then "Let me check.\n Next: caller." and nothing more
    path = write(tmp_path / "x.json", [record])
    default = build(tmp_path / "default", "alpha-umi-stage2", [path]).manifest
    assert default["counts"]["accepted"] == 1 and default["examples"]["planner"]["total"] == 0
    compat = build(tmp_path / "compat", "alpha-umi-stage2", [path], compat=True)
    assert compat.manifest["counts"]["rejected_by_reason"] == {"official_would_fail": 1}
    assert "IndexError" in compat.rejects[0].detail
