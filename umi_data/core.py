"""The canonical record of umi: a validated `Trajectory` of typed turns, and `Reject`.

Every source converts into these models and every later stage (rendering, training data,
the agent loop, DuckDB views) reads them, so they keep everything the sources carry that a
user may want; renderers decide what to show a model, the core never throws it away.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

ID_HEX_CHARS = 16
SOURCES = ("toolbench", "toolalpaca", "alpha_umi", "synthetic", "agent_run", "openai_messages", "sharegpt_tools", "hermes")
Source = Literal["toolbench", "toolalpaca", "alpha_umi", "synthetic", "agent_run", "openai_messages", "sharegpt_tools", "hermes"]
Next = Literal["caller", "conclusion", "give_up"]
Outcome = Literal["answer", "give_up", "unfinished"]
EmptyThought = Literal["null", "empty_string", "absent"]

#: The name ToolBench's simulator writes in place of a call to a tool that does not exist.
HALLUCINATED_NAME = "invalid_hallucination_function_name"


class _Model(BaseModel):
    # Closed records: a misspelt field is an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolSpec(_Model):
    """One callable tool as the model sees it.

    `parameters` is a JSON Schema object (`type`, `properties`, `required`); source-specific
    keys inside it (ToolBench's `optional`, `example_value`) are kept as they came.
    """

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class UserTurn(_Model):
    """A user message.

    `diversity_prompt` marks ToolBench's DFS "this is not the first time you try this task"
    messages (`valid: false` in the answer files): they are not the user's words, but the
    official corpora train on them, so they are kept and flagged rather than dropped.
    """

    role: Literal["user"] = "user"
    content: str
    diversity_prompt: bool = False


class PlannerTurn(_Model):
    """A planner decision: free-text thought, then what happens next.

    `thought` is "" where the source had none. `empty_thought` says how the source wrote an
    empty thought, because the official α-UMi scripts treat the three differently (stage 2
    writes `"\n Next: X."` after an empty string, `" Next: X."` after null, and raises on a
    missing key): "null" (ToolBench's null content, and every source that does not say),
    "empty_string" (`content: ""`) or "absent" (no `content` key). A non-empty thought is
    always "null" here, the default, since it needs no such record.
    `next` is None for a thought that decides nothing: ToolBench assistant messages without a
    function call, and the assistant turns of the alpha-UMi test set that carry no `Next:`.
    They are history, not decisions, and the official scripts drop some of them; umi keeps them.
    `raw_arguments` is the `Finish` argument string of a ToolBench give-up, verbatim (an answer
    keeps its own in `ConclusionTurn.raw_arguments`); None for other sources and decisions.
    """

    role: Literal["planner"] = "planner"
    thought: str = ""
    next: Next | None = None
    empty_thought: EmptyThought = "null"
    raw_arguments: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "PlannerTurn":
        if self.thought and self.empty_thought != "null":
            raise ValueError(f"empty_thought is {self.empty_thought!r} but the thought is not empty")
        return self


class CallerTurn(_Model):
    """A tool call.

    `raw_arguments` is the argument string exactly as the model wrote it; `arguments` is its
    parse when it is a JSON object, else None. `hallucinated` is True when `name` is not in the
    trajectory's tool list (or is ToolBench's `invalid_hallucination_function_name`); such a
    call may still have an observation, since ToolBench's simulator matched names by suffix.
    """

    role: Literal["caller"] = "caller"
    name: str
    arguments: dict[str, Any] | None = None
    raw_arguments: str = ""
    hallucinated: bool = False


class ObservationTurn(_Model):
    """What a tool returned.

    ToolBench stores `{"error": ..., "response": ...}` as JSON text cut at 1024 characters plus
    "...", which breaks the JSON of long observations: `truncated` says so, `response` and
    `error` hold what could be recovered, and `raw` keeps the verbatim source text whenever it
    cannot be rebuilt exactly from `response` and `error` (None otherwise). The error text is
    kept even though the official scripts drop it.
    """

    role: Literal["observation"] = "observation"
    response: str = ""
    error: str = ""
    truncated: bool = False
    raw: str | None = None


class ConclusionTurn(_Model):
    """The final answer shown to the user.

    `raw_arguments` keeps ToolBench's `Finish` argument string when the answer was parsed out of
    one (None for sources without it), so a stricter or looser parse can be redone later.
    """

    role: Literal["conclusion"] = "conclusion"
    answer: str
    raw_arguments: str | None = None


Turn = Annotated[
    Union[UserTurn, PlannerTurn, CallerTurn, ObservationTurn, ConclusionTurn],
    Field(discriminator="role"),
]
ROLES = ("user", "planner", "caller", "observation", "conclusion")


def _turn_key(turn: Any) -> str:
    """The state a turn leaves the conversation in, for the transition table below."""
    if turn.role == "planner":
        return f"planner:{turn.next}"
    return turn.role


# What may follow each turn. A conclusion may be followed by an observation: ToolBench's
# `Finish` is itself a tool call, and a Finish the environment did not accept (no answer)
# returns an observation after which the episode goes on (seen in the alpha-UMi test set).
# A conclusion may be followed by a user turn: the user's next message in a multi-turn chat
# (the imported chat formats, umi_data/sources/chat.py); the outcome is still the last turn's.
_ALLOWED_NEXT: dict[str, frozenset[str]] = {
    "start": frozenset({"user"}),
    "user": frozenset({"user", "planner"}),
    "planner:None": frozenset({"user", "planner"}),
    "planner:caller": frozenset({"caller"}),
    "planner:conclusion": frozenset({"conclusion"}),
    "planner:give_up": frozenset(),
    "caller": frozenset({"observation"}),
    "observation": frozenset({"user", "planner"}),
    "conclusion": frozenset({"observation", "user"}),
}


class TurnOrderError(ValueError):
    """A turn sequence breaks the planner/caller/summarizer protocol at `index`."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"turn {index}: {message}")
        self.index = index


def check_turn_order(turns: list[Any]) -> None:
    """Raise `TurnOrderError` naming the first turn that may not follow its predecessor."""
    state = "start"
    for index, turn in enumerate(turns):
        if turn.role not in _ALLOWED_NEXT[state]:
            allowed = ", ".join(sorted(_ALLOWED_NEXT[state])) or "nothing"
            raise TurnOrderError(index, f"a {turn.role} turn cannot follow {state} (allowed: {allowed})")
        state = _turn_key(turn)


def outcome_of(turns: list[Any]) -> Outcome:
    """How a turn sequence ended: an answer, a give-up, or neither (e.g. a step budget ran out)."""
    if not turns:
        return "unfinished"
    last = turns[-1]
    if last.role == "conclusion":
        return "answer"
    if last.role == "planner" and last.next == "give_up":
        return "give_up"
    return "unfinished"


#: Python's json (which the sources use for lenient decoding) lets these through; UTF-8 cannot
#: encode them, so no writer can store a string holding one.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: The integers orjson (and so every umi file) can write.
INT_RANGE = (-(2**63), 2**64 - 1)


class UnstorableValueError(ValueError):
    """A value no umi file can hold: a lone surrogate in a string (`text` True), or a number
    JSON cannot write exactly (NaN, an infinity, an integer beyond 64 bits). `path` is the JSON
    path of the value."""

    def __init__(self, path: str, problem: str, text: bool) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem, self.text = path, problem, text


def _path_text(node: tuple | None) -> str:
    parts: list[str] = []
    while node is not None:
        node, key = node
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts))


