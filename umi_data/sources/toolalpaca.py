"""ToolAlpaca API entries with runs (`Instances`): one trajectory or reject per instance.

A file is a JSON array of API entries (../shared/FORMATS.md §6); entry `$[i]` holds one run per
instruction in `Instances`, located as `$[i].Instances[j]` and counted one by one, so accepted +
rejected equals the number of instances read. Tools: `toolalpaca_tools` (which tools a run was
offered, and how ToolAlpaca's parameter strings become a JSON Schema).

A clean run becomes
- user: `input`, the text the model saw. ToolAlpaca's run generator appends
  `"\\nAuthentication information: key=value"` for APIs that need a key, and the model copies the
  key into its calls, so it stays in the turn; the `instruction` (and its id) is the text without
  it. A `"\\nHint: ..."` suffix (training files) is dropped from both, as ToolAlpaca's training
  builder does, and kept in `meta.hint`.
- per step `[[action, action_input, log], observation]`:
  planner(thought = the `log` before its first `Action:` line, with or without the `ASSISTANT `
  prefix of the evaluation prompt, stripped; next="caller"),
  caller(`action`, raw `action_input` verbatim; `arguments` = its JSON object, else what
  ToolAlpaca's executor parsed from it (the JSON between its first `{`/`[` and last `}`/`]`,
  when that is an object; the executor answered "Invalid JSON format" whenever it failed); `hallucinated` when `action` is not one
  of the tools), observation(`response` = the text the model saw, verbatim; `error` = a short
  label when the executor reports a failure: `status code N` for a non-2xx HTTP status,
  `invalid JSON action input`, `not a valid action`, `action input is a list`, else "";
  `truncated` when the text is exactly the executor's 3,000-character cut).
- planner(thought = `Final Thought`, "" when absent; next="conclusion") + conclusion(`output`).
ToolAlpaca has no give-up: an accepted trajectory ends in an answer, or, when the agent framework
stopped the run (`output` is one of LangChain's `AGENT_STOP_MESSAGES`, "Agent stopped due to iteration
limit or time limit."), after its last observation: outcome `unfinished`, no conclusion, no
summarizer example (a non-empty `Final Thought` is kept in `meta.removed.final_thought`).

The real runs (`data/toolalpaca/instances/`, 328 instances) are messy. Decisions, with what was
measured (chatgpt-3.5-turbo_real / llama2-7b-real / toolalpaca-7b-sim):

- plain-string instance ("This instance is not used.": 26/0/0): rejected `invalid_data`.
- `{"error": ...}` instance (a crash or "Could not parse LLM output", 0/45/10): `run_error`.
- `output` that is ToolAlpaca's parse-failure message "Could not parse LLM output: `...`" with an
  empty `Final Thought` (14/0/0): `run_error`. The quoted text is sometimes an answer, sometimes
  a thought; it is not a trustworthy answer.
- empty `intermediate_steps` (another 59/3/0): `no_tool_call`. Nearly all of them act out whole
  tool calls with invented observations inside `Final Thought`; ToolAlpaca's training builder
  skips them and its evaluation counts them as failures.
- invented dialogue: the model writes turns that are not its own (`USER:`, `ASSISTANT
  Observation:`, a further `ASSISTANT Action:`; in the training format the same words without
  `ASSISTANT`, at a line start):
  - after a complete answer in `output` (4/49/2): repaired, the answer is the text before the
    first invented turn; the cut text is kept in `meta.removed.output`;
  - in `Final Thought`, after a first `ASSISTANT Response:` (3/3/0): repaired, the thought is the
    text before it and the answer is that first response; `output`, which answers an invented
    follow-up question, is kept in `meta.removed.output`, the rest in
    `meta.removed.final_thought`;
  - anywhere else (a thought before an action, an action input, the start of `Final Thought`
    or of `output`: 7/5/1): rejected `invented_dialogue`. The trajectory then answers questions
    the user never asked or rests on observations no tool returned.
- action inputs that are not JSON but whose `{...}` is (llama2's trailing "\\n...": 55 steps, 52
  of them in 32 accepted runs): arguments recovered as above (`meta.repairs` lists
  `arguments_extracted`); action inputs with no JSON object in them (4/3/0 steps, all in runs
  rejected for another reason) would keep `arguments` None.
- action names that are not tools (`getFruitsByGenus({"genus": ...})`: 7 llama2 steps, 5 in
  accepted runs): kept verbatim, `hallucinated`; their observation is the executor's "not a
  valid action".

Totals: 328 read; 157 accepted (8/60/89; 65 with a repair code); 171 rejected: invalid_data 26,
run_error 69, no_tool_call 62, invented_dialogue 14 (tests/test_toolalpaca.py checks them all).

`meta`: file, locator, api (`Name`), category, instance (index j; `Instructions[j]` is the
instruction it ran), repairs (codes, [] for a clean run), removed (cut text, only when
repaired), tool_docs (every tool's ToolAlpaca text, see `toolalpaca_tools`), hint (when present).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterator

import orjson

from umi_data.core import (
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    Reject,
    RejectReason,
    ToolSpec,
    Trajectory,
    UserTurn,
    make_instruction_id,
    make_trajectory_id,
    outcome_of,
)
from umi_data.sources.base import Converted, RecordContext, Source, convert_guarded, errors_to_reject, schema_errors
from umi_data.sources.toolalpaca_tools import ToolDocError, api_tools
from umi_data.sources.toolbench import caller_turn, parse_json_object, refuse_lone_surrogates

SCHEMA = "toolalpaca.schema.json"
#: ToolAlpaca's executor cuts longer tool messages to this many characters.
EXECUTOR_MAX_OUTPUT = 3000
PARSE_FAILURE = "Could not parse LLM output:"
#: The `output` LangChain's AgentExecutor writes when it stops a run that gave no final answer
#: (`early_stopping_method="force"` at `max_iterations` or `max_execution_time`): the current
#: wording, and the one of the LangChain versions ToolAlpaca's forks ran (and of LangChain.js).
AGENT_STOP_MESSAGES = frozenset({
    "Agent stopped due to iteration limit or time limit.",
    "Agent stopped due to max iterations.",
})

# Turns the model may not write itself: with the evaluation prompt's `ASSISTANT ` prefix anywhere,
# or a training-format keyword at a line start. `Response` / `Final Answer` end a turn with an
# answer, which the Final Thought repair relies on.
_INVENTED_TURN = re.compile(
    r"ASSISTANT\s*(?P<assistant>Thought|Action Input|Action|Observation|Response)\s*:"
    r"|^[ \t]*(?P<line>USER|Question|Thought|Action Input|Action|Observation|Final Answer)\s*:",
    re.M,
)
_ANSWER_MARKERS = ("Response", "Final Answer")
_ACTION = re.compile(r"(?:ASSISTANT\s*)?Action\s*\d*\s*:")
_AUTHENTICATION = re.compile(r"\nAuthentication information: [^\n]*\Z")
_HINT = "\nHint: "
_STATUS = re.compile(r"^Status Code: (\d+)\. Response: ")
_EXECUTOR_ERRORS = {
    "Invalid JSON format. Please ensure 'Action Input' is a valid JSON object.": "invalid JSON action input",
    "'Action Input' cannot be a list. Only call one function per action.": "action input is a list",
}
_INVALID_ACTION = re.compile(r"^`.*` is not a valid action\. The action must be one of \[", re.S)


@dataclass(frozen=True)
class Api:
    """What every instance of one API entry shares."""

    name: str
    category: str | None
    tools: list[ToolSpec]
    tool_docs: dict[str, str]

    @property
    def tool_names(self) -> set[str]:
        return {tool.name for tool in self.tools}


class InventedDialogue(Exception):
    """The model wrote a turn that is not its own where it cannot be cut off (see the module
    docstring); the message says where."""


def convert(entry: dict[str, Any], ctx: RecordContext) -> Iterator[Converted]:
    """One trajectory or reject per instance of an API entry (an entry whose API part is bad
    rejects each of its instances, so that rejects count instances too)."""
    api_part = {key: value for key, value in entry.items() if key != "Instances"}
    api_hash = hashlib.sha256(orjson.dumps(api_part, option=orjson.OPT_SORT_KEYS)).hexdigest()
    api = _read_api(entry, ctx)
    for index, instance in enumerate(entry["Instances"]):
        digest = hashlib.sha256(f"{api_hash}:".encode() + orjson.dumps(instance)).hexdigest()
        item = ctx.item(f".Instances[{index}]", digest)
        if isinstance(api, Reject):
            yield api.model_copy(update={"locator": item.locator})
        else:
            yield convert_guarded(partial(convert_instance, api=api, index=index), instance, item)


def _read_api(entry: dict[str, Any], ctx: RecordContext) -> Api | Reject:
    """What the instances of an entry share, or the reject of an entry whose API part is bad."""
    errors = schema_errors(entry, SCHEMA, "api", ctx.locator)
    if errors:
        return errors_to_reject(errors, ctx)
    try:
        tools, docs = api_tools(entry, ctx.locator)
    except ToolDocError as exc:
        return ctx.reject(RejectReason.WRONG_TYPE, str(exc))
    return Api(entry["Name"], entry.get("Category"), tools, docs)


def convert_instance(instance: Any, ctx: RecordContext, api: Api, index: int) -> Converted:
    """One instance: a reject for the cases the module docstring lists, else a trajectory."""
    early = _early_reject(instance, ctx)
    if early is not None:
        return early
    try:
        turns, repairs, removed = _turns(instance, api, ctx.locator)
    except InventedDialogue as exc:
        return ctx.reject(RejectReason.INVENTED_DIALOGUE, str(exc))
    user_text, hint = _split_hint(instance["input"])
    instruction = _AUTHENTICATION.sub("", user_text)
    meta = {
        "file": ctx.file.name, "locator": ctx.locator, "api": api.name, "category": api.category,
        "instance": index, "repairs": repairs, "tool_docs": api.tool_docs,
    }
    if removed:
        meta["removed"] = removed
    if hint is not None:
        meta["hint"] = hint
    return Trajectory(
        id=make_trajectory_id("toolalpaca", ctx.file.name, ctx.locator, ctx.content_hash),
        source="toolalpaca",
        instruction=instruction,
        instruction_id=make_instruction_id(instruction),
        tools=api.tools,
        turns=turns,
        outcome=outcome_of(turns),
        meta=meta,
    )


def _early_reject(instance: Any, ctx: RecordContext) -> Converted | None:
    """The reject of an instance that holds no usable run, or None for a run to convert."""
    if isinstance(instance, str):
        return ctx.reject(RejectReason.INVALID_DATA, f"the instance is a string, not a run: {_preview(instance)}")
    if isinstance(instance, dict) and "error" in instance and "intermediate_steps" not in instance:
        errors = schema_errors(instance, SCHEMA, "error_instance", ctx.locator)
        if errors:
            return errors_to_reject(errors, ctx)
        return ctx.reject(RejectReason.RUN_ERROR, f"the run failed: {_preview(instance['error'])}")
    errors = schema_errors(instance, SCHEMA, "run", ctx.locator)
    if errors:
        return errors_to_reject(errors, ctx)
    if instance["output"].startswith(PARSE_FAILURE):
        return ctx.reject(RejectReason.RUN_ERROR, f"the run ended in a parse failure: {_preview(instance['output'])}")
    if not instance["intermediate_steps"]:
        return ctx.reject(RejectReason.NO_TOOL_CALL, "intermediate_steps is empty: the run called no tool")
    return None


def _preview(text: str, limit: int = 120) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _split_hint(text: str) -> tuple[str, str | None]:
    """(input, hint): ToolAlpaca's training builder drops a "\\nHint: ..." suffix from the question."""
    if _HINT not in text:
        return text, None
    text, hint = text.rsplit(_HINT, 1)
    return text, hint


