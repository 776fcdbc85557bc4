"""ToolACE's raw rows, read by `sharegpt-tools` (../shared/TOOLCALLING.md §6):
`{system, conversations: [{from: user|assistant|tool, value}]}`.

- The tools are the JSON list in the system prompt ("Here is a list of functions in JSON format
  that you can invoke: [...]"), used when the record has no `tools` column.
- An assistant value that is wholly a Python-like call list `[Name(k="v", n=3), Other()]` is the
  calls (several = parallel); names may hold spaces and dots ("Market Trends API"); each value is
  a Python literal (a bare word is kept as text). `raw_arguments` is the JSON text of the
  arguments (the row holds no JSON argument string). Only a list naming a listed tool is read as
  calls, so an answer that happens to start with "[" stays an answer.
- A tool value that is a JSON list of `{"name", "results"}` is one result per item.
"""

from __future__ import annotations

import json
import re
from typing import Any

from umi_data.core import ToolSpec
from umi_data.sources.chat import Call, Message, loads_lenient, parse_tools
from umi_data.sources.chat_values import embedded_json
from umi_data.sources.toolbench import NOT_JSON, json_value

_NAME = re.compile(r"\s*([A-Za-z_][\w .\-/]*?)\s*\(")
_CLOSE = {"(": ")", "[": "]", "{": "}"}


def system_tools(system: str, where: str) -> list[ToolSpec]:
    """The first JSON list of named tool schemas in a system prompt ([] when there is none)."""
    for value, _, _ in embedded_json(system, "["):
        if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
            return parse_tools(value, f"{where} (tool list)")
    return []


def with_bracket_calls(messages: list[Message], names: set[str]) -> list[Message]:
    """`messages` with ToolACE's call lists read as calls and their result lists split."""
    out: list[Message] = []
    for message in messages:
        calls = parse_call_list(message.content) if message.role == "assistant" and not message.calls else None
        if calls and any(call.name in names for call in calls):
            out.append(Message("assistant", message.where, "", calls=tuple(calls)))
        elif message.role == "tool" and out and out[-1].calls:
            out.extend(_results(message))
        else:
            out.append(message)
    return out


def _results(message: Message) -> list[Message]:
    value = json_value(message.content)
    if not (isinstance(value, list) and value and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value)):
        return [message]
    return [Message("tool", f"{message.where}[{i}]", _text(v.get("results", v.get("content", ""))), name=v["name"])
            for i, v in enumerate(value)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_call_list(text: str) -> list[Call] | None:
    """The calls of `[F(a=1), G(b="x")]`, or None when `text` is not wholly such a list."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        return None
    body, position, calls = body[1:-1], 0, []
    while position < len(body):
        match = _NAME.match(body, position)
        end = _closing(body, match.end() - 1) if match else None
        if end is None:
            return None
        arguments = _arguments(body[match.end():end])
        if arguments is None:
            return None
        calls.append(Call(match.group(1), json.dumps(arguments, ensure_ascii=False)))
        position = end + 1
        rest = body[position:].lstrip()
        if rest and not rest.startswith(","):
            return None
        position = len(body) - len(rest[1:] if rest else "")
    return calls or None


def _closing(text: str, start: int) -> int | None:
    """The index of the bracket closing the one at `start`, skipping quoted strings."""
    stack, quote, index = [], None, start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in _CLOSE:
            stack.append(_CLOSE[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return index
        index += 1
    return None


def _arguments(text: str) -> dict[str, Any] | None:
    """`k=v, ...` as a dict; None when a part is not `identifier=value`."""
    arguments: dict[str, Any] = {}
    for part in _top_level_split(text):
        key, sep, value = part.partition("=")
        if not sep or not key.strip().isidentifier():
            return None
        arguments[key.strip()] = _literal(value.strip())
    return arguments


def _top_level_split(text: str) -> list[str]:
    parts, depth, quote, current = [], 0, None, []
    for index, char in enumerate(text):
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def _literal(text: str) -> Any:
    """A value as JSON or a Python literal; anything else (a bare word) as its text."""
    value = loads_lenient(text, python_repr=True)
    return text if value is NOT_JSON else value
