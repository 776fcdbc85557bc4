"""The official α-UMi preprocessing (stage 1 and stage 2), reproduced from umi `Trajectory`s.

umi stores every source as trajectories; compat mode must still produce what the official
scripts write, JSON-equal record for record, quirks included, on every input they accept
(../shared/FORMATS.md §2-§4, §7), so that the official training files (`umi_data.rendering.compat_train`)
and the published models line up. The core keeps what this needs: raw argument strings
(calls, and Finish for answers and give-ups), how an empty thought was written (null, `""` or
no key), the verbatim observation text (`raw`) where the envelope cannot be rebuilt,
`meta.system_prompt` and the diversity-prompt flag.

Where the official scripts read text, this reads it as they do (Python's json, then their text
fallbacks): a Finish is decided and answered from its argument string (`official_finish`), an
observation from its content (`official_observation`). Where an official script would raise on
a record, this raises `OfficialWouldFail` naming the script and the cause (`official_failure`,
and `stage2_record` itself); compat builds reject such records (`official_would_fail`).

Rules measured on the shipped files (train-example stage 1 → stage 2, and the 15 ToolBench
answer files):

- ToolBench writes a give-up's `Finish` arguments as `GIVE_UP_ARGUMENTS`; umi keeps each
  give-up's own string and writes that constant only for give-ups read without one;
- an observation whose text is not valid JSON (ToolBench's cut at 1024 characters) becomes, in
  stage 2, everything after the first `"response":` verbatim: a leading space, the opening
  quote, the JSON escapes and the trailing `...` all stay (`""` when there is no such key);
- a give_answer whose parsed arguments lack `final_answer` gives the answer `"none"`.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import orjson

from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    ToolSpec,
    Trajectory,
    UserTurn,
)
from umi_data.rendering.prompts import NEXT_SUFFIXES
from umi_data.sources.toolbench import FINISH

#: Short-form limits of the official stage-1 script (FORMATS §2).
NAME_CHARS = 64
DESCRIPTION_CHARS = 256
ARG_DESCRIPTION_CHARS = 256

#: The `Finish` arguments of every give-up in the shipped data (ToolBench's own formatting).
GIVE_UP_ARGUMENTS = '{\n  "return_type": "give_up_and_restart"\n}'
#: What the official stage 2 writes for a give_answer without a `final_answer`.
MISSING_ANSWER = "none"
#: The key after which stage 2 cuts an observation that is not valid JSON.
RESPONSE_KEY = '"response":'
#: The text after which stage 2 reads the answer of Finish arguments that are not a JSON object.
FINAL_ANSWER_KEY = '"final_answer": '

__all__ = [
    "GIVE_UP_ARGUMENTS", "MISSING_ANSWER", "short_form_tools", "short_form_tool",
    "stage1_record", "stage2_record", "planner_value", "caller_value", "conversation_value", "SPEAKER", "official_finish",
    "official_observation", "official_failure", "OfficialWouldFail",
]


# --- tools ------------------------------------------------------------------------------------


def short_form_tools(trajectory: Trajectory) -> list[dict[str, Any]]:
    """The stage-1 tool list `{Name, function, input}`, `Finish` removed: what every α-UMi
    prompt shows as `{doc}` and `{tool_names}`."""
    return [short_form_tool(tool) for tool in trajectory.tools if tool.name != FINISH]


def short_form_tool(tool: ToolSpec) -> dict[str, Any]:
    """One tool in α-UMi's short form. The cuts keep the *end* of the name and of argument
    descriptions but the *start* of the tool description, as the official script does; tools
    read from α-UMi files are already cut, so they come back unchanged."""
    properties = tool.parameters.get("properties") or {}
    inputs = {arg: _short_form_argument(tool.name, arg, spec) for arg, spec in properties.items()}
    return {"Name": tool.name[-NAME_CHARS:], "function": tool.description[:DESCRIPTION_CHARS], "input": inputs}


def _short_form_argument(tool_name: str, arg: str, spec: Any) -> str:
    """`"<type>, <description>"`; the official script reads `type` unguarded (every ToolBench
    argument has one). umi writes `any` for a schema without a string `type` rather than fail
    the whole build on one tool."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    if not isinstance(kind, str):
        kind = "any"
    if not isinstance(spec, dict) or "description" not in spec:
        return kind
    return f"{kind}, {str(spec['description'])[-ARG_DESCRIPTION_CHARS:]}"


# --- stage 1 ----------------------------------------------------------------------------------


