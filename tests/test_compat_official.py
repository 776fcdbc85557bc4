"""Compat parity on inputs the shipped files never show (../shared/FORMATS.md §7): one hand-made
ToolBench answer file per behaviour of the official α-UMi scripts, with the official output
written out by hand (worked out from what prepro_raw_stage_1/2.py and prepro_{backbone,planner,
caller,summarizer}.py do), and one per input on which an official script raises: compat mode
rejects those (`official_would_fail`), default mode keeps them when they are valid trajectories.

Self-contained: every input is written under `tmp_path`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.rendering.compat import OfficialWouldFail, stage1_record
from umi_data.core import HALLUCINATED_NAME, RejectReason, Trajectory
from umi_data.rendering.render import AlphaUmiCompatRenderer
from umi_data.sources import get_source, read_source
from umi_data.sources.base import InputFile

QUERY = "Weather in Lyon?"
SYSTEM = {"role": "system", "content": "You are AutoGPT."}
FIRST_USER = {"role": "user", "content": f"\n{QUERY}\nBegin!\n"}
WEATHER = {
    "name": "weather_for_meteo",
    "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "the city"}}, "required": ["city"]},
}
FINISH = {
    "name": "Finish",
    "description": "Give the final answer or restart.",
    "parameters": {"type": "object", "properties": {"return_type": {"type": "string"}}, "required": ["return_type"]},
}
SHORT_FORM = [{"Name": "weather_for_meteo", "function": "Current weather of a city.", "input": {"city": "string, the city"}}]


def call(content: Any, name: str, arguments: str, *, key: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if not key:
        del message["content"]
    message["function_call"] = {"name": name, "arguments": arguments}
    return message


def result(name: str, content: str) -> dict[str, Any]:
    return {"role": "function", "name": name, "content": content}


LOOKUP = call("Checking.", "weather_for_meteo", '{"city": "Lyon"}')
SUNNY = result("weather_for_meteo", '{"error": "", "response": "sunny"}')
ANSWER = call(None, "Finish", '{"return_type": "give_answer", "final_answer": "Sunny."}')


def answer_file(*messages: dict[str, Any]) -> dict[str, Any]:
    chain = [SYSTEM, FIRST_USER, *messages]
    answer = {"answer_generation": {"valid_data": True, "query": QUERY, "function": [WEATHER, FINISH], "train_messages": [chain]}}
    return copy.deepcopy(answer)  # tests may change it


def build(tmp_path: Path, *answers: dict[str, Any], compat: bool = True) -> tuple[dict[str, Any], dict[str, list[Any]], list[Any]]:
    """(manifest counts, the alpha_umi files by name, rejects) of a build over answer files
    `G1_answer/{i}_case.json`."""
    root = tmp_path / "answer" / "G1_answer"
    root.mkdir(parents=True, exist_ok=True)
    for index, answer in enumerate(answers, 1):
        (root / f"{index}_case.json").write_text(json.dumps(answer), encoding="utf-8")
    out = tmp_path / ("compat" if compat else "default")
    config = BuildConfig(source="toolbench", inputs=[str(tmp_path / "answer")], compat="alpha-umi" if compat else None)
    result = build_corpus(config, out, progress=False)
    files = {p.stem: json.loads(p.read_text("utf-8")) for p in (out / "alpha_umi").glob("*.json")} if compat else {}
    return result.manifest["counts"], files, result.rejects


def conversations(files: dict[str, list[Any]]) -> list[tuple[str, Any]]:
    [record] = files["raw_data_stage_2"]
    return [(turn["from"], turn["value"]) for turn in record["conversations"]]


# --- the six behaviours of the official scripts ------------------------------------------------


def test_finish_arguments_not_strict_json_give_the_raw_text(tmp_path: Path) -> None:
    # A trailing comma: json.loads fails, so stage 2 takes the text after `"final_answer": `,
    # stripped of whitespace, then "}", then '"' at both ends; the \n escape stays two characters.
    finish = call(None, "Finish", '{"return_type": "give_answer", "final_answer": "Sunny\\nand warm",}')
    counts, files, _ = build(tmp_path, answer_file(LOOKUP, SUNNY, finish))
    assert counts["accepted"] == 1
    official_answer = 'Sunny\\nand warm",'
    assert conversations(files) == [
        ("user", QUERY),
        ("assistant", "Checking.\n Next: caller."),
        ("caller", 'Action: weather_for_meteo\nAction Input: {"city": "Lyon"}'),
        ("observation", "sunny"),
        ("assistant", " Next: conclusion."),
        ("conclusion", official_answer),
    ]
    assert [r["target"] for r in files["train_summarizer"]] == [official_answer]
    assert files["train_backbone"][-1]["target"] == "\nconclusion: " + official_answer
    # umi's own reading (default mode) decodes the answer
    [trajectory] = read(tmp_path / "answer" / "G1_answer" / "1_case.json")
    assert trajectory.turns[-1].answer == "Sunny\nand warm"


def test_observation_without_json_or_response_key_is_empty(tmp_path: Path) -> None:
    limited = result("weather_for_meteo", "Rate limit exceeded, try again later")
    counts, files, _ = build(tmp_path, answer_file(LOOKUP, limited, ANSWER))
    assert counts["accepted"] == 1
    assert conversations(files)[3] == ("observation", "")
    assert "</s>observation: assistant:  Next: conclusion.</s>" in files["train_summarizer"][0]["input"]


def test_empty_string_thought_writes_a_newline(tmp_path: Path) -> None:
    empty = call("", "weather_for_meteo", '{"city": "Lyon"}')
    counts, files, _ = build(tmp_path, answer_file(empty, SUNNY, ANSWER))
    assert counts["accepted"] == 1
    assert conversations(files)[1] == ("assistant", "\n Next: caller.")
    assert conversations(files)[4] == ("assistant", " Next: conclusion.")  # null content: no newline
    assert files["train_planner"][0]["target"] == "\n Next: caller."
    # stage 1 keeps "" apart from null
    assert files["raw_data_stage_1"][0]["chains"][2]["content"] == ""
    assert files["raw_data_stage_1"][0]["chains"][4]["content"] is None


def test_stage1_copies_an_assistant_message_without_content_as_is(tmp_path: Path) -> None:
    keyless = call(None, "weather_for_meteo", '{"city": "Lyon"}', key=False)
    answer = answer_file(keyless, SUNNY, ANSWER)
    path = tmp_path / "G1_answer" / "1_case.json"
    path.parent.mkdir()
    path.write_text(json.dumps(answer), encoding="utf-8")
    [trajectory] = read(path)
    official_chain = [
        {"role": "system", "content": "You are AutoGPT."},
        {"role": "user", "content": "\nWeather in Lyon?\nBegin!\n"},
        {"role": "assistant", "function_call": {"name": "weather_for_meteo", "arguments": '{"city": "Lyon"}'}},
        {"role": "function", "name": "weather_for_meteo", "content": '{"error": "", "response": "sunny"}'},
        {"role": "assistant", "content": None, "function_call": {"name": "Finish", "arguments": '{"return_type": "give_answer", "final_answer": "Sunny."}'}},
    ]
    assert stage1_record(trajectory) == {"tools": SHORT_FORM, "instruction": QUERY, "chains": official_chain}


def test_caller_history_keeps_the_hallucinated_call(tmp_path: Path) -> None:
    invented = call(None, HALLUCINATED_NAME, '{"city": "Lyon"}')
    refused = result(HALLUCINATED_NAME, '{"error": "No such function name: forecast", "response": ""}')
    counts, files, _ = build(tmp_path, answer_file(invented, refused, LOOKUP, SUNNY, ANSWER))
    assert counts["accepted"] == 1
    [caller] = files["train_caller"]
    assert caller["history"] == [
        {"from": "user", "value": QUERY},
        {"from": "assistant", "value": " Next: caller."},
        {"from": "caller", "value": f'Action: {HALLUCINATED_NAME}\nAction Input: {{"city": "Lyon"}}'},
        {"from": "observation", "value": ""},
        {"from": "assistant", "value": "Checking.\n Next: caller."},
    ]
    # ... while its prompt leaves it out (the official caller never adds it to its history text)
    assert f"user: {QUERY}</s>assistant:  Next: caller.</s>observation: assistant: Checking.\n Next: caller.</s>" in caller["input"]
    assert HALLUCINATED_NAME not in caller["input"]


def test_summarizer_prompt_leaves_out_a_refused_none_conclusion(tmp_path: Path) -> None:
    no_answer = call("Done?", "Finish", '{"return_type": "give_answer"}')
    refusal = result("Finish", '{"error": "", "response": "Please give the final answer."}')
    counts, files, _ = build(tmp_path, answer_file(LOOKUP, SUNNY, no_answer, refusal, ANSWER))
    assert counts["accepted"] == 1
    assert conversations(files)[5:7] == [("conclusion", "none"), ("observation", "Please give the final answer.")]
    [summary] = files["train_summarizer"]
    assert summary["target"] == "Sunny."
    assert {"from": "conclusion", "value": "none"} in summary["history"]
    assert summary["input"].endswith(
        "assistant: Done?\n Next: conclusion.</s>observation: Please give the final answer."
        "assistant:  Next: conclusion.</s> conclusion: "
    )
    assert "conclusion: none</s>" not in summary["input"]
    # the planner and caller prompts do show it
    assert "conclusion: none</s>" in files["train_planner"][-1]["input"]


# --- where an official script raises: compat rejects, default keeps ----------------------------


def read(path: Path) -> list[Trajectory]:
    return list(read_source(get_source("toolbench"), [InputFile(path, f"G1_answer/{path.name}")]))


WOULD_FAIL = {
    "assistant without content (stage 2 KeyError)": (
        answer_file(call(None, "weather_for_meteo", '{"city": "Lyon"}', key=False), SUNNY, ANSWER),
        "prepro_raw_stage_2.py raises KeyError",
    ),
    "observation response is an object (role scripts TypeError)": (
        answer_file(LOOKUP, result("weather_for_meteo", '{"error": "", "response": {"sky": "clear"}}'), ANSWER),
        "raise TypeError: the observation value of conversation turn 3 is an object",
    ),
    "observation response is a list (role scripts TypeError)": (
        answer_file(LOOKUP, result("weather_for_meteo", '{"error": "", "response": ["clear", 21]}'), ANSWER),
        "raise TypeError: the observation value of conversation turn 3 is an array",
    ),
    "observation content is a JSON list (stage 2 AttributeError)": (
        answer_file(LOOKUP, result("weather_for_meteo", '["clear", 21]'), ANSWER),
        "prepro_raw_stage_2.py raises AttributeError: a function message's content is JSON an array",
    ),
    "final answer is a number (role scripts TypeError)": (
        answer_file(LOOKUP, SUNNY, call(None, "Finish", '{"return_type": "give_answer", "final_answer": 21}')),
        "raise TypeError: the conclusion value of conversation turn 5 is a number",
    ),
}


@pytest.mark.parametrize("case", WOULD_FAIL, ids=list(WOULD_FAIL))
def test_compat_rejects_what_the_official_scripts_raise_on(case: str, tmp_path: Path) -> None:
    answer, cause = WOULD_FAIL[case]
    counts, files, rejects = build(tmp_path, answer)
    assert counts["accepted"] == 0 and counts["rejected_by_reason"] == {"official_would_fail": 1}
    [reject] = rejects
    assert (reject.source_file, reject.locator) == ("G1_answer/1_case.json", "$")
    assert cause in reject.detail, reject.detail
    assert not files  # nothing invented for it
    default_counts, _, _ = build(tmp_path / "d", answer, compat=False)
    assert default_counts["accepted"] == 1


def test_empty_train_messages(tmp_path: Path) -> None:
    answer = answer_file(LOOKUP)
    answer["answer_generation"]["train_messages"] = []
    _, _, [reject] = build(tmp_path, answer)
    assert reject.reason == RejectReason.OFFICIAL_WOULD_FAIL
    assert reject.detail.startswith("prepro_raw_stage_1.py raises IndexError")
    _, _, [reject] = build(tmp_path / "d", answer, compat=False)
    assert reject.reason == RejectReason.WRONG_SHAPE
    answer["answer_generation"]["valid_data"] = False  # what ToolBench writes when its search failed
    for compat in (True, False):
        _, _, [reject] = build(tmp_path / f"invalid{compat}", answer, compat=compat)
        assert reject.reason == RejectReason.INVALID_DATA


def test_tool_without_description_fails_stage1(tmp_path: Path) -> None:
    answer = answer_file(LOOKUP, SUNNY, ANSWER)
    del answer["answer_generation"]["function"][0]["description"]
    _, _, [reject] = build(tmp_path, answer)
    assert reject.reason == RejectReason.OFFICIAL_WOULD_FAIL
    assert reject.detail.startswith("prepro_raw_stage_1.py raises KeyError on answer_generation.function[0]")
    assert build(tmp_path / "d", answer, compat=False)[0]["accepted"] == 1


def test_a_give_up_before_any_backbone_step_of_the_run(tmp_path: Path) -> None:
    """The official backbone reuses the input of the last call or conclusion step for a give-up;
    before the first one of the whole run there is none (it would use Python's `input`). A
    renderer that starts the run says so; a build (rendered in parts, the stale input resolved
    when they are joined) keeps umi's fresh input there (docs/differences.md, not covered)."""
    give_up = call("Hopeless.", "Finish", '{"return_type": "give_up_and_restart"}')
    path = tmp_path / "G1_answer" / "1_case.json"
    path.parent.mkdir()
    path.write_text(json.dumps(answer_file(give_up)), encoding="utf-8")
    [trajectory] = read(path)
    with pytest.raises(OfficialWouldFail, match="prepro_backbone.py raises TypeError"):
        AlphaUmiCompatRenderer()(trajectory)
    # after a call step, a give-up reuses that step's input
    counts, files, rejects = build(tmp_path / "b", answer_file(LOOKUP, SUNNY, ANSWER), answer_file(give_up))
    assert counts["accepted"] == 2 and not rejects
    assert files["train_backbone"][-1]["input"] == files["train_backbone"][-2]["input"]


def test_official_give_up_where_umi_reads_an_answer(tmp_path: Path) -> None:
    """Finish arguments that are not JSON: the official stage 2 gives up when the text holds
    `give_up_and_restart` anywhere, even where umi's own reading finds an answer."""
    finish = call(None, "Finish", '{"return_type": "give_answer", "final_answer": "I will not give_up_and_restart"')
    counts, files, _ = build(tmp_path, answer_file(LOOKUP, SUNNY, finish))
    assert counts["accepted"] == 1
    assert conversations(files)[-1] == ("assistant", " Next: give up.")
    assert files["raw_data_stage_1"][0]["chains"][-1] == finish
    [trajectory] = read(tmp_path / "answer" / "G1_answer" / "1_case.json")
    assert trajectory.outcome == "answer"
