"""Two search drivers over one step function: CoT (one path: `loop.run_episode`) and DFSDT
(ToolBench's depth-first search over decision trees), both writing ToolBench answer files.

DFSDT, as ToolBench's `DFS_tree_search` with `with_filter=False` (its `DFS_woFilter_w2`): from a
node, up to `width` children are expanded one after another, each child searched to its end
before the next; a child's step that gives up (`Next: give up` of α-UMi, `Finish` with
`give_up_and_restart`, the backbone's `conclusion: give up.`) prunes that branch and backs up
two decision levels, and the next child there is asked for with ToolBench's diversity prompt,
which lists the earlier children's calls and outputs. The search stops at the first answer, or
when `max_queries` model decisions are spent; a path stops at `max_depth` tree nodes (a step
adds up to three: Thought, Action, Action Input). Defaults are ToolBench's (the answer files'
`forward_args`): width 2, 200 queries, depth 12.

The chosen chain (the first answer, else the first give-up, else the path being searched when
the budget ran out) is the episode's `Trajectory`; the diversity prompts on it are kept as
ToolBench keeps them in `train_messages` (the last one only), flagged `diversity_prompt`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from umi_agent import toolbench_text as text
from umi_agent.loop import Episode, MultiAgent, SingleAgent, _State, _trajectory, run_episode
from umi_agent.toolbench import ToolBenchRegistry, ToolBenchTask
from umi_agent.toolbench_tree import Node, grow, last_invalid_only, root_node, split_steps, with_finish_arguments
from umi_data.core import UserTurn

#: a return value that unwinds the whole search (ToolBench returns 10000 / 100000)
STOP = 10**6
#: how many decision levels a final answer or a give-up backs up (ToolBench's back lengths)
BACK = 2
SEARCHES = ("cot", "dfsdt")


@dataclass(frozen=True)
class DfsdtConfig:
    """ToolBench's `DFS_tree_search.start` arguments (defaults: its answer files' forward_args)."""

    width: int = 2  # tree_beam_size
    max_queries: int = 200  # max_query_count: model decisions per query
    max_depth: int = 12  # single_chain_max_step: tree nodes on a path
    answers: int = 1

    def forward_args(self) -> dict[str, Any]:
        return {"single_chain_max_step": self.max_depth, "tree_beam_size": self.width, "max_query_count": self.max_queries,
                "answer": self.answers, "with_filter": False}

    @property
    def method(self) -> str:
        return f"DFS_woFilter_w{self.width}"


@dataclass
class Played:
    """One query played: the episode (a `Trajectory`) and its ToolBench answer file."""

    episode: Episode
    answer: dict[str, Any]
    method: str


def diversity_prompt(node: Node) -> str | None:
    """ToolBench's diversity prompt before another child of `node`, listing each earlier
    child's first call (name, arguments, output); None when there is none to list."""
    candidates = []
    for child in node.children:
        first = child
        while not first.is_terminal and first.node_type != "Action Input" and first.children:
            first = first.children[0]
        if first.node_type == "Action Input":
            candidates.append({"name": first.father.description, "arguments": first.description,
                               "function_output": first.observation, "mento-carlo-action-value": 0.0})
    if not candidates:
        return None
    listed = f"{json.dumps(candidates, indent=2)}\n"
    if node.observation != "":
        listed += f"again, your former observation: {node.observation}\n"
    return text.DIVERSITY_PROMPT.replace("{previous_candidate}", listed)


class Dfsdt:
    """One DFSDT search of one task (not thread-safe; one per episode)."""

    def __init__(self, agent: MultiAgent | SingleAgent, task: ToolBenchTask, registry: ToolBenchRegistry,
                 config: DfsdtConfig = DfsdtConfig()) -> None:
        self.agent, self.task, self.config = agent, task, config
        first = [UserTurn(content=task.query)]
        self.root = root_node(task.system_prompt, task.user_prompt, first)
        self.root.state = _State(task.query, registry, agent.family, turns=list(first))
        self.queries = self.expanded = 0
        self.answers: list[Node] = []
        self.give_ups: list[Node] = []
        self.last = self.root

    def run(self) -> "Dfsdt":
        self._search(self.root)
        return self

    def _search(self, node: Node) -> int:
        """ToolBench's `DFS`: how many levels to back up (`STOP` ends the search)."""
        node.expand_num, self.expanded = self.expanded, self.expanded + 1
        if node.depth >= self.config.max_depth or node.pruned or node.is_terminal:
            if node.is_terminal:
                self.answers.append(node)
                return BACK
            node.pruned = True
            if node.observation_code == 4:
                self.give_ups.append(node)
                return BACK
            return 1
        for _ in range(self.config.width):
            if self.queries >= self.config.max_queries:
                return STOP
            result = self._search(self._expand(node))
            if len(self.answers) >= self.config.answers:
                return STOP
            if result > 1:
                return result - 1
        return 1

    def _expand(self, node: Node) -> Node:
        """One model decision from `node` (after the diversity prompt when it has children)."""
        state = copy.copy(node.state)
        state.turns = list(node.state.turns)
        prompt = diversity_prompt(node)
        extra = [UserTurn(content=prompt, diversity_prompt=True)] if prompt else []
        if prompt:
            node.messages.append({"role": "user", "content": prompt, "valid": False})
        state.turns.extend(extra)  # shown to this decision only, as ToolBench hides it afterwards
        start = len(state.turns)
        self.agent.step(state)
        self.queries += 1
        step = with_finish_arguments(state.turns[start:])
        state.turns = state.turns[: start - len(extra)] + step
        child = grow(node, step)
        child.state, child.record = state, node.record + extra + step
        self.last = child
        return child

    @property
    def chosen(self) -> Node:
        return (self.answers or self.give_ups or [self.last])[0]

    def answer_file(self) -> dict[str, Any]:
        """The answer file as ToolBench's `DFS_tree_search.to_json(answer=True)` writes it."""
        generation: dict[str, Any] = {"valid_data": False, "query_count": self.queries, "total_tokens": 0, "final_answer": "",
                                      "finish_type": "give_answer", "function": self.task.functions, "chain": []}
        found = self.answers[:1] or self.give_ups[:1]
        if found:
            generation.update(valid_data=True, finish_type="give_answer" if self.answers else "give_up",
                              final_answer=found[0].description, train_messages=found[0].train_messages())
        generation["query"] = self.task.query
        answer = {
            "win": bool(self.answers),
            "tree": {"size": self.root.size(), "max_length": self.root.max_depth(), "tree": self.root.to_json_recursive()},
            "forward_args": self.config.forward_args(),
            "compare_candidates": [node.chain() for node in self.answers if not node.pruned],
            "answer_generation": generation,
        }
        return answer if found else unfinished_path(answer, self.last)


