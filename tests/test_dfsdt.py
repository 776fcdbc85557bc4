"""DFSDT (umi_agent.dfsdt) with scripted models: a give-up backtracks to a different child asked
for with ToolBench's diversity prompt, the node budget holds, the tree in the answer file has
ToolBench's shape, and the answer files read back through umi's builder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from umi_agent.backends import ScriptedModel
from umi_agent.dfsdt import DfsdtConfig, Played, play_dfsdt
from umi_agent.loop import MultiAgent, SingleAgent
from umi_agent.toolbench import ToolBenchRegistry, build_task
from umi_agent.toolbench_text import DIVERSITY_PROMPT
from umi_data.core import Trajectory
from umi_data.sources import discover_files, get_source, read_source

API = {"category_name": "Weather", "tool_name": "Open Weather", "api_description": "", "method": "GET",
       "required_parameters": [{"name": "city", "type": "STRING", "description": "a city", "default": ""}], "optional_parameters": []}
QUERY = {"query_id": 7, "query": "What is the weather in Paris?",
         "api_list": [{**API, "api_name": "Current"}, {**API, "api_name": "Forecast"}]}
DIVERSITY = "This is not the first time you try this task"
NODE_KEYS = {
    "Action Input": ["is_terminal", "pruned", "finished", "depth", "node_type", "description", "Elo", "observation",
                     "observation_code", "child_count", "expand_num", "io_state", "children"],
    "Action": ["is_terminal", "pruned", "finished", "depth", "node_type", "description", "Elo", "child_count", "expand_num", "children"],
    "Thought": ["is_terminal", "pruned", "finished", "depth", "node_type", "description", "Elo", "child_count", "expand_num", "children"],
}
ROOT_KEYS = ["is_terminal", "pruned", "finished", "depth", "node_type", "description", "Elo", "child_count", "expand_num", "io_state", "children"]


def backend(request: dict[str, Any]) -> dict[str, Any]:
    return {"error": "", "response": f"{request['api_name']}: sunny"}


def play(model: Callable[[str], str], config: DfsdtConfig = DfsdtConfig(), multi: Callable[[str], str] | None = None) -> Played:
    task = build_task(QUERY, 0)
    agent = SingleAgent(ScriptedModel(model)) if multi is None else MultiAgent(ScriptedModel(model), ScriptedModel(multi), ScriptedModel(["Sunny."] * 9))
    return play_dfsdt(agent, task, ToolBenchRegistry(task, backend), "7", config)


def call(name: str) -> str:
    return f'Let me call {name}.\nAction: {name}_for_open_weather\nAction Input: {{"city": "Paris"}}'


def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node] + [n for child in node["children"] for n in nodes(child)]


def shape(node: dict[str, Any]) -> tuple:
    """(type, description, code, pruned, finished, expand_num, children) of a tree, recursively."""
    return (node["node_type"], node["description"][:20], node.get("observation_code"), node["pruned"], node["finished"],
            node["expand_num"], tuple(shape(child) for child in node["children"]))


def linear(levels: list[tuple]) -> tuple:
    """The `shape` of a chain of nodes, each the only child of the one before."""
    node: tuple = ()
    for level in reversed(levels):
        node = (*level, (node,) if node else ())
    return node


def single_model(prompts: list[str]) -> Callable[[str], str]:
    """Calls `current`, gives up after seeing its output; asked again (diversity prompt), calls
    `forecast`, then answers."""
    def model(prompt: str) -> str:
        prompts.append(prompt)
        if "forecast: sunny" in prompt:
            return "Now I know.\nconclusion: It is sunny."
        if DIVERSITY in prompt:
            return call("forecast")
        if "current: sunny" in prompt:
            return "That did not help.\nconclusion: give up."
        return call("current")
    return model


def test_a_give_up_backtracks_to_a_new_child_with_the_diversity_prompt() -> None:
    prompts: list[str] = []
    played = play(single_model(prompts))
    tree = played.answer["tree"]["tree"]
    T, A, AI = "Thought", "Action", "Action Input"
    first = linear([(T, "Let me call current.", None, False, False, 0), (A, "current_for_open_wea", None, False, False, 0),
                    (AI, '{"city": "Paris"}', 0, False, False, 1), (T, "That did not help.", None, False, False, 0),
                    (A, "Finish", None, False, False, 0), (AI, '{"return_type": "giv', 4, True, False, 2)])
    # the answer marks (make_finish) its chain up to the second Action Input above it: here the root
    second = linear([(T, "Let me call forecast", None, False, True, 0), (A, "forecast_for_open_we", None, False, True, 0),
                     (AI, '{"city": "Paris"}', 0, False, True, 3), (T, "Now I know.", None, False, True, 0),
                     (A, "Finish", None, False, True, 0), (AI, '{"return_type": "giv', 3, False, True, 4)])
    assert shape(tree) == (AI, "", None, False, True, 0, (first, second))
    # the diversity prompt lists the earlier child's call and output, and is shown to that decision only
    expected = DIVERSITY_PROMPT.replace("{previous_candidate}", json.dumps([{
        "name": "current_for_open_weather", "arguments": '{"city": "Paris"}',
        "function_output": '{"error": "", "response": "current: sunny"}', "mento-carlo-action-value": 0.0}], indent=2) + "\n")
    assert len(prompts) == 4 and expected in prompts[2]
    assert DIVERSITY not in prompts[3] and "forecast: sunny" in prompts[3]
    generation = played.answer["answer_generation"]
    assert generation["valid_data"] and generation["finish_type"] == "give_answer" and generation["query_count"] == 4
    final = generation["train_messages"][-1]
    assert [m["role"] for m in final] == ["system", "user", "user", "assistant", "function", "assistant"]
    assert final[2] == {"role": "user", "content": expected, "valid": False}
    turns = played.episode.trajectory.turns
    assert [t.role for t in turns] == ["user", "user", "planner", "caller", "observation", "planner", "conclusion"]
    assert turns[1].diversity_prompt and played.episode.trajectory.outcome == "answer"
    assert played.answer["win"] and len(played.answer["compare_candidates"]) == 1


def test_alpha_umi_give_up_backtracks_too() -> None:
    """α-UMi's `Next: give up.` is ToolBench's `Finish(give_up_and_restart)`: the branch is pruned
    and the search goes on from two decisions up."""
    def planner(prompt: str) -> str:
        if "forecast: sunny" in prompt:
            return "Enough. Next: conclusion."
        if DIVERSITY in prompt:
            return "Try the forecast. Next: caller."
        return "Give up. Next: give up." if "current: sunny" in prompt else "Try current. Next: caller."

    def caller(prompt: str) -> str:
        return call("forecast" if "Try the forecast" in prompt else "current").split("\n", 1)[1]

    played = play(planner, multi=caller)
    generation = played.answer["answer_generation"]
    assert generation["finish_type"] == "give_answer" and json.loads(generation["final_answer"])["final_answer"] == "Sunny."
    tree = played.answer["tree"]["tree"]
    assert tree["child_count"] == 2 and [n["observation_code"] for n in nodes(tree) if n.get("observation_code")] == [4, 3]


def test_node_budget_and_depth_hold() -> None:
    """A model that never finishes: ToolBench's search exhausts the width-2 tree of depth 12 (a
    step adds Thought, Action, Action Input: 4 levels of decisions, 2+4+8+16 = 30), or stops at
    the budget of model decisions."""
    full = play(lambda prompt: call("current"))
    assert full.answer["answer_generation"]["query_count"] == 30 and not full.answer["answer_generation"]["valid_data"]
    assert max(n["depth"] for n in nodes(full.answer["tree"]["tree"])) == 12
    assert full.episode.trajectory.outcome == "unfinished" and full.episode.steps == 30
    capped = play(lambda prompt: call("current"), DfsdtConfig(max_queries=7))
    assert capped.answer["answer_generation"]["query_count"] == 7
    assert capped.answer["forward_args"] == {"single_chain_max_step": 12, "tree_beam_size": 2, "max_query_count": 7,
                                             "answer": 1, "with_filter": False}
    gave_up = play(lambda prompt: "No.\nconclusion: give up.", DfsdtConfig(max_queries=5, width=3))
    generation = gave_up.answer["answer_generation"]
    assert generation["query_count"] == 1  # a give-up backs up two levels: from the root's child, past the root
    assert generation["valid_data"] and generation["finish_type"] == "give_up" and gave_up.method == "DFS_woFilter_w3"


def test_tree_has_toolbench_shape() -> None:
    played = play(single_model([]))
    answer = played.answer
    assert list(answer) == ["win", "tree", "forward_args", "compare_candidates", "answer_generation"]
    assert list(answer["answer_generation"]) == ["valid_data", "query_count", "total_tokens", "final_answer", "finish_type",
                                                 "function", "chain", "train_messages", "query"]
    tree = answer["tree"]
    assert list(tree) == ["size", "max_length", "tree"] and tree["size"] == len(nodes(tree["tree"])) == 13
    assert tree["max_length"] == 7
    assert list(tree["tree"]) == ROOT_KEYS
    for node in nodes(tree["tree"])[1:]:
        keys = [k for k in NODE_KEYS[node["node_type"]] if k in node]
        assert list(node) == keys and node["child_count"] == len(node["children"])


def test_tree_keys_equal_the_real_answer_files(toolbench_answer: Path) -> None:
    """Every node umi writes has the keys, in order, of the same kind of node in a real ToolBench
    DFS answer file (those written by the current code: older ones add `matching_time`)."""
    seen: dict[tuple[str, bool], set[tuple[str, ...]]] = {}
    for path in sorted(toolbench_answer.glob("*/*.json")):
        root = json.loads(path.read_text())["tree"]["tree"]
        for node in nodes(root):
            seen.setdefault((node["node_type"], node is root), set()).add(tuple(node))
    ours = play(single_model([])).answer["tree"]["tree"]
    for node in nodes(ours):
        assert tuple(node) in seen[(node["node_type"], node is ours)]


def test_dfsdt_answer_files_read_back_with_zero_rejects(tmp_path: Path) -> None:
    played = {"1": play(single_model([])), "2": play(lambda prompt: "No.\nconclusion: give up.", DfsdtConfig(max_queries=4))}
    for query_id, one in played.items():
        (tmp_path / f"{query_id}_{one.method}.json").write_text(json.dumps(one.answer))
    read = list(read_source(get_source("toolbench"), discover_files([tmp_path]), {}))
    assert all(isinstance(t, Trajectory) for t in read) and len(read) == 2
    for trajectory in read:
        assert trajectory.turns == played[trajectory.meta["query_id"]].episode.trajectory.turns


@pytest.mark.parametrize("width", [1, 3])
def test_width_bounds_children(width: int) -> None:
    played = play(lambda prompt: call("current"), DfsdtConfig(width=width, max_queries=50))
    decisions = [n for n in nodes(played.answer["tree"]["tree"]) if n["node_type"] == "Action Input"]
    assert all(n["child_count"] <= width for n in decisions)
    assert played.answer["answer_generation"]["query_count"] == min(50, sum(width ** k for k in range(1, 5)))


def test_diversity_prompt_text_equals_the_real_answer_files(toolbench_answer: Path) -> None:
    """Every diversity message in the real DFS answer files is ToolBench's prompt around a JSON
    list of earlier candidates with umi's keys (and, after a call, the node's own observation)."""
    head, tail = DIVERSITY_PROMPT.split("{previous_candidate}")
    found = 0
    for path in sorted(toolbench_answer.glob("*/*.json")):
        for chain in json.loads(path.read_text())["answer_generation"].get("train_messages") or []:
            for message in chain:
                if message["role"] != "user" or message.get("valid") is not False:
                    continue
                found += 1
                content = message["content"]
                assert content.startswith(head) and content.endswith(tail)
                listed, _, again = content[len(head):-len(tail)].partition("]\n")
                candidates = json.loads(listed + "]")
                assert all(list(c) == ["name", "arguments", "function_output", "mento-carlo-action-value"] for c in candidates)
                assert again == "" or again.startswith("again, your former observation: ")
    assert found >= 10
