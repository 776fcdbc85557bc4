"""What the chat formats share (`openai-messages`, `sharegpt-tools`, `hermes`): each source
reads its records into a list of `Message`s (system / user / assistant with its calls / tool
result) and a tool list; this module turns them into a `Trajectory`, one per conversation.

The mapping (../shared/TOOLCALLING.md §1-7), the inverse of the OpenAI chat shape:

- system messages: not turns; their text is `meta.system_prompt` (several joined by a blank line).
- user message: a `UserTurn`; the first one is the instruction. A conversation must start with
  one (else `no_user_turn`). Later user messages stay in the same trajectory: a multi-turn chat
  is one trajectory whose answers are conclusions each followed by the next user turn.
- assistant message with calls: for each call, in the order written, a planner turn deciding
  `caller` (the message's text is the thought of the first; later ones have none), the caller
  turn (`raw_arguments` verbatim: the argument string, or the JSON text of an argument object)
  and the observation of the result linked to it. Several calls in one message (parallel calls)
  are therefore consecutive planner / caller / observation triples, results paired by call id,
  then by tool name, then by order; `meta.parallel_calls` lists the caller indices of each such
  message (umi's chat export reads it to write them back as one message).
- tool results: `ObservationTurn(response=text)`; a ToolBench `{"error", "response"}` envelope
  (StableToolBench writes its OpenAI-style messages with them; also one cut at 1024 characters)
  is opened as the toolbench source opens it. A result that answers
  no call is `orphan_tool_result`.
- assistant message without calls, followed by a user message or ending the conversation: the
  answer, i.e. a planner turn deciding `conclusion` (thought: its `reasoning`, else "") and the
  conclusion. A text-only assistant message right before that answer is the thought that decided
  to answer (how umi's chat export writes a conclusion's thought); any other text-only assistant
  message followed by another assistant message is a thought that decides nothing (history).
- ToolBench's `Finish` convention: a lone call to `Finish` whose arguments say `return_type`
  `give_answer` is the answer (`ConclusionTurn.raw_arguments` keeps the string), and
  `give_up_and_restart` is the give-up (`PlannerTurn.next="give_up"` with the string): that is
  how a chat file says "give up". A `Finish` schema with a `return_type` parameter is not a tool.
- A call to a name not in the tool list is `hallucinated=True`, not a reject.
- Missing results: a call with no result ends the trajectory (`unfinished`) when it is the last
  call of the last message (OpenAI examples may end on a call); the other unanswered calls of
  that last message get an empty observation (counted in `meta.unanswered_calls`), e.g. xLAM
  data converted to messages: parallel calls and no results. Elsewhere a call without a result
  is `unanswered_call`.
- outcome: `answer` when the last turn is a conclusion, `give_up`, else `unfinished` (the
  conversation ends on a user message, a call or a result).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from umi_data.core import (
    ConclusionTurn, ObservationTurn, PlannerTurn, RejectReason, ToolSpec, Trajectory, UserTurn, make_instruction_id,
    make_trajectory_id, outcome_of,
)
from umi_data.sources.base import Converted, RecordContext
from umi_data.sources.chat_values import ChatReject, arguments_text, loads_lenient, parse_tools, strip_block, text_of
from umi_data.sources.toolbench import (
    _ENVELOPE_ERROR, FINISH, _json_envelope, caller_turn, json_value, parse_finish, parse_observation,
)

FINISH_TYPES = ("give_answer", "give_up_and_restart")
#: What LLaMA-Factory's OpenAI converter (and umi's sharegpt export) puts between merged results.
LLAMAFACTORY_RESULT_JOIN = "\n</tool_response>\n<tool_response>\n"
TOOL_RESPONSE = re.compile(r"<tool_response>(.*?)(?:</tool_response>|$)", re.S)  # Hermes / Qwen tool results

__all__ = [
    "Call", "ChatReject", "Message", "arguments_text", "chat_trajectory", "loads_lenient", "pair_results", "parse_tools",
    "rejecting", "scalar_id", "split_merged", "text_of", "tool_responses", "TOOL_RESPONSE",
]


@dataclass(frozen=True)
class Call:
    name: str
    raw_arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Message:
    """One message of a conversation, in the shape every chat format reduces to. `where` is its
    JSON path in the record (for reject details); `empty_thought` how an assistant message
    wrote no text ("null", "empty_string", "absent", as `PlannerTurn` records it)."""

    role: str  # system | user | assistant | tool
    where: str
    content: str = ""
    calls: tuple[Call, ...] = ()
    call_id: str | None = None
    name: str | None = None
    empty_thought: str = "null"
    reasoning: str = ""  # an assistant's separate reasoning text (OpenAI-style `reasoning_content` / `reasoning`), if any

    @property
    def thought(self) -> str:
        """The planner thought of an assistant message with calls: its reasoning, then its text."""
        return "\n".join(part for part in (self.reasoning, self.content) if part)


@dataclass
class _Counts:
    parallel_messages: int = 0
    unanswered_calls: int = 0
    merged_results: int = 0
    #: per message with several calls, the turn indices of its callers (`meta.parallel_calls`,
    #: which umi's chat exports read to write them back as one message)
    parallel_groups: list[list[int]] = field(default_factory=list)


# --- messages → turns -----------------------------------------------------------------------


def chat_trajectory(
    messages: list[Message], tools: list[ToolSpec], ctx: RecordContext, source: str, meta: dict[str, Any],
) -> Converted:
    """The trajectory of one conversation, or the reject that says why it cannot be one."""
    try:
        turns, counts = _turns(messages, {tool.name for tool in tools})
    except ChatReject as exc:
        return ctx.reject(exc.reason, exc.detail)
    if not any(turn.role == "planner" for turn in turns):
        return ctx.reject(RejectReason.NO_DECISION, f"{ctx.locator}: the conversation has no assistant message")
    systems = [m.content for m in messages if m.role == "system"]
    instruction = turns[0].content
    meta = {
        "file": ctx.file.name, "locator": ctx.locator, **meta,
        "system_prompt": "\n\n".join(systems) if systems else None,
        "user_turns": sum(turn.role == "user" for turn in turns),
        "parallel_messages": counts.parallel_messages, "parallel_calls": counts.parallel_groups,
        "unanswered_calls": counts.unanswered_calls,
        "merged_results": counts.merged_results,
    }
    return Trajectory(
        id=make_trajectory_id(source, ctx.file.name, ctx.locator, ctx.content_hash), source=source,
        instruction=instruction, instruction_id=make_instruction_id(instruction), tools=tools,
        turns=turns, outcome=outcome_of(turns), meta=meta,
    )


def _turns(messages: list[Message], names: set[str]) -> tuple[list[Any], _Counts]:
    body = [m for m in messages if m.role != "system"]
    if body and body[0].role != "user":
        raise ChatReject(RejectReason.NO_USER_TURN, f"{body[0].where}: the conversation starts with an {body[0].role} message, before any user message")
    turns: list[Any] = []
    counts = _Counts()
    index = 0
    while index < len(body):
        message = body[index]
        if message.role == "user":
            turns.append(UserTurn(content=message.content))
            index += 1
        elif message.role == "tool":
            raise ChatReject(RejectReason.ORPHAN_TOOL_RESULT, f"{message.where}: a tool result with no call before it")
        elif message.calls:
            end = _results_end(body, index + 1)
            start, groups = len(turns), len(counts.parallel_groups)
            turns.extend(_call_turns(message, body[index + 1:end], names, end == len(body), counts))
            if len(counts.parallel_groups) > groups:
                counts.parallel_groups[-1] = [start + i for i in counts.parallel_groups[-1]]
            index = end
        else:
            index = _text_turns(body, index, turns)
    return turns, counts


def _results_end(body: list[Message], start: int) -> int:
    end = start
    while end < len(body) and body[end].role == "tool":
        end += 1
    return end


def _text_turns(body: list[Message], index: int, turns: list[Any]) -> int:
    """Turns of an assistant message without calls; returns the index of the next message."""
    message = body[index]
    following = body[index + 1] if index + 1 < len(body) else None
    if _is_answer(body, index):
        turns += [PlannerTurn(thought=message.reasoning, next="conclusion"), ConclusionTurn(answer=message.content)]
    elif following is not None and following.role == "tool":
        raise ChatReject(RejectReason.ORPHAN_TOOL_RESULT, f"{following.where}: a tool result after an assistant message without calls")
    elif _is_answer(body, index + 1) and not following.reasoning:
        # a text-only message right before the answer is the thought that decided to answer
        answer = body[index + 1]
        turns += [PlannerTurn(thought=message.thought, empty_thought=_form(message), next="conclusion"),
                  ConclusionTurn(answer=answer.content)]
        return index + 2
    else:
        turns.append(PlannerTurn(thought=message.thought, empty_thought=_form(message), next=None))
    return index + 1


def _is_answer(body: list[Message], index: int) -> bool:
    """An assistant message without calls that ends the chat or is followed by the user's turn."""
    if index >= len(body) or body[index].role != "assistant" or body[index].calls:
        return False
    return index + 1 == len(body) or body[index + 1].role == "user"