def chosen_turns(record: list[Any]) -> list[Any]:
    """A path's turns with only its last diversity prompt (ToolBench's train_messages keep one)."""
    flagged = [i for i, turn in enumerate(record) if turn.role == "user" and turn.diversity_prompt]
    return [turn for i, turn in enumerate(record) if i not in flagged[:-1]]


def _episode(state: _State, turns: list[Any], episode_id: str, meta: dict[str, Any], steps: int) -> Episode:
    state = copy.copy(state)
    state.turns = turns
    return Episode(trajectory=_trajectory(state, episode_id, meta), latency=dict(state.latency), steps=steps)


def play_dfsdt(agent: MultiAgent | SingleAgent, task: ToolBenchTask, registry: ToolBenchRegistry, episode_id: str,
               config: DfsdtConfig = DfsdtConfig(), meta: dict[str, Any] | None = None) -> Played:
    search = Dfsdt(agent, task, registry, config).run()
    chosen = search.chosen
    meta = {**(meta or {}), "agent": type(agent).__name__, "search": "dfsdt", **config.forward_args(),
            "query_count": search.queries, "tree_size": search.root.size()}
    episode = _episode(search.root.state, chosen_turns(chosen.record), episode_id, meta, search.queries)
    return Played(episode, search.answer_file(), config.method)


def cot_answer_file(task: ToolBenchTask, turns: list[Any], steps: int, max_steps: int) -> dict[str, Any]:
    """The answer file of one path as ToolBench's `single_chain.to_json(answer=True)` writes it."""
    node = root_node(task.system_prompt, task.user_prompt, turns[:1])
    for step in split_steps(turns):
        node = grow(node, step)
    if not node.is_terminal:
        node.pruned = True  # ToolBench prunes a chain that stops without an answer
    won = node.is_terminal
    chain = node.chain()
    answer = {
        "win": won, "try_count": 1, "trys": [{"chain": chain, "win": won}], "compare_candidates": [chain] if won else [],
        "forward_args": {"max_steps": max_steps, "pass_at": 1, "answer": 1},
        "answer_generation": {"valid_data": won, "final_answer": node.description if won else "", "function": task.functions,
                              "query_count": steps, "total_tokens": 0, "train_messages": node.train_messages() if won else [],
                              "chain": [], "query": task.query},
    }
    return answer if won else unfinished_path(answer, node)


def unfinished_path(answer: dict[str, Any], node: Node) -> dict[str, Any]:
    """An answer file ToolBench marks invalid (no answer, no give-up: `valid_data: false`,
    `train_messages` empty or absent, as its converter expects) with the path umi played kept
    under umi's own top-level key, so that umi's builder reads it back as the unfinished
    trajectory it records (ToolBench's and StableToolBench's readers ignore the key)."""
    messages = max((list(n.messages) for n in node.path()), key=len)  # the whole path, its last observation included
    if len(messages) > 1 and (messages[-2].get("function_call") or {}).get("name") == "Finish":
        messages = messages[:-1]  # a give-up's Finish has no observation in a trajectory
    return {**answer, "umi": {"train_messages": [last_invalid_only(messages)]}}


def play_cot(agent: MultiAgent | SingleAgent, task: ToolBenchTask, registry: ToolBenchRegistry, episode_id: str,
             meta: dict[str, Any] | None = None) -> Played:
    played = run_episode(agent, task.query, registry, episode_id=episode_id, meta={**(meta or {}), "search": "cot"})
    turns = with_finish_arguments(played.trajectory.turns)
    state = _State(task.query, registry, agent.family, turns=turns)
    state.latency.update(played.latency)
    episode = _episode(state, turns, episode_id, dict(played.trajectory.meta), played.steps)
    return Played(episode, cot_answer_file(task, turns, played.steps, agent.max_steps), "CoT@1")


__all__ = ["BACK", "Dfsdt", "DfsdtConfig", "Played", "SEARCHES", "chosen_turns", "cot_answer_file", "diversity_prompt",
           "play_cot", "play_dfsdt", "unfinished_path"]
