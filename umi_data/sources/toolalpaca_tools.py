"""The tools of a ToolAlpaca API entry, as `ToolSpec`s, shared by the `toolalpaca` source and
the evaluation-set loader.

Which tools a run was offered (measured on the real runs, whose "not a valid action" messages
list them, and on the evaluation files, whose gold answers call `getDetails`):

- the entry's `external_tools` (`retrieval` → `retrievalDataFromFile`, `datetime` →
  `getCurrentDateTime`, `getDetails`) when the entry has that key: the real-API runs;
- else `getDetails`: ToolAlpaca's training builder (`build_dataset.py`) offers it to every
  training instance, and the simulated evaluation's gold answers call it;
- then every function of `Function_Description`, in its order (equal to `Function_Projection`'s
  in every file measured).

Each function's text reads `"<description>\\nParameters: <json>\\nOutput: ...\\n - Format: ...\\n -
Structure: ..."`. The `ToolSpec` takes the description (the text before the `Parameters:` line;
one line in every file, and empty for the four functions whose text starts with `Parameters:`)
and a JSON Schema built from the parameter JSON, whose values are ToolAlpaca's short strings
`"[Required. ]<type>. <description>"` (`parameters_schema`).

The `Output:` block and the API's `components` (the output structures that `Output:` refers to
by `#Name`) have no place in a `ToolSpec`; `tool_docs` keeps every tool's text as ToolAlpaca's
agent prompt shows it (`"{name}: {text}"` per line), with `components` appended to the last
API function as ToolAlpaca does. ToolAlpaca concatenates the two with no separator
(`"...#VersionInfoDtoThe detailed output format..."`); umi joins them with a newline.
"""

from __future__ import annotations

import json
import re
from typing import Any

from umi_data.core import ToolSpec

COMPONENTS = "components"

#: ToolAlpaca's own tools (agent/tools.py), with the texts its prompt shows; `external_tools`
#: names them by the key.
BUILTIN_TOOLS: dict[str, tuple[str, str]] = {
    "getDetails": (
        "getDetails",
        "If the user's question lacks the essential information needed to answer the question effectively, or if the "
        "question contains vague terms or pronouns without sufficient context, invoke the `getDetails` function to prompt "
        "the user for the missing critical details. However, `getDetails` should not be used in cases where the user omits "
        "optional parameters, unless these parameters become necessary in the course of the conversation. \n"
        'Parameters: {"Question": "The question to prompt user to provide sufficient information."}\n'
        "Output: User's response.",
    ),
    "retrieval": (
        "retrievalDataFromFile",
        "Retrieve specified information from a file. This tool can ONLY be used when you receive the message 'The output "
        "is too long. You need to use the 'retrievalDataFromFile' function to retrieve the output from the file: "
        "<file_path>'.\n"
        'Parameters: {"file_path": "Required. String. The path to the file from which information needs to be retrieved.", '
        '"query": "Required. String. The specific information to be retrieved from the file."}\n'
        "Output: The retrieved information from the file.\n - Format: text/json\n"
        ' - Structure: {"retrieved_info": "String containing the requested information retrieved from the file."}',
    ),
    "datetime": (
        "getCurrentDateTime",
        "Retrieve the current date and time.\nParameters: {}\n"
        "Output: The current date and time in a formatted string, providing a real-time reference for various "
        "applications and data.\n - Format: text/json\n"
        ' - Structure: {"timestamp": "String representing the current date and time in the format \\"YYYY-MM-DD HH:MM:SS\\"."}',
    ),
}

#: getDetails' text gives its one argument no type; its code (GetDetailsTool) requires a string
#: "Question", so its schema says so rather than leaving the type open.
_BUILTIN_PARAMETERS: dict[str, dict[str, Any]] = {
    "getDetails": {
        "type": "object",
        "properties": {"Question": {"type": "string", "description": "The question to prompt user to provide sufficient information."}},
        "required": ["Question"],
    },
}

_PARAMETERS_LINE = re.compile(r"^Parameters:[ \t]*", re.M)
_REQUIRED = re.compile(r"^Required\.\s*")
# A type word counts only when a dot (or the end) follows, so that a description such as
# "Number of cats" is not read as the type `number`.
_PLAIN_TYPE = re.compile(r"^(string|integer|number|boolean|object|array)(?=\s*(?:\.|$))", re.I)
_NESTED_TYPE = re.compile(r"^(?:Array\[|Object\{)")


