"""Bad input never stops a build: every broken file or record becomes a `Reject` with the right
reason code and a detail that says where (JSON path, byte offset, turn index), the build goes on,
and the CLI reports it without a traceback.

Self-contained: every input is written under `tmp_path`, from the package's ToolBench sample or
from small inline alpha-UMi records (formats: ../shared/FORMATS.md §1-3).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.corpus.layout import MANIFEST, REJECTS, TRAJECTORIES
from umi_data.core import Reject, RejectReason, Trajectory
from umi_data.sources import SOURCES, get_source, read_source
from umi_data.sources.base import InputFile, load_json

SAMPLE_ANSWER = files("umi_data") / "samples" / "toolbench" / "answer"
LIST_SOURCES = ("alpha-umi-stage1", "alpha-umi-stage2")
ALL_SOURCES = ("toolbench", *LIST_SOURCES)


# --- valid inputs to break ------------------------------------------------------------------


def toolbench_answer() -> dict[str, Any]:
    """A valid ToolBench answer file: train_messages[1] is system, user, assistant+call,
    function, assistant+call, function, assistant+Finish."""
    return json.loads((SAMPLE_ANSWER / "G1_answer" / "1_umi_sample.json").read_text("utf-8"))


def _tool() -> dict[str, Any]:
    return {"Name": "get_weather", "function": "Current weather of a city.", "input": {"city": "string, the city"}}


def stage1_record() -> dict[str, Any]:
    return {
        "tools": [_tool()],
        "instruction": "What is the weather in Lyon?",
        "chains": [
            {"role": "system", "content": "You are AutoGPT."},
            {"role": "user", "content": "\nWhat is the weather in Lyon?\nBegin!\n"},
            {"role": "assistant", "content": "Let me check.", "function_call": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}},
            {"role": "function", "name": "get_weather", "content": '{"error": "", "response": "sunny"}'},
            {
                "role": "assistant",
                "content": "Done.",
                "function_call": {"name": "Finish", "arguments": '{"return_type": "give_answer", "final_answer": "Sunny."}'},
            },
        ],
    }


def stage2_record() -> dict[str, Any]:
    return {
        "tools": [_tool()],
        "instruction": "What is the weather in Lyon?",
        "conversations": [
            {"from": "user", "value": "What is the weather in Lyon?"},
            {"from": "assistant", "value": "Let me check.\n Next: caller."},
            {"from": "caller", "value": 'Action: get_weather\nAction Input: {"city": "Lyon"}'},
            {"from": "observation", "value": "sunny"},
            {"from": "assistant", "value": "Done.\n Next: conclusion."},
            {"from": "conclusion", "value": "Sunny."},
        ],
    }


GOOD_RECORD = {"alpha-umi-stage1": stage1_record, "alpha-umi-stage2": stage2_record}


def good_file_value(source: str) -> Any:
    return toolbench_answer() if source == "toolbench" else [GOOD_RECORD[source](), GOOD_RECORD[source]()]


# --- helpers --------------------------------------------------------------------------------


def write(path: Path, content: bytes | str | Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content, indent=1), encoding="utf-8")
    return path


def read(source: str, path: Path) -> list[Trajectory | Reject]:
    name = f"G1_answer/{path.name}" if source == "toolbench" else path.name
    return list(read_source(get_source(source), [InputFile(path, name)]))


def only_reject(source: str, path: Path) -> Reject:
    [item] = read(source, path)
    assert isinstance(item, Reject), f"expected a reject, got an accepted trajectory for {path.name}"
    return item


def one_record_reject(source: str, tmp_path: Path, record: Any) -> Reject:
    """The reject of one record: the whole file for ToolBench, a one-item list for alpha-UMi."""
    value = record if source == "toolbench" else [record]
    return only_reject(source, write(tmp_path / "1_bad.json", value))


def cut_in_middle_of_string(data: bytes) -> tuple[bytes, int]:
    """`data` (indented ASCII JSON) cut in the middle, two characters into a string value,
    and the offset of that string's opening quote."""
    quote = data.index(b': "', len(data) // 2) + 2
    return data[: quote + 3], quote


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_the_unbroken_inputs_are_accepted(source: str, tmp_path: Path) -> None:
    # Guards every test below: a reject there comes from what the test broke, not the base input.
    items = read(source, write(tmp_path / "1_good.json", good_file_value(source)))
    assert items and all(isinstance(item, Trajectory) for item in items), items


# --- files that are not (complete, UTF-8) JSON ----------------------------------------------


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_not_json_at_all(source: str, tmp_path: Path) -> None:
    reject = only_reject(source, write(tmp_path / "1_x.json", b"id,name\n1,weather\n"))
    assert (reject.reason, reject.locator) == (RejectReason.INVALID_JSON, "$")
    assert "line 1 column 1 (char 0)" in reject.detail


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_json_with_garbage_after_the_value_is_invalid_not_truncated(source: str, tmp_path: Path) -> None:
    text = json.dumps(good_file_value(source))
    reject = only_reject(source, write(tmp_path / "1_x.json", text + "\n}"))
    assert reject.reason == RejectReason.INVALID_JSON
    assert "Extra data" in reject.detail and f"(char {len(text) + 1})" in reject.detail


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_valid_file_cut_in_a_string_is_truncated(source: str, tmp_path: Path) -> None:
    data = json.dumps(good_file_value(source), indent=1).encode()
    cut, quote = cut_in_middle_of_string(data)
    reject = only_reject(source, write(tmp_path / "1_x.json", cut))
    assert (reject.reason, reject.locator) == (RejectReason.TRUNCATED_JSON, "$")
    # The parser reports the unterminated string at its opening quote.
    assert "Unterminated string" in reject.detail and f"(char {quote})" in reject.detail


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_valid_file_cut_between_tokens_is_truncated(source: str, tmp_path: Path) -> None:
    text = json.dumps(good_file_value(source), indent=1)
    cut = text[: text.index('"instruction"' if source != "toolbench" else '"query"')]  # ends in ",\n  "
    reject = only_reject(source, write(tmp_path / "1_x.json", cut))
    assert reject.reason == RejectReason.TRUNCATED_JSON
    assert f"(char {len(cut)})" in reject.detail


@pytest.mark.parametrize("source", ALL_SOURCES)
@pytest.mark.parametrize("content", [b"", b" \n\t\r\n "], ids=["zero-bytes", "whitespace-only"])
def test_empty_file(source: str, content: bytes, tmp_path: Path) -> None:
    reject = only_reject(source, write(tmp_path / "1_x.json", content))
    assert (reject.reason, reject.locator) == (RejectReason.EMPTY_FILE, "$")
    assert f"({len(content)} bytes)" in reject.detail


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_latin1_bytes_are_not_utf8(source: str, tmp_path: Path) -> None:
    text = json.dumps(good_file_value(source)).replace("Lyon", "Orl\u00e9ans", 1)
    data = text.encode("latin-1")
    offset = data.index(b"\xe9")
    reject = only_reject(source, write(tmp_path / "1_x.json", data))
    assert (reject.reason, reject.locator) == (RejectReason.NOT_UTF8, "$")
    assert f"byte 0xe9 at offset {offset}" in reject.detail


def test_not_utf8_offset_counts_the_bom(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + '{"query": "caf\u00e9"}'.encode("latin-1")
    offset = data.index(b"\xe9")  # counted in the file's bytes, BOM included
    reject = only_reject("toolbench", write(tmp_path / "1_x.json", data))
    assert reject.reason == RejectReason.NOT_UTF8
    assert f"byte 0xe9 at offset {offset}" in reject.detail


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_permission_denied_is_unreadable(source: str, tmp_path: Path) -> None:
    path = write(tmp_path / "1_x.json", good_file_value(source))
    path.chmod(0)
    try:
        if os.geteuid() == 0 and _can_read(path):
            pytest.skip("running as root: chmod 000 does not stop this process reading the file")
        reject = only_reject(source, path)
    finally:
        path.chmod(0o644)
    assert (reject.reason, reject.locator) == (RejectReason.UNREADABLE_FILE, "$")
    assert "Permission denied" in reject.detail


def test_a_directory_or_vanished_file_is_unreadable(tmp_path: Path) -> None:
    # The same reason as chmod 000, reachable as root too.
    directory = tmp_path / "dir.json"
    directory.mkdir()
    gone = tmp_path / "gone.json"
    for path, message in ((directory, "Is a directory"), (gone, "No such file")):
        reject = load_json(InputFile(path, path.name)).reject
        assert reject is not None and reject.reason == RejectReason.UNREADABLE_FILE
        assert reject.source_file == path.name and message in reject.detail


# --- wrong shape ----------------------------------------------------------------------------


def test_toolbench_top_level_list_is_wrong_shape(tmp_path: Path) -> None:
    reject = only_reject("toolbench", write(tmp_path / "1_x.json", [toolbench_answer()]))
    assert (reject.reason, reject.locator) == (RejectReason.WRONG_SHAPE, "$")
    assert reject.detail == "$: expected object, got array"


def test_toolbench_without_answer_generation_is_wrong_shape(tmp_path: Path) -> None:
    answer = toolbench_answer()
    del answer["answer_generation"]
    reject = only_reject("toolbench", write(tmp_path / "1_x.json", answer))
    assert reject.reason == RejectReason.WRONG_SHAPE
    assert reject.detail == "$: 'answer_generation' is a required property"


def test_toolbench_valid_data_without_train_messages_is_wrong_shape(tmp_path: Path) -> None:
    answer = toolbench_answer()
    assert answer["answer_generation"]["valid_data"] is True
    del answer["answer_generation"]["train_messages"]
    reject = only_reject("toolbench", write(tmp_path / "1_x.json", answer))
    assert reject.reason == RejectReason.WRONG_SHAPE
    assert reject.detail == "$.answer_generation: 'train_messages' is a required property"


@pytest.mark.parametrize("source", LIST_SOURCES)
def test_alpha_umi_top_level_object_is_wrong_shape(source: str, tmp_path: Path) -> None:
    reject = only_reject(source, write(tmp_path / "x.json", GOOD_RECORD[source]()))
    assert (reject.reason, reject.locator) == (RejectReason.WRONG_SHAPE, "$")
    assert reject.detail == f"$: expected an array of {source} records, got object"


@pytest.mark.parametrize("source", LIST_SOURCES)
def test_alpha_umi_record_without_instruction_is_wrong_shape(source: str, tmp_path: Path) -> None:
    record = GOOD_RECORD[source]()
    del record["instruction"]
    reject = one_record_reject(source, tmp_path, record)
    assert (reject.reason, reject.locator) == (RejectReason.WRONG_SHAPE, "$[0]")
    assert reject.detail == "$[0]: 'instruction' is a required property"


# --- wrong type deep inside -----------------------------------------------------------------


def _set(value: Any, path: tuple, new: Any) -> Any:
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


WRONG_TYPE_CASES = [
    # (source, where in the record, new value, path in the detail, message in the detail)
    ("toolbench", ("answer_generation", "train_messages", -1, 2, "function_call", "arguments"), 42,
     "$.answer_generation.train_messages[1][2].function_call.arguments", "expected string, got integer"),
    ("toolbench", ("answer_generation", "train_messages", -1, 3, "content"), ["x"],
     "$.answer_generation.train_messages[1][3].content", "expected string or null, got array"),
    ("toolbench", ("answer_generation", "train_messages", -1, 3, "role"), "tool",
     "$.answer_generation.train_messages[1][3].role", "'tool' is not one of"),
    ("toolbench", ("answer_generation", "valid_data"), "yes",
     "$.answer_generation.valid_data", "expected boolean, got string"),
    ("toolbench", ("answer_generation", "function", 0, "name"), "",
     "$.answer_generation.function[0].name", "should be non-empty"),
    ("alpha-umi-stage1", ("chains", 2, "function_call", "arguments"), {"city": "Lyon"},
     "$[0].chains[2].function_call.arguments", "expected string, got object"),
    ("alpha-umi-stage1", ("tools", 0, "input", "city"), 3,
     "$[0].tools[0].input.city", "expected string, got integer"),
    ("alpha-umi-stage2", ("conversations", 2, "value"), 7,
     "$[0].conversations[2].value", "expected string, got integer"),
    ("alpha-umi-stage2", ("conversations", 1, "from"), "planner",
     "$[0].conversations[1].from", "'planner' is not one of"),
]


@pytest.mark.parametrize(
    "source,where,new,path,message", WRONG_TYPE_CASES, ids=[f"{c[0]}:{c[3]}" for c in WRONG_TYPE_CASES]
)
def test_wrong_type_inside_names_the_json_path(source: str, where: tuple, new: Any, path: str, message: str, tmp_path: Path) -> None:
    base = toolbench_answer() if source == "toolbench" else GOOD_RECORD[source]()
    reject = one_record_reject(source, tmp_path, _set(base, where, new))
    assert reject.reason == RejectReason.WRONG_TYPE
    assert reject.detail.startswith(f"{path}: ") and message in reject.detail


def test_several_errors_are_listed_by_path(tmp_path: Path) -> None:
    record = stage2_record()
    for index in range(len(record["conversations"])):
        record["conversations"][index]["value"] = index
    reject = one_record_reject("alpha-umi-stage2", tmp_path, record)
    assert reject.reason == RejectReason.WRONG_TYPE
    shown = [f"$[0].conversations[{i}].value: expected string, got integer" for i in range(5)]
    assert reject.detail == "; ".join(shown) + " (and 1 more)"


# --- turn order and decisions ---------------------------------------------------------------


def _observation_first(source: str) -> Any:
    """A tool result straight after the user's message, before any call."""
    if source == "alpha-umi-stage2":
        record = stage2_record()
        record["conversations"] = [record["conversations"][i] for i in (0, 3, 4, 5)]
        return record
    finish = {"role": "assistant", "content": "Done.", "function_call": {"name": "Finish", "arguments": '{"return_type": "give_up_and_restart"}'}}
    function = {"role": "function", "name": "get_weather", "content": '{"error": "", "response": "sunny"}'}
    if source == "alpha-umi-stage1":
        record = stage1_record()
        record["chains"] = [*record["chains"][:2], function, finish]
        return record
    answer = toolbench_answer()
    messages = answer["answer_generation"]["train_messages"][-1]
    answer["answer_generation"]["train_messages"][-1] = [*messages[:2], function, finish]
    return answer


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_tool_result_before_any_call_is_bad_turn_order(source: str, tmp_path: Path) -> None:
    reject = one_record_reject(source, tmp_path, _observation_first(source))
    assert reject.reason == RejectReason.BAD_TURN_ORDER
    # Turn indexes count converted turns (the ToolBench system message is not a turn).
    assert reject.detail.startswith("converted turn 1: a observation turn cannot follow user")


def test_stage2_call_without_planner_decision_is_bad_turn_order(tmp_path: Path) -> None:
    record = stage2_record()
    del record["conversations"][1]  # user, caller, observation, ...
    reject = one_record_reject("alpha-umi-stage2", tmp_path, record)
    assert reject.reason == RejectReason.BAD_TURN_ORDER
    assert reject.detail.startswith("converted turn 1: a caller turn cannot follow user")


def _user_only(source: str) -> Any:
    if source == "alpha-umi-stage2":
        record = stage2_record()
        del record["conversations"][1:]
        return record
    if source == "alpha-umi-stage1":
        record = stage1_record()
        del record["chains"][2:]
        return record
    answer = toolbench_answer()
    del answer["answer_generation"]["train_messages"][-1][2:]
    return answer


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_record_without_assistant_message_is_no_decision(source: str, tmp_path: Path) -> None:
    reject = one_record_reject(source, tmp_path, _user_only(source))
    assert reject.reason == RejectReason.NO_DECISION
    assert "no assistant" in reject.detail


@pytest.mark.parametrize("value", ["get_weather(city='Lyon')", 'Action: get_weather\n{"city": "Lyon"}', "Action Input: {}"])
def test_stage2_caller_value_not_action_format(value: str, tmp_path: Path) -> None:
    record = stage2_record()
    record["conversations"][2]["value"] = value
    reject = one_record_reject("alpha-umi-stage2", tmp_path, record)
    assert (reject.reason, reject.locator) == (RejectReason.WRONG_TYPE, "$[0]")
    assert reject.detail.startswith("$[0].conversations[2].value: ") and "Action: NAME" in reject.detail


def test_toolbench_valid_data_false_is_invalid_data(tmp_path: Path) -> None:
    answer = toolbench_answer()
    answer["answer_generation"]["valid_data"] = False
    del answer["answer_generation"]["train_messages"]
    reject = only_reject("toolbench", write(tmp_path / "1_x.json", answer))
    assert (reject.reason, reject.locator) == (RejectReason.INVALID_DATA, "$")
    assert "valid_data is false" in reject.detail


# --- good and bad records mixed in one list file --------------------------------------------


def _mixed_records(source: str) -> tuple[list[Any], dict[str, RejectReason]]:
    good = GOOD_RECORD[source]
    broken_type = good()
    if source == "alpha-umi-stage2":
        broken_type["conversations"][0]["value"] = None
        decisionless = good()
        del decisionless["conversations"][1:]
    else:
        broken_type["chains"][1]["content"] = 5
        decisionless = good()
        del decisionless["chains"][2:]
    records = [good(), broken_type, good(), "not a record", decisionless, good(), _observation_first(source)]
    expected = {
        "$[1]": RejectReason.WRONG_TYPE,
        "$[3]": RejectReason.WRONG_SHAPE,
        "$[4]": RejectReason.NO_DECISION,
        "$[6]": RejectReason.BAD_TURN_ORDER,
    }
    return records, expected


@pytest.mark.parametrize("source", LIST_SOURCES)
def test_list_file_mixing_good_and_bad_records(source: str, tmp_path: Path) -> None:
    records, expected = _mixed_records(source)
    items = read(source, write(tmp_path / "mixed.json", records))
    accepted = [item for item in items if isinstance(item, Trajectory)]
    rejected = [item for item in items if isinstance(item, Reject)]
    assert len(items) == len(records) == len(accepted) + len(rejected)
    assert [t.meta["locator"] for t in accepted] == ["$[0]", "$[2]", "$[5]"]
    assert {r.locator: r.reason for r in rejected} == expected
    assert all(r.source_file == "mixed.json" for r in rejected)
    assert next(r for r in rejected if r.locator == "$[3]").detail == "$[3]: expected object, got string"


# --- a whole build over a directory of good and bad files -----------------------------------


def _mixed_toolbench_dir(root: Path) -> dict[str, RejectReason]:
    """The package sample (3 good files, 1 with valid_data false) plus one file per kind of
    breakage; returns the expected reject reason of each file that must be rejected."""
    shutil.copytree(SAMPLE_ANSWER, root)
    expected = {"G2_answer/2_umi_sample.json": RejectReason.INVALID_DATA}
    data = json.dumps(toolbench_answer(), indent=1).encode()

    def bad(name: str, content: Any, reason: RejectReason) -> None:
        write(root / name, content)
        expected[name] = reason

    bad("G1_answer/10_not_json.json", b"<html>502 Bad Gateway</html>", RejectReason.INVALID_JSON)
    bad("G1_answer/11_truncated.json", cut_in_middle_of_string(data)[0], RejectReason.TRUNCATED_JSON)
    bad("G1_answer/12_empty.json", b"", RejectReason.EMPTY_FILE)
    bad("G1_answer/13_blank.json", b"\n\n   \n", RejectReason.EMPTY_FILE)
    bad("G1_answer/14_latin1.json", json.dumps(toolbench_answer()).replace("Lyon", "Orl\u00e9ans").encode("latin-1"), RejectReason.NOT_UTF8)
    bad("G1_answer/15_list.json", [toolbench_answer()], RejectReason.WRONG_SHAPE)
    bad("G1_answer/16_wrong_type.json", _set(toolbench_answer(), WRONG_TYPE_CASES[0][1], 42), RejectReason.WRONG_TYPE)
    bad("G2_answer/17_turn_order.json", _observation_first("toolbench"), RejectReason.BAD_TURN_ORDER)
    bad("G2_answer/18_no_decision.json", _user_only("toolbench"), RejectReason.NO_DECISION)
    unreadable = write(root / "G2_answer/19_unreadable.json", data)
    unreadable.chmod(0)
    if _can_read(unreadable):  # root (with CAP_DAC_OVERRIDE) reads a chmod 000 file anyway
        unreadable.unlink()
    else:
        expected["G2_answer/19_unreadable.json"] = RejectReason.UNREADABLE_FILE
    return expected


@pytest.fixture
def mixed_dir(tmp_path: Path) -> tuple[Path, dict[str, RejectReason]]:
    root = tmp_path / "answer"
    expected = _mixed_toolbench_dir(root)
    yield root, expected
    for path in root.rglob("*.json"):
        path.chmod(0o644)


GOOD_SAMPLE_FILES = 3


def test_build_goes_on_after_bad_files(mixed_dir: tuple[Path, dict[str, RejectReason]], tmp_path: Path) -> None:
    root, expected = mixed_dir
    out = tmp_path / "corpus"
    result = build_corpus(BuildConfig(source="toolbench", inputs=[str(root)]), out, progress=False)

    manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    counts = manifest["counts"]
    assert counts["read"] == counts["accepted"] + counts["rejected"] == GOOD_SAMPLE_FILES + len(expected)
    assert counts["accepted"] == GOOD_SAMPLE_FILES
    assert counts["rejected_by_reason"] == dict(Counter(reason.value for reason in expected.values()))
    assert manifest["inputs"]["files"] == counts["read"]  # every file read is listed, bad ones included

    assert pq.read_table(out / TRAJECTORIES).num_rows == GOOD_SAMPLE_FILES
    lines = (out / REJECTS).read_text("utf-8").splitlines()
    assert len(lines) == counts["rejected"] == manifest["files"][REJECTS]["rows"]
    rows = [json.loads(line) for line in lines]
    assert all(set(row) == {"source_file", "locator", "reason", "detail"} for row in rows)
    assert all(row["locator"] == "$" and row["detail"] for row in rows)
    assert {row["source_file"]: row["reason"] for row in rows} == {name: r.value for name, r in expected.items()}
    assert [r.model_dump(mode="json") for r in result.rejects] == rows


# --- the command line -----------------------------------------------------------------------


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "umi_data", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def test_cli_build_mixed_dir_exit_codes(mixed_dir: tuple[Path, dict[str, RejectReason]], tmp_path: Path) -> None:
    root, expected = mixed_dir
    lenient = run_cli(tmp_path, "build", "toolbench", str(root), "--out", "lenient")
    assert lenient.returncode == 0, lenient.stderr
    assert f"read {GOOD_SAMPLE_FILES + len(expected)}, accepted {GOOD_SAMPLE_FILES}" in lenient.stdout
    assert f"rejected {len(expected)} (" in lenient.stdout
    assert (tmp_path / "lenient" / MANIFEST).is_file()

    strict = run_cli(tmp_path, "build", "toolbench", str(root), "--out", "strict", "--strict")
    assert strict.returncode == 1
    assert f"--strict: {len(expected)} record(s) rejected" in strict.stderr
    for name, reason in expected.items():
        assert f"  {name} $: {reason.value}: " in strict.stderr
    assert (tmp_path / "strict" / MANIFEST).is_file()  # the corpus is still written


def test_cli_missing_input_path(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "build", "toolbench", "no/such/dir", "--out", "out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["umi-data build: error: no/such/dir: no such file or directory"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["build", "validate"])
def test_cli_unknown_source(command: str, tmp_path: Path) -> None:
    path = write(tmp_path / "x.json", [stage2_record()])
    extra = ["--out", "out"] if command == "build" else []
    proc = run_cli(tmp_path, command, "alpha-umi", str(path), *extra)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "unknown source 'alpha-umi'" in line
    assert line.endswith("choose one of: " + ", ".join(SOURCES))


def test_cli_validate_bad_file_prints_json_path(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", _set(toolbench_answer(), WRONG_TYPE_CASES[0][1], 42))
    proc = run_cli(tmp_path, "validate", "toolbench", str(path))
    assert proc.returncode == 1
    assert f"{path}: $.answer_generation.train_messages[1][2].function_call.arguments: expected string, got integer" in proc.stdout
    assert "1 file(s) checked" in proc.stdout and "1 with problems" in proc.stdout
    assert proc.stdout.strip().endswith("build would reject 1 record(s) (wrong_type: 1)")  # the build's own verdict, beside the schema's


def test_cli_validate_unparsable_and_good_files(tmp_path: Path) -> None:
    bad = write(tmp_path / "d" / "a.json", b'[{"tools": [')
    write(tmp_path / "d" / "b.json", [stage2_record()])
    proc = run_cli(tmp_path, "validate", "alpha-umi-stage2", str(tmp_path / "d"))
    assert proc.returncode == 1
    assert f"{bad}: $: truncated_json: " in proc.stdout
    assert "2 file(s) checked" in proc.stdout and "1 with problems" in proc.stdout

    good = run_cli(tmp_path, "validate", "alpha-umi-stage2", str(tmp_path / "d" / "b.json"))
    assert good.returncode == 0 and "0 problem(s)" in good.stdout


# --- depth limits and truncation inside a token ---


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("source", LIST_SOURCES)
def test_deeply_nested_list_record_is_rejected_not_raised(source: str, tmp_path: Path) -> None:
    items = read(source, write(tmp_path / "deep.json", json.dumps([_nested(300)])))
    assert [type(i) for i in items] == [Reject]


def test_deeply_nested_call_arguments_do_not_stop_the_build(tmp_path: Path) -> None:
    answer = toolbench_answer()
    arguments = json.dumps({"city": _nested(300)})
    _set(answer, ("answer_generation", "train_messages", -1, 2, "function_call", "arguments"), arguments)
    write(tmp_path / "in" / "G1_answer" / "1_deep.json", answer)
    result = build_corpus(BuildConfig(source="toolbench", inputs=[str(tmp_path / "in")]), tmp_path / "out", progress=False)
    assert result.manifest["counts"]["rejected_by_reason"] == {"wrong_shape": 1}
    assert result.rejects[0].source_file == "G1_answer/1_deep.json" and "255 levels" in result.rejects[0].detail


@pytest.mark.parametrize("tail", ['"valid_data": tr', '"query_count": 1.', '"query_count": -', '"query": "caf\\u00'])
def test_file_cut_inside_a_literal_is_truncated(tail: str, tmp_path: Path) -> None:
    reject = only_reject("toolbench", write(tmp_path / "1_x.json", '{"answer_generation": {' + tail))
    assert reject.reason == RejectReason.TRUNCATED_JSON
