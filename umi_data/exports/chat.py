"""One mapping from a `Trajectory` to chat messages, which every chat export format derives from.

`to_chat_messages(trajectory)` gives a `ChatExample`: OpenAI-shaped `messages` and a `tools`
list. The formats (`umi_data.exports.chat_formats`: openai, trl-chat, llamafactory-sharegpt, hermes)
only re-encode it; an example a format cannot express is a `ChatReject` with a named reason.

The mapping (an importer's inverse must read it back; what no chat carries is listed after):

1. `{"role": "system", "content": S}` first. S is `meta.system_prompt` when the trajectory has
   one and its source does not use ToolBench's text protocol (whose system prompt asks for a
   `Finish` function that the chat formats replace by a final answer); else `SYSTEM_PROMPT`.
   Tools travel beside the messages: `tools` = `[{"type": "function", "function": {"name",
   "description", "parameters"}}]`, one per `ToolSpec`, parameters verbatim (Finish is never
   a ToolSpec).
2. `UserTurn` -> `{"role": "user", "content": content}` (the first is the instruction).
3. `PlannerTurn(next="caller")` and its `CallerTurn` -> one assistant message with both the
   thought and the call: `{"role": "assistant", "content": thought, "tool_calls": [{"id":
   "call_<k>", "type": "function", "function": {"name", "arguments": raw_arguments}}]}`; k
   counts the calls of the trajectory from 0; `arguments` is the raw string, verbatim. An empty
   thought is written as the source wrote it: `content: null` (empty_thought "null"), `""`
   ("empty_string") or no `content` key ("absent").
   Parallel calls: `meta["parallel_calls"]` lists groups of caller-turn indices made in one
   assistant message; each later call of a group follows `observation, PlannerTurn(thought "",
   next "caller")` and is appended to the first call's `tool_calls`.
4. `ObservationTurn` -> `{"role": "tool", "tool_call_id": "call_<k>", "name": <called
   function>, "content": C}` after the message holding call k. C is `raw` when the source's
   verbatim text was kept; else ToolBench's envelope `json.dumps({"error": e, "response": r})`
   when there is an error text (or when the response alone would read as an envelope); else
   the response itself. Reading it back: an envelope (or a ToolBench envelope cut at 1024
   characters) is opened as `umi_data.sources.toolbench.parse_observation` does; any other
   text is the response.
5. `PlannerTurn(next=None)` (a thought that decides nothing) -> `{"role": "assistant",
   "content": thought}` without `tool_calls`.
6. `PlannerTurn(next="conclusion")` + `ConclusionTurn` -> the final `{"role": "assistant",
   "content": answer}`, preceded by `{"role": "assistant", "content": thought}` when the
   thought is not empty or when the message before is itself a text-only assistant message
   (then possibly `""`: it separates a thought that decided nothing from the answer). So, read
   back: the last message is the answer; a text-only assistant message right before it is the
   thought that decided to answer; every other text-only assistant message decides nothing.

Not expressible (`ChatReject`): a trajectory that gives up (`gives_up`: no chat has a give-up),
that does not end in an answer (`unfinished`), or whose answer the environment refused (an
observation after the conclusion: `answer_refused`; an answer followed by the user's next message
is a multi-turn chat, and exported as one); malformed `meta.parallel_calls`
(`bad_parallel_calls`).

Not carried by any chat format: `id`, `source`, `meta` (ToolBench's system prompt, file, query
id...), `UserTurn.diversity_prompt`, `ConclusionTurn.raw_arguments` (ToolBench's Finish
string), `empty_thought` outside tool-call messages, `ObservationTurn.truncated` without a
verbatim `raw`, and `raw` where it equals the response (a ToolBench function message that was
not an envelope). `CallerTurn.arguments` and `hallucinated` are derived again from the raw
string and the tool list. Formats that need the arguments as an object (all but openai)
re-serialise them, so the raw string's spacing is kept by openai only (chat_formats.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    ToolSpec,
    Trajectory,
    UserTurn,
)

#: The system message of trajectories whose own system prompt is not carried.
SYSTEM_PROMPT = (
    "You are a helpful assistant that solves the user's task with the tools you are given. "
    "Think about the next step, call a tool when you need one, read its result, and end with the answer to the user."
)
#: Sources whose system prompt is ToolBench's (or α-UMi's) text protocol with a Finish function.
FINISH_PROTOCOL_SOURCES = frozenset({"toolbench", "synthetic", "alpha_umi", "toolalpaca", "agent_run"})
PARALLEL_CALLS_KEY = "parallel_calls"
ENVELOPE_KEYS = ("error", "response")


class ChatReject(ValueError):
    """An example a chat format cannot express: `reason` is a short name counted in the manifest."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ChatExample:
    """One chat: OpenAI-shaped messages (raw argument strings) and the tool schemas."""

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)


def tool_schema(tool: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}


def call_id(index: int) -> str:
    return f"call_{index}"


