"""ToolBench tasks in umi's agent loop: query files, the functions ToolBench builds from them,
and a tool registry that plays ToolBench's environment against a `/virtual` tool backend.

A query (StableToolBench `solvable_queries/test_instruction/*.json`, ToolBench
`data/instruction/*.json`) lists the APIs it may use; each becomes a function named
`<change_name(standardize(api))>_for_<standard tool name>` (last 64 characters) with ToolBench's
description and parameter schema, and `Finish` is appended (../shared/TOOLCALLING.md §9).
Without `tools_dir` (ToolBench's `toolenv/tools`), the documentation in the query's own
`api_list` is used and the standard tool name is `standardize(tool_name)`; with it, the tool
documents are read exactly as ToolBench reads them (white list by file stem, tool descriptions
for the system prompt).

The seam to the tool world is one argument, `Backend = Callable[[dict], dict]`: it takes the
body of a StableToolBench `POST /virtual` request (`category, tool_name, api_name, tool_input,
strip, toolbench_key`) and returns the `{"error", "response"}` body. `toolbench_http.HttpBackend` speaks
to a server (StableToolBench's, or `python -m umi_agent.toolserver`); `virtual.VirtualAPI(cache)`
answers in process (`--cache DIR`); `toolbench_backend` picks one and counts its hits and misses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from umi_agent import toolbench_text as text
from umi_agent.tools import OBSERVATION_CHARS, Tool, ToolRegistry
from umi_data.core import ConclusionTurn, ObservationTurn, PlannerTurn, ToolSpec
from umi_data.sources.toolbench import FINISH, parse_finish, parse_observation
from umi_data.sources.toolbench_names import api_function_stem, function_name, parameter_name, standardize

Backend = Callable[[dict[str, Any]], dict[str, Any]]
DESCRIPTION_CHARS = 256
TOOL_DESCRIPTION_CHARS = 512
TYPES = {"NUMBER": "integer", "STRING": "string", "BOOLEAN": "boolean"}
_QUERY_ID = re.compile(r"[A-Za-z0-9-]{1,80}")
#: ToolBench's `--observ_compress_method` default, sent as `strip` (the server ignores it).
STRIP = "truncate"
#: `{"error": ...}` texts of a backend and the status codes ToolBench's environment gives them.
ERROR_CODES = {
    "API not working error...": 6, "Unauthorized error...": 7, "Unsubscribed error...": 8,
    "Too many requests error...": 9, "Rate limit per minute error...": 10, "Message error...": 11,
}


class QueryFileError(ValueError):
    """A query file that cannot be read at all (a usage error: one line, exit 2)."""


class QueryReject(NamedTuple):
    """A query that cannot be played, and why (counted, never dropped silently)."""

    query_id: str
    reason: str
    detail: str


class ApiRef(NamedTuple):
    """Where a function's calls go: the `/virtual` request's category, tool and api names."""

    function: str
    category: str
    tool: str
    api: str


@dataclass
class ToolBenchTask:
    """One playable query: the functions ToolBench would offer (`Finish` last), where each
    function's calls go, and the task description of ToolBench's system prompt."""

    query_id: str
    query: str
    functions: list[dict[str, Any]]
    apis: list[ApiRef]
    task_description: str

    @property
    def system_prompt(self) -> str:
        return text.SYSTEM_PROMPT.replace("{task_description}", self.task_description)

    @property
    def user_prompt(self) -> str:
        return text.USER_PROMPT.replace("{input_description}", self.query)


# --- building functions ------------------------------------------------------------------------


def finish_function() -> dict[str, Any]:
    return {
        "name": FINISH,
        "description": text.FINISH_DESCRIPTION,
        "parameters": {
            "type": "object",
            "properties": {
                "return_type": {"type": "string", "enum": ["give_answer", "give_up_and_restart"]},
                "final_answer": {"type": "string", "description": text.FINAL_ANSWER_DESCRIPTION},
            },
            "required": ["return_type"],
        },
    }


def _parameter(para: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    schema = {"type": TYPES.get(para.get("type"), "string"), "description": str(para.get("description") or "")[:DESCRIPTION_CHARS]}
    default = para.get("default", "")
    if len(str(default)) != 0:
        schema["example_value"] = default
    return parameter_name(str(para["name"])), schema


def function_schema(api: Mapping[str, Any], standard_tool_name: str) -> dict[str, Any]:
    """ToolBench's function for one API document (`api_name`, `api_description`,
    `required_parameters`, `optional_parameters`). Quirk kept: optional parameters are only
    read when the API has required ones (ToolBench reads them inside that branch)."""
    name = function_name(api["api_name"], standard_tool_name)
    description = f'This is the subfunction for tool "{standard_tool_name}", you can use this tool.'
    api_description = str(api.get("api_description") or "").strip()
    if api_description:
        cut = api_description.replace(api["api_name"], name)[:DESCRIPTION_CHARS]
        description += f'The description of this function is: "{cut}"'
    parameters: dict[str, Any] = {"type": "object", "properties": {}, "required": [], "optional": []}
    if api.get("required_parameters"):
        for key, paras in (("required", api["required_parameters"]), ("optional", api.get("optional_parameters") or [])):
            for para in paras:
                param, schema = _parameter(para)
                parameters["properties"][param] = schema
                parameters[key].append(param)
    return {"name": name, "description": description, "parameters": parameters}


def task_description(tools: Iterable[tuple[str, str]]) -> str:
    """The task description: one `k.<standard tool name>: <description>` line per tool (first
    512 characters, newlines removed; "None" when empty), a tool listed once."""
    unique: dict[str, str] = {}
    for name, description in tools:
        unique[name] = description
    lines = []
    for k, (name, description) in enumerate(unique.items()):
        stripped = str(description or "")[:TOOL_DESCRIPTION_CHARS].replace("\n", "").strip()
        lines.append(f"{k + 1}.{name}: {stripped or 'None'}\n")
    return text.TASK_DESCRIPTION + "".join(lines)


# --- query files -------------------------------------------------------------------------------


class ToolDocs:
    """ToolBench's `toolenv/tools/{category}/{tool}.json`: the white list (standardised tool
    name -> file stem and tool description), read once, and the tool documents."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise QueryFileError(f"--tools-dir {root}: no such directory (ToolBench's toolenv/tools)")
        self.root = root
        self.white_list: dict[str, tuple[str, str]] = {}
        for path in sorted(root.glob("*/*.json")):
            document = _read_json(path)
            if isinstance(document, dict) and isinstance(document.get("tool_name"), str):
                self.white_list[standardize(document["tool_name"])] = (path.name.split(".")[0], str(document.get("tool_description") or ""))

    def api(self, category: str, tool: str, api: str) -> dict[str, Any] | None:
        """The API document as ToolBench's `fetch_api_json` builds it, or None."""
        path = self.root / category / f"{standardize(tool)}.json"
        if "/" in category or category in ("", ".", "..") or not path.is_file():
            return None
        document = _read_json(path)
        for entry in (document or {}).get("api_list") or []:
            if isinstance(entry, dict) and api_function_stem(str(entry.get("name", ""))) == api_function_stem(api):
                return {"api_name": entry["name"], "api_description": entry.get("description"),
                        "required_parameters": entry.get("required_parameters") or [],
                        "optional_parameters": entry.get("optional_parameters") or []}
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_task(record: Any, index: int, docs: ToolDocs | None = None) -> ToolBenchTask | QueryReject:
    """One query record as a playable task, or the reason it cannot be played. A query without
    `query_id` takes its position, as in ToolBench."""
    query_id = str(record.get("query_id", index)) if isinstance(record, dict) else str(index)
    if not isinstance(record, dict) or not isinstance(record.get("query"), str):
        return QueryReject(query_id, "wrong_shape", "a query is an object with a `query` string")
    raw_id = record.get("query_id", index)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not _QUERY_ID.fullmatch(query_id):
        # it names the answer file `<id>_<method>.json`, which ToolBench's readers split at the first `_`
        return QueryReject(query_id[:80], "bad_query_id", "a query_id is an integer or letters, digits and '-'")
    api_list = record.get("api_list")
    if not isinstance(api_list, list) or not api_list:
        return QueryReject(query_id, "no_api_list", "no api_list (open-domain queries need a tool retriever)")
    functions, apis, tools = [], [], []
    for position, item in enumerate(api_list):
        built = _build_api(item, docs)
        if isinstance(built, str):
            return QueryReject(query_id, built.split(":")[0], f"api_list[{position}]: {built}")
        function, ref, tool = built
        functions.append(function)
        apis.append(ref)
        tools.append(tool)
    return ToolBenchTask(query_id, record["query"], functions + [finish_function()], apis, task_description(tools))


def _build_api(item: Any, docs: ToolDocs | None) -> tuple[dict[str, Any], ApiRef, tuple[str, str]] | str:
    names = ("category_name", "tool_name", "api_name")
    if not isinstance(item, dict) or not all(isinstance(item.get(key), str) and item[key] for key in names):
        return "wrong_shape: an api needs category_name, tool_name and api_name strings"
    category, tool, api = (item[key] for key in names)
    if docs is None:
        if not isinstance(item.get("required_parameters"), list) or not isinstance(item.get("optional_parameters", []), list):
            return "no_documentation: the api has no parameter lists; give --tools-dir (ToolBench's toolenv/tools)"
        standard, description, document = standardize(tool), "", item
    else:
        if standardize(tool) not in docs.white_list:
            return f"tool_not_found: {tool!r} is not in --tools-dir"
        standard, description = docs.white_list[standardize(tool)]
        document = docs.api(category, tool, api)
        if document is None:
            return f"api_not_found: {api!r} is not in the document of {tool!r}"
    if not _parameters_ok(document):
        return "wrong_shape: a parameter needs a name string"
    function = function_schema(document, standard)
    return function, ApiRef(function["name"], category, standard, api_function_stem(document["api_name"])), (standard, description)


def _parameters_ok(document: Mapping[str, Any]) -> bool:
    paras = list(document.get("required_parameters") or []) + list(document.get("optional_parameters") or [])
    return all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in paras)