def _form(message: Message) -> str:
    return "null" if message.thought else message.empty_thought


def _call_turns(message: Message, results: list[Message], names: set[str], last: bool, counts: _Counts) -> list[Any]:
    if len(message.calls) == 1 and (finish := _finish(message)) is not None:
        return finish + [_observation(r) for r in results]
    if len(message.calls) > 1:
        counts.parallel_messages += 1
    pairs = pair_results(message, results, counts)
    turns: list[Any] = []
    group = []
    for position, (call, result) in enumerate(pairs):
        first = position == 0
        turns.append(PlannerTurn(thought=message.thought if first else "", empty_thought=_form(message) if first else "null", next="caller"))
        group.append(len(turns))  # the caller's index within this message's turns (offset later)
        turns.append(caller_turn(call.name, call.raw_arguments, names))
        if result is not None:
            turns.append(_observation(result))
        elif not last:
            raise ChatReject(RejectReason.UNANSWERED_CALL, f"{message.where}: the call to {call.name[:64]!r} has no result and the conversation goes on")
        elif position < len(pairs) - 1:
            counts.unanswered_calls += 1
            turns.append(ObservationTurn(response=""))
    if len(group) > 1:
        counts.parallel_groups.append(group)
    return turns


def _finish(message: Message) -> list[Any] | None:
    """The turns of ToolBench's `Finish` call (an answer or a give-up), or None for any other call."""
    call = message.calls[0]
    if call.name != FINISH:
        return None
    parsed = json_value(call.raw_arguments)
    if not (isinstance(parsed, dict) and parsed.get("return_type") in FINISH_TYPES):
        return None
    kind, answer = parse_finish(call.raw_arguments)
    plan = {"thought": message.thought, "empty_thought": _form(message)}
    if kind == "give_up":
        return [PlannerTurn(**plan, next="give_up", raw_arguments=call.raw_arguments)]
    return [PlannerTurn(**plan, next="conclusion"), ConclusionTurn(answer=answer, raw_arguments=call.raw_arguments)]


