"""ToolBench answer files -> StableToolBench's converted-answer format (the input of ToolEval).

Written from the behaviour of StableToolBench's `toolbench/tooleval/convert_to_answer_format.py`
(see ../shared/TOOLCALLING.md §12), not from its code. One converted record per query:

    {qid: {"query", "available_tools", "answer": {"method", "total_steps", "final_answer",
           "answer_details": [{"role": "system", "message": "", "next": [{"role": "user", ...}]}]}}}

`answer_details` is a chain: system and user (messages blanked), then one node per step.

- A valid run (`answer_generation.valid_data`) is the last `train_messages` chain: a function
  call becomes a `tool` node `{name, arguments, response}` (the next message's content, or the
  `tool` message with the call's id; `Finish` gets ""), assistant text an `assistant` node.
- An invalid CoT run is one random try of `trys` (a `Thought` -> assistant, an `Action` and the
  `Action Input` after it -> tool).
- An invalid DFS run is the whole `tree` (every `Action` merged with its first `Action Input`
  child, `Thought` -> assistant), then a random walk from the root to a leaf.

Randomness is the official script's: one `random.Random(42)` shared by every file in the order
they are read, one `choice` per edge of every walked chain (a one-child step consumes it too) and
one `choice` of the try for an invalid CoT run. So with the official file order (`os.listdir`,
`order="listdir"`) the output is the official one, invalid files included; the default order is
the sorted names, the same on every machine.

Where the official script crashes (a key missing, an unknown role or node type, a call with no
result message after it), the file is a counted `Reject` instead; a `function_call` of null is
read as no call (the official script would crash on it; ToolBench never writes one).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

SEED = 42
MAX_DEPTH = 400  # Python's recursion limit ends the official script's walk long before a real tree does
FINISH = "Finish"


class Reject(BaseModel):
    """An answer file left out of the conversion, with why."""

    file: str
    reason: str
    detail: str = ""


class Answer(BaseModel):
    method: str
    total_steps: int
    final_answer: Any
    answer_details: list[Any]


class Converted(BaseModel):
    """One query's converted answer (`{qid: Converted}` is the converted-answer file)."""

    query: Any
    available_tools: Any
    answer: Answer


class Conversion(BaseModel):
    answers: dict[str, Converted]
    rejects: list[Reject] = []
    replaced: list[str] = []  # files whose query id an earlier file of the same method also had

    def dump(self) -> dict[str, Any]:
        """The converted-answer file's JSON value."""
        return {qid: answer.model_dump() for qid, answer in self.answers.items()}


class Node:
    """A step of the execution graph: its role, message and ordered children."""

    __slots__ = ("role", "message", "children")

    def __init__(self, role: Any, message: Any) -> None:
        self.role, self.message, self.children = role, message, []


class BadAnswer(ValueError):
    """What makes a file unconvertible (the official script crashes on it)."""


def _tool(name: Any, arguments: Any, response: Any) -> Node:
    return Node("tool", {"name": name, "arguments": arguments, "response": response})