def system_text(trajectory: Trajectory) -> str:
    prompt = trajectory.meta.get("system_prompt")
    if isinstance(prompt, str) and prompt and trajectory.source not in FINISH_PROTOCOL_SOURCES:
        return prompt
    return SYSTEM_PROMPT


def observation_content(turn: ObservationTurn) -> str:
    """The tool message's text (rule 4 of the module docstring)."""
    if turn.raw is not None:
        return turn.raw
    if turn.error or _reads_as_envelope(turn.response):
        return json.dumps({"error": turn.error, "response": turn.response})
    return turn.response


def _reads_as_envelope(text: str) -> bool:
    if not text.startswith('{"error": '):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return True  # a cut envelope: it would be opened on the way back
    return isinstance(value, dict) and set(value) == set(ENVELOPE_KEYS)


def to_chat_messages(trajectory: Trajectory) -> ChatExample:
    """The whole trajectory as one chat (the Single-LLM view); raises `ChatReject`."""
    _check_expressible(trajectory)
    joined = _joined_calls(trajectory)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_text(trajectory)}]
    calls = 0
    names: dict[str, str] = {}
    turns = trajectory.turns
    for index, turn in enumerate(turns):
        if isinstance(turn, UserTurn):
            messages.append({"role": "user", "content": turn.content})
        elif isinstance(turn, PlannerTurn):
            if turn.next == "caller" and index + 1 not in joined:
                messages.append({"role": "assistant", **_thought_field(turn), "tool_calls": []})
            elif turn.next is None:
                messages.append({"role": "assistant", "content": turn.thought})
            elif turn.next == "conclusion" and (turn.thought or _text_only(messages[-1])):
                messages.append({"role": "assistant", "content": turn.thought})
        elif isinstance(turn, CallerTurn):
            names[call_id(calls)] = turn.name
            _last_call_message(messages)["tool_calls"].append(
                {"id": call_id(calls), "type": "function", "function": {"name": turn.name, "arguments": turn.raw_arguments}}
            )
            calls += 1
        elif isinstance(turn, ObservationTurn):
            answered = call_id(calls - 1)
            messages.append({"role": "tool", "tool_call_id": answered, "name": names[answered], "content": observation_content(turn)})
        elif isinstance(turn, ConclusionTurn):
            messages.append({"role": "assistant", "content": turn.answer})
    return ChatExample(trajectory.id, messages, [tool_schema(tool) for tool in trajectory.tools])


def _check_expressible(trajectory: Trajectory) -> None:
    turns = trajectory.turns
    if any(isinstance(turn, ConclusionTurn) and not isinstance(after, UserTurn) for turn, after in zip(turns, turns[1:])):
        raise ChatReject("answer_refused", "the environment refused an answer (an observation follows a conclusion); a chat has no result for an answer")
    if trajectory.outcome == "give_up":
        raise ChatReject("gives_up", "the trajectory gives up; a chat has no give-up, only a final answer")
    if trajectory.outcome != "answer":
        raise ChatReject("unfinished", f"the trajectory ends in a {turns[-1].role} turn, not in an answer")


def _thought_field(turn: PlannerTurn) -> dict[str, Any]:
    if turn.thought:
        return {"content": turn.thought}
    return {} if turn.empty_thought == "absent" else {"content": "" if turn.empty_thought == "empty_string" else None}


def _text_only(message: dict[str, Any]) -> bool:
    return message["role"] == "assistant" and "tool_calls" not in message


def _last_call_message(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in reversed(messages) if m["role"] == "assistant" and "tool_calls" in m)


def _joined_calls(trajectory: Trajectory) -> frozenset[int]:
    """The caller-turn indices that join the assistant message of the call before them."""
    groups = trajectory.meta.get(PARALLEL_CALLS_KEY)
    if groups is None:
        return frozenset()
    turns = trajectory.turns
    joined: set[int] = set()
    for group in groups if isinstance(groups, list) else [None]:
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(i, int) and 0 <= i < len(turns) for i in group):
            raise ChatReject("bad_parallel_calls", f"meta.parallel_calls holds {group!r}, not a list of 2+ turn indices")
        for before, after in zip(group, group[1:]):
            between = turns[before + 1:after]
            ok = (isinstance(turns[before], CallerTurn) and isinstance(turns[after], CallerTurn) and len(between) == 2
                  and isinstance(between[0], ObservationTurn) and isinstance(between[1], PlannerTurn) and not between[1].thought)
            if not ok:
                raise ChatReject("bad_parallel_calls", f"turns {before} and {after} are not consecutive calls of one message")
            joined.add(after)
    return frozenset(joined)


def role_chat(example_id: str, input: str, target: str) -> ChatExample:
    """One α-UMi role example as a chat: the prompt as the user message, the target as the
    assistant's answer, exactly the strings umi trains on (no system message, no tools: the
    prompt already lists them)."""
    return ChatExample(example_id, [{"role": "user", "content": input}, {"role": "assistant", "content": target}])


__all__ = [
    "SYSTEM_PROMPT", "ChatExample", "ChatReject", "call_id", "observation_content", "role_chat", "system_text",
    "to_chat_messages", "tool_schema",
]
