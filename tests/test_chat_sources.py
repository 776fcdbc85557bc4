"""The chat-format imports (`openai-messages`, `sharegpt-tools`, `hermes`): what each message
becomes (the mapping in umi_data/sources/chat.py), every variant the formats allow (fixtures in
tests/fixtures/chat, hand-written), named rejects, JSON Lines files, and a build of each.

The real Glaive demo (../shared/data/llamafactory) is in tests/test_chat_glaive.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from umi_data.__main__ import main
from umi_data.building.build import BuildConfig, build_corpus
from umi_data.core import ConclusionTurn, PlannerTurn, Reject, RejectReason, Trajectory, UserTurn, check_turn_order
from umi_data.sources import get_source, read_source
from umi_data.sources.base import InputFile

FIXTURES = Path(__file__).parent / "fixtures" / "chat"


def read(source: str, path: Path) -> list[Trajectory | Reject]:
    return list(read_source(get_source(source), [InputFile(path, path.name)]))


def by_locator(source: str, name: str) -> dict[str, Trajectory | Reject]:
    items = read(source, FIXTURES / name)
    return {(i.locator if isinstance(i, Reject) else i.meta["locator"]): i for i in items}


def turns(trajectory: Trajectory) -> list[tuple]:
    """Each turn as a short tuple: (role, the fields that matter)."""
    out = []
    for t in trajectory.turns:
        if t.role == "user":
            out.append(("user", t.content))
        elif t.role == "planner":
            out.append(("planner", t.thought, t.next))
        elif t.role == "caller":
            out.append(("caller", t.name, t.raw_arguments, t.hallucinated))
        elif t.role == "observation":
            out.append(("observation", t.response))
        else:
            out.append(("conclusion", t.answer))
    return out


def reasons(items: list[Any]) -> Counter:
    return Counter(i.reason.value for i in items if isinstance(i, Reject))


# --- openai-messages ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai() -> dict[str, Any]:
    return by_locator("openai-messages", "openai_finetune.jsonl")


def test_openai_call_thought_arguments_verbatim_and_answer(openai: dict) -> None:
    t = openai["$[0]"]
    assert turns(t) == [
        ("user", "Weather in Lyon?"),
        ("planner", "Let me look it up.", "caller"),
        ("caller", "get_weather", '{"city":  "Lyon"}', False),  # the argument string kept byte for byte
        ("observation", '{"temp": 21}'),
        ("planner", "", "conclusion"),
        ("conclusion", "It is 21 degrees in Lyon."),
    ]
    assert t.outcome == "answer" and t.instruction == "Weather in Lyon?" and t.source == "openai_messages"
    assert t.meta["system_prompt"] == "You are a weather bot." and t.tool_names == ["get_weather"]
    assert t.tools[0].parameters["required"] == ["city"]


def test_openai_parallel_calls_are_consecutive_steps_paired_by_id(openai: dict) -> None:
    t = openai["$[1]"]  # results written in the other order (b, then a)
    assert turns(t)[1:7] == [
        ("planner", "", "caller"), ("caller", "get_weather", '{"city": "Lyon"}', False), ("observation", "Lyon: 21"),
        ("planner", "", "caller"), ("caller", "get_weather", '{"city": "Paris"}', False), ("observation", "Paris: 18"),
    ]
    assert t.meta["parallel_messages"] == 1 and t.meta["parallel_calls"] == [[2, 5]]  # the callers of one message


def test_openai_legacy_function_call_and_empty_result(openai: dict) -> None:
    t = openai["$[3]"]
    assert turns(t)[1:4] == [("planner", "", "caller"), ("caller", "get_weather", '{"city": "Lyon"}', False), ("observation", "")]
    assert t.tool_names == ["get_weather"]  # from the legacy `functions`


def test_openai_object_arguments_string_tools_and_xlam_parameters(openai: dict) -> None:
    t = openai["$[4]"]
    caller = t.turns[2]
    assert caller.arguments == {"value": 3, "unit": "km"} and json.loads(caller.raw_arguments) == caller.arguments
    assert t.turns[1].empty_thought == "absent"  # no content key at all
    # xLAM parameters (a bare {arg: {type, description}} map) become the properties
    assert t.tools[0].parameters == {"type": "object", "properties": {"value": {"type": "int", "description": "amount"},
                                                                        "unit": {"type": "str", "description": "unit"}}}


def test_openai_parallel_calls_without_results_are_unfinished(openai: dict) -> None:
    t = openai["$[5]"]  # xLAM converted: two calls, no results
    assert turns(t)[1:] == [
        ("planner", "", "caller"), ("caller", "sum", '{"n": 4}', False), ("observation", ""),
        ("planner", "", "caller"), ("caller", "multiply", '{"a": 2, "b": 5}', False),
    ]
    assert t.outcome == "unfinished" and t.meta["unanswered_calls"] == 1


def test_openai_ending_on_a_call_and_a_hallucinated_name(openai: dict) -> None:
    t = openai["$[6]"]
    assert turns(t)[-1] == ("caller", "fly_left", "{}", True) and t.outcome == "unfinished"


def test_openai_multi_turn_is_one_trajectory(openai: dict) -> None:
    t = openai["$[7]"]
    assert [x[0] for x in turns(t)] == ["user", "planner", "conclusion", "user", "planner", "caller", "observation",
                                        "planner", "conclusion", "user"]
    assert t.meta["user_turns"] == 3 and t.outcome == "unfinished"  # the last user message has no reply


def test_openai_finish_give_up_and_answer(openai: dict) -> None:
    give_up, answer = openai["$[8]"], openai["$[9]"]
    assert turns(give_up)[1:] == [("planner", "No tool can do that.", "give_up")]
    assert give_up.outcome == "give_up" and give_up.turns[1].raw_arguments == '{"return_type": "give_up_and_restart"}'
    assert give_up.tools == []  # ToolBench's Finish schema is the convention, not a tool
    assert turns(answer)[1:] == [("planner", "I know this.", "conclusion"), ("conclusion", "Paris")]
    assert answer.turns[2].raw_arguments == '{"return_type": "give_answer", "final_answer": "Paris"}'


def test_openai_text_before_the_answer_is_its_thought(tmp_path: Path) -> None:
    """The inverse of umi's chat export: a text-only assistant message right before the answer
    is the thought that decided to answer; one before anything else decides nothing."""
    record = {"messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "aside"}, {"role": "assistant", "content": "so I answer"},
        {"role": "assistant", "content": "A"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "B"}]}
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(record) + "\n")
    [t] = read("openai-messages", path)
    assert turns(t) == [("user", "q"), ("planner", "aside", None), ("planner", "so I answer", "conclusion"), ("conclusion", "A"),
                        ("user", "q2"), ("planner", "", "conclusion"), ("conclusion", "B")]


def test_openai_content_parts_and_reasoning(openai: dict) -> None:
    t = openai["$[10]"]
    assert t.instruction == "Weather in Oslo?"
    assert turns(t)[1] == ("planner", "The user wants the weather.", "caller")
    assert turns(t)[-2:] == [("planner", "It is cold.", "conclusion"), ("conclusion", "-3 degrees in Oslo.")]


def test_openai_trl_prompt_completion(openai: dict) -> None:
    t = openai["$[11]"]
    assert t.meta["format"] == "openai-prompt-completion"
    assert turns(t)[2] == ("caller", "get_weather", '{"city": "Rome"}', False) and t.outcome == "answer"


def test_openai_rejects_are_named(openai: dict) -> None:
    expected = {
        "$[12]": "orphan_tool_result", "$[13]": "orphan_tool_result", "$[14]": "unanswered_call", "$[15]": "unknown_role",
        "$[16]": "no_user_turn", "$[17]": "no_decision", "$[18]": "unsupported_content", "$[19]": "invalid_call",
        "$[20]": "invalid_tools", "$[21]": "truncated_json", "$[22]": "wrong_type",
    }
    assert {k: v.reason.value for k, v in openai.items() if isinstance(v, Reject)} == expected
    assert openai["$[21]"].detail.startswith("line 22: ")
    assert "$[2]" not in openai  # the blank line is no record
    assert sum(isinstance(v, Trajectory) for v in openai.values()) == 12


def test_raw_xlam_rows(openai: dict) -> None:
    t = openai["$[23]"]
    assert t.meta["format"] == "xlam" and t.meta["record_id"] == 7 and t.tool_names == ["sum_to", "is_prime"]
    assert t.tools[0].parameters["properties"]["n"] == {"description": "upper end", "type": "int", "default": 10}
    assert turns(t)[1:] == [("planner", "", "caller"), ("caller", "sum_to", '{"n": 4}', False), ("observation", ""),
                            ("planner", "", "caller"), ("caller", "is_prime", '{"num": 17}', False)]
    assert t.outcome == "unfinished" and t.meta["parallel_calls"] == [[2, 5]]


def test_openai_array_and_one_record_files() -> None:
    array = read("openai-messages", FIXTURES / "openai_array.json")
    assert [i.meta["locator"] for i in array] == ["$[0]", "$[1]"]
    observation = array[0].turns[3]
    assert (observation.response, observation.error, observation.raw) == ("sunny", "", None)  # ToolBench envelope opened
    [one] = read("openai-messages", FIXTURES / "openai_one_record.json")
    assert one.meta["locator"] == "$" and turns(one) == [("user", "Hi"), ("planner", "", "conclusion"), ("conclusion", "Hello")]


# --- sharegpt-tools -------------------------------------------------------------------------


def test_sharegpt_llamafactory_variants() -> None:
    items = by_locator("sharegpt-tools", "sharegpt_llamafactory.json")
    assert turns(items["$[0]"])[1:4] == [("planner", "", "caller"), ("caller", "get_weather", '{"city": "Lyon"}', False),
                                         ("observation", '{"temp": 21}')]
    assert items["$[0]"].meta["system_prompt"] == "You are a weather bot."
    # a list of calls in one function_call turn; one observation holding a JSON list of results
    assert [x for x in turns(items["$[1]"]) if x[0] == "observation"] == [("observation", "Lyon: 21"),
                                                                         ("observation", '{"city": "Paris", "temp": 18}')]
    # role/content tags; gpt text then a function_call: a thought that decides nothing, then the call
    # (string arguments verbatim, an empty result); a text right before the answer is its thought
    assert turns(items["$[2]"])[1:] == [
        ("planner", "I will convert it.", None), ("planner", "", "caller"), ("caller", "convert", '{"value": 3}', False),
        ("observation", ""), ("planner", "", "conclusion"), ("conclusion", "The converter returned nothing.")]
    # a <think> thought before the JSON; no tools ("") makes the call hallucinated; two user turns
    assert turns(items["$[3]"])[1:3] == [("planner", "I need the restaurant tool.", "caller"), ("caller", "book_table", '{"people": 2}', True)]
    assert items["$[3]"].meta["user_turns"] == 2
    assert {k: v.reason.value for k, v in items.items() if isinstance(v, Reject)} == {
        "$[4]": "invalid_call", "$[5]": "invalid_tools", "$[6]": "unknown_role"}


def test_sharegpt_thought_block_and_joined_results_read_exactly(tmp_path: Path) -> None:
    """LLaMA-Factory's thought block and its separator of merged results (what its OpenAI
    converter and umi's sharegpt export write) are read back exactly."""
    record = {"conversations": [
        {"from": "human", "value": "Lyon and Paris?"},
        {"from": "function_call", "value": "<think>\n  two cities\n</think>\n\n" + json.dumps(
            [{"name": "w", "arguments": {"c": "Lyon"}}, {"name": "w", "arguments": {"c": "Paris"}}])},
        {"from": "observation", "value": "21\n</tool_response>\n<tool_response>\n18"},
        {"from": "gpt", "value": "21 and 18."}], "tools": json.dumps([{"name": "w", "parameters": {"type": "object", "properties": {}}}])}
    path = tmp_path / "x.json"
    path.write_text(json.dumps([record]))
    [t] = read("sharegpt-tools", path)
    assert turns(t)[1] == ("planner", "  two cities", "caller")
    assert [x for x in turns(t) if x[0] == "observation"] == [("observation", "21"), ("observation", "18")]
    assert t.meta["merged_results"] == 0