def _turns(instance: dict[str, Any], api: Api, locator: str) -> tuple[list[Any], list[str], dict[str, str]]:
    """(turns, repair codes, removed text) of a run; raises `InventedDialogue`."""
    turns: list[Any] = [UserTurn(content=_split_hint(instance["input"])[0])]
    repairs: set[str] = set()
    for step_index, ((action, action_input, log), observation) in enumerate(instance["intermediate_steps"]):
        where = f"{locator}.intermediate_steps[{step_index}][0]"
        thought = step_thought(log, f"{where}[2]")
        _refuse_invented(action_input, f"{where}[1] (the action input)")
        call = caller_turn(action, action_input, api.tool_names)
        if call.arguments is None and (extracted := extract_arguments(action_input)) is not None:
            call = call.model_copy(update={"arguments": extracted})
            repairs.add("arguments_extracted")
        turns += [PlannerTurn(thought=thought, next="caller"), call, observation_turn(observation)]
    if instance["output"].strip() in AGENT_STOP_MESSAGES:  # the framework ended the run: no answer
        final_thought = instance.get("Final Thought", "")
        return turns, sorted(repairs), {"final_thought": final_thought} if final_thought.strip() else {}
    end = final_answer(instance.get("Final Thought", ""), instance["output"], locator)
    turns += [PlannerTurn(thought=end.thought, next="conclusion"), ConclusionTurn(answer=end.answer)]
    return turns, sorted(repairs | set(end.repairs)), end.removed


