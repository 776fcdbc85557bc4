"""Test helpers: a ToolBench answer file as a task, and scripted α-UMi roles replaying its chain.

The tool responses come from umi's own cache of the recorded files (`python -m umi_data
tool-cache`, `VirtualAPI` in process or `umi_agent.toolserver` over HTTP): see
tests/test_toolbench_play.py and tests/test_toolbench_agent.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from umi_agent.backends import ScriptedModel
from umi_agent.loop import MultiAgent
from umi_agent.toolbench import ApiRef, ToolBenchTask, task_description
from umi_data.sources.toolbench import FINISH, parse_finish

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
