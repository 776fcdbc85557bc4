"""ToolBench's search tree and messages, built from the turns of umi's agent steps.

ToolBench records a search as a tree of nodes (`Thought`, `Action`, `Action Input`; the root is
an `Action Input`), each with the OpenAI-style messages seen so far, and its answer files carry
that tree, the chosen chain's messages (`train_messages`) and the `Finish` arguments. One umi
step (a planner decision and what followed) becomes one assistant message and up to three
nodes, exactly as one ChatGPT turn does in ToolBench: the same tree for CoT (one path) and
DFSDT (`umi_agent.dfsdt`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from umi_agent import toolbench_text as text
from umi_agent.toolbench import finish_status, observation_code, observation_text
from umi_data.core import HALLUCINATED_NAME, ConclusionTurn, PlannerTurn
from umi_data.sources.toolbench import FINISH

#: ToolBench's `make_finish` interval for a final answer: marks the answer's last two actions.
FINAL_ANSWER_BACK = 2


def finish_arguments(turn: Any) -> str:
    """The `Finish` argument string of a conclusion or a give-up written by umi's roles."""
    if isinstance(turn, ConclusionTurn):
        return json.dumps({"return_type": "give_answer", "final_answer": turn.answer}, ensure_ascii=False)
    return json.dumps({"return_type": "give_up_and_restart"})


def with_finish_arguments(turns: Sequence[Any]) -> list[Any]:
    """The turns with the `Finish` call of every answer and give-up spelled out, as ToolBench's
    answer files record them (`raw_arguments`), so an episode and its answer file agree."""
    out = []
    for turn in turns:
        if isinstance(turn, ConclusionTurn) and turn.raw_arguments is None:
            turn = turn.model_copy(update={"raw_arguments": finish_arguments(turn)})
        elif isinstance(turn, PlannerTurn) and turn.next == "give_up" and turn.raw_arguments is None:
            turn = turn.model_copy(update={"raw_arguments": finish_arguments(turn)})
        out.append(turn)
    return out


def split_steps(turns: Sequence[Any]) -> list[list[Any]]:
    """The steps of a turn list: each planner turn with the turns that follow it up to the next
    planner or user turn."""
    steps: list[list[Any]] = []
    for turn in turns:
        if turn.role == "planner":
            steps.append([turn])
        elif turn.role != "user" and steps:
            steps[-1].append(turn)
    return steps


@dataclass(eq=False)
class Node:
    """A ToolBench tree node. `state` and `record` belong to the last node of a step (a
    decision node): the agent state after the step and the trajectory turns of its path."""

    node_type: str
    description: str = ""
    observation: str = ""
    observation_code: int | None = None
    father: "Node | None" = None
    children: list["Node"] = field(default_factory=list)
    pruned: bool = False
    finished: bool = False
    is_terminal: bool = False
    expand_num: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    state: Any = None
    record: list[Any] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return 0 if self.father is None else self.father.depth + 1

    def size(self) -> int:
        return 1 + sum(child.size() for child in self.children)

    def max_depth(self) -> int:
        return 1 + max((child.max_depth() for child in self.children), default=0)

    def adopt(self, child: "Node") -> "Node":
        child.father = self
        self.children.append(child)
        return child

    def path(self) -> list["Node"]:
        """The nodes from the root's child down to this one."""
        nodes, node = [], self
        while node.father is not None:
            nodes.append(node)
            node = node.father
        return nodes[::-1]

    def make_finish(self, interval: int) -> None:
        """ToolBench's `make_finish`: mark this node and its ancestors up to `interval` more
        `Action Input` nodes as finished."""
        node: Node | None = self
        while node is not None:
            node.finished = True
            if node.node_type == "Action Input":
                interval -= 1
            if interval < 0:
                break
            node = node.father

    def to_json(self) -> dict[str, Any]:
        """The node as ToolBench's `tree_node.to_json` writes it (`is_terminal` is always
        false there, a quirk kept: readers go by `observation_code`)."""
        data: dict[str, Any] = {"is_terminal": False, "pruned": self.pruned, "finished": self.finished, "depth": self.depth,
                                "node_type": self.node_type, "description": self.description, "Elo": 1000.0}
        if self.observation != "":
            data["observation"] = self.observation
        if self.observation_code is not None:
            data["observation_code"] = self.observation_code
        data["child_count"] = len(self.children)
        data["expand_num"] = self.expand_num
        if self.node_type == "Action Input":
            data["io_state"] = {}
        return data

    def to_json_recursive(self) -> dict[str, Any]:
        return {**self.to_json(), "children": [child.to_json_recursive() for child in self.children]}

    def chain(self) -> list[dict[str, Any]]:
        """`get_chain_result_from_this_node`: the path's nodes, without children."""
        return [node.to_json() for node in self.path()]

    def train_messages(self) -> list[list[dict[str, Any]]]:
        """`get_train_messages_from_this_node`: one message list per `Action Input` node and
        per `Thought` node that ends in its own assistant message, root side first."""
        result = []
        for node in self.path():
            messages = list(node.messages)
            if node.node_type == "Action Input":
                while messages and messages[-1]["role"] != "assistant":
                    messages.pop()
            elif node.node_type == "Thought":
                while messages and messages[-1]["role"] == "user":
                    messages.pop()
                if not messages or messages[-1]["role"] != "assistant":
                    continue
            else:
                continue
            result.append(last_invalid_only(messages))
        return result