def can_rebuild_stage1(trajectory: Trajectory) -> bool:
    """True for trajectories read from a ToolBench chain (answer files or α-UMi stage 1) that
    kept its system prompt."""
    from_chain = trajectory.source == "toolbench" or trajectory.meta.get("format") == "stage1"
    return from_chain and isinstance(trajectory.meta.get("system_prompt"), str)


def stage1_record(trajectory: Trajectory) -> dict[str, Any]:
    """The official stage-1 record `{tools, instruction, chains}`: `chains` is ToolBench's
    `train_messages[-1]` rebuilt message by message.

    Only trajectories read from ToolBench answer files or α-UMi stage-1 files keep what the
    chain needs (the system prompt, Finish argument strings, verbatim observations)."""
    system_prompt = trajectory.meta.get("system_prompt")
    if not can_rebuild_stage1(trajectory):
        raise ValueError(
            f"trajectory {trajectory.id}: a stage-1 record can only be rebuilt from a trajectory read from "
            f"ToolBench answer files or α-UMi stage-1 files, with meta.system_prompt "
            f"(source={trajectory.source!r}, meta.format={trajectory.meta.get('format')!r}, "
            f"system prompt {'present' if isinstance(system_prompt, str) else 'absent'})"
        )
    chains = [{"role": "system", "content": system_prompt}, *_chain_messages(trajectory)]
    return {"tools": short_form_tools(trajectory), "instruction": trajectory.instruction, "chains": chains}


def _chain_messages(trajectory: Trajectory) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    last_call = FINISH  # the `name` of a function message is the call it answers
    for index, turn in enumerate(trajectory.turns):
        if isinstance(turn, UserTurn):
            messages.append(_user_message(turn, trajectory.instruction, first=index == 0))
        elif isinstance(turn, PlannerTurn):
            messages.append(_assistant_message(turn))
        elif isinstance(turn, CallerTurn):
            last_call = turn.name
            messages[-1]["function_call"] = {"name": turn.name, "arguments": turn.raw_arguments}
        elif isinstance(turn, ConclusionTurn):
            last_call = FINISH
            messages[-1]["function_call"] = {"name": FINISH, "arguments": _finish_arguments(trajectory, turn)}
        else:
            messages.append({"role": "function", "name": last_call, "content": _function_content(turn)})
    return messages


def _user_message(turn: UserTurn, instruction: str, first: bool) -> dict[str, Any]:
    if first:
        content = f"\n{instruction}\nBegin!\n" if turn.content == instruction else turn.content
        return {"role": "user", "content": content}
    if turn.diversity_prompt:
        return {"role": "user", "content": turn.content, "valid": False}
    return {"role": "user", "content": turn.content}