def test_hermes_thought_before_the_blocks_is_kept_exactly(tmp_path: Path) -> None:
    record = {"conversations": [{"from": "human", "value": "q"},
                                {"from": "gpt", "value": "  indented thought\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>"}]}
    path = tmp_path / "x.json"
    path.write_text(json.dumps(record))
    [t] = read("hermes", path)
    assert turns(t)[1:] == [("planner", "  indented thought", "caller"), ("caller", "f", "{}", True)]


def test_glaive_raw_chat_rows() -> None:
    items = by_locator("sharegpt-tools", "glaive_raw.jsonl")
    first = items["$[0]"]
    assert first.tool_names == ["calculate_bmi", "get_time"] and first.meta["format"] == "glaive-chat"
    assert turns(first) == [
        ("user", "My BMI? I weigh 70 kg and I am 1.75 m tall."),
        ("planner", "", "caller"), ("caller", "calculate_bmi", '{"weight": 70, "height": 1.75}', False),
        ("observation", '{"bmi": 22.86}'), ("planner", "", "conclusion"), ("conclusion", "Your BMI is 22.86."),
        ("user", "Thanks!"), ("planner", "", "conclusion"), ("conclusion", "You're welcome!"),
    ]
    assert items["$[1]"].tools == [] and items["$[1]"].outcome == "answer"
    assert items["$[2]"].reason == RejectReason.INVALID_CALL