def _observation(result: Message) -> ObservationTurn:
    """A result's text is the response; ToolBench's `{"error", "response"}` envelope (also one cut
    at 1024 characters) is opened as the toolbench source opens it."""
    if _json_envelope(result.content) is not None or _ENVELOPE_ERROR.match(result.content):
        return parse_observation(result.content)
    return ObservationTurn(response=result.content)


def pair_results(message: Message, results: list[Message], counts: _Counts) -> list[tuple[Call, Message | None]]:
    """Each call of `message` with its result: by call id, then by tool name, then in order. A
    result that fits no call is `orphan_tool_result`. One result for several calls (LLaMA-Factory
    merges parallel results into one observation) is split when it holds one part per call."""
    calls = list(message.calls)
    if len(calls) > 1 and len(results) == 1:
        results = split_merged(results[0], len(calls), counts)
    matched: list[Message | None] = [None] * len(calls)
    for result in results:
        slot = _slot(calls, matched, result)
        if slot is None:
            raise ChatReject(RejectReason.ORPHAN_TOOL_RESULT, f"{result.where}: a tool result that answers no call of {message.where}")
        matched[slot] = result
    return list(zip(calls, matched))


def _slot(calls: list[Call], matched: list[Message | None], result: Message) -> int | None:
    free = [i for i in range(len(calls)) if matched[i] is None]
    if result.call_id is not None and any(call.id is not None for call in calls):
        return next((i for i in free if calls[i].id == result.call_id), None)
    if result.name is not None and any(calls[i].name == result.name for i in free):
        return next(i for i in free if calls[i].name == result.name)
    return free[0] if free else None


def tool_responses(text: str, where: str) -> list[Message]:
    """One tool message per `<tool_response>` block (none when the text has no block)."""
    out = []
    for index, block in enumerate(TOOL_RESPONSE.finditer(text)):
        inner = strip_block(block.group(1))
        value = loads_lenient(inner, python_repr=True)
        if isinstance(value, dict) and "content" in value:
            content = value["content"]
            name = value.get("name") if isinstance(value.get("name"), str) else None
            text_value = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            out.append(Message("tool", f"{where} (<tool_response> {index})", text_value, name=name))
        else:
            out.append(Message("tool", f"{where} (<tool_response> {index})", inner))
    return out


def split_merged(result: Message, parts: int, counts: _Counts) -> list[Message]:
    """One result message answering `parts` calls, as one message per call: a JSON array of
    `parts` items, `parts` texts joined by LLaMA-Factory's `</tool_response>` separator, or
    `parts` `<tool_response>` blocks. Otherwise the text is the last call's
    result and the calls before it get empty results (counted in `meta.merged_results`)."""
    value = json_value(result.content)
    if isinstance(value, list) and len(value) == parts:
        texts = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in value]
        return [Message("tool", f"{result.where}[{i}]", text) for i, text in enumerate(texts)]
    joined = result.content.split(LLAMAFACTORY_RESULT_JOIN)  # how LLaMA-Factory's converter merges them
    if len(joined) == parts:
        return [Message("tool", f"{result.where}[{i}]", text) for i, text in enumerate(joined)]
    blocks = tool_responses(result.content, result.where)
    if len(blocks) == parts:
        return blocks
    counts.merged_results += 1
    empty = [Message("tool", result.where, "") for _ in range(parts - 1)]
    return empty + [result]


def rejecting(convert: Callable[[Any, RecordContext], Converted]) -> Callable[[Any, RecordContext], Converted]:
    """`convert` with a `ChatReject` raised anywhere inside turned into the record's reject."""

    def run(record: Any, ctx: RecordContext) -> Converted:
        try:
            return convert(record, ctx)
        except ChatReject as exc:
            return ctx.reject(exc.reason, exc.detail)

    run.__doc__ = convert.__doc__
    return run


def scalar_id(record: dict[str, Any]) -> Any:
    """The record's own id (datasets often carry one), when it is a plain value."""
    value = record.get("id")
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None
