"""Default mode versus compat mode: one test per row of docs/differences.md (`test_row<N>_...`).

Each test renders the same trajectory in both modes, so it fails if the default stops fixing
the bug or if compat stops reproducing it."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from umi_data.__main__ import main
from umi_data.core import (
    HALLUCINATED_NAME,
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    ToolSpec,
    Trajectory,
    UserTurn,
    make_instruction_id,
    outcome_of,
)
from umi_data.rendering.render import AlphaUmiCompatRenderer, DefaultRenderer, observation_text

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "differences.md"
INSTRUCTION = "What is the weather in Paris tomorrow?"
TOOLS = [
    ToolSpec(
        name="forecast_for_weather_demo",
        description="Weather forecast by city.",
        parameters={"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]},
    )
]
CALL = CallerTurn(name="forecast_for_weather_demo", arguments={"city": "Paris"}, raw_arguments='{"city": "Paris"}')
SUNNY = ObservationTurn(response='{"forecast": "sunny, 21 C"}')
PLANNER_TAIL = (
    "\nYou are the assistant to plan what to do next and whether is caller's or conclusion's turn to answer.\n"
    "Answer with a following format:\nThe thought of the next step, followed by Next: caller or conclusion or give up. assistant: "
)
ANSWER = [PlannerTurn(thought="I have the forecast.", next="conclusion"), ConclusionTurn(answer="Sunny, 21 C.")]


def trajectory(*turns, source: str = "synthetic") -> Trajectory:
    body = [UserTurn(content=INSTRUCTION), *turns]
    return Trajectory(
        id="t-0", source=source, instruction=INSTRUCTION, instruction_id=make_instruction_id(INSTRUCTION),
        tools=TOOLS, turns=body, outcome=outcome_of(body), meta={},
    )


def render(mode: str, traj: Trajectory) -> dict[str, list[tuple[str, str]]]:
    renderer = DefaultRenderer() if mode == "default" else AlphaUmiCompatRenderer()
    examples, _ = renderer(traj)
    by_role: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for role, text, target in examples:
        by_role[role].append((text, target))
    return by_role


def step(thought: str = "I will get the forecast.") -> list:
    return [PlannerTurn(thought=thought, next="caller"), CALL, SUNNY]


def test_every_documented_difference_has_a_test() -> None:
    rows = re.findall(r"^\| (\d+) \|", DOC.read_text(), flags=re.M)
    tests = {int(m) for m in re.findall(r"^def test_row(\d+)_", Path(__file__).read_text(), flags=re.M)}
    assert rows and {int(r) for r in rows} == tests


def test_row1_give_up_input_is_recomputed() -> None:
    traj = trajectory(*step(), PlannerTurn(thought="The tool is useless.", next="give_up"))
    default, compat = render("default", traj), render("compat", traj)
    first, give_up = default["backbone"]
    assert give_up[1] == "The tool is useless.\nconclusion: give up."
    assert give_up[0] != first[0] and "observation: {\"forecast\": \"sunny, 21 C\"}" in give_up[0]
    assert compat["backbone"][1][0] == compat["backbone"][0][0]  # official: the stale input


def test_row1_duplicated_inputs_on_the_shared_files(toolbench_answer: Path, train_example: Path, tmp_path: Path) -> None:
    for source, path, give_ups in [
        ("toolbench", toolbench_answer, 4),
        ("alpha-umi-stage1", train_example / "raw_data_stage_1.json", 6),
        ("alpha-umi-stage2", train_example / "raw_data_stage_2.json", 6),
    ]:
        for mode, expected in [("default", 0), ("compat", give_ups)]:
            out = tmp_path / f"{source}-{mode}"
            args = ["build", source, str(path), "--out", str(out), "--no-progress"]
            assert main(args + (["--compat", "alpha-umi"] if mode == "compat" else [])) == 0
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["counts"]["outcomes"]["give_up"] == give_ups
            inputs = pq.read_table(out / "global" / "backbone.parquet").column("input").to_pylist()
            assert len(inputs) - len(set(inputs)) == expected, (source, mode)


def test_row2_thought_only_messages_stay_in_the_history() -> None:
    traj = trajectory(
        PlannerTurn(thought="Let me think about which tool fits.", next=None),
        PlannerTurn(thought="", next=None),  # empty and deciding nothing: says nothing
        *step(), *ANSWER,
    )
    default, compat = render("default", traj), render("compat", traj)
    for role in ("backbone", "planner", "caller", "summarizer"):
        assert len(default[role]) == len(compat[role]), role  # history, never an example
    assert default["planner"][0][0].endswith("assistant: Let me think about which tool fits.</s>" + PLANNER_TAIL)
    assert "assistant: Let me think about which tool fits.</s>assistant: I will get" in default["planner"][1][0]
    assert "assistant: </s>" not in default["planner"][0][0]
    assert "Let me think" in default["caller"][0][0] and "Let me think" in default["summarizer"][0][0]
    assert all("Let me think" not in text for examples in compat.values() for text, _ in examples)


def test_row3_error_text_is_shown() -> None:
    failed = ObservationTurn(response="", error="Timeout error...read timed out")
    traj = trajectory(PlannerTurn(thought="Try it.", next="caller"), CALL, failed, *ANSWER)
    default, compat = render("default", traj), render("compat", traj)
    assert "observation: Error: Timeout error...read timed out" in default["summarizer"][0][0]
    assert "observation: assistant: I have the forecast." in compat["summarizer"][0][0]
    assert observation_text(ObservationTurn(response="partial", error="Message error")) == "partial\nError: Message error"


def test_row4_truncated_observations_are_decoded() -> None:
    raw = '{"error": "", "response": "{\\"forecast\\": \\"sunny...'
    cut = ObservationTurn(response='{"forecast": "sunny', truncated=True, raw=raw)
    traj = trajectory(PlannerTurn(thought="Try it.", next="caller"), CALL, cut, *ANSWER)
    default, compat = render("default", traj), render("compat", traj)
    assert 'observation: {"forecast": "sunny...assistant:' in default["summarizer"][0][0]
    assert 'observation:  "{\\"forecast\\": \\"sunny...assistant:' in compat["summarizer"][0][0]


@pytest.mark.parametrize("name", ["moon_weather_for_weather_demo", HALLUCINATED_NAME])
def test_row5_one_rule_for_hallucinated_calls(name: str) -> None:
    invented = CallerTurn(name=name, arguments={"city": "Paris"}, raw_arguments='{"city": "Paris"}', hallucinated=True)
    missing = ObservationTurn(response="", error=f"No such function name: {name}")
    traj = trajectory(PlannerTurn(thought="Use the moon tool.", next="caller"), invented, missing, *step(), *ANSWER)
    default, compat = render("default", traj), render("compat", traj)
    # default: the hallucinated step trains no role, and every history keeps the call
    assert [len(default[r]) for r in ("backbone", "planner", "caller")] == [2, 2, 1]
    assert all(f"Action: {name}" not in target for examples in default.values() for _, target in examples)
    for role in ("backbone", "planner", "caller", "summarizer"):
        assert f"Action: {name}" in default[role][-1][0], role
    # compat: the backbone always trains on it; planner and caller only skip the rewritten name
    assert f"Action: {name}" in compat["backbone"][0][1]
    rewritten = name == HALLUCINATED_NAME
    assert [len(compat["planner"]), len(compat["caller"])] == ([2, 1] if rewritten else [3, 2])
    assert (f"Action: {name}" in compat["caller"][-1][0]) is not rewritten  # official: hidden from the caller


def test_row6_missing_final_answer() -> None:
    finish = ConclusionTurn(answer="", raw_arguments='{"return_type": "give_answer"}')
    traj = trajectory(*step(), PlannerTurn(thought="Done.", next="conclusion"), finish)
    default, compat = render("default", traj), render("compat", traj)
    assert [t for _, t in compat["backbone"]][-1] == "Done.\nconclusion: none"
    assert len(default["backbone"]) == 1 and len(compat["backbone"]) == 2
    assert len(default["planner"]) == len(compat["planner"]) == 2  # deciding to conclude was right
    assert not default["summarizer"] and not compat["summarizer"]


def test_row7_test_id_exclusion_per_group(tmp_path: Path) -> None:
    sample = REPO / "umi_data" / "samples" / "toolbench" / "answer"
    ids = tmp_path / "test_query_ids"
    ids.mkdir()
    (ids / "G1_instruction_test.json").write_text(json.dumps({"1": "test query"}))
    excluded = {}
    for mode in ("default", "compat"):
        out = tmp_path / mode
        args = ["build", "toolbench", str(sample), "--out", str(out), "--exclude-test-ids", str(ids), "--no-progress"]
        assert main(args + (["--compat", "alpha-umi"] if mode == "compat" else [])) == 0
        rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
        excluded[mode] = sorted(r["source_file"] for r in rejects if r["reason"] == "excluded_test_query")
    assert excluded["default"] == ["G1_answer/1_umi_sample.json"]
    assert excluded["compat"] == ["G1_answer/1_umi_sample.json", "G2_answer/1_umi_sample.json"]


def test_toolalpaca_trajectories_use_the_toolalpaca_templates() -> None:
    examples = render("default", trajectory(*step(), *ANSWER, source="toolalpaca"))
    planner_input = examples["planner"][0][0]
    assert "Next: caller or conclusion." in planner_input and "give up" not in planner_input
    assert "give up" not in examples["backbone"][0][0]
    assert "give up" in render("default", trajectory(*step(), *ANSWER))["planner"][0][0]


def test_row8_empty_thought_spelling_does_not_change_the_text() -> None:
    def spelled(how: str) -> Trajectory:
        return trajectory(PlannerTurn(thought="", empty_thought=how, next="caller"), CALL, SUNNY, *ANSWER)

    assert render("default", spelled("empty_string")) == render("default", spelled("null"))
    compat_empty, compat_null = render("compat", spelled("empty_string")), render("compat", spelled("null"))
    assert compat_empty != compat_null
    assert any("\n Next: caller." in text + target for examples in compat_empty.values() for text, target in examples)
