"""OpenAI-style chat records with tools (`openai-messages`): OpenAI's fine-tuning JSONL, TRL's
conversational datasets (also their prompt/completion form), xLAM / APIGen data converted to
messages, StableToolBench's newer `tool_calls` chains (../shared/TOOLCALLING.md §1-2, §5).

A record is `{"messages": [...], "tools"?: [...] | "<JSON string>", "functions"?: [...]}` or
`{"prompt": [...], "completion": [...], "tools"?}`; files are JSON Lines, a JSON array of
records, or one record. Each message:

- `system` / `developer`: the system prompt (not a turn).
- `user`: a user turn.
- `assistant`: `content` (text, null, absent, or text parts) is the thought of its calls, or
  the answer when it has none; `reasoning_content` / `reasoning` (a separate reasoning text,
  when present) comes first in the thought, and is the planner thought before an answer.
  `tool_calls[i]` = `{id?, type?, function: {name, arguments}}` (also flat `{name, arguments}`);
  `arguments` a JSON string (kept verbatim as `raw_arguments`) or an object (TRL; kept as its
  JSON text). Legacy `function_call: {name, arguments}`.
- `tool` (`tool_call_id`, `content`), legacy `function` (`name`, `content`) and Llama's
  `ipython`: a tool result, linked by id, else by name, else by order.

Raw xLAM / APIGen rows (`{id, query, tools, answers}`, tools and answers as JSON strings; no
tool results) are read too: the query, then one assistant message making the answers' calls,
so the trajectory is `unfinished` (parallel calls before the last get empty results).

`weight` (OpenAI's 0/1 loss switch) is not kept: umi trains every decision of its roles.
How messages become turns: umi_data/sources/chat.py.
"""

from __future__ import annotations

from typing import Any

from umi_data.core import RejectReason
from umi_data.sources.base import Converted, RecordContext, Source
from umi_data.sources.chat import (
    Call, ChatReject, Message, arguments_text, chat_trajectory, loads_lenient, parse_tools, rejecting, scalar_id, text_of,
)

SOURCE_NAME = "openai_messages"
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool", "function": "tool", "ipython": "tool"}


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    if "messages" not in record and "query" in record and "answers" in record:
        return _xlam(record, ctx)
    if "messages" in record:
        raw, shape = record["messages"], "messages"
    else:
        raw, shape = record["prompt"] + record["completion"], "prompt-completion"
    messages = [message_of(m, f"{ctx.locator}.{shape if shape == 'messages' else 'prompt+completion'}[{i}]") for i, m in enumerate(raw)]
    tools = parse_tools(record.get("tools"), f"{ctx.locator}.tools") + parse_tools(record.get("functions"), f"{ctx.locator}.functions")
    return chat_trajectory(messages, tools, ctx, SOURCE_NAME, {"format": f"openai-{shape}", "record_id": scalar_id(record)})


def message_of(message: dict[str, Any], where: str) -> Message:
    role = _ROLES.get(message["role"])
    if role is None:
        raise ChatReject(RejectReason.UNKNOWN_ROLE, f"{where}.role: {message['role'][:40]!r} is not an OpenAI message role")
    content = text_of(message.get("content"), f"{where}.content")
    if role == "tool":
        call_id = message.get("tool_call_id")
        name = message.get("name")
        return Message("tool", where, content, call_id=call_id if isinstance(call_id, str) else None,
                       name=name if isinstance(name, str) else None)
    if role != "assistant":
        return Message(role, where, content)
    return Message("assistant", where, content, calls=tuple(_calls(message, where)), empty_thought=_empty_form(message),
                   reasoning=_reasoning(message))


def _empty_form(message: dict[str, Any]) -> str:
    if "content" not in message:
        return "absent"
    return "empty_string" if message["content"] == "" else "null"


def _reasoning(message: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str):
            return message[key]
    return ""


def _calls(message: dict[str, Any], where: str) -> list[Call]:
    calls = []
    for index, entry in enumerate(message.get("tool_calls") or []):
        function = entry.get("function", entry) if isinstance(entry, dict) else None
        call_id = entry.get("id") if isinstance(entry, dict) else None
        calls.append(_call(function, f"{where}.tool_calls[{index}]", call_id if isinstance(call_id, str) else None))
    if message.get("function_call") is not None:
        calls.append(_call(message["function_call"], f"{where}.function_call", None))
    return calls


def _call(function: Any, where: str, call_id: str | None) -> Call:
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise ChatReject(RejectReason.INVALID_CALL, f"{where}: a tool call needs a non-empty string name")
    return Call(name, arguments_text(function.get("arguments")), call_id)


def _xlam(record: dict[str, Any], ctx: RecordContext) -> Converted:
    """A raw xLAM / APIGen row `{query, tools, answers}`: the query and one assistant message
    making the answers' calls (parallel when several), with no results (the data has none)."""
    answers = record["answers"]
    if isinstance(answers, str):
        answers = loads_lenient(answers)
    if not isinstance(answers, list):
        raise ChatReject(RejectReason.INVALID_CALL, f"{ctx.locator}.answers: not a list of calls")
    calls = tuple(_call(answer, f"{ctx.locator}.answers[{i}]", None) for i, answer in enumerate(answers))
    messages = [Message("user", f"{ctx.locator}.query", text_of(record["query"], f"{ctx.locator}.query")),
                Message("assistant", f"{ctx.locator}.answers", "", calls=calls)]
    tools = parse_tools(record.get("tools"), f"{ctx.locator}.tools")
    return chat_trajectory(messages, tools, ctx, SOURCE_NAME, {"format": "xlam", "record_id": scalar_id(record)})


SOURCE = Source(
    name="openai-messages",
    schema="openai_messages.schema.json",
    records_per_file="records",
    convert=rejecting(convert),
    suffixes=(".jsonl", ".json"),
)
