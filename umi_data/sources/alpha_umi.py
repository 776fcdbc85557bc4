"""The α-UMi intermediate files: stage 1 (`{tools, instruction, chains}`) and stage 2
(`{tools, instruction, conversations}`, also the shape of the static test sets).

Their tools are in α-UMi's short form `{Name, function, input: {arg: "<type>, <description>"}}`;
they become `ToolSpec`s whose parameters are a JSON Schema object, split so that rendering them
back gives the same strings (`"string, "` → type string, description ""; `"string"` → type
string, no description). Which arguments were required is not in the short form.
"""

from __future__ import annotations

import re
from typing import Any

from umi_data.core import (
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    RejectReason,
    ToolSpec,
    Trajectory,
    UserTurn,
    make_instruction_id,
    make_trajectory_id,
    outcome_of,
)
from umi_data.sources.base import Converted, RecordContext, Source
from umi_data.sources.toolbench import caller_turn, messages_to_turns

#: The stage-2 planner suffix: `"\n Next: caller."` after a thought (official stage 2), or
#: `" Next: caller."` (the test set's variant, and a null thought in stage 2).
_NEXT_SUFFIX = re.compile(r"\n? Next: (caller|conclusion|give up)\.$")
_CALL = re.compile(r"Action: (.*?)\nAction Input: (.*)", re.S)
_DIVERSITY_PREFIX = "This is not the first time you try this task"


def tool_from_short_form(tool: dict[str, Any]) -> ToolSpec:
    properties = {}
    for arg, spec in tool["input"].items():
        kind, sep, description = spec.partition(", ")
        properties[arg] = {"type": kind, "description": description} if sep else {"type": kind}
    return ToolSpec(name=tool["Name"], description=tool["function"], parameters={"type": "object", "properties": properties})


def _trajectory(record: dict[str, Any], ctx: RecordContext, tools: list[ToolSpec], turns: list[Any], stage: str) -> Converted:
    if not any(turn.role == "planner" for turn in turns):
        return ctx.reject(RejectReason.NO_DECISION, "the record has no assistant turn")
    return Trajectory(
        id=make_trajectory_id(f"alpha_umi_{stage}", ctx.file.name, ctx.locator, ctx.content_hash),
        source="alpha_umi",
        instruction=record["instruction"],
        instruction_id=make_instruction_id(record["instruction"]),
        tools=tools,
        turns=turns,
        outcome=outcome_of(turns),
        meta={"file": ctx.file.name, "locator": ctx.locator, "format": stage},
    )


def convert_stage1(record: dict[str, Any], ctx: RecordContext) -> Converted:
    tools = [tool_from_short_form(t) for t in record["tools"]]
    turns, system_prompt = messages_to_turns(record["chains"], record["instruction"], {t.name for t in tools})
    result = _trajectory(record, ctx, tools, turns, "stage1")
    if isinstance(result, Trajectory):  # None: the chain has no system message
        result = result.model_copy(update={"meta": {**result.meta, "system_prompt": system_prompt}})
    return result


def convert_stage2(record: dict[str, Any], ctx: RecordContext) -> Converted:
    tools = [tool_from_short_form(t) for t in record["tools"]]
    names = {t.name for t in tools}
    turns: list[Any] = []
    for index, turn in enumerate(record["conversations"]):
        speaker, value = turn["from"], turn["value"]
        if speaker == "caller":
            match = _CALL.fullmatch(value)
            if match is None:
                return ctx.reject(
                    RejectReason.WRONG_TYPE,
                    f"{ctx.locator}.conversations[{index}].value: a caller turn must read 'Action: NAME\\nAction Input: ARGS'",
                )
            turns.append(caller_turn(match.group(1), match.group(2), names))
        else:
            turns.append(_stage2_turn(speaker, value, first=not turns))
    return _trajectory(record, ctx, tools, turns, "stage2")


def _stage2_turn(speaker: str, value: str, first: bool) -> Any:
    if speaker == "user":
        return UserTurn(content=value, diversity_prompt=not first and value.startswith(_DIVERSITY_PREFIX))
    if speaker == "assistant":
        return split_plan(value)
    if speaker == "observation":
        return ObservationTurn(response=value)
    return ConclusionTurn(answer=value)


def split_plan(value: str) -> PlannerTurn:
    """A stage-2 assistant value as thought + decision; without a `Next:` suffix the whole value
    is a thought that decides nothing."""
    match = _NEXT_SUFFIX.search(value)
    if match is None:
        return PlannerTurn(thought=value, next=None)
    decision = match.group(1).replace(" ", "_")
    thought = value[: match.start()]
    # `"\n Next: X."` alone is what stage 2 writes for an empty-string thought, `" Next: X."` for a null one.
    empty = "empty_string" if not thought and value.startswith("\n") else "null"
    return PlannerTurn(thought=thought, next=decision, empty_thought=empty)


STAGE1 = Source(
    name="alpha-umi-stage1",
    schema="alpha_umi_stage1.schema.json",
    records_per_file="list",
    convert=convert_stage1,
)
STAGE2 = Source(
    name="alpha-umi-stage2",
    schema="alpha_umi_stage2.schema.json",
    records_per_file="list",
    convert=convert_stage2,
)
