"""Golden parity of compat mode: umi trajectories → the official α-UMi stage-1, stage-2 and
training files, record for record (../shared/FORMATS.md §2-§4), plus hand-made cases for the
rules the shipped files never exercise (hallucinated calls, "none" answers, a first-turn give-up).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from umi_data.rendering.compat import GIVE_UP_ARGUMENTS, short_form_tool, stage1_record, stage2_record
from umi_data.rendering.compat_train import TRAINING_FILES, training_files, training_records
from umi_data.core import HALLUCINATED_NAME, ToolSpec, Trajectory
from umi_data.sources import discover_files, get_source, read_source

TRAINING_COUNTS = {"backbone": 79, "planner": 79, "caller": 59, "summarizer": 14}
TOOLBENCH_COUNTS = {"backbone": 50, "planner": 50, "caller": 37, "summarizer": 9}
GIVE_UP_TARGET_END = "\nconclusion: give up."


def _trajectories(source: str, path: Path) -> list[Trajectory]:
    results = list(read_source(get_source(source), discover_files([path])))
    rejects = [r for r in results if not isinstance(r, Trajectory)]
    assert not rejects, rejects
    return results


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _assert_records_equal(got: list[Any], want: list[Any], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} records, expected {len(want)}"
    for index, (a, b) in enumerate(zip(got, want)):
        assert a == b, f"{what}: record {index} differs"
    # Same key order too, so files written with json.dumps are byte-identical.
    assert json.dumps(got) == json.dumps(want), what


# --- shipped α-UMi train-example --------------------------------------------------------------


def test_stage1_file_round_trips(train_example: Path) -> None:
    trajectories = _trajectories("alpha-umi-stage1", train_example / "raw_data_stage_1.json")
    want = _load(train_example / "raw_data_stage_1.json")
    _assert_records_equal([stage1_record(t) for t in trajectories], want, "raw_data_stage_1")


@pytest.mark.parametrize("source,file", [
    ("alpha-umi-stage1", "raw_data_stage_1.json"),
    ("alpha-umi-stage2", "raw_data_stage_2.json"),
])
def test_stage2_and_training_files(train_example: Path, source: str, file: str) -> None:
    trajectories = _trajectories(source, train_example / file)
    stage2 = [stage2_record(t) for t in trajectories]
    _assert_records_equal(stage2, _load(train_example / "raw_data_stage_2.json"), f"{source} → stage 2")
    files = training_files(stage2)
    for name in TRAINING_FILES:
        want = _load(train_example / f"train_{name}.json")
        assert len(want) == TRAINING_COUNTS[name]
        _assert_records_equal(files[name], want, f"{source} → train_{name}")


def test_concatenated_training_records_match(train_example: Path) -> None:
    """training_records per record, concatenated in order, is the official file as well (the
    shipped give-ups all reuse an input from their own record)."""
    stage2 = _load(train_example / "raw_data_stage_2.json")
    merged: dict[str, list[Any]] = {name: [] for name in TRAINING_FILES}
    for record in stage2:
        for name, rows in training_records(record).items():
            merged[name].extend(rows)
    for name in TRAINING_FILES:
        _assert_records_equal(merged[name], _load(train_example / f"train_{name}.json"), f"train_{name}")


# --- the 15 ToolBench answer files ------------------------------------------------------------


def _expected_short_form(function: dict[str, Any]) -> dict[str, Any]:
    properties = function["parameters"].get("properties", {})
    return {
        "Name": function["name"][-64:],
        "function": function["description"][:256],
        "input": {
            arg: (f"{spec['type']}, {spec['description'][-256:]}" if "description" in spec else spec["type"])
            for arg, spec in properties.items()
        },
    }


@pytest.fixture(scope="module")
def toolbench_trajectories(toolbench_answer: Path) -> list[Trajectory]:
    results = list(read_source(get_source("toolbench"), discover_files([toolbench_answer])))
    assert len(results) == 15
    return [r for r in results if isinstance(r, Trajectory)]


def test_toolbench_stage1_is_the_answer_files(toolbench_answer: Path, toolbench_trajectories: list[Trajectory]) -> None:
    assert len(toolbench_trajectories) == 13
    for trajectory in toolbench_trajectories:
        generation = _load(toolbench_answer / trajectory.meta["file"])["answer_generation"]
        record = stage1_record(trajectory)
        assert record["instruction"] == generation["query"]
        assert record["chains"] == generation["train_messages"][-1], trajectory.meta["file"]
        assert json.dumps(record["chains"]) == json.dumps(generation["train_messages"][-1])
        functions = [f for f in generation["function"] if f["name"] != "Finish"]
        assert record["tools"] == [_expected_short_form(f) for f in functions], trajectory.meta["file"]


def test_toolbench_stage2_and_training_counts(toolbench_trajectories: list[Trajectory]) -> None:
    stage1 = [stage1_record(t) for t in toolbench_trajectories]
    stage2 = [stage2_record(t) for t in toolbench_trajectories]
    assert len(stage1) == len(stage2) == 13
    assert [s["tools"] for s in stage2] == [s["tools"] for s in stage1]
    files = training_files(stage2)
    assert {name: len(rows) for name, rows in files.items()} == TOOLBENCH_COUNTS
    backbone = files["backbone"]
    stale = [k for k in range(1, len(backbone)) if backbone[k]["input"] == backbone[k - 1]["input"]]
    assert len(stale) == 4
    assert all(backbone[k]["target"].endswith(GIVE_UP_TARGET_END) for k in stale)
    inputs = [row["input"] for row in backbone]
    assert len(inputs) - len(set(inputs)) == 4


# --- hand-made: rules the shipped files never exercise -----------------------------------------

TOOLS = [{"Name": "a_for_t", "function": "Look things up.", "input": {"x": "string, what to look up"}}]
TRUNCATED = '{"error": "", "response": "{\'k\': \'' + "v" * 30 + "..."


def _chain(*messages: dict[str, Any], query: str) -> dict[str, Any]:
    head = [{"role": "system", "content": "You are AutoGPT."}, {"role": "user", "content": f"\n{query}\nBegin!\n"}]
    return {"tools": TOOLS, "instruction": query, "chains": head + list(messages)}


def _call(content: str | None, name: str, arguments: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "function_call": {"name": name, "arguments": arguments}}


def _result(name: str, content: str) -> dict[str, Any]:
    return {"role": "function", "name": name, "content": content}


HALLUCINATING = _chain(
    _call(None, HALLUCINATED_NAME, "{}"),
    _result(HALLUCINATED_NAME, json.dumps({"error": "No such function name: lookup", "response": ""})),
    {"role": "assistant", "content": "Let me think again."},
    _call("Use the real tool.", "a_for_t", '{\n  "x": "1"\n}'),
    _result("a_for_t", TRUNCATED),
    _call("Done.", "Finish", '{\n  "return_type": "give_answer"\n}'),
    query="Look up 1.",
)
GIVING_UP = _chain(_call("Hopeless.", "Finish", GIVE_UP_ARGUMENTS), query="Do the impossible.")


@pytest.fixture()
def handmade(tmp_path: Path) -> list[Trajectory]:
    path = tmp_path / "raw_data_stage_1.json"
    path.write_text(json.dumps([HALLUCINATING, GIVING_UP]), encoding="utf-8")
    return _trajectories("alpha-umi-stage1", path)


def test_handmade_stage1_round_trip(handmade: list[Trajectory]) -> None:
    assert [stage1_record(t) for t in handmade] == [HALLUCINATING, GIVING_UP]


def test_handmade_stage2_rules(handmade: list[Trajectory]) -> None:
    values = [(t["from"], t["value"]) for t in stage2_record(handmade[0])["conversations"]]
    assert values == [
        ("user", "Look up 1."),
        ("assistant", " Next: caller."),
        ("caller", f"Action: {HALLUCINATED_NAME}\nAction Input: {{}}"),
        ("observation", ""),  # error text dropped
        # the thought-only assistant message is gone (official quirk)
        ("assistant", "Use the real tool.\n Next: caller."),
        ("caller", 'Action: a_for_t\nAction Input: {\n  "x": "1"\n}'),
        ("observation", ' "{\'k\': \'' + "v" * 30 + "..."),  # verbatim after "response":
        ("assistant", "Done.\n Next: conclusion."),
        ("conclusion", "none"),
    ]
    assert stage2_record(handmade[1])["conversations"][1] == {"from": "assistant", "value": "Hopeless.\n Next: give up."}


def test_handmade_training_skips(handmade: list[Trajectory]) -> None:
    files = training_records(stage2_record(handmade[0]))
    assert {name: len(rows) for name, rows in files.items()} == {"backbone": 3, "planner": 2, "caller": 1, "summarizer": 0}
    assert files["planner"][0]["target"] == "Use the real tool.\n Next: caller."
    caller = files["caller"][0]
    # the official file keeps the hallucinated call in `history`, but leaves it out of the prompt
    assert [t["from"] for t in caller["history"]] == ["user", "assistant", "caller", "observation", "assistant"]
    assert HALLUCINATED_NAME not in caller["input"] and "observation: assistant" in caller["input"]
    assert files["backbone"][2]["target"] == "Done.\nconclusion: none"


def test_first_turn_give_up_input(handmade: list[Trajectory]) -> None:
    stage2 = [stage2_record(t) for t in handmade]
    carried = training_files(stage2)["backbone"]
    assert carried[-1]["target"] == "Hopeless.\nconclusion: give up."
    assert carried[-1]["input"] == carried[-2]["input"]  # carried over from the previous record
    alone = training_records(stage2[1])["backbone"][0]
    assert alone["input"] != carried[-1]["input"] and alone["input"].endswith(" assistant: ")
    assert "user: Do the impossible.</s>" in alone["input"]


def test_stage1_needs_a_chain_source(handmade: list[Trajectory], tmp_path: Path) -> None:
    path = tmp_path / "raw_data_stage_2.json"
    path.write_text(json.dumps([stage2_record(handmade[1])]), encoding="utf-8")
    (from_stage2,) = _trajectories("alpha-umi-stage2", path)
    assert stage2_record(from_stage2) == stage2_record(handmade[1])
    with pytest.raises(ValueError, match="only be rebuilt from a trajectory read from ToolBench"):
        stage1_record(from_stage2)


def test_short_form_cuts() -> None:
    tool = ToolSpec(
        name="n" * 10 + "e" * 64,
        description="d" * 256 + "tail",
        parameters={"type": "object", "properties": {
            "q": {"type": "string", "description": "head" + "a" * 256, "example_value": "x"},
            "n": {"type": "integer"},
            "e": {"type": "string", "description": ""},
        }},
    )
    assert short_form_tool(tool) == {
        "Name": "e" * 64, "function": "d" * 256, "input": {"q": "string, " + "a" * 256, "n": "integer", "e": "string, "},
    }
    # a schema without a string type does not stop the build: it reads `any`
    untyped = ToolSpec(name="t", parameters={"properties": {"x": {"description": "no type"}, "y": {"type": ["string", "null"]}}})
    assert short_form_tool(untyped)["input"] == {"x": "any, no type", "y": "any"}