def read_queries(path: Path, tools_dir: Path | None = None) -> tuple[list[ToolBenchTask], list[QueryReject]]:
    """The playable tasks of a query file (a JSON list of queries) and the rejected queries."""
    if not path.is_file():
        raise QueryFileError(f"{path}: no such query file")
    try:
        records = json.loads(path.read_bytes())
    except ValueError as exc:
        raise QueryFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(records, list):
        raise QueryFileError(f"{path}: a query file is a JSON list of queries, got {type(records).__name__}")
    docs = ToolDocs(tools_dir) if tools_dir is not None else None
    tasks: list[ToolBenchTask] = []
    rejects: list[QueryReject] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        built = build_task(record, index, docs)
        if isinstance(built, ToolBenchTask) and built.query_id in seen:
            built = QueryReject(built.query_id, "duplicate_query_id", "an earlier query of the file has this query_id")
        (rejects if isinstance(built, QueryReject) else tasks).append(built)
        seen.add(built.query_id)
    return tasks, rejects


# --- the environment ---------------------------------------------------------------------------


def finish_status(raw_arguments: str) -> tuple[str, int]:
    """ToolBench's environment on a `Finish` call: (observation, code) with code 3 (answer),
    4 (give up and restart) or 2 (malformed: the episode goes on)."""
    try:
        data = json.loads(raw_arguments, strict=False)
    except ValueError:
        data = _scan_finish(raw_arguments)
    if not isinstance(data, dict) or "return_type" not in data:
        return text.FINISH_NO_RETURN_TYPE, 2
    if data["return_type"] == "give_up_and_restart":
        return text.FINISH_GAVE_UP, 4
    if data["return_type"] == "give_answer":
        return (text.FINISH_ANSWERED, 3) if "final_answer" in data else (text.FINISH_NO_FINAL_ANSWER, 2)
    return text.FINISH_BAD_RETURN_TYPE, 2