def _problem(value: Any) -> tuple[str, bool] | None:
    if isinstance(value, str):
        found = None if value.isascii() else _LONE_SURROGATE.search(value)
        return (f"a lone surrogate (U+{ord(found.group()):04X}) at character {found.start()}", True) if found else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return None if INT_RANGE[0] <= value <= INT_RANGE[1] else ("an integer beyond 64 bits", False)
    return None if math.isfinite(value) else (f"{value} is not a JSON number", False)


def find_unstorable(value: Any, root: str = "$") -> UnstorableValueError | None:
    """The first value under `value` (plain JSON values and umi models) that no umi file can
    store, or None. Iterative, so any nesting depth is safe."""
    stack: list[tuple[Any, tuple | None]] = [(value, None)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, BaseModel):
            item = item.__dict__
        if isinstance(item, dict):
            for key, child in item.items():
                found = _problem(key)
                if found:
                    return UnstorableValueError(f"{root}{_path_text(where)} (key {key!r})", *found)
                stack.append((child, (where, key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, (where, index)) for index, child in enumerate(item))
        elif (found := _problem(item)) is not None:
            return UnstorableValueError(root + _path_text(where), *found)
    return None


def _fields(model: BaseModel) -> dict[str, Any]:
    return model.__dict__


def check_storable(trajectory: "Trajectory") -> None:
    """Raise `UnstorableValueError` when a string of the trajectory holds a lone surrogate or
    an integer is beyond 64 bits: every accepted trajectory must be writable (Parquet, JSONL,
    the official files). orjson's serialiser checks both at C speed; only a failure pays for
    the walk that says where. (NaN and infinities, which orjson would write as null, come only
    from Python's json, which no source uses unchecked.)"""
    try:
        orjson.dumps(trajectory, default=_fields)
    except TypeError:
        problem = find_unstorable(trajectory)
        if problem is not None:
            raise problem from None
        # else nesting deeper than orjson writes: the builder rejects it when it writes the row


class Trajectory(_Model):
    """One task attempt, from the user's instruction to an answer, a give-up or neither.

    `id` is stable across runs and machines (`make_trajectory_id`); `instruction_id` hashes the
    normalised instruction (`make_instruction_id`) and is the key of instruction-level splits.
    `meta` holds source-specific facts worth keeping (file, group such as G1, query id, ...).
    """

    id: str = Field(min_length=1)
    source: Source
    instruction: str
    instruction_id: str = Field(min_length=1)
    tools: list[ToolSpec] = Field(default_factory=list)
    turns: list[Turn] = Field(min_length=1)
    outcome: Outcome
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "Trajectory":
        check_turn_order(self.turns)
        expected = outcome_of(self.turns)
        if self.outcome != expected:
            raise ValueError(f"outcome is {self.outcome!r} but the turns end in {expected!r}")
        check_storable(self)
        return self

    @property
    def tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools]