def _get(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise BadAnswer(f"{where} has no {key!r}")
    return mapping[key]


def _chain(steps: list[Node]) -> Node:
    """system -> user -> steps..., linked one after the other; returns the system node."""
    system, user = Node("system", ""), Node("user", "")
    system.children.append(user)
    last = user
    for step in steps:
        last.children.append(step)
        last = step
    return system


def _call_steps(message: dict, later: list[Any]) -> list[Node]:
    """The tool nodes of an assistant message with `tool_calls` (parallel calls): each with the
    `tool` message of its id; a call without one is left out; `Finish` ends the message."""
    steps = []
    for call in _get(message, "tool_calls", "an assistant message"):
        function = _get(call, "function", "a tool call")
        name, arguments = _get(function, "name", "a tool call"), _get(function, "arguments", "a tool call")
        if name == FINISH:
            steps.append(_tool(name, arguments, ""))
            break
        call_id = _get(call, "id", "a tool call")
        for reply in later:
            if isinstance(reply, dict) and reply.get("role") == "tool" and reply.get("tool_call_id") == call_id:
                steps.append(_tool(name, arguments, _get(reply, "content", "a tool message")))
                break
    return steps


def valid_steps(answer_generation: dict) -> list[Node]:
    """The steps of the last `train_messages` chain (its system and user messages skipped)."""
    chains = _get(answer_generation, "train_messages", "answer_generation")
    if not isinstance(chains, list) or not chains or not isinstance(chains[-1], list):
        raise BadAnswer("train_messages has no last chain (a list of messages)")
    conversation, steps, index = chains[-1], [], 2
    while index < len(conversation):
        message = conversation[index]
        role = _get(message, "role", f"message {index}")
        if role == "assistant":
            call = message.get("function_call")
            if call is not None:
                name = _get(call, "name", f"message {index}'s function_call")
                if name != FINISH and index + 1 >= len(conversation):
                    raise BadAnswer(f"message {index} calls {name!r} and no result message follows")
                response = "" if name == FINISH else _get(conversation[index + 1], "content", f"message {index + 1}")
                steps.append(_tool(name, _get(call, "arguments", f"message {index}'s function_call"), response))
                index += 1
            elif message.get("tool_calls") is not None:
                steps += _call_steps(message, conversation[index + 1:])
            else:
                steps.append(Node("assistant", _get(message, "content", f"message {index}")))
        elif role not in ("system", "user", "function", "tool"):
            raise BadAnswer(f"message {index} has an unknown role {role!r}")
        index += 1
    return steps


def cot_steps(tried: dict) -> list[Node]:
    """The steps of one CoT try's `chain` of Thought / Action / Action Input nodes."""
    chain, steps, index = _get(tried, "chain", "a try"), [], 0
    while index < len(chain):
        kind = _get(chain[index], "node_type", f"chain node {index}")
        if kind == "Action":
            if index + 1 >= len(chain):
                raise BadAnswer(f"chain node {index} is an Action with no Action Input after it")
            given = chain[index + 1]
            steps.append(_tool(_get(chain[index], "description", f"chain node {index}"),
                               _get(given, "description", f"chain node {index + 1}"), _get(given, "observation", f"chain node {index + 1}")))
            index += 1
        elif kind == "Thought":
            steps.append(Node("assistant", _get(chain[index], "description", f"chain node {index}")))
        else:
            raise BadAnswer(f"chain node {index} has an unknown node_type {kind!r}")
        index += 1
    return steps


def tree_nodes(tree_node: dict, depth: int = 0) -> Node:
    """A DFS tree node and its subtree as graph nodes; its message is the tree node itself with
    `children` null when it had any (as the official script leaves it)."""
    children = _get(tree_node, "children", "a tree node")
    if depth > MAX_DEPTH:
        raise BadAnswer(f"the tree is nested deeper than {MAX_DEPTH} nodes")
    if not isinstance(children, list):
        raise BadAnswer("a tree node's children is not a list")
    kids = [tree_nodes(child, depth + 1) for child in children]
    message = {**tree_node, "children": None} if kids else tree_node
    node = Node(_get(tree_node, "node_type", "a tree node"), message)
    node.children = kids
    return node


def purify(node: Node) -> None:
    """Action + its first Action Input child -> one tool node (the input's children become the
    action's, after its other children); Thought -> assistant; an extra Action Input stays raw."""
    stack = [node]
    while stack:
        node = stack.pop()
        if node.role == "Action":
            given = next((child for child in node.children if child.role == "Action Input"), None)
            if given is not None:
                node.message = {"name": _get(node.message, "description", "an Action node"),
                                "arguments": _get(given.message, "description", "an Action Input node"),
                                "response": _get(given.message, "observation", "an Action Input node")}
                node.role = "tool"
                node.children = [child for child in node.children if child is not given] + given.children
        elif node.role == "Thought":
            node.role, node.message = "assistant", _get(node.message, "description", "a Thought node")
        elif node.role not in ("Action Input", "system", "user"):
            raise BadAnswer(f"a tree node has an unknown node_type {node.role!r}")
        stack.extend(reversed(node.children))


def dfs_root(data: dict) -> Node:
    tree = _get(_get(data, "tree", "the answer file"), "tree", "the answer file's tree")
    tops = _get(tree, "children", "the tree's root")
    if not isinstance(tops, list):
        raise BadAnswer("the tree root's children is not a list")
    root = _chain([])
    root.children[0].children = [tree_nodes(top) for top in tops]
    purify(root)
    return root


def walk(root: Node, rng: random.Random) -> Iterator[Node]:
    """A random root-to-leaf walk (`rng.choice` at every step, a single child included)."""
    node = root
    yield node
    while node.children:
        node = rng.choice(node.children)
        yield node


def details(path: list[Node]) -> list[Any]:
    """The walked chain as nested `{role, message, next}` (system and user messages blanked)."""
    tail: list[Any] = []
    for node in reversed(path):
        message = "" if node.role in ("system", "user") else node.message
        tail = [{"role": node.role, "message": message, "next": tail}]
    return tail


def convert_answer(data: Any, method: str, rng: random.Random) -> Converted:
    """One answer file's JSON value -> its converted record (`BadAnswer` when it cannot be)."""
    generation = _get(data, "answer_generation", "the answer file")
    functions, query = _get(generation, "function", "answer_generation"), _get(generation, "query", "answer_generation")
    final_answer = _get(generation, "final_answer", "answer_generation")
    if _get(generation, "valid_data", "answer_generation"):
        root = _chain(valid_steps(generation))
    elif "CoT" in method or "cot" in method:
        tries = _get(data, "trys", "an invalid CoT answer file")
        if not isinstance(tries, list) or not tries:
            raise BadAnswer("an invalid CoT answer file with no tries")
        root = _chain(cot_steps(rng.choice(tries)))
    elif "DFS" in method or "dfs" in method:
        root = dfs_root(data)
    else:
        raise BadAnswer(f"an invalid run (valid_data false) of method {method!r}, which names neither CoT nor DFS")
    path = list(walk(root, rng))
    return Converted(query=query, available_tools=functions,
                     answer=Answer(method=method, total_steps=len(path), final_answer=final_answer, answer_details=details(path)))


def answer_files(answer_dir: Path, method: str, order: Literal["sorted", "listdir"] = "sorted") -> list[Path]:
    """The files the official script reads: names ending in `.json` that contain `method`."""
    names = [name for name in os.listdir(answer_dir) if name.endswith(".json") and method in name]
    return [answer_dir / name for name in (sorted(names) if order == "sorted" else names)]


def convert_dir(answer_dir: Path, method: str, order: Literal["sorted", "listdir"] = "sorted") -> Conversion:
    """Every answer file of `method` in `answer_dir`, keyed by query id (the name up to its
    first `_`); a later file with the same id replaces an earlier one, as in the official script."""
    import json

    rng, answers, rejects, replaced = random.Random(SEED), {}, [], []
    for path in answer_files(answer_dir, method, order):
        qid = path.name.split("_")[0]
        try:
            converted = convert_answer(json.loads(path.read_bytes()), method, rng)
        except (OSError, ValueError, TypeError, RecursionError) as exc:  # BadAnswer, JSON, Unicode, shapes
            reason = "bad answer" if isinstance(exc, BadAnswer) else "unreadable"
            rejects.append(Reject(file=path.name, reason=reason, detail=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__))
            continue
        if qid in answers:
            replaced.append(path.name)
        answers[qid] = converted
    return Conversion(answers=answers, rejects=rejects, replaced=replaced)