def _scan_finish(raw: str) -> dict[str, Any]:
    """ToolBench's fallback for unparsable `Finish` arguments: a substring scan."""
    data: dict[str, Any] = {}
    marker = '"return_type": "'
    if marker in raw:
        for kind in ("give_answer", "give_up_and_restart"):
            if f'{marker}{kind}"' in raw:
                data["return_type"] = kind
                break
        else:
            data["return_type"] = raw[raw.find(marker) + len(marker):raw.find('",')]
    if '"final_answer": "' in raw:
        data["final_answer"] = raw[raw.find('"final_answer": "') + len('"final_answer": "'):]
    return data


def observation_code(observation: ObservationTurn) -> int:
    """ToolBench's status code of a backend observation (0: normal; 1: no such function; 5:
    timeout; 6-11: the backend's error strings; 12: the request failed)."""
    if observation.error.startswith("No such function name: "):
        return 1
    if observation.error.startswith("request invalid, data error"):
        return 12
    if observation.error == "Timeout error...":
        return 5
    return ERROR_CODES.get(observation.error, 0)


def observation_text(observation: ObservationTurn) -> str:
    """The exact text ToolBench showed (and stored) for an observation."""
    if observation.raw is not None:
        return observation.raw
    return json.dumps({"error": observation.error, "response": observation.response})


