"""Tools an agent can call: Python callables behind JSON-Schema-checked arguments.

A model's mistakes are data, not exceptions: an unknown tool, arguments that are not a JSON
object, arguments the schema refuses, and an error raised or returned by the tool all become an
`ObservationTurn` whose `error` says what was wrong (and, for an unknown tool, the valid names),
so the planner sees it and the loop goes on. Bugs in umi itself still raise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import jsonschema

from umi_data.core import ObservationTurn, ToolSpec
from umi_data.sources.toolbench import parse_json_object

#: The paper's real-time setting keeps this many characters of an observation.
OBSERVATION_CHARS = 1024

#: How the observations of badly written arguments begin (what `Episode.invalid_arguments` counts).
INVALID_ARGUMENTS = ("invalid arguments for ", "the Action Input of ")

#: What a tool returns: response text, or (response, error) with error "" on success.
ToolOutput = str | tuple[str, str]


@dataclass(frozen=True)
class Tool:
    """One callable tool: what the model sees (`spec`) and what runs (`function`)."""

    spec: ToolSpec
    function: Callable[[dict[str, Any]], ToolOutput]

    @property
    def name(self) -> str:
        return self.spec.name


class ToolRegistry:
    """Tools by name; `execute` turns any call a model writes into an observation."""

    def __init__(self, tools: Iterable[Tool], observation_chars: int = OBSERVATION_CHARS) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self.observation_chars = observation_chars
        self._validators = {
            name: jsonschema.validators.validator_for(tool.spec.parameters)(_schema_only(tool.spec.parameters))
            for name, tool in self.tools.items()
        }

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    @property
    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self.tools.values()]

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def execute(self, name: str, raw_arguments: str) -> ObservationTurn:
        """Run `name` with the argument string a model wrote; never raises for model mistakes."""
        if name not in self.tools:
            return _error(f"unknown tool {name!r}; valid tools: {', '.join(self.names) or 'none'}")
        arguments = parse_json_object(raw_arguments.strip() or "{}")
        if arguments is None:
            return _error(f"{INVALID_ARGUMENTS[1]}{name} is not a JSON object: {raw_arguments[:200]!r}")
        problems = sorted(self._validators[name].iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if problems:
            where = lambda e: "/".join(map(str, e.absolute_path)) or "arguments"  # noqa: E731
            detail = "; ".join(f"{where(e)}: {e.message}" for e in problems[:5])
            return _error(f"{INVALID_ARGUMENTS[0]}{name}: {detail}")
        try:
            output = self.tools[name].function(arguments)
        except Exception as exc:  # a tool failing is an observation the planner must see
            return _error(f"{name} raised {type(exc).__name__}: {exc}")
        response, error = (output, "") if isinstance(output, str) else output
        return self._observation(response, error)

    def ending(self, plan: Any, name: str, raw_arguments: str) -> list[Any] | None:
        """The turns replacing `plan` when calling `name` ends the episode (None: it does not).
        Worlds whose tool list has a terminating function (ToolBench's `Finish`) override it."""
        return None

    def _observation(self, response: str, error: str) -> ObservationTurn:
        truncated = len(response) > self.observation_chars
        return ObservationTurn(response=response[: self.observation_chars], error=error, truncated=truncated)


def _error(message: str) -> ObservationTurn:
    return ObservationTurn(response="", error=message)


def _schema_only(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """ToolBench parameter objects carry a non-standard `optional` list; JSON Schema ignores
    unknown keywords, but `required` must be a list of strings."""
    schema = dict(parameters)
    schema.setdefault("type", "object")
    return schema


def synthetic_registry(offered: Sequence[str] | Sequence[Mapping[str, Any]] | None = None,
                       observation_chars: int = OBSERVATION_CHARS) -> ToolRegistry:
    """The synthetic world's tools as a registry: all of them, the ones named, or the tool
    dicts a task offers (`tasks.jsonl`'s `tools`: the model sees exactly these, in this order)."""
    from umi_data.synth import WORLD, tool_by_name

    if offered is None:
        offered = [tool.function_schema() for tool in WORLD]
    specs = [
        ToolSpec(**tool_by_name(item).function_schema()) if isinstance(item, str)
        else ToolSpec(name=item["name"], description=item.get("description", ""), parameters=item.get("parameters") or {})
        for item in offered
    ]
    unknown = [spec.name for spec in specs if tool_by_name(spec.name) is None]
    if unknown:
        raise ValueError(f"not tools of the synthetic world: {', '.join(unknown)}")
    return ToolRegistry((Tool(spec, _synth_function(tool_by_name(spec.name))) for spec in specs), observation_chars)


def _synth_function(tool: Any) -> Callable[[dict[str, Any]], ToolOutput]:
    def call(arguments: dict[str, Any]) -> ToolOutput:
        result = tool.call(arguments)
        return result.response, result.error

    return call


class ReplayExecutor(ToolRegistry):
    """Answers calls from recorded observations (a corpus's trajectories): the same tool with
    the same arguments gets the recorded observation; anything else gets an error naming what
    was not recorded. For tests and for re-running an agent against logged data offline."""

    def __init__(self, trajectories: Iterable[Any], observation_chars: int = OBSERVATION_CHARS) -> None:
        self.recorded: dict[tuple[str, str], ObservationTurn] = {}
        specs: dict[str, ToolSpec] = {}
        for trajectory in trajectories:
            specs.update({tool.name: tool for tool in trajectory.tools})
            for call, observation in zip(trajectory.turns, trajectory.turns[1:]):
                if call.role == "caller" and observation.role == "observation":
                    self.recorded.setdefault((call.name, _key(call.raw_arguments)), observation)
        super().__init__((Tool(spec, self._unused) for spec in specs.values()), observation_chars)

    @staticmethod
    def _unused(arguments: dict[str, Any]) -> ToolOutput:  # pragma: no cover - execute() answers
        raise AssertionError("ReplayExecutor answers from its recordings")

    def execute(self, name: str, raw_arguments: str) -> ObservationTurn:
        if name not in self.tools:
            return _error(f"unknown tool {name!r}; valid tools: {', '.join(self.names) or 'none'}")
        recorded = self.recorded.get((name, _key(raw_arguments)))
        if recorded is None:
            return _error(f"no recorded observation for {name} with arguments {raw_arguments[:200]!r}")
        return recorded


def _key(raw_arguments: str) -> str:
    """Arguments compared as parsed JSON (key order and spacing do not matter)."""
    parsed = parse_json_object(raw_arguments.strip() or "{}")
    return raw_arguments.strip() if parsed is None else json.dumps(parsed, sort_keys=True)


__all__ = ["INVALID_ARGUMENTS", "OBSERVATION_CHARS", "ReplayExecutor", "Tool", "ToolRegistry", "synthetic_registry"]
