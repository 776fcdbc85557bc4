"""Solved tasks as ToolBench answer files (../shared/FORMATS.md §1), so the `toolbench` source
reads synthetic data exactly like real data (it tags files named `<id>_synthetic.json` with
source "synthetic").

The shape follows the real files: a system prompt that lists the tools, the user message
`"\\n{query}\\nBegin!\\n"`, assistant messages with a thought and a `function_call` whose
arguments are a JSON string, `function` messages holding the {"error", "response"} envelope,
`train_messages` as growing histories (one per assistant message, the last one the whole
chain), a Finish call, and the DFS-search bookkeeping (`tree`, `compare_candidates`) for a
search that went straight down one chain. The system prompt and Finish description are umi's
own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

import orjson

from umi_data.synth.solver import Episode, Step, solve
from umi_data.synth.tasks import Task, generate_tasks
from umi_data.synth.toolkit import observation_content
from umi_data.synth.tools import TOOL_DESCRIPTIONS, TOOL_GROUPS

#: The method part of the file names (`<id>_synthetic.json`); the toolbench source keys on it.
SYNTHETIC_METHOD = "synthetic"
GROUP_DIR = "G1_answer"
FINISH = "Finish"
FINISH_FUNCTION: dict[str, Any] = {
    "name": FINISH,
    "description": (
        "Ends the task. Call it with return_type \"give_answer\" and a final_answer that holds everything the user "
        "asked for (the user sees nothing else), or with \"give_up_and_restart\" when the task cannot be completed "
        "with the available functions. Every attempt must end with this function."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "return_type": {"type": "string", "enum": ["give_answer", "give_up_and_restart"]},
            "final_answer": {
                "type": "string",
                "description": "The answer shown to the user; required when return_type is \"give_answer\".",
            },
        },
        "required": ["return_type"],
    },
}
_SYSTEM_PROMPT = """You are an assistant that completes the user's task by calling functions, one call per step.
Before every call, write a short thought (a few sentences at most): what you have learned so far and what you will do next.
Each call returns an observation with an "error" and a "response" field; read it before deciding the next step.
If a function fails, another function may provide the same information.
Call functions by their full names as listed in the function list, never by the names of the tools below.
When you can answer, call "Finish" with return_type "give_answer" and a final_answer that contains every detail the user asked for.
If the task cannot be completed with these functions, call "Finish" with return_type "give_up_and_restart".
The functions belong to these tools:
"""
_OBSERVATION_CODES = {"ok": 0, "error": 5, "answer": 3, "give_up": 4}


@lru_cache(maxsize=None)
def system_prompt(groups: tuple[str, ...]) -> str:
    return _SYSTEM_PROMPT + "".join(f"{i}.{g}: {TOOL_DESCRIPTIONS[g]}\n" for i, g in enumerate(groups, 1))


@lru_cache(maxsize=None)
def task_functions(groups: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """The ToolBench function entries offered by a task (without Finish). Cached and shared by
    every record with these tools: treat them as read-only."""
    return tuple(tool.function_schema() for g in groups for tool in TOOL_GROUPS[g])


def arguments_text(arguments: dict[str, Any]) -> str:
    """Arguments as ToolBench writes them: JSON indented by two spaces, non-ASCII kept."""
    return orjson.dumps(arguments, option=orjson.OPT_INDENT_2).decode()


def finish_arguments(answer: str | None) -> str:
    if answer is None:
        return arguments_text({"return_type": "give_up_and_restart"})
    return arguments_text({"return_type": "give_answer", "final_answer": answer})


def episode_messages(episode: Episode, observations: list[str] | None = None) -> list[dict[str, Any]]:
    """The whole chain: system, user, then assistant/function pairs, then the Finish call.
    `observations` are the steps' observation texts when already computed."""
    task = episode.task
    if observations is None:
        observations = [observation_content(step.result) for step in episode.steps]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(task.tools)},
        {"role": "user", "content": f"\n{task.instruction}\nBegin!\n"},
    ]
    for step, observation in zip(episode.steps, observations):
        messages.append({"role": "assistant", "content": step.thought,
                         "function_call": {"name": step.name, "arguments": arguments_text(step.arguments)}})
        messages.append({"role": "function", "name": step.name, "content": observation})
    messages.append({"role": "assistant", "content": episode.finish_thought,
                     "function_call": {"name": FINISH, "arguments": finish_arguments(episode.answer)}})
    return messages