class RejectReason(StrEnum):
    """Why an input record did not become a trajectory (machine-readable, counted in manifests)."""

    UNREADABLE_FILE = "unreadable_file"  # missing, a directory, permission denied
    EMPTY_FILE = "empty_file"  # zero bytes or only whitespace
    NOT_UTF8 = "not_utf8"
    TRUNCATED_JSON = "truncated_json"  # JSON that stops before its end
    INVALID_JSON = "invalid_json"  # any other JSON syntax error
    WRONG_SHAPE = "wrong_shape"  # wrong top-level type, or a required key missing
    WRONG_TYPE = "wrong_type"  # a value of the wrong type (or enum) somewhere inside
    INVALID_DATA = "invalid_data"  # the source itself marks the record invalid (valid_data: false)
    EXCLUDED_TEST_QUERY = "excluded_test_query"  # in the test-id exclusion list
    BAD_TURN_ORDER = "bad_turn_order"  # converted turns break the protocol
    NO_DECISION = "no_decision"  # nothing but the user's message: nothing to learn from
    RUN_ERROR = "run_error"  # the source stored a failed run (an exception, a parse failure) instead of a trajectory
    NO_TOOL_CALL = "no_tool_call"  # the run answered without calling any tool (ToolAlpaca: empty intermediate_steps)
    INVENTED_DIALOGUE = "invented_dialogue"  # the model wrote turns not its own (user turns, observations) that cannot be cut off
    INVALID_TEXT = "invalid_text"  # a string holds a lone surrogate (UTF-8 cannot store it)
    OFFICIAL_WOULD_FAIL = "official_would_fail"  # compat mode: an official alpha-UMi script raises on this record
    # The chat formats (openai-messages, sharegpt-tools, hermes; umi_data/sources/chat.py):
    UNKNOWN_ROLE = "unknown_role"  # a message role (speaker) the format does not define
    NO_USER_TURN = "no_user_turn"  # an assistant or tool message before any user message: no task to learn from
    INVALID_TOOLS = "invalid_tools"  # the tool list is not JSON, or not a list of named tool schemas
    INVALID_CALL = "invalid_call"  # a tool call that cannot be read (no name, unparseable call text)
    ORPHAN_TOOL_RESULT = "orphan_tool_result"  # a tool result that answers no call before it
    UNANSWERED_CALL = "unanswered_call"  # a call without a result while the conversation goes on
    UNSUPPORTED_CONTENT = "unsupported_content"  # a content part that is not text (an image, audio)


class Reject(_Model):
    """An input record that did not become a trajectory, with where it was and why."""

    source_file: str
    locator: str = ""
    reason: RejectReason
    detail: str = ""


def normalise_instruction(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed: equal tasks phrased with cosmetic
    differences (trailing newline, double space) share one instruction id."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", text).strip()


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()[:ID_HEX_CHARS]


def make_instruction_id(instruction: str) -> str:
    return _digest(normalise_instruction(instruction))


def make_trajectory_id(source: str, file: str, locator: str, content: bytes | str) -> str:
    """`<source>-<hash>` of the source name, the file's path relative to its input root, the
    record's locator inside the file and the record's content: stable across machines and
    reruns, different for the same record in two files."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    return f"{source}-{_digest(source, file, locator, hashlib.sha256(content).hexdigest())}"