class ToolBenchRegistry(ToolRegistry):
    """One task's functions as ToolBench's environment runs them: a call goes to the first
    function whose name *ends with* the called name (ToolBench's lookup), as a `/virtual`
    request to `backend`; the observation is `json.dumps` of the response cut to
    `observation_chars` (+ "..."). Arguments are not checked here: the server parses them, as
    in ToolBench. `Finish` is answered here, as ToolBench's environment does."""

    def __init__(self, task: ToolBenchTask, backend: Backend, observation_chars: int = OBSERVATION_CHARS,
                 toolbench_key: str = "") -> None:
        specs = [ToolSpec(name=f["name"], description=f["description"], parameters=f["parameters"]) for f in task.functions if f["name"] != FINISH]
        super().__init__((Tool(spec, _unused) for spec in specs), observation_chars)
        self.task, self.backend, self.toolbench_key = task, backend, toolbench_key

    def __contains__(self, name: str) -> bool:
        return name == FINISH or name in self.tools

    def request(self, name: str, raw_arguments: str) -> dict[str, Any] | None:
        """The `/virtual` request body a call to `name` sends, or None (no such function)."""
        for ref in self.task.apis:
            if ref.function.endswith(name):
                return {"category": ref.category, "tool_name": ref.tool, "api_name": ref.api, "tool_input": raw_arguments,
                        "strip": STRIP, "toolbench_key": self.toolbench_key}
        return None

    def observe(self, name: str, raw_arguments: str) -> str:
        """ToolBench's observation text of a call (before the cut)."""
        if name == FINISH:
            return finish_status(raw_arguments)[0]
        body = self.request(name, raw_arguments)
        if body is None:
            return json.dumps({"error": f"No such function name: {name}", "response": ""})
        response = self.backend(body)
        if not isinstance(response, dict) or "error" not in response:
            return json.dumps({"error": "request invalid, data error", "response": ""})
        return json.dumps(response)

    def execute(self, name: str, raw_arguments: str) -> ObservationTurn:
        observed = self.observe(name, raw_arguments)
        if len(observed) > self.observation_chars:
            observed = observed[: self.observation_chars] + "..."
        return parse_observation(observed)

    def ending(self, plan: PlannerTurn, name: str, raw_arguments: str) -> list[Any] | None:
        """The turns that replace `plan` when a call ends the episode: a `Finish` that answers
        (code 3) or gives up (code 4), recorded as ToolBench's answer files record it."""
        if name != FINISH:
            return None
        code = finish_status(raw_arguments)[1]
        if code == 4:
            return [plan.model_copy(update={"next": "give_up", "raw_arguments": raw_arguments})]
        if code == 3:
            return [plan.model_copy(update={"next": "conclusion"}),
                    ConclusionTurn(answer=parse_finish(raw_arguments)[1], raw_arguments=raw_arguments)]
        return None


def _unused(arguments: dict[str, Any]) -> str:  # pragma: no cover - ToolBenchRegistry.execute answers
    raise AssertionError("ToolBenchRegistry sends calls to its backend")


__all__ = [
    "ApiRef", "Backend", "QueryFileError", "QueryReject", "ToolBenchRegistry", "ToolBenchTask", "ToolDocs", "build_task",
    "finish_function", "finish_status", "function_schema", "observation_code", "observation_text", "read_queries",
    "task_description",
]
