"""Test helpers: ToolBench answer files as a task, a `/virtual` backend and scripted α-UMi roles.

`recorded_backend` answers a `/virtual` request from the observations recorded in answer files
(every `Action Input` node of their trees), keyed as a cache would be: (tool, api, canonical
arguments), one file at a time: two runs of one query may have recorded different responses,
and a path check needs each run's own. The real cache (`python -m umi_data tool-cache`, served
by `umi_agent.toolserver` or `VirtualAPI` in process) replays the same files in
tests/test_toolbench_play.py; the agent only sees the `Backend` callable either way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from umi_agent.backends import ScriptedModel
from umi_agent.loop import MultiAgent
from umi_agent.toolbench import ApiRef, ToolBenchRegistry, ToolBenchTask, task_description
from umi_data.sources.toolbench import FINISH, parse_finish, parse_observation

_TOOL = re.compile(r'This is the subfunction for tool "([^"]*)"')


def task_from_answer(answer: dict[str, Any], query_id: str = "0") -> ToolBenchTask:
    """The task an answer file was played on, from its own function list (the 15 ToolBench
    files have no query file): the tool is the one the description names, the api the stem."""
    generation = answer["answer_generation"]
    apis, tools = [], []
    for function in generation["function"]:
        if function["name"] == FINISH:
            continue
        tool = _TOOL.match(function["description"]).group(1)
        stem = function["name"][: -len(f"_for_{tool}")] if function["name"].endswith(f"_for_{tool}") else function["name"]
        apis.append(ApiRef(function["name"], "Unknown", tool, stem))
        tools.append((tool, ""))
    return ToolBenchTask(query_id, generation["query"], generation["function"], apis, task_description(tools))


def _canonical(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), sort_keys=True)
    except ValueError:
        return raw.strip()


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children") or []:
        yield from _nodes(child)


def recorded_calls(answer: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(called name, raw arguments, observation) of every tool call an answer file recorded:
    its chosen chain first, then its tree."""
    chain = answer["answer_generation"].get("train_messages") or [[]]
    for message, result in zip(chain[-1], chain[-1][1:]):
        call = message.get("function_call")
        if call and call["name"] != FINISH and result.get("role") == "function":
            yield call["name"], call["arguments"], result["content"]
    for tree_node in _nodes(answer["tree"]["tree"]) if "tree" in answer else ():
        for child in tree_node.get("children") or []:
            if tree_node["node_type"] == "Action" and child["node_type"] == "Action Input" and tree_node["description"] != FINISH:
                if child.get("observation_code") != 1 and "observation" in child:
                    yield tree_node["description"], child["description"], child["observation"]


def response_of(observation: str) -> dict[str, Any]:
    """The `{"error", "response"}` body behind a recorded observation (recovered as far as
    it goes when ToolBench cut it at 1024 characters)."""
    try:
        body = json.loads(observation)
        if isinstance(body, dict) and "error" in body:
            return body
    except ValueError:
        pass
    turn = parse_observation(observation)
    return {"error": turn.error, "response": turn.response}


def recorded_backend(answers: list[dict[str, Any]]) -> tuple[Any, dict[tuple[str, str, str], str]]:
    """A `/virtual` backend over the calls recorded in `answers`, and its table of observations."""
    table: dict[tuple[str, str, str], str] = {}
    for answer in answers:
        registry = ToolBenchRegistry(task_from_answer(answer), lambda request: {})
        for name, raw, observation in recorded_calls(answer):
            request = registry.request(name, raw)
            if request is not None:
                table.setdefault((request["tool_name"], request["api_name"], _canonical(raw)), observation)

    def backend(request: dict[str, Any]) -> dict[str, Any]:
        key = (request["tool_name"], request["api_name"], _canonical(str(request["tool_input"])))
        if key not in table:
            return {"error": f"miss: no recorded response for {key}", "response": ""}
        return response_of(table[key])

    return backend, table


def scripted_roles(chain: list[dict[str, Any]]) -> MultiAgent:
    """An α-UMi agent whose planner, caller and summarizer replay a ToolBench chain: each
    assistant message becomes a plan (`Next: caller` for a call, `Finish` included, which the
    caller then writes; no `Next` for a bare thought)."""
    plans, calls = [], []
    for message in chain:
        if message["role"] != "assistant":
            continue
        thought = (message.get("content") or "").strip()
        call = message.get("function_call")
        if call is None:
            plans.append(thought)
            continue
        plans.append(f"{thought} Next: caller.")
        calls.append(f"Action: {call['name']}\nAction Input: {call['arguments']}")
    return MultiAgent(ScriptedModel(plans), ScriptedModel(calls), ScriptedModel([]), max_steps=len(plans) + 1)


def final_answer(answer: dict[str, Any]) -> tuple[str, str]:
    return parse_finish(answer["answer_generation"]["final_answer"])


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
