"""What a synthetic tool is: a name, a description, a JSON Schema for its arguments, and a pure
function that answers a `ToolResult`.

The agent loop (umi_agent) calls these tools with whatever a model wrote, so every mistake the
model can make (a missing or unknown argument, a wrong type, a value outside an enum) comes back
as a result with error text, as a real API would answer it, and never as an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

#: ToolBench keeps at most this many characters of an observation, then appends "...".
OBSERVATION_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call returned: `response` text on success, `error` text on failure (the other "")."""

    response: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def succeed(value: Any) -> ToolResult:
    """A success whose response is `value` as compact JSON (keys in the order the API builds them)."""
    return ToolResult(response=json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def fail(message: str) -> ToolResult:
    return ToolResult(error=message)


def observation_content(result: ToolResult) -> str:
    """The `content` of a ToolBench `function` message: the {"error", "response"} envelope as
    `json.dumps` writes it, cut at 1024 characters + "..." like ToolBench (the cut leaves
    invalid JSON, which the toolbench source reads back as a truncated observation)."""
    text = json.dumps({"error": result.error, "response": result.response})
    return text if len(text) <= OBSERVATION_LIMIT else text[:OBSERVATION_LIMIT] + "..."


def param(type_: str, description: str, example: Any = None, **constraints: Any) -> dict[str, Any]:
    """One property of a ToolBench-style parameter schema (`example_value` as ToolBench has it)."""
    spec: dict[str, Any] = {"type": type_, "description": description}
    if example is not None:
        spec["example_value"] = example
    spec.update(constraints)
    return spec


def parameters_schema(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    """A ToolBench `parameters` object: JSON Schema plus ToolBench's `optional` list. Unknown
    arguments are refused (`additionalProperties: false`) so a model's invented argument shows
    up as an error instead of being ignored silently."""
    optional = [name for name in properties if name not in required]
    return {"type": "object", "properties": properties, "required": required, "optional": optional,
            "additionalProperties": False}


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def argument_problems(schema: dict[str, Any], arguments: Any) -> list[str]:
    """Every way `arguments` breaks `schema`, in words a model can act on ([] when valid).

    Covers the subset of JSON Schema the world's tools use (type, enum, pattern, minimum,
    required, additionalProperties: false); tests check the same arguments with `jsonschema`."""
    if not isinstance(arguments, dict):
        return [f"arguments must be a JSON object, got {type(arguments).__name__}"]
    properties = schema["properties"]
    problems = [f"missing required argument '{name}'" for name in schema["required"] if name not in arguments]
    for name, value in arguments.items():
        spec = properties.get(name)
        if spec is None:
            problems.append(f"unknown argument '{name}'")
        else:
            problems.extend(_value_problems(name, spec, value))
    return problems


def _value_problems(name: str, spec: dict[str, Any], value: Any) -> list[str]:
    if not _JSON_TYPES[spec["type"]](value):
        return [f"argument '{name}' must be of type {spec['type']}, got {json.dumps(value)}"]
    if "enum" in spec and value not in spec["enum"]:
        return [f"argument '{name}' must be one of {', '.join(map(str, spec['enum']))}, got {json.dumps(value)}"]
    if "pattern" in spec and re.search(spec["pattern"], value) is None:
        return [f"argument '{name}' must match {spec['pattern']} ({spec['description']}), got {json.dumps(value)}"]
    if "minimum" in spec and value < spec["minimum"]:
        return [f"argument '{name}' must be at least {spec['minimum']}, got {json.dumps(value)}"]
    return []


@dataclass(frozen=True)
class SynthTool:
    """One API of one RapidAPI-style tool, named `<api>_for_<tool>` as in ToolBench.

    `handler` receives arguments that already satisfy `parameters` (defaults filled in) and
    answers deterministically from the world's fixed tables."""

    name: str
    tool: str  # the RapidAPI-style tool (group of APIs) this API belongs to
    description: str
    parameters: dict[str, Any]
    handler: Callable[[dict[str, Any]], ToolResult] = field(repr=False)
    defaults: dict[str, Any] = field(default_factory=dict)

    def call(self, arguments: Any) -> ToolResult:
        """Run the API. Bad arguments give an error result that names the problem and the
        expected arguments, never an exception."""
        problems = argument_problems(self.parameters, arguments)
        if problems:
            return fail(f"400 Bad Request: {'; '.join(problems)}. Expected arguments: {self.signature()}")
        return self.handler({**self.defaults, **arguments})

    def signature(self) -> str:
        """"city (string, required), date (string, required)": the arguments as a model should write them."""
        required = set(self.parameters["required"])
        return ", ".join(
            f"{name} ({spec['type']}, {'required' if name in required else 'optional'})"
            for name, spec in self.parameters["properties"].items()
        ) or "none"

    def function_schema(self) -> dict[str, Any]:
        """The tool as a ToolBench `function` entry (name, description, parameters)."""
        return {
            "name": self.name,
            "description": f'API of the "{self.tool}" tool. {self.description}',
            "parameters": self.parameters,
        }
