"""The official α-UMi preprocessing (stage 1 and stage 2), reproduced from umi `Trajectory`s.

umi stores every source as trajectories; compat mode must still produce the official
intermediate files byte for byte (../shared/FORMATS.md §2-§3), quirks included, so that the
official training files (`umi_data.compat_train`) and the published models line up. The
sources keep what this needs: raw argument strings, `""` for null thoughts, the verbatim
observation text (`raw`) where the envelope cannot be rebuilt, `meta.system_prompt`, the
`Finish` argument string (`conclusion.raw_arguments`) and the diversity-prompt flag.

Rules measured on the shipped files (train-example stage 1 → stage 2, and the 15 ToolBench
answer files), not taken from the reference code:

- a give-up `Finish` is always written `{"return_type": "give_up_and_restart"}` indented by
  two spaces (`GIVE_UP_ARGUMENTS`); umi keeps no argument string for give-ups, so stage 1
  writes that text back;
- an observation whose text is not valid JSON (ToolBench's cut at 1024 characters) becomes, in
  stage 2, everything after the first `"response":` verbatim: a leading space, the opening
  quote, the JSON escapes and the trailing `...` all stay;
- a give_answer whose parsed arguments lack `final_answer` gives the answer `"none"`.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    ToolSpec,
    Trajectory,
    UserTurn,
)
from umi_data.prompts import NEXT_SUFFIXES
from umi_data.sources.toolbench import FINISH, parse_finish, parse_json_object

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

__all__ = [
    "GIVE_UP_ARGUMENTS", "MISSING_ANSWER", "short_form_tools", "short_form_tool",
    "stage1_record", "stage2_record", "planner_value", "caller_value", "conversation_value", "SPEAKER", "official_final_answer", "official_observation",
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
    # ToolBench writes null, never "", for a missing thought (32 of 50 in the example files).
    message: dict[str, Any] = {"role": "assistant", "content": turn.thought or None}
    if turn.next == "give_up":
        message["function_call"] = {"name": FINISH, "arguments": GIVE_UP_ARGUMENTS}
    return message


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


def stage2_record(trajectory: Trajectory) -> dict[str, Any]:
    """The official stage-2 record `{tools, instruction, conversations}`.

    For a trajectory read from a stage-2 file this is the original record. Otherwise it is
    what the official stage-2 script writes from the stage-1 record: the instruction as the
    first user turn, assistant messages without a call dropped with their thought (official
    quirk), observations cut down to their `response`, Finish answers re-parsed from their
    argument strings (`"none"` when missing).

    Not yet exact for the static test set's stage-2 variant (`"thought. Next: caller."`, no
    newline): `PlannerTurn` does not keep which separator preceded `Next:`, and this writes
    the official `"\n"`."""
    from_stage2 = trajectory.meta.get("format") == "stage2"
    first = trajectory.turns[0]
    opening = first.content if from_stage2 and isinstance(first, UserTurn) else trajectory.instruction
    conversations = [{"from": "user", "value": opening}]
    for turn in trajectory.turns[1:]:
        if isinstance(turn, PlannerTurn) and turn.next is None and not from_stage2:
            continue
        conversations.append({"from": SPEAKER[turn.role], "value": conversation_value(turn)})
    return {"tools": short_form_tools(trajectory), "instruction": trajectory.instruction, "conversations": conversations}


def planner_value(turn: PlannerTurn) -> str:
    """`thought + "\\n"` (nothing for an empty thought) + `" Next: X."`; a thought that decides
    nothing (only in stage-2 files, e.g. the static test sets) is written bare."""
    if turn.next is None:
        return turn.thought
    prefix = f"{turn.thought}\n" if turn.thought else ""
    return prefix + NEXT_SUFFIXES[turn.next.replace("_", " ")]


def official_observation(turn: ObservationTurn) -> Any:
    """The stage-2 observation: the envelope's `response` (its JSON value, whatever its type),
    or, when the text is not valid JSON, everything after `"response":` verbatim."""
    if turn.raw is None:
        return turn.response
    parsed = parse_json_object(turn.raw)
    if parsed is not None and "response" in parsed:
        return parsed["response"]
    _, key, rest = turn.raw.partition(RESPONSE_KEY)
    # Text that is no envelope at all (not seen in the shipped data) is passed on verbatim.
    return rest if key else turn.response


def official_final_answer(turn: ConclusionTurn) -> Any:
    """The stage-2 conclusion: `final_answer` of the parsed Finish arguments, `"none"` when they
    lack it. Arguments that do not parse as JSON fall back to umi's lenient scan (never seen in
    the shipped data, so the official fallback's exact output is not verified)."""
    if turn.raw_arguments is None:
        return turn.answer
    parsed = parse_json_object(turn.raw_arguments)
    if parsed is not None:
        return parsed.get("final_answer", MISSING_ANSWER)
    _, answer = parse_finish(turn.raw_arguments)
    return answer or MISSING_ANSWER


def conversation_value(
    turn: Any,
    observation: Callable[[ObservationTurn], Any] = official_observation,
    conclusion: Callable[[ConclusionTurn], Any] = official_final_answer,
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