def _refuse_invented(text: str, where: str) -> None:
    match = _INVENTED_TURN.search(text)
    if match is not None:
        raise InventedDialogue(f"{where} contains an invented {_marker(match)!r} turn")


def _marker(match: re.Match[str]) -> str:
    return re.sub(r"\s+", " ", match.group().strip())


def step_thought(log: str, where: str = "log") -> str:
    """The thought of a step: its `log` before the first `Action:` (or `ASSISTANT Action:`) line,
    as ToolAlpaca's output parsers split it; raises `InventedDialogue` when it holds other turns."""
    match = _ACTION.search(log)
    thought = (log[: match.start()] if match else log).strip()
    _refuse_invented(thought, f"{where} (the thought before the action)")
    return thought


@dataclass(frozen=True)
class RunEnd:
    """The final planner thought and answer of a run, with the repairs that produced them."""

    thought: str
    answer: str
    repairs: tuple[str, ...] = ()
    removed: dict[str, str] = field(default_factory=dict)


def final_answer(final_thought: str, output: str, locator: str = "$") -> RunEnd:
    """The end of a run, repaired as the module docstring says; raises `InventedDialogue`."""
    match = _INVENTED_TURN.search(final_thought)
    if match is not None:
        return _answer_from_final_thought(final_thought, output, match, locator)
    match = _INVENTED_TURN.search(output)
    if match is None:
        return RunEnd(final_thought.strip(), output)
    answer = output[: match.start()].strip()
    if not answer:
        raise InventedDialogue(f"{locator}.output starts with an invented {_marker(match)!r} turn")
    return RunEnd(final_thought.strip(), answer, ("output_cut",), {"output": output[match.start():]})


