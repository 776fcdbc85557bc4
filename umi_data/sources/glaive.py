"""Glaive function-calling v2's raw rows (`{"system", "chat"}` text), read by `sharegpt-tools`.

`system`: "SYSTEM: You are a helpful assistant with access to the following functions. Use them
if required -" followed by the JSON schemas, one after another (or none). `chat`: speaker
labels `USER:`, `ASSISTANT:`, `FUNCTION RESPONSE:` at the start of a line, assistant turns ending
in `<|endoftext|>`, a call written `<functioncall> {"name": "f", "arguments": '{"a": 1}'}` (the
arguments a JSON text in single quotes, which is not JSON: the text inside is kept verbatim).
"""

from __future__ import annotations

import json
import re
from typing import Any

from umi_data.core import RejectReason, ToolSpec
from umi_data.sources.chat import Call, ChatReject, Message, arguments_text, parse_tools
from umi_data.sources.toolbench import json_value

_LABEL = re.compile(r"(?:^|\n)[ \t]*(USER|ASSISTANT|FUNCTION RESPONSE|SYSTEM):[ \t]?")
_ROLES = {"USER": "user", "ASSISTANT": "assistant", "FUNCTION RESPONSE": "tool", "SYSTEM": "system"}
_END = "<|endoftext|>"
_CALL_TAG = "<functioncall>"
_QUOTED_ARGS = re.compile(r"""^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*'(.*)'\s*\}\s*$""", re.S)


def glaive_messages(record: dict[str, Any], where: str) -> tuple[list[Message], list[ToolSpec]]:
    system = record.get("system") if isinstance(record.get("system"), str) else ""
    chat = record["chat"]
    if not isinstance(chat, str):
        raise ChatReject(RejectReason.WRONG_TYPE, f"{where}.chat: expected a string")
    messages = [Message("system", f"{where}.system", system)] if system else []
    parts = list(_LABEL.finditer(chat))
    if not parts or chat[: parts[0].start()].strip():
        raise ChatReject(RejectReason.WRONG_SHAPE, f"{where}.chat: the text does not start with a USER:/ASSISTANT: label")
    for index, match in enumerate(parts):
        end = parts[index + 1].start() if index + 1 < len(parts) else len(chat)
        text = chat[match.end():end].strip().removesuffix(_END).strip()
        messages.append(_message(_ROLES[match.group(1)], text, f"{where}.chat (turn {index})"))
    return messages, system_tools(system, f"{where}.system")


def _message(role: str, text: str, where: str) -> Message:
    if role != "assistant" or _CALL_TAG not in text:
        return Message(role, where, text)
    thought, _, call = text.partition(_CALL_TAG)
    return Message("assistant", where, thought.strip(), calls=(glaive_call(call.strip(), where),))


def glaive_call(text: str, where: str) -> Call:
    value = json_value(text)
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        return Call(value["name"], arguments_text(value.get("arguments")))
    quoted = _QUOTED_ARGS.match(text)
    if quoted is None:
        raise ChatReject(RejectReason.INVALID_CALL, f"{where}: the <functioncall> is neither JSON nor Glaive's quoted-arguments form")
    return Call(json.loads(f'"{quoted.group(1)}"'), quoted.group(2))


def system_tools(system: str, where: str) -> list[ToolSpec]:
    """The JSON schemas written one after another in a Glaive system prompt."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = system.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(system, position)
        except (ValueError, RecursionError):
            position = system.find("{", position + 1)
            continue
        found.append(value)
        position = system.find("{", end)
    return parse_tools(found, where) if found else []


__all__ = ["glaive_messages", "glaive_call", "system_tools"]
