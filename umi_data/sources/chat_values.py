"""Reading the values chat-format records write loosely: tool lists (a list, one object, a JSON
string, a Python literal; wrapped or bare schemas; xLAM's parameter maps), call arguments (a
string or an object) and message content (text, null, or content parts). Used by the chat
sources through umi_data/sources/chat.py."""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterator

from umi_data.core import RejectReason, ToolSpec, find_unstorable
from umi_data.sources.toolbench import FINISH, NOT_JSON, json_value


class ChatReject(Exception):
    """A conversation umi cannot represent, with the reason code and where."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def embedded_json(text: str, openers: str = "[{") -> Iterator[tuple[Any, int, int]]:
    """Every JSON value that starts at one of `openers` in `text` (prose or markup around it), as
    (value, start, end), left to right; a start that does not parse, or nests past Python's
    recursion limit, is skipped."""
    decoder = json.JSONDecoder()
    for match in re.finditer(f"[{re.escape(openers)}]", text):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        yield value, match.start(), end


def parse_tools(value: Any, where: str, python_repr: bool = False) -> list[ToolSpec]:
    """A tool list given as a list, one object or a JSON string of either (`python_repr`: also a
    Python literal, as Hermes v1 writes them); items bare `{name, description, parameters}` or
    wrapped `{"type": "function", "function": {...}}`. ToolBench's `Finish` schema is left out."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        value = loads_lenient(value, python_repr)
        if value is NOT_JSON:
            raise ChatReject(RejectReason.INVALID_TOOLS, f"{where}: the tool list is not JSON")
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ChatReject(RejectReason.INVALID_TOOLS, f"{where}: the tool list is not a list of tool schemas")
    tools = [_tool(item, f"{where}[{index}]", python_repr) for index, item in enumerate(items)]
    return [tool for tool in tools if not _is_finish_schema(tool)]


def loads_lenient(text: str, python_repr: bool = False) -> Any:
    """JSON text parsed (`NOT_JSON` when it is not), or with `python_repr` a Python literal."""
    value = json_value(text)
    if value is NOT_JSON and python_repr:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            return NOT_JSON
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):  # sets, bytes, tuple keys, 1e999, nesting
            return NOT_JSON
        if find_unstorable(value) is not None:  # a lone surrogate, an integer beyond 64 bits
            return NOT_JSON
    return value


def _tool(item: Any, where: str, python_repr: bool) -> ToolSpec:
    if isinstance(item, str):  # a list of JSON strings, one per tool
        item = loads_lenient(item, python_repr)
    if isinstance(item, dict) and isinstance(item.get("function"), dict) and "name" not in item:
        item = item["function"]
    name = item.get("name") if isinstance(item, dict) else None
    if not isinstance(name, str) or not name:
        raise ChatReject(RejectReason.INVALID_TOOLS, f"{where}: a tool schema needs a non-empty string name")
    description = item.get("description")
    parameters = item.get("parameters", item.get("parameter"))
    return ToolSpec(name=name, description=description if isinstance(description, str) else "",
                    parameters=_parameters(parameters, where))


def _parameters(parameters: Any, where: str) -> dict[str, Any]:
    """A JSON Schema object. xLAM writes `{arg: {"type", "description"}}` with no `type` or
    `properties` key: that map becomes the properties (its Python-ish type strings kept)."""
    if parameters is None:
        return {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise ChatReject(RejectReason.INVALID_TOOLS, f"{where}.parameters: expected an object")
    if "properties" not in parameters and "type" not in parameters and parameters and all(isinstance(v, dict) for v in parameters.values()):
        return {"type": "object", "properties": parameters}
    if not isinstance(parameters.get("properties", {}), dict):
        raise ChatReject(RejectReason.INVALID_TOOLS, f"{where}.parameters.properties: expected an object")
    return parameters


def _is_finish_schema(tool: ToolSpec) -> bool:
    return tool.name == FINISH and "return_type" in (tool.parameters.get("properties") or {})


def arguments_text(value: Any) -> str:
    """A call's argument string as the model wrote it: a string verbatim, an object as its JSON
    text (the format stored it parsed), nothing as `{}`."""
    if isinstance(value, str):
        return value
    if value is None:
        return "{}"
    return json.dumps(value, ensure_ascii=False)


def text_of(value: Any, where: str) -> str:
    """Message content as text: a string, null (""), or a list of parts whose text parts are
    joined (OpenAI's content parts); a part that is not text is `unsupported_content`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for index, part in enumerate(value):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("type", "text") in ("text", "input_text", "output_text"):
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ChatReject(RejectReason.UNSUPPORTED_CONTENT, f"{where}[{index}]: content part of type {kind!s} is not text")
        return "".join(texts)
    return json.dumps(value, ensure_ascii=False)


def strip_block(block: str) -> str:
    """Block text without surrounding whitespace or literal backslash-n sequences (v1 rows carry some)."""
    text = block.strip()
    while text.startswith("\\n") or text.endswith("\\n"):
        text = text.removeprefix("\\n").removesuffix("\\n").strip()
    return text
