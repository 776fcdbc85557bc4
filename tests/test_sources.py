"""ToolBench and α-UMi sources: what each message becomes, and the counts on the real files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from umi_data.core import Reject, Trajectory
from umi_data.sources import discover_files, get_source, read_source
from umi_data.sources.alpha_umi import split_plan, tool_from_short_form
from umi_data.sources.toolbench import decode_partial_json_string, parse_finish, parse_observation, query_key


def read_all(source: str, paths: list, **options) -> list[Trajectory | Reject]:
    return list(read_source(get_source(source), discover_files(paths), options))


def tally(items) -> Counter:
    counts = Counter()
    for item in items:
        if isinstance(item, Reject):
            counts[f"reject:{item.reason.value}"] += 1
        else:
            counts[item.outcome] += 1
            counts.update(f"turn:{t.role}" for t in item.turns)
    return counts


# --- the real files (acceptance) ---------------------------------------------------------


def test_toolbench_answer_files(toolbench_answer: Path) -> None:
    items = read_all("toolbench", [toolbench_answer])
    counts = tally(items)
    assert len(items) == 15
    assert counts["reject:invalid_data"] == 2 and sum(isinstance(i, Reject) for i in items) == 2
    assert (counts["answer"], counts["give_up"]) == (9, 4)
    assert counts["turn:caller"] == 37 and counts["turn:observation"] == 37
    turns = [t for i in items if isinstance(i, Trajectory) for t in i.turns]
    planners = [t for t in turns if t.role == "planner"]
    # FORMATS.md §1: 50 assistant turns with a call (37 tools, 13 Finish), 32 of them with a null
    # thought, plus 2 assistant messages without any call; 9 truncated observations.
    assert sum(t.next is not None for t in planners) == 50
    assert sum(t.next is None for t in planners) == 2
    assert sum(t.thought == "" for t in planners) == 32
    observations = [t for t in turns if t.role == "observation"]
    assert sum(t.truncated for t in observations) == 9
    assert sum(t.raw is not None for t in observations) == 9  # exactly the ones not rebuildable
    assert sum(bool(t.error) and not t.response for t in observations) >= 3  # error text kept
    assert [t.name for t in turns if t.role == "caller" and t.hallucinated] == ["dota_2_steam_web"]


def test_toolbench_meta_and_first_user_turn(toolbench_answer: Path) -> None:
    items = read_all("toolbench", [toolbench_answer / "G1_answer" / "10_ChatGPT_DFS_woFilter_w2.json"])
    (trajectory,) = items
    assert trajectory.meta["query_id"] == "10" and trajectory.meta["method"] == "ChatGPT_DFS_woFilter_w2"
    assert trajectory.turns[0].content == trajectory.instruction  # the "\n...\nBegin!\n" wrapper removed
    assert trajectory.meta["system_prompt"].startswith("You are AutoGPT")
    assert "Finish" not in trajectory.tool_names


def test_toolbench_exclusion_is_keyed_by_group(toolbench_answer: Path) -> None:
    items = read_all("toolbench", [toolbench_answer], exclude_query_ids=frozenset({("G1", "10")}))
    excluded = [i for i in items if isinstance(i, Reject) and i.reason == "excluded_test_query"]
    assert [r.source_file for r in excluded] == ["G1_answer/10_ChatGPT_DFS_woFilter_w2.json"]
    kept = {i.meta["file"] for i in items if isinstance(i, Trajectory)}
    assert "G2_answer/10_ChatGPT_DFS_woFilter_w2.json" in kept  # same id, other group


@pytest.mark.parametrize(
    "source,name,expected",
    [
        ("alpha-umi-stage1", "train-example/raw_data_stage_1.json", {"answer": 14, "give_up": 6, "turn:caller": 59}),
        ("alpha-umi-stage2", "train-example/raw_data_stage_2.json", {"answer": 14, "give_up": 6, "turn:caller": 59}),
        ("alpha-umi-stage2", "test/out_of_domain.json", {"answer": 293, "give_up": 107, "turn:caller": 1146}),
    ],
)
def test_alpha_umi_files(shared_data: Path, source: str, name: str, expected: dict) -> None:
    items = read_all(source, [shared_data / "alpha_umi" / name])
    counts = tally(items)
    assert not [i for i in items if isinstance(i, Reject)]
    assert {k: counts[k] for k in expected} == expected


def test_alpha_umi_test_set_decisions(shared_data: Path) -> None:
    """FORMATS.md §5: 1,547 planner decisions (1,146 call, 294 conclusion, 107 give-up) and 111
    assistant turns without `Next:`, including a refused conclusion followed by an observation."""
    items = read_all("alpha-umi-stage2", [shared_data / "alpha_umi" / "test" / "out_of_domain.json"])
    decisions = Counter(t.next for i in items for t in i.turns if t.role == "planner")
    assert decisions == {"caller": 1146, "conclusion": 294, "give_up": 107, None: 111}


def test_stage1_and_stage2_agree(train_example: Path) -> None:
    """The same 20 tasks through both intermediate formats give the same decisions and calls."""
    one = read_all("alpha-umi-stage1", [train_example / "raw_data_stage_1.json"])
    two = read_all("alpha-umi-stage2", [train_example / "raw_data_stage_2.json"])

    def skeleton(t: Trajectory) -> list:
        # stage 2 drops thought-only assistant messages (an official quirk), so compare decisions
        return [(x.role, getattr(x, "next", None), getattr(x, "name", None)) for x in t.turns if getattr(x, "next", 1) is not None]

    assert [t.instruction_id for t in one] == [t.instruction_id for t in two]
    assert [t.tools for t in one] == [t.tools for t in two]
    assert [skeleton(t) for t in one] == [skeleton(t) for t in two]


# --- conversion rules, self-contained -----------------------------------------------------


def test_observation_envelope_opened_and_error_kept() -> None:
    turn = parse_observation(json.dumps({"error": "Rate limit", "response": ""}))
    assert (turn.response, turn.error, turn.truncated, turn.raw) == ("", "Rate limit", False, None)


def test_truncated_observation_recovered() -> None:
    full = json.dumps({"error": "", "response": json.dumps({"name": "Café", "items": list(range(400))})})
    cut = full[:1024] + "..."
    turn = parse_observation(cut)
    assert turn.truncated and turn.raw == cut and turn.error == ""
    assert turn.response.startswith('{"name": "Caf\\u00e9", "items": [0, 1, 2')  # decoded one JSON level
    assert json.loads(full)["response"].startswith(turn.response)


def test_non_envelope_observation_is_the_response() -> None:
    turn = parse_observation("plain text")
    assert (turn.response, turn.raw, turn.truncated) == ("plain text", "plain text", False)


@pytest.mark.parametrize("body,expected", [('ab\\u00e9', "abé"), ('ab\\u00', "ab"), ("ab\\", "ab"), ('a\\"b', 'a"b')])
def test_partial_json_strings(body: str, expected: str) -> None:
    assert decode_partial_json_string(body) == expected


@pytest.mark.parametrize(
    "raw,expected",
    [
        ('{"return_type": "give_answer", "final_answer": "42"}', ("answer", "42")),
        ('{"return_type": "give_up_and_restart"}', ("give_up", "")),
        ('{"return_type": "give_answer"}', ("answer", "")),
        ('{"return_type": "give_answer", "final_answer": "4\\n2', ("answer", "4\n2")),  # cut JSON
    ],
)
def test_finish_arguments(raw: str, expected: tuple) -> None:
    assert parse_finish(raw) == expected


def test_query_key_from_path() -> None:
    assert query_key("G2_answer/10_ChatGPT_DFS_woFilter_w2.json") == ("G2", "10", "ChatGPT_DFS_woFilter_w2")
    assert query_key("10_ChatGPT_DFS.json") == (None, "10", "ChatGPT_DFS")


@pytest.mark.parametrize(
    "value,thought,decision",
    [
        ("Think.\n Next: caller.", "Think.", "caller"),
        (" Next: conclusion.", "", "conclusion"),
        ("Think. Next: give up.", "Think.", "give_up"),  # the test set's variant
        ("Just a thought.\n", "Just a thought.\n", None),
        ("Think\n\n\n Next: caller.", "Think\n\n", "caller"),
    ],
)
def test_stage2_plan_split(value: str, thought: str, decision) -> None:
    turn = split_plan(value)
    assert (turn.thought, turn.next) == (thought, decision)


def test_short_form_tools_round_trip() -> None:
    tool = tool_from_short_form({"Name": "t_for_x", "function": "desc", "input": {"a": "string, the a", "b": "integer", "c": "string, "}})
    props = tool.parameters["properties"]
    assert props == {"a": {"type": "string", "description": "the a"}, "b": {"type": "integer"}, "c": {"type": "string", "description": ""}}
    rebuilt = {k: v["type"] + (", " + v["description"] if "description" in v else "") for k, v in props.items()}
    assert rebuilt == {"a": "string, the a", "b": "integer", "c": "string, "}