def last_invalid_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ToolBench's `sift_first_invalid_message`: of the messages marked `valid: false` (DFSDT
    diversity prompts), only the last one stays."""
    kept, seen_invalid = [], False
    for message in reversed(messages):
        if message.get("valid") is False:
            if seen_invalid:
                continue
            seen_invalid = True
        kept.append(message)
    return kept[::-1]


def root_node(system_prompt: str, user_prompt: str, first_turns: list[Any]) -> Node:
    return Node("Action Input", messages=[{"role": "system", "content": system_prompt}, {"role": "user", "content": user_prompt}],
                record=list(first_turns))


def _call_nodes(name: str, raw: str, observed: str, code: int) -> tuple[Node, Node]:
    action = Node("Action", description=name)
    action_input = Node("Action Input", description=raw, observation=observed, observation_code=code)
    if code == 4:
        action_input.pruned = True
    elif code == 3:
        action_input.is_terminal = True
    return action, action_input


def _step_parts(step: Sequence[Any]) -> tuple[str, tuple[str, str, str, int] | None]:
    """(thought, (called name, raw arguments, observation text, code) or None) of one step."""
    plan = step[0]
    if plan.next == "conclusion":
        raw = step[1].raw_arguments if step[1].raw_arguments is not None else finish_arguments(step[1])
        return plan.thought, (FINISH, raw, text.FINISH_ANSWERED, 3)
    if plan.next == "give_up":
        return plan.thought, (FINISH, plan.raw_arguments or finish_arguments(plan), text.FINISH_GAVE_UP, 4)
    if plan.next == "caller" and len(step) >= 3:
        call, observation = step[1], step[2]
        code = finish_status(call.raw_arguments)[1] if call.name == FINISH else observation_code(observation)
        return plan.thought, (call.name, call.raw_arguments, observation_text(observation), code)
    return plan.thought, None


def grow(parent: Node, step: Sequence[Any]) -> Node:
    """Add one step's nodes under `parent` (a Thought node for a thought, an Action and an
    Action Input node for a call or a `Finish`) and its messages; the step's last node."""
    thought, call = _step_parts(step)
    message: dict[str, Any] = {"role": "assistant", "content": thought or None}
    nodes: list[Node] = []
    if thought or call is None:  # a step that says nothing still is a node (ToolBench would re-expand its parent)
        nodes.append(Node("Thought", description=thought))
    if call is not None:
        name, raw, observed, code = call
        nodes.extend(_call_nodes(name, raw, observed, code))
        message["function_call"] = {"name": HALLUCINATED_NAME if code == 1 else name, "arguments": raw}
    node = parent
    for new in nodes:
        new.messages = list(parent.messages)
        node = node.adopt(new)
    node.messages.append(message)
    if call is not None:
        node.messages.append({"role": "function", "name": message["function_call"]["name"], "content": call[2]})
        if call[3] == 3:
            node.make_finish(FINAL_ANSWER_BACK)
    return node


def walk(root: Node) -> Iterator[Node]:
    yield root
    for child in root.children:
        yield from walk(child)


__all__ = ["FINAL_ANSWER_BACK", "Node", "finish_arguments", "grow", "root_node", "split_steps", "walk", "with_finish_arguments"]
