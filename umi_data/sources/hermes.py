"""Hermes function-calling data (`hermes`): NousResearch hermes-function-calling-v1 and the
ChatML text Hermes models are trained on (../shared/TOOLCALLING.md §4).

A record is `{"conversations": [{"from", "value"}], "tools"?}` (speakers system / human / gpt /
tool; `role` / `content` and user / assistant also read), or `{"messages": [...]}`, or
`{"text": "<|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n..."}`; files are JSON Lines,
a JSON array of records, or one record.

- system: the prompt; the tool list is what it holds between `<tools>` and `</tools>`: a JSON
  list, a Python literal (v1 writes Python reprs: single quotes, `True`), or schemas one after
  another. A `tools` column, when present, is used instead.
- gpt: each `<tool_call>…</tool_call>` block is one call (several = parallel calls), a dict
  `{"name", "arguments"}` in JSON or as a Python literal; an unclosed last block runs to the end.
  The text outside the blocks is the thought; a gpt turn without blocks is text (an answer).
- tool: each `<tool_response>…</tool_response>` block is one result `{"name", "content"}`
  (linked to a call by name, then order); text without blocks is one result. A user turn made
  only of such blocks (Qwen-style templates put results there) is results too.

How messages become turns: umi_data/sources/chat.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from umi_data.core import RejectReason, ToolSpec
from umi_data.sources.base import Converted, RecordContext, Source
from umi_data.sources.chat import (
    TOOL_RESPONSE, Call, ChatReject, Message, arguments_text, chat_trajectory, loads_lenient, parse_tools, rejecting, scalar_id, text_of,
    tool_responses,
)
from umi_data.sources.chat_values import strip_block
from umi_data.sources.toolbench import NOT_JSON

SOURCE_NAME = "hermes"
_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
          "tool": "tool", "function": "tool", "observation": "tool", "ipython": "tool"}
_TOOLS = re.compile(r"<tools>(.*?)(?:</tools>|$)", re.S)
_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_CHATML = re.compile(r"<\|im_start\|>([^\n]*)\n(.*?)(?:<\|im_end\|>|(?=<\|im_start\|>)|$)", re.S)


def convert(record: dict[str, Any], ctx: RecordContext) -> Converted:
    if "conversations" in record or "messages" in record:
        key = "conversations" if "conversations" in record else "messages"
        raw = [(m.get("from", m.get("role")), m.get("value", m.get("content")), f"{ctx.locator}.{key}[{i}]") for i, m in enumerate(record[key])]
        shape = "sharegpt"
    else:
        raw = [(role.strip(), text, f"{ctx.locator}.text (message {i})") for i, (role, text) in enumerate(chatml_messages(record["text"], ctx.locator))]
        shape = "chatml"
    messages = [message_of(speaker, value, where) for speaker, value, where in raw]
    tools = _record_tools(record, messages, ctx.locator)
    meta = {"format": f"hermes-{shape}", "record_id": scalar_id(record)}
    meta.update({key: record[key] for key in ("category", "subcategory", "task") if isinstance(record.get(key), str)})
    return chat_trajectory([m for part in messages for m in part], tools, ctx, SOURCE_NAME, meta)


def chatml_messages(text: str, where: str) -> list[tuple[str, str]]:
    found = [(m.group(1), m.group(2).strip("\n")) for m in _CHATML.finditer(text)]
    if not found:
        raise ChatReject(RejectReason.WRONG_SHAPE, f"{where}.text: no <|im_start|> message in the text")
    return found


def message_of(speaker: Any, value: Any, where: str) -> list[Message]:
    """The messages of one turn: a tool turn with several `<tool_response>` blocks is several."""
    role = _ROLES.get(speaker) if isinstance(speaker, str) else None
    if role is None:
        raise ChatReject(RejectReason.UNKNOWN_ROLE, f"{where}: speaker {str(speaker)[:40]!r} is not a Hermes speaker")
    text = text_of(value, f"{where}.value")
    if role == "tool":
        return tool_responses(text, where) or [Message("tool", where, text)]
    if role == "user" and text.lstrip().startswith("<tool_response>") and not TOOL_RESPONSE.sub("", text).strip():
        return tool_responses(text, where)  # Qwen-style templates put the results in a user turn
    if role == "assistant":
        blocks = list(_CALL.finditer(text))
        if blocks:
            thought = _thought(text, blocks)
            calls = tuple(call_of(b.group(1), f"{where} (<tool_call> {i})") for i, b in enumerate(blocks))
            return [Message("assistant", where, thought, calls=calls)]
    return [Message(role, where, text)]


def _thought(text: str, blocks: list[re.Match]) -> str:
    """The text outside the `<tool_call>` blocks: what precedes the first (less the newline
    before it) when only whitespace is between and after them, else all of it, stripped."""
    rest = "".join(text[a.end():b.start()] for a, b in zip(blocks, blocks[1:])) + text[blocks[-1].end():]
    if not rest.strip():
        return text[:blocks[0].start()].removesuffix("\n")
    return _CALL.sub("\n", text).strip()


def call_of(block: str, where: str) -> Call:
    value = loads_lenient(strip_block(block), python_repr=True)
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or not name:
        raise ChatReject(RejectReason.INVALID_CALL, f"{where}: a <tool_call> must hold a dict with a name")
    return Call(name, arguments_text(value.get("arguments", value.get("parameters"))), value.get("id") if isinstance(value.get("id"), str) else None)


def _record_tools(record: dict[str, Any], messages: list[list[Message]], where: str) -> list[ToolSpec]:
    if record.get("tools") not in (None, "", []):
        return parse_tools(record["tools"], f"{where}.tools", python_repr=True)
    for part in messages:
        for message in part:
            # the prompt also says "within <tools></tools> XML tags": the list is the non-empty block
            blocks = [m.group(1) for m in _TOOLS.finditer(message.content) if m.group(1).strip()] if message.role == "system" else []
            if blocks:
                return parse_tools(_tool_items(blocks[0]), f"{message.where} <tools>", python_repr=True)
    return []


def _tool_items(text: str) -> Any:
    """The `<tools>` text as a list: one JSON / Python list or dict, or dicts one after another."""
    text = text.strip()
    value = loads_lenient(text, python_repr=True)
    if value is not NOT_JSON:
        return value
    decoder, items, position = json.JSONDecoder(), [], 0
    while position < len(text):
        try:
            item, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            break
        items.append(item)
        position = len(text) - len(text[position:].lstrip(" \t\r\n,"))
    if items and position >= len(text):
        return items
    joined = re.sub(r"\}\s*\n\s*\{", "}, {", text)  # Python reprs one per line
    value = loads_lenient(f"[{joined}]", python_repr=True)
    if value is NOT_JSON:
        raise ChatReject(RejectReason.INVALID_TOOLS, "the <tools> text is neither JSON nor a Python literal")
    return value


SOURCE = Source(
    name="hermes",
    schema="hermes.schema.json",
    records_per_file="records",
    convert=rejecting(convert),
    suffixes=(".json", ".jsonl"),
)