def test_toolace_raw_rows_bracket_calls_and_result_lists() -> None:
    [t] = read("sharegpt-tools", FIXTURES / "toolace_raw.json")
    assert t.meta["format"] == "toolace" and t.tool_names == ["Market Trends API", "stock.quote"]  # from the system prompt
    assert turns(t)[1:7] == [  # a multi-word name kept whole; results paired by name
        ("planner", "", "caller"), ("caller", "Market Trends API", '{"trend_type": "MARKET_INDEXES, gainers", "country": "us"}', False),
        ("observation", '{"gainers": ["NVDA"]}'),
        ("planner", "", "caller"), ("caller", "stock.quote", '{"symbol": "AAPL"}', False), ("observation", '{"price": 190.5}'),
    ]
    assert turns(t)[-1] == ("conclusion", "[3, 2, 1]")  # a list that names no tool is an answer


# --- hermes ---------------------------------------------------------------------------------


def test_hermes_v1_python_reprs_parallel_calls_by_name() -> None:
    items = by_locator("hermes", "hermes_v1.json")
    t = items["$[0]"]
    assert t.tool_names == ["get_weather", "get_time"] and t.meta["category"] == "Weather"
    # results written time-first are paired by name; a Python-repr result is kept as text
    assert turns(t)[1:7] == [
        ("planner", "", "caller"), ("caller", "get_weather", '{"city": "Lyon", "metric": true}', False),
        ("observation", '{"temp": 21, "rain": null}'),
        ("planner", "", "caller"), ("caller", "get_time", "{}", False), ("observation", "12:00"),
    ]
    second = items["$[1]"]  # tools one JSON object per line; text before the call is the thought
    assert second.tool_names == ["search", "open"]
    assert turns(second)[1] == ("planner", "I will search first.", "caller")
    assert turns(second)[-1] == ("caller", "browse", '{"url": "umi.example"}', True) and second.outcome == "unfinished"
    chatml = items["$[2]"]
    assert chatml.meta["format"] == "hermes-chatml" and turns(chatml)[3] == ("observation", "5")
    assert turns(items["$[3]"])[-1] == ("conclusion", '{"name": "Ada"}')  # json-mode rows: an answer without tools
    assert items["$[4]"].reason == RejectReason.INVALID_CALL
    qwen = items["$[5]"]  # results in a user turn made only of <tool_response> blocks
    assert turns(qwen)[3] == ("observation", "5") and qwen.meta["user_turns"] == 1