def growing_histories(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """ToolBench's `train_messages`: the chain up to and including each assistant message."""
    return [messages[: i + 1] for i, m in enumerate(messages) if m["role"] == "assistant"]


def estimated_tokens(histories: list[list[dict[str, Any]]]) -> int:
    """A stand-in for ToolBench's `total_tokens` (prompt + completion over all model queries),
    at four characters a token, since no model was queried."""
    characters = sum(len(m["content"] or "") + len(m.get("function_call", {}).get("arguments", "")) for h in histories for m in h)
    return characters // 4


def _node(depth: int, node_type: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"is_terminal": False, "pruned": False, "finished": False, "depth": depth, "node_type": node_type,
            "description": description, "Elo": 1000.0, "child_count": 0, "expand_num": 0, **extra}


def search_chain(episode: Episode, observations: list[str]) -> list[dict[str, Any]]:
    """The DFS nodes of a search that never branched: an Action and an Action Input per call."""
    calls: list[tuple[str, str, str, int]] = [
        (s.name, arguments_text(s.arguments), observation, _OBSERVATION_CODES["ok" if s.result.ok else "error"])
        for s, observation in zip(episode.steps, observations)
    ]
    if episode.answer is None:
        observation, code = '{"response":"chose to give up and restart."}', _OBSERVATION_CODES["give_up"]
    else:
        observation, code = '{"response":"successfully giving the final answer."}', _OBSERVATION_CODES["answer"]
    calls.append((FINISH, finish_arguments(episode.answer), observation, code))
    nodes = []
    for index, (name, arguments, observation, code) in enumerate(calls):
        nodes.append(_node(2 * index + 1, "Action", name, finished=index > 0))
        nodes.append(_node(2 * index + 2, "Action Input", arguments, finished=True, observation=observation,
                           observation_code=code, expand_num=index + 1, io_state={}))
    nodes[-1]["is_terminal"] = True
    return nodes


def search_tree(chain: list[dict[str, Any]]) -> dict[str, Any]:
    root = _node(0, "Action Input", "", io_state={})
    parent = root
    for node in chain:
        child = {**node, "children": []}
        parent["child_count"] = 1
        parent["children"] = [child]
        parent = child
    return {"size": len(chain) + 1, "max_length": len(chain) + 1, "tree": root}


def answer_record(episode: Episode, seed: int) -> dict[str, Any]:
    """The ToolBench answer file of a solved task (keys in the order of the real files).

    `compare_candidates` stays empty: ToolBench fills it for a pairwise comparison of candidate
    chains that never ran here, and a copy of the one chain would only repeat the tree."""
    task = episode.task
    observations = [observation_content(step.result) for step in episode.steps]
    histories = growing_histories(episode_messages(episode, observations))
    won = episode.answer is not None
    return {
        "win": won,
        "tree": search_tree(search_chain(episode, observations)),
        "forward_args": {"generator": "umi_data.synth scripted solver", "seed": seed, "task_kind": task.kind},
        "compare_candidates": [],
        "answer_generation": {
            "valid_data": True,
            "query_count": len(histories),
            "total_tokens": estimated_tokens(histories),
            "final_answer": finish_arguments(episode.answer),
            "finish_type": "give_answer" if won else "give_up",
            "function": [*task_functions(task.tools), FINISH_FUNCTION],
            "chain": [],
            "train_messages": histories,
            "query": task.instruction,
        },
    }


def answer_file_name(task: Task) -> str:
    return f"{task.id}_{SYNTHETIC_METHOD}.json"


def answer_file_bytes(record: dict[str, Any]) -> bytes:
    """Indented like ToolBench's files; key order as built, so equal records give equal bytes."""
    return orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n"


def task_row(task: Task) -> dict[str, Any]:
    """The tasks.jsonl line of a task: what a live evaluation needs, and where its trajectory is."""
    return {
        "id": task.id,
        "kind": task.kind,
        "instruction": task.instruction,
        "tools": list(task_functions(task.tools)),
        "expected_facts": list(task.facts),
        "expected_outcome": task.outcome,
        "answer_file": f"answer/{GROUP_DIR}/{answer_file_name(task)}",
    }


@dataclass(frozen=True)
class Synthesized:
    """One generated task with its scripted episode and ToolBench answer record."""

    task: Task
    episode: Episode
    record: dict[str, Any]


def generate(n: int, seed: int) -> Iterator[Synthesized]:
    """Tasks 0..n-1 of `seed`, solved and rendered, one at a time (constant memory)."""
    for task in generate_tasks(n, seed):
        episode = solve(task)
        yield Synthesized(task, episode, answer_record(episode, seed))


__all__ = ["FINISH_FUNCTION", "SYNTHETIC_METHOD", "Step", "Synthesized", "answer_file_bytes", "answer_file_name",
           "answer_record", "episode_messages", "generate", "task_row"]
