"""ToolBench answer files (`data/answer/G{1,2,3}_answer/{query_id}_{method}.json`).

The chosen trajectory is `answer_generation.train_messages[-1]`; its OpenAI-style messages map
onto the core turns as follows (../shared/FORMATS.md §1):

- `system`: not a turn (it is the AutoGPT prompt with the tool list); kept in `meta.system_prompt`.
- first `user`: the instruction; ToolBench's wrapper `"\\n{query}\\nBegin!\\n"` is removed when
  the message is exactly that, else the text is kept verbatim.
- later `user` messages (`valid: false`): the DFS diversity prompts, kept and flagged.
- `assistant`: a planner turn with the thought (`""` for null content); with a tool call it is
  followed by a caller turn; with a `Finish` call it decides `conclusion` (followed by the
  answer) or `give_up`; without any call it is a thought that decides nothing (`next=None`).
- `function`: an observation; the `{"error", "response"}` envelope is opened, and truncated
  (invalid) JSON is recovered as far as it goes, with the verbatim text kept in `raw`.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

import orjson

from umi_data.core import (
    HALLUCINATED_NAME,
    CallerTurn,
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

FINISH = "Finish"
#: The method part of the answer files written by `python -m umi_data synth`.
SYNTHETIC_METHOD = "synthetic"
_GROUP_DIR = re.compile(r"^(G\d+)_answer$")


def query_key(file_name: str) -> tuple[str | None, str, str]:
    """(group, query id, method) from a relative path like `G1_answer/10_ChatGPT_DFS_woFilter_w2.json`.
    Query ids restart in every group, so exclusions must use the (group, id) pair."""
    path = PurePosixPath(file_name)
    match = _GROUP_DIR.match(path.parent.name)
    query_id, _, method = path.stem.partition("_")
    return (match.group(1) if match else None), query_id, method


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    generation = record["answer_generation"]
    if not generation["valid_data"]:
        return ctx.reject(
            RejectReason.INVALID_DATA,
            "answer_generation.valid_data is false: ToolBench kept no trajectory (train_messages) for this search",
        )
    group, query_id, method = query_key(ctx.file.name)
    excluded_by = _exclusion(group, query_id, ctx.options)
    if excluded_by is not None:
        return ctx.reject(RejectReason.EXCLUDED_TEST_QUERY, f"query {query_id} of {group} {excluded_by}")
    messages = generation["train_messages"][-1]
    tools = [tool_from_function(f) for f in generation["function"] if f["name"] != FINISH]
    turns, system_prompt = messages_to_turns(messages, generation["query"], {t.name for t in tools})
    if not any(turn.role == "planner" for turn in turns):
        return ctx.reject(RejectReason.NO_DECISION, "the trajectory has no assistant message")
    meta = {
        "file": ctx.file.name,
        "group": group,
        "query_id": query_id,
        "method": method,
        "win": record.get("win"),
        "finish_type": generation.get("finish_type"),
        "query_count": generation.get("query_count"),
        "total_tokens": generation.get("total_tokens"),
        "system_prompt": system_prompt,
    }
    # umi's synthetic world writes ToolBench answer files named `<id>_synthetic.json`.
    source = "synthetic" if method == SYNTHETIC_METHOD else "toolbench"
    return Trajectory(
        id=make_trajectory_id(source, ctx.file.name, ctx.locator, ctx.content_hash),
        source=source,
        instruction=generation["query"],
        instruction_id=make_instruction_id(generation["query"]),
        tools=tools,
        turns=turns,
        outcome=outcome_of(turns),
        meta=meta,
    )


def _exclusion(group: str | None, query_id: str, options: dict[str, Any]) -> str | None:
    """Why this query is excluded as a test query, or None.

    Query ids restart in every group, so umi keys exclusions by (group, id). The official
    α-UMi scripts pool the ids of all groups (G1's test query `10` also excludes G2's `10`);
    the option `exclude_ids_any_group` (set by compat builds) reproduces that."""
    if (group, query_id) in options.get("exclude_query_ids", frozenset()):
        return "is in the test-id exclusion list"
    if query_id in options.get("exclude_ids_any_group", frozenset()):
        return "shares its id with a test query of another group (ids pooled across groups, as the official scripts do)"
    return None


def tool_from_function(function: dict[str, Any]) -> ToolSpec:
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return ToolSpec(name=function["name"], description=function.get("description", ""), parameters=parameters)


def messages_to_turns(messages: list[dict[str, Any]], query: str, tool_names: set[str]) -> tuple[list[Any], str | None]:
    """Core turns of a ToolBench message chain, and the system prompt (None if absent)."""
    turns: list[Any] = []
    system_prompt = None
    for message in messages:
        role = message["role"]
        content = message.get("content") or ""
        if role == "system":
            system_prompt = content
        elif role == "user":
            turns.append(_user_turn(content, query, first=not turns, flagged=message.get("valid") is False))
        elif role == "assistant":
            turns.extend(_assistant_turns(content, message.get("function_call"), tool_names))
        else:
            turns.append(parse_observation(content))
    return turns, system_prompt


def _user_turn(content: str, query: str, first: bool, flagged: bool) -> UserTurn:
    if first and content == f"\n{query}\nBegin!\n":
        content = query
    return UserTurn(content=content, diversity_prompt=flagged or not first)


def _assistant_turns(thought: str, call: dict[str, str] | None, tool_names: set[str]) -> list[Any]:
    if call is None:
        return [PlannerTurn(thought=thought, next=None)]
    name, raw = call["name"], call["arguments"]
    if name == FINISH:
        kind, answer = parse_finish(raw)
        if kind == "give_up":
            return [PlannerTurn(thought=thought, next="give_up")]
        return [PlannerTurn(thought=thought, next="conclusion"), ConclusionTurn(answer=answer, raw_arguments=raw)]
    return [PlannerTurn(thought=thought, next="caller"), caller_turn(name, raw, tool_names)]


def caller_turn(name: str, raw: str, tool_names: set[str]) -> CallerTurn:
    """A call with its raw argument string, parsed arguments (None unless a JSON object), and
    whether the name is outside the tool list."""
    hallucinated = name not in tool_names or name == HALLUCINATED_NAME
    return CallerTurn(name=name, arguments=parse_json_object(raw), raw_arguments=raw, hallucinated=hallucinated)


def parse_json_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


_RETURN_TYPE = re.compile(r'"return_type"\s*:\s*"(\w+)"')
_FINAL_ANSWER = re.compile(r'"final_answer"\s*:\s*"((?:[^"\\]|\\.)*)', re.S)


def parse_finish(raw: str) -> tuple[str, str]:
    """("answer", text) or ("give_up", "") from a Finish call's argument string.

    Unparsable arguments fall back to a lenient scan for `return_type` and `final_answer`; a
    give_answer without a final answer gives "" (the official scripts write "none")."""
    parsed = parse_json_object(raw)
    if parsed is not None:
        return_type, answer = parsed.get("return_type"), parsed.get("final_answer")
    else:
        found_type, found_answer = _RETURN_TYPE.search(raw), _FINAL_ANSWER.search(raw)
        return_type = found_type.group(1) if found_type else None
        answer = decode_partial_json_string(found_answer.group(1)) if found_answer else None
    if return_type == "give_up_and_restart":
        return "give_up", ""
    return "answer", answer if isinstance(answer, str) else ("" if answer is None else json.dumps(answer))


_ENVELOPE_ERROR = re.compile(r'^\{"error": "((?:[^"\\]|\\.)*)", "response": ', re.S)


def parse_observation(content: str) -> ObservationTurn:
    """Open ToolBench's `json.dumps({"error": e, "response": r})` envelope (cut at 1024
    characters + "...", which leaves long ones invalid)."""
    parsed = _json_envelope(content)
    if parsed is not None:
        error, response = parsed
        exact = json.dumps({"error": error, "response": response}) == content
        return ObservationTurn(response=response, error=error, raw=None if exact else content)
    match = _ENVELOPE_ERROR.match(content)
    if match is None:  # not an envelope at all: the text is the response, kept verbatim in raw too
        return ObservationTurn(response=content, raw=content)
    rest = content[match.end():]
    truncated = content.endswith("...")
    body = rest[:-3] if truncated else rest
    response = decode_partial_json_string(body[1:]) if body.startswith('"') else body
    return ObservationTurn(
        response=response, error=decode_partial_json_string(match.group(1)), truncated=truncated, raw=content
    )


def _json_envelope(content: str) -> tuple[str, str] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or set(value) != {"error", "response"}:
        return None
    error, response = value["error"], value["response"]
    text = lambda v: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)  # noqa: E731
    return text(error), text(response)


def decode_partial_json_string(body: str) -> str:
    """Decode the inside of a JSON string literal that may be cut anywhere (even mid-escape)."""
    if body.endswith('"') and not body.endswith('\\"'):
        body = body[:-1]
    for cut in range(0, 7):  # drop at most an incomplete trailing escape such as `\u00e` or `\`
        candidate = body[: len(body) - cut] if cut else body
        try:
            return json.loads(f'"{candidate}"')
        except json.JSONDecodeError:
            continue
    return body


SOURCE = Source(
    name="toolbench",
    schema="toolbench_answer.schema.json",
    records_per_file="one",
    convert=convert,
)