# --- files, core and build ------------------------------------------------------------------


def test_a_conclusion_may_be_followed_by_the_next_user_message() -> None:
    check_turn_order([UserTurn(content="a"), PlannerTurn(next="conclusion"), ConclusionTurn(answer="b"), UserTurn(content="c")])


@pytest.mark.parametrize("content,reason", [(b"", "empty_file"), (b"\n \n", "empty_file")])
def test_empty_json_lines_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    [reject] = read("openai-messages", path)
    assert (reject.reason.value, reject.locator) == (reason, "$")


def test_a_bad_line_rejects_only_itself(tmp_path: Path) -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + f"{good}\nnot json\n{good}\n".encode() + "{\"messages\": \"caf\u00e9\"}".encode("latin-1") + b"\n")
    items = read("openai-messages", path)
    assert [type(i).__name__ for i in items] == ["Trajectory", "Reject", "Trajectory", "Reject"]
    assert (items[1].reason, items[1].locator) == (RejectReason.INVALID_JSON, "$[1]")
    assert (items[3].reason, items[3].locator) == (RejectReason.NOT_UTF8, "$[3]")
    assert items[0].id != items[2].id  # same content, other line


def test_validate_reads_json_lines(capsys) -> None:
    assert main(["validate", "openai-messages", str(FIXTURES / "openai_finetune.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "openai_finetune.jsonl: $[22].messages: expected array, got string" in out
    assert "$[21]: truncated_json: line 22" in out and out.count("$[21]: truncated_json") == 1
    # validate says what build would reject, from build's own code path (the counts of test_build_counts_every_record)
    assert out.rstrip().endswith("build would reject 11 record(s) (invalid_call: 1, invalid_tools: 1, no_decision: 1, no_user_turn: 1, "
                                 "orphan_tool_result: 2, truncated_json: 1, unanswered_call: 1, unknown_role: 1, unsupported_content: 1, wrong_type: 1)")
    assert main(["validate", "hermes", str(FIXTURES / "hermes_v1.json")]) == 1  # schema-valid; one call build rejects
    assert capsys.readouterr().out.rstrip().endswith("build would reject 1 record(s) (invalid_call: 1)")


@pytest.mark.parametrize("source,names,accepted,rejects", [
    ("openai-messages", ["openai_finetune.jsonl", "openai_array.json", "openai_one_record.json"], 15,
     {"orphan_tool_result": 2, "unanswered_call": 1, "unknown_role": 1, "no_user_turn": 1, "no_decision": 1,
      "unsupported_content": 1, "invalid_call": 1, "invalid_tools": 1, "truncated_json": 1, "wrong_type": 1}),
    ("sharegpt-tools", ["sharegpt_llamafactory.json", "glaive_raw.jsonl", "toolace_raw.json"], 7,
     {"invalid_call": 2, "invalid_tools": 1, "unknown_role": 1}),
    ("hermes", ["hermes_v1.json"], 5, {"invalid_call": 1}),
])
def test_build_counts_every_record(source: str, names: list, accepted: int, rejects: dict, tmp_path: Path) -> None:
    result = build_corpus(BuildConfig(source=source, inputs=[str(FIXTURES / n) for n in names]), tmp_path / "c")
    counts = result.manifest["counts"]
    assert counts["accepted"] == accepted and counts["rejected_by_reason"] == rejects
    assert counts["read"] == accepted + sum(rejects.values())
    card = (tmp_path / "c" / "README.md").read_text()
    assert all(reason in card for reason in rejects)
    examples = result.manifest["examples"]
    assert examples["planner"]["total"] > 0 and examples["caller"]["total"] > 0 and examples["summarizer"]["total"] > 0