class ToolDocError(ValueError):
    """A function text whose `Parameters:` JSON cannot be read; `path` is its JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def tool_docs(entry: dict[str, Any]) -> dict[str, str]:
    """Every tool the entry's runs were offered, in prompt order, with its ToolAlpaca text."""
    docs: dict[str, str] = {}
    for key in entry.get("external_tools", ["getDetails"]):
        name, text = BUILTIN_TOOLS[key]
        docs[name] = text
    functions = {name: text for name, text in entry["Function_Description"].items() if name != COMPONENTS}
    components = entry["Function_Description"].get(COMPONENTS, "").strip()
    for index, (name, text) in enumerate(functions.items()):
        last = index == len(functions) - 1
        docs[name] = f"{text}\n{components}" if last and components else text
    return docs


def api_tools(entry: dict[str, Any], prefix: str = "$") -> tuple[list[ToolSpec], dict[str, str]]:
    """(tools, tool_docs) of an API entry; raises `ToolDocError` naming the bad function."""
    docs = tool_docs(entry)
    tools = []
    for name, text in docs.items():
        tool = tool_from_text(name, text, f"{prefix}.Function_Description.{name}")
        if name in _BUILTIN_PARAMETERS:
            tool = tool.model_copy(update={"parameters": _BUILTIN_PARAMETERS[name]})
        tools.append(tool)
    return tools, docs


def tool_from_text(name: str, text: str, path: str = "$") -> ToolSpec:
    """A `ToolSpec` from a ToolAlpaca function text: the description before `Parameters:`, the
    parameters from the JSON after it (no `Parameters:` line: no parameters)."""
    match = _PARAMETERS_LINE.search(text)
    if match is None:
        return ToolSpec(name=name, description=text.split("\nOutput:", 1)[0].strip())
    try:
        value, _ = json.JSONDecoder().raw_decode(text, match.end())
    except json.JSONDecodeError as exc:
        raise ToolDocError(path, f"the JSON after 'Parameters:' is not valid: {exc.msg} (char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ToolDocError(path, "the JSON after 'Parameters:' is not an object")
    return ToolSpec(name=name, description=text[: match.start()].strip(), parameters=parameters_schema(value))


def parameters_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema object from ToolAlpaca's parameter JSON.

    Each value `"[Required. ]<type>. <description>"` becomes a property with `type` (and
    `items` for `Array[...]`) and `description`; "Required." puts the name in `required`.
    Types are matched case-insensitively (`String` in ToolAlpaca's own tools); `Object{...}`
    becomes `object` (its fields are described in `tool_docs`); a value that starts with no known
    type (getDetails' `"The question to ..."`) is all description. A value that is already an
    object is kept as the property's schema; an input that is already a JSON Schema object
    (`type: object` with `properties`) is kept as it is."""
    if parameters.get("type") == "object" and isinstance(parameters.get("properties"), dict):
        return parameters
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in parameters.items():
        if isinstance(spec, dict):
            properties[name] = spec
            continue
        schema, is_required = property_schema(str(spec))
        properties[name] = schema
        if is_required:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def property_schema(text: str) -> tuple[dict[str, Any], bool]:
    """(schema, required) of one ToolAlpaca parameter string."""
    required = _REQUIRED.match(text)
    rest = text[required.end():] if required else text
    type_text, description = _split_type(rest)
    schema = dict(_type_schema(type_text)) if type_text else {}
    schema["description"] = description
    return schema, required is not None


def _split_type(text: str) -> tuple[str, str]:
    """(type text, description) of `"<type>. <description>"`; ("", text) without a known type.
    `Array[...]` and `Object{...}` may nest brackets, braces and dots
    (`Array[Object{id: string. The id.}. ]`)."""
    if _NESTED_TYPE.match(text):
        end = _closing_bracket(text, len(_NESTED_TYPE.match(text).group()) - 1)
    else:
        plain = _PLAIN_TYPE.match(text)
        end = plain.end() - 1 if plain else None
    if end is None:
        return "", text.strip()
    return text[: end + 1], text[end + 1 :].lstrip().removeprefix(".").strip()


def _closing_bracket(text: str, start: int) -> int | None:
    """Index of the bracket closing the one at `start`, counting [] and {} together."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] in "[{":
            depth += 1
        elif text[index] in "]}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _type_schema(type_text: str) -> dict[str, Any]:
    lowered = type_text.lower()
    if lowered.startswith("array["):
        inner = type_text[len("Array[") : -1].strip().rstrip(".").strip()
        items = _type_schema(inner) if inner else {}
        return {"type": "array", "items": items} if items else {"type": "array"}
    if lowered.startswith("object"):
        return {"type": "object"}
    plain = _PLAIN_TYPE.match(type_text)
    return {"type": plain.group(1).lower()} if plain and plain.end() == len(type_text) else {}