def _answer_from_final_thought(final_thought: str, output: str, match: re.Match[str], locator: str) -> RunEnd:
    kind = match.group("assistant") or match.group("line")
    if kind not in _ANSWER_MARKERS:
        raise InventedDialogue(f"{locator}.Final Thought contains an invented {_marker(match)!r} turn")
    rest = final_thought[match.end():]
    following = _INVENTED_TURN.search(rest)
    answer = (rest[: following.start()] if following else rest).strip()
    if not answer:
        raise InventedDialogue(f"{locator}.Final Thought answers with an empty {_marker(match)!r} turn")
    removed = {"final_thought": rest[following.start():] if following else "", "output": output}
    return RunEnd(final_thought[: match.start()].strip(), answer, ("answer_from_final_thought",), removed)


def extract_arguments(raw: str) -> dict[str, Any] | None:
    """What ToolAlpaca's executor (`parse_json_string`) reads from an action input: the JSON
    between the first `{` or `[` and the last `}` or `]`; None unless that is an object (the
    executor refuses a list too) and strict JSON umi can store (no NaN, no integer beyond 64
    bits); raises `UnstorableValueError` when it decodes to a lone surrogate."""
    starts = [i for i in (raw.find("{"), raw.find("[")) if i >= 0]
    ends = [i for i in (raw.rfind("}"), raw.rfind("]")) if i >= 0]
    if not starts or not ends or max(ends) < min(starts):
        return None
    inner = raw[min(starts) : max(ends) + 1]
    arguments = parse_json_object(inner)
    if arguments is None:
        refuse_lone_surrogates(inner, "the JSON in the action input")
    return arguments


def observation_turn(observation: str | dict[str, Any]) -> ObservationTurn:
    """The tool's text verbatim as the response, with a short error label for the executor's
    failure messages (see the module docstring)."""
    text = observation if isinstance(observation, str) else json.dumps(observation, ensure_ascii=False)
    return ObservationTurn(response=text, error=observation_error(text), truncated=len(text) == EXECUTOR_MAX_OUTPUT)


def observation_error(text: str) -> str:
    status = _STATUS.match(text)
    if status is not None:
        code = int(status.group(1))
        return "" if 200 <= code < 300 else f"status code {code}"
    if _INVALID_ACTION.match(text):
        return "not a valid action"
    return _EXECUTOR_ERRORS.get(text, "")


SOURCE = Source(
    name="toolalpaca",
    schema=SCHEMA,
    records_per_file="list",
    convert=convert,
)
