"""ShareGPT conversations with tool turns (`sharegpt-tools`): LLaMA-Factory's `sharegpt` format
with `function_call` / `observation` (its Glaive and ToolACE conversions, APIGen-MT), and
ToolACE's raw rows and Glaive function-calling v2's raw `{system, chat}` text
(../shared/TOOLCALLING.md §3, §6, §7).

A record is `{"conversations" | "messages": [...], "tools"?: "<JSON string>" | [...],
"system"?: str}`; files are JSON Lines, a JSON array of records, or one record. Message keys
are LLaMA-Factory's default tags (`from` / `value`) or the ones its `dataset_info.json` tags
commonly name instead (`role` / `content`); speakers:

- `human` / `user`: a user turn; `system`: the system prompt (also the `system` column).
- `gpt` / `assistant`: text; the answer, or the thought of a `function_call` that follows it.
- `function_call` (also `tool_call`): a JSON string of `{"name", "arguments"}` or a list of them
  (parallel calls); `arguments` an object (kept as its JSON text) or a string (verbatim). Text
  before the JSON is the thought (a `<think>` wrapper removed).
- `observation` (also `tool`, `function`): the result. One observation answering several calls
  is split when it is a JSON list of one item per call or holds one `<tool_response>` each.

ToolACE's raw rows (`user` / `assistant` / `tool`, calls written `[Name(k="v")]`, tools in the
system prompt): umi_data/sources/toolace.py. Glaive's raw rows: `system` = "SYSTEM: ... functions ..." followed by the JSON tool schemas,
`chat` = `USER: ... ASSISTANT: <functioncall> {"name", "arguments": '<json>'} <|endoftext|>
FUNCTION RESPONSE: ... ASSISTANT: ...`. How messages become turns: umi_data/sources/chat.py.
"""

from __future__ import annotations

import re
from typing import Any

from umi_data.core import RejectReason
from umi_data.sources.base import Converted, RecordContext, Source
from umi_data.sources.chat import (
    Call, ChatReject, Message, arguments_text, chat_trajectory, parse_tools, rejecting, scalar_id, text_of,
)
from umi_data.sources.chat_values import embedded_json
from umi_data.sources.toolbench import NOT_JSON, json_value

SOURCE_NAME = "sharegpt_tools"
_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "function_call": "call",
    "tool_call": "call", "observation": "tool", "tool": "tool", "function": "tool", "system": "system",
}
_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*$", re.S)
_THOUGHT_BLOCK = re.compile(r"<think>\n(.*)\n</think>\n\n", re.S)
_LEADING_THOUGHT = re.compile(r"<think>\n(.*?)\n</think>\n\n(.*)", re.S)
_LEADING_THINK = re.compile(r"\s*<think>(.*?)</think>(.*)", re.S)


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    if "chat" in record and not ("conversations" in record or "messages" in record):
        from umi_data.sources.glaive import glaive_messages

        messages, tools = glaive_messages(record, ctx.locator)
        return chat_trajectory(messages, tools, ctx, SOURCE_NAME, {"format": "glaive-chat", "record_id": scalar_id(record)})
    key = "conversations" if "conversations" in record else "messages"
    messages = [message_of(m, f"{ctx.locator}.{key}[{i}]") for i, m in enumerate(record[key])]
    if isinstance(record.get("system"), str) and record["system"]:
        messages.insert(0, Message("system", f"{ctx.locator}.system", record["system"]))
    tools = parse_tools(record.get("tools"), f"{ctx.locator}.tools")
    shape = "sharegpt"
    if any(m.role == "assistant" and not m.calls and m.content.lstrip().startswith("[") for m in messages):
        from umi_data.sources import toolace  # ToolACE's raw rows: calls written `[Name(k=v)]`

        systems = [m for m in messages if m.role == "system"]
        tools = tools or (toolace.system_tools(systems[0].content, systems[0].where) if systems else [])
        before = sum(bool(m.calls) for m in messages)
        messages = toolace.with_bracket_calls(messages, {tool.name for tool in tools})
        shape = "toolace" if sum(bool(m.calls) for m in messages) > before else shape
    return chat_trajectory(messages, tools, ctx, SOURCE_NAME, {"format": shape, "record_id": scalar_id(record)})


def message_of(message: dict[str, Any], where: str) -> Message:
    speaker = message.get("from", message.get("role"))
    value = message.get("value", message.get("content"))
    role = _ROLES.get(speaker) if isinstance(speaker, str) else None
    if role is None:
        raise ChatReject(RejectReason.UNKNOWN_ROLE, f"{where}: speaker {str(speaker)[:40]!r} is not a ShareGPT tool-data speaker")
    text = text_of(value, f"{where}.value")
    if role == "call":
        thought, calls = parse_call_text(text, f"{where}.value")
        return Message("assistant", where, thought, calls=calls)
    if role == "assistant":
        reasoning, answer = split_thought(text)
        return Message(role, where, answer, reasoning=reasoning)
    return Message(role, where, text)


def split_thought(text: str) -> tuple[str, str]:
    """(reasoning, text) of an assistant message that opens with a `<think>` block (LLaMA-Factory's
    reasoning data, and the thought umi's export writes before an answer)."""
    exact = _LEADING_THOUGHT.fullmatch(text)
    if exact:
        return exact.group(1), exact.group(2)
    loose = _LEADING_THINK.fullmatch(text)
    return (loose.group(1).strip(), loose.group(2).strip()) if loose else ("", text)


def parse_call_text(text: str, where: str) -> tuple[str, tuple[Call, ...]]:
    """(thought, calls) of a `function_call` value: JSON of one call or a list of calls,
    maybe after a thought."""
    value, start = json_value(text.strip()), 0
    if value is NOT_JSON:
        value, start = _trailing_json(text)
    if value is NOT_JSON:
        raise ChatReject(RejectReason.INVALID_CALL, f"{where}: the function call is not JSON")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ChatReject(RejectReason.INVALID_CALL, f"{where}: an empty list of calls")
    calls = tuple(call_of(item, f"{where}[{i}]" if isinstance(value, list) else where) for i, item in enumerate(items))
    exact = _THOUGHT_BLOCK.fullmatch(text[:start])  # LLaMA-Factory's thought block, as umi's export writes it
    if exact:
        return exact.group(1), calls
    think = _THINK.match(text[:start].strip())
    return (think.group(1).strip() if think else text[:start].strip()), calls


def _trailing_json(text: str) -> tuple[Any, int]:
    """The JSON object or list that ends `text` after some prose, and where it starts."""
    for value, start, end in embedded_json(text):
        if not text[end:].strip():
            return value, start
    return NOT_JSON, 0


def call_of(item: Any, where: str) -> Call:
    """One `{"name", "arguments"}` call (also OpenAI's `{"function": {...}}` wrapper)."""
    if isinstance(item, dict) and isinstance(item.get("function"), dict):
        item = {**item["function"], "id": item.get("id")}
    name = item.get("name") if isinstance(item, dict) else None
    if not isinstance(name, str) or not name:
        raise ChatReject(RejectReason.INVALID_CALL, f"{where}: a call needs a non-empty string name")
    call_id = item.get("id")
    arguments = item.get("arguments", item.get("parameters"))
    return Call(name, arguments_text(arguments), call_id if isinstance(call_id, str) else None)


SOURCE = Source(
    name="sharegpt-tools",
    schema="sharegpt_tools.schema.json",
    records_per_file="records",
    convert=rejecting(convert),
    suffixes=(".json", ".jsonl"),
)
