"""ToolBench answer files (`data/answer/G{1,2,3}_answer/{query_id}_{method}.json`).

The chosen trajectory is `answer_generation.train_messages[-1]`; its OpenAI-style messages map
onto the core turns as follows (../shared/FORMATS.md §1):

- `system`: not a turn (it is the AutoGPT prompt with the tool list); kept in `meta.system_prompt`.
- first `user`: the instruction; ToolBench's wrapper `"\\n{query}\\nBegin!\\n"` is removed when
  the message is exactly that, else the text is kept verbatim.
- later `user` messages (`valid: false`): the DFS diversity prompts, kept and flagged.
- `assistant`: a planner turn with the thought (`""` for null, empty or absent content, which
  `empty_thought` tells apart); with a tool call it is
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
    Reject,
    RejectReason,
    ToolSpec,
    Trajectory,
    INT_RANGE,
    UserTurn,
    find_unstorable,
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


def precheck(record: Any, ctx: RecordContext) -> Reject | None:
    """Before the shape check: a file ToolBench marks invalid (`valid_data: false`, written with
    `train_messages: []` or none when its search failed) is `invalid_data` whatever else is wrong
    with it; in compat mode an empty `train_messages` is where the official stage 1 raises."""
    generation = record.get("answer_generation") if isinstance(record, dict) else None
    if not isinstance(generation, dict):
        return None
    if generation.get("valid_data") is False and umi_path(record) is not None:
        generation["train_messages"] = umi_path(record)  # umi's own unfinished run: the path it played
        return None
    if generation.get("valid_data") is False:
        return ctx.reject(
            RejectReason.INVALID_DATA,
            "answer_generation.valid_data is false: ToolBench kept no trajectory (train_messages) for this search",
        )
    if ctx.options.get("compat") and generation.get("train_messages") == []:
        return ctx.reject(
            RejectReason.OFFICIAL_WOULD_FAIL,
            "prepro_raw_stage_1.py raises IndexError: answer_generation.train_messages is [] (it reads train_messages[-1])",
        )
    return None


def umi_path(record: dict[str, Any]) -> list[Any] | None:
    """The played path of an answer file umi wrote for a run that neither answered nor gave up,
    or None. ToolBench marks such a run `valid_data: false` with no `train_messages` (and so does
    umi, for StableToolBench's converter); umi also keeps the path under its own top-level
    `umi` key (`{version, episode_id, method, search, outcome, train_messages}`), so its builder
    reads the run back as the unfinished trajectory it records. ToolBench's own invalid files have
    no such key and stay `invalid_data`."""
    umi = record.get("umi")
    if not isinstance(umi, dict) or not isinstance(umi.get("episode_id"), str):
        return None
    path = umi.get("train_messages")
    return path if isinstance(path, list) and path else None


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    generation = record["answer_generation"]
    group, query_id, method = query_key(ctx.file.name)
    excluded_by = _exclusion(group, query_id, ctx.options)
    if excluded_by is not None:
        return ctx.reject(RejectReason.EXCLUDED_TEST_QUERY, f"query {query_id} of {group} {excluded_by}")
    failure = official_stage1_failure(generation["function"]) if ctx.options.get("compat") else None
    if failure is not None:
        return ctx.reject(RejectReason.OFFICIAL_WOULD_FAIL, f"prepro_raw_stage_1.py raises {failure}")
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
    if isinstance(record.get("umi"), dict):  # written by umi_agent.run: who played it
        meta["umi"] = {k: v for k, v in record["umi"].items() if k != "train_messages"}
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


def official_stage1_failure(functions: list[dict[str, Any]]) -> str | None:
    """Why the official stage 1 would raise on this tool list, or None: it reads each tool's
    `description` and `parameters.properties`, and each argument's `type`, without a guard, and
    joins type and description as text when there is a description."""
    for index, function in enumerate(functions):
        if function["name"] == FINISH:
            continue
        where = f"on answer_generation.function[{index}]"
        parameters = function.get("parameters")
        if "description" not in function or not isinstance(parameters, dict) or "properties" not in parameters:
            return f"KeyError {where}: a tool needs description and parameters.properties"
        if not isinstance(function["description"], str):
            return f"TypeError {where}: the description is not text"
        for arg, spec in parameters["properties"].items():
            if "type" not in spec:
                return f"KeyError {where}: argument {arg!r} has no type"
            if "description" in spec and not (isinstance(spec["type"], str) and isinstance(spec["description"], str)):
                return f"TypeError {where}: argument {arg!r} joins a type and a description that are not both text"
    return None


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
        content = message.get("content")  # null or absent only for assistant messages (the schema says so)
        if role == "system":
            system_prompt = content
        elif role == "user":
            turns.append(_user_turn(content, query, first=not turns, flagged=message.get("valid") is False))
        elif role == "assistant":
            turns.extend(_assistant_turns(message, tool_names))
        else:
            turns.append(parse_observation(content))
    return turns, system_prompt


def _user_turn(content: str, query: str, first: bool, flagged: bool) -> UserTurn:
    if first and content == f"\n{query}\nBegin!\n":
        content = query
    return UserTurn(content=content, diversity_prompt=flagged or not first)


def _assistant_turns(message: dict[str, Any], tool_names: set[str]) -> list[Any]:
    content = message.get("content")
    plan = {"thought": content or "", "empty_thought": thought_form(message)}
    call = message.get("function_call")
    if call is None:
        return [PlannerTurn(**plan, next=None)]
    name, raw = call["name"], call["arguments"]
    if name == FINISH:
        kind, answer = parse_finish(raw)
        if kind == "give_up":
            return [PlannerTurn(**plan, next="give_up", raw_arguments=raw)]
        return [PlannerTurn(**plan, next="conclusion"), ConclusionTurn(answer=answer, raw_arguments=raw)]
    return [PlannerTurn(**plan, next="caller"), caller_turn(name, raw, tool_names)]


def thought_form(message: dict[str, Any]) -> str:
    """`PlannerTurn.empty_thought` of an assistant message: how it wrote a missing thought."""
    if "content" not in message:
        return "absent"
    return "empty_string" if message["content"] == "" else "null"


def caller_turn(name: str, raw: str, tool_names: set[str]) -> CallerTurn:
    """A call with its raw argument string, parsed arguments (None unless a JSON object), and
    whether the name is outside the tool list. Raises `UnstorableValueError` when the arguments
    decode to a lone surrogate (the record is then rejected `invalid_text`)."""
    hallucinated = name not in tool_names or name == HALLUCINATED_NAME
    arguments = parse_json_object(raw)
    if arguments is None:
        refuse_lone_surrogates(raw, f"the arguments of the call to {name[:64]!r}")
    return CallerTurn(name=name, arguments=arguments, raw_arguments=raw, hallucinated=hallucinated)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """`text` parsed when it is a JSON object umi can store exactly, else None (see `json_value`)."""
    value = json_value(text)
    return value if isinstance(value, dict) else None


#: Not JSON, or not JSON that umi can store exactly.
NOT_JSON = object()
# An integer beyond 64 bits has at least 19 digits; orjson would read it as an inexact float.
_LONG_DIGITS = re.compile(r"\d{19}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _WideInteger(Exception):
    pass


def _narrow_int(digits: str) -> int:
    if len(digits.lstrip("-")) > 20:
        raise _WideInteger
    value = int(digits)
    if not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise _WideInteger
    return value


def json_value(text: str) -> Any:
    """`text` as strict JSON (RFC 8259 with 64-bit integers): `NOT_JSON` for a syntax error,
    NaN or Infinity, a lone surrogate escape, or an integer beyond 64 bits, which umi could
    only store changed. The raw text is always kept beside the parse."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return NOT_JSON
    if _LONG_DIGITS.search(text):
        try:
            json.loads(text, parse_int=_narrow_int)
        except _WideInteger:
            return NOT_JSON
        except (ValueError, RecursionError):
            pass
    return value


def refuse_lone_surrogates(text: str, what: str) -> None:
    """Raise `UnstorableValueError` when Python's json (which ToolBench and ToolAlpaca ran on
    this text) reads a lone surrogate from `text`: no UTF-8 file can hold what it meant."""
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return
    problem = find_unstorable(value, what)
    if problem is not None and problem.text:
        raise problem


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
    precheck=precheck,
)