def _assistant_message(turn: PlannerTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if turn.thought or turn.empty_thought != "absent":
        message["content"] = turn.thought or _EMPTY_CONTENT[turn.empty_thought]
    if turn.next == "give_up":
        message["function_call"] = {"name": FINISH, "arguments": turn.raw_arguments or GIVE_UP_ARGUMENTS}
    return message


#: The `content` of an assistant message whose thought is empty, by `PlannerTurn.empty_thought`.
_EMPTY_CONTENT = {"null": None, "empty_string": ""}


def _finish_arguments(trajectory: Trajectory, turn: ConclusionTurn) -> str:
    if turn.raw_arguments is None:
        raise ValueError(f"trajectory {trajectory.id}: a conclusion without its Finish argument string (raw_arguments)")
    return turn.raw_arguments


def _function_content(turn: ObservationTurn) -> str:
    if turn.raw is not None:
        return turn.raw
    return json.dumps({"error": turn.error, "response": turn.response})


# --- stage 2 ----------------------------------------------------------------------------------

#: umi role → stage-2 speaker (also the speakers of umi's default conversations).
SPEAKER = {
    "user": "user", "planner": "assistant", "caller": "caller",
    "observation": "observation", "conclusion": "conclusion",
}


class OfficialWouldFail(ValueError):
    """An official α-UMi script raises on this record (compat mode rejects it, reason
    `official_would_fail`); the message names the script and the cause."""


def stage2_record(trajectory: Trajectory) -> dict[str, Any]:
    """The official stage-2 record `{tools, instruction, conversations}`; raises
    `OfficialWouldFail` where the official stage 2 would raise.

    For a trajectory read from a stage-2 file this is the original record. Otherwise it is
    what the official stage-2 script writes from the stage-1 record: the instruction as the
    first user turn, assistant messages without a call dropped with their thought (official
    quirk), observations cut down to their `response` (`official_observation`), Finish calls
    decided and answered again from their argument strings (`official_finish`).

    Not yet exact for the static test set's stage-2 variant (`"thought. Next: caller."`, no
    newline): `PlannerTurn` does not keep which separator preceded `Next:`, and this writes
    the official `"\n"`."""
    from_stage2 = trajectory.meta.get("format") == "stage2"
    first = trajectory.turns[0]
    opening = first.content if from_stage2 and isinstance(first, UserTurn) else trajectory.instruction
    conversations = [{"from": "user", "value": opening}]
    turns = trajectory.turns
    for index in range(_first_stage2_turn(trajectory), len(turns)):
        turn = turns[index]
        if from_stage2:
            conversations.append({"from": SPEAKER[turn.role], "value": conversation_value(turn)})
        elif isinstance(turn, PlannerTurn):
            if turn.empty_thought == "absent":
                raise OfficialWouldFail(f"prepro_raw_stage_2.py raises KeyError: turn {index} is an assistant message without a content key")
            following = turns[index + 1] if index + 1 < len(turns) else None
            conversations.extend(_official_plan(turn, following))
        elif not isinstance(turn, ConclusionTurn):  # a conclusion is written with its plan
            conversations.append({"from": SPEAKER[turn.role], "value": conversation_value(turn)})
    return {"tools": short_form_tools(trajectory), "instruction": trajectory.instruction, "conversations": conversations}


def _first_stage2_turn(trajectory: Trajectory) -> int:
    """The official stage 2 skips the chain's first two messages, system prompt and first user
    message; in a chain read without a system message (the sources then record
    `meta.system_prompt` None) that is the first user message and the one after it (with the
    call or answer it carries)."""
    if "system_prompt" not in trajectory.meta or trajectory.meta["system_prompt"] is not None:
        return 1
    second = trajectory.turns[1]
    return 3 if isinstance(second, PlannerTurn) and second.next in ("caller", "conclusion") else 2


def _official_plan(turn: PlannerTurn, following: Any) -> list[dict[str, Any]]:
    """What stage 2 writes for one assistant message: nothing without a call (official quirk),
    else the assistant value and, for an answer, the conclusion. A Finish is decided again
    from its argument string, as the official script does, which may differ from umi's reading."""
    if turn.next is None:
        return []
    if turn.next == "caller":
        return [{"from": "assistant", "value": planner_value(turn)}]
    conclusion = following if isinstance(following, ConclusionTurn) else None
    raw = conclusion.raw_arguments if conclusion is not None else turn.raw_arguments
    if raw is None:  # not read from a ToolBench Finish (e.g. ToolAlpaca): umi's reading is all there is
        decision, answer = turn.next, conclusion.answer if conclusion is not None else None
    else:
        content = None if turn.empty_thought == "null" and not turn.thought else turn.thought
        decision, answer = official_finish(raw, content)
    plan = {"from": "assistant", "value": planner_value(turn.model_copy(update={"next": decision}))}
    return [plan] if decision == "give_up" else [plan, {"from": "conclusion", "value": answer}]


def planner_value(turn: PlannerTurn) -> str:
    """`thought + "\\n"` + `" Next: X."`, where the thought is empty: `"\\n"` after an empty
    string (official stage 2 tests `content is not None`), nothing after a null thought. A
    thought that decides nothing (only in stage-2 files, e.g. the static test sets) is written
    bare."""
    if turn.next is None:
        return turn.thought
    prefix = f"{turn.thought}\n" if turn.thought or turn.empty_thought == "empty_string" else ""
    return prefix + NEXT_SUFFIXES[turn.next.replace("_", " ")]


#: What stage 2 writes for an observation that is not JSON and holds no `"response":`.
NO_RESPONSE = ""


def official_observation(turn: ObservationTurn) -> Any:
    """The stage-2 observation, as the official script reads the function message's content
    with Python's json: the envelope's `response` (its JSON value, whatever its type); for
    text that is not JSON, everything after the first `"response":` verbatim, or `""` without
    one; a JSON string is read like text. Raises `OfficialWouldFail` for other JSON values (the
    script calls `.find` on them)."""
    if turn.raw is None:
        return turn.response
    value = python_json(turn.raw)
    if value is _NOT_JSON:
        return _after_response_key(turn.raw)
    if isinstance(value, dict) and "response" in value:
        return value["response"]
    if isinstance(value, str):
        return _after_response_key(value)
    raise OfficialWouldFail(
        f"prepro_raw_stage_2.py raises AttributeError: a function message's content is JSON {_json_kind(value)} "
        "without a response key"
    )


def _after_response_key(text: str) -> str:
    _, key, rest = text.partition(RESPONSE_KEY)
    return rest if key else NO_RESPONSE


def official_finish(raw: str, content: str | None) -> tuple[str, Any]:
    """(decision, answer) of a Finish call as the official stage 2 reads it: `"give_up"`, or
    `"conclusion"` with the answer. Arguments that Python's json reads as an object with a
    `return_type` decide by it (answer: `final_answer`, any JSON value, else `"none"`);
    anything else falls back to text: `give_up_and_restart` anywhere gives up; else the raw
    text after `"final_answer": `, stripped of whitespace, then `}`, then `"` at both ends
    (escapes stay as written); else the thought (`content`), or `"none"` when it was null."""
    value = python_json(raw)
    if isinstance(value, dict) and "return_type" in value:
        if value["return_type"] == "give_up_and_restart":
            return "give_up", None
        return "conclusion", value.get("final_answer", MISSING_ANSWER)
    if "give_up_and_restart" in raw:
        return "give_up", None
    _, key, rest = raw.partition(FINAL_ANSWER_KEY)
    if key:
        return "conclusion", rest.strip().strip("}").strip('"')
    return "conclusion", MISSING_ANSWER if content is None else content


_NOT_JSON = object()


def python_json(text: str) -> Any:
    """`text` read as Python's json reads it (NaN, Infinity and lone surrogates allowed), as
    the official scripts do; `_NOT_JSON` when it does not parse."""
    try:
        return orjson.loads(text)  # the same value where both parse, much faster
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _json_kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null")


def official_failure(conversations: list[dict[str, Any]], backbone_input_known: bool = True) -> str | None:
    """Why the official role scripts (prepro_{backbone,planner,caller,summarizer}.py) would raise
    on a stage-2 conversation, or None: they concatenate every value as text (TypeError on
    anything else); the backbone and planner look at the turn after an assistant turn that is
    not a give-up (IndexError when there is none); and the backbone's give-up reuses the input
    of an earlier step, which does not exist (`backbone_input_known` False) before the first
    call or conclusion step of the whole run (TypeError: it is Python's builtin `input`)."""
    if not backbone_input_known and _gives_up_before_any_step(conversations):
        return "prepro_backbone.py raises TypeError: a give-up comes before any call or conclusion step of the run, so its reused input is undefined"
    for index, turn in enumerate(conversations):
        if not isinstance(turn["value"], str):
            return (
                f"the role scripts (prepro_backbone/planner/caller/summarizer.py) raise TypeError: the {turn['from']} "
                f"value of conversation turn {index} is {_json_kind(turn['value'])}, not text"
            )
    last = conversations[-1]
    if last["from"] == "assistant" and "Next: give up." not in last["value"]:
        return "prepro_backbone.py and prepro_planner.py raise IndexError: the conversation ends in an assistant turn that does not give up"
    return None


def _gives_up_before_any_step(conversations: list[dict[str, Any]]) -> bool:
    for index, turn in enumerate(conversations):
        if turn["from"] != "assistant":
            continue
        if "Next: give up." in turn["value"]:
            return True
        following = conversations[index + 1]["from"] if index + 1 < len(conversations) else None
        if following in ("caller", "conclusion"):
            return False
    return False


def conversation_value(
    turn: Any,
    observation: Callable[[ObservationTurn], Any] = official_observation,
    conclusion: Callable[[ConclusionTurn], Any] = lambda turn: turn.answer,
) -> Any:
    """A turn's stage-2 `value`. Compat and umi's default mode write every role the same way
    except observations and conclusions: pass their renderings (default: the official ones)."""
    if isinstance(turn, UserTurn):
        return turn.content
    if isinstance(turn, PlannerTurn):
        return planner_value(turn)
    if isinstance(turn, CallerTurn):
        return caller_value(turn.name, turn.raw_arguments)
    if isinstance(turn, ObservationTurn):
        return observation(turn)
    return conclusion(turn)


def caller_value(name: str, raw_arguments: str) -> str:
    """What the caller writes: `Action: <name>\\nAction Input: <arguments>`."""
    return f"Action: {name}\nAction Input: {raw_arguments}"
