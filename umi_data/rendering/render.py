"""Rendering: trajectories → role examples (`backbone`, `planner`, `caller`, `summarizer`).

Both modes go through one function, `role_records`, over a stage-2 style conversation
(`[{"from": speaker, "value": text}]`, ../shared/FORMATS.md §3-§4); they differ in the
conversation they build from a `Trajectory` and in a `RenderPolicy`:

- compat (`AlphaUmiCompatRenderer`): the official stage-2 conversation and the official policy,
  so the four `train_*.json` files equal the shipped ones, quirks included.
- default (`DefaultRenderer`): the same prompts and target format, with the official bugs fixed.
  Every difference is listed in docs/differences.md, with a test each
  (tests/test_render_default.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

from umi_data.core import (
    HALLUCINATED_NAME,
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    Trajectory,
    find_unstorable,
)
from umi_data.rendering.compat import (
    SPEAKER, OfficialWouldFail, can_rebuild_stage1, conversation_value, official_failure, short_form_tools, stage1_record,
    stage2_record,
)
from umi_data.rendering.prompts import ToolText, fill_rendered, serialise_backbone_history, serialise_history, split_plan

ROLES = ("backbone", "planner", "caller", "summarizer")
GIVE_UP = "give up"
#: What the official stage 2 writes for a give_answer without a `final_answer`.
NO_ANSWER = "none"
#: Appended to an observation that ToolBench cut at 1024 characters (its own marker).
TRUNCATION_MARK = "..."
#: Stands for the backbone input of the part before, in a build rendered in parts.
STALE_INPUT = "\x00umi: the backbone input of the previous part\x00"

#: One conversation turn, `{"from": speaker, "value": text}`.
TurnDict = Mapping[str, Any]
#: (role, input, target) triples in order, and official-format records by file name.
Rendered = tuple[list[tuple[str, str, str]], dict[str, list[dict[str, Any]]]]
RenderFn = Callable[[Trajectory], Rendered]


@dataclass(frozen=True)
class RenderPolicy:
    """Which examples a conversation yields; the official quirks versus umi's fixes."""

    #: Official bug: a give-up step reuses the backbone input computed last (never recomputed).
    stale_give_up_input: bool
    #: "official": the backbone trains on hallucinated calls, the planner skips their step, the
    #: caller skips them and hides them from its history. "skip-step": no role trains on a
    #: step whose call is hallucinated, and every role's history keeps the call.
    hallucinated_steps: Literal["official", "skip-step"]
    #: Official: only the literal "none" means "no answer". Fixed: blank text too, and the
    #: backbone no longer trains on `conclusion: none`.
    strict_answers: bool
    #: Official: the summarizer's prompt shows only the conclusions it trains on (not `none`).
    summarizer_hides_no_answer: bool = False


OFFICIAL = RenderPolicy(stale_give_up_input=True, hallucinated_steps="official", strict_answers=False, summarizer_hides_no_answer=True)
FIXED = RenderPolicy(stale_give_up_input=False, hallucinated_steps="skip-step", strict_answers=True)


def family_for(trajectory: Trajectory) -> str:
    """The prompt family: ToolAlpaca trajectories use the `toolalpaca_*` templates (no give-up)."""
    return "toolalpaca" if trajectory.source == "toolalpaca" else "toolbench"


def role_records(
    conversations: Sequence[TurnDict],
    tools: Sequence[Mapping[str, Any]],
    family: str = "toolbench",
    *,
    policy: RenderPolicy = OFFICIAL,
    hallucinated: Callable[[int], bool] | None = None,
    stale_backbone_input: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """`{backbone, planner, caller, summarizer}` records `{tools, history, input, target}`.

    `hallucinated(i)` says whether conversation turn `i` is a hallucinated call (default: the
    official test, ToolBench's `invalid_hallucination_function_name` in the caller text).
    `stale_backbone_input` is the backbone input computed last before this conversation (used
    only by the official policy). Assistant turns that decide nothing are history, never
    examples (the official files hold none)."""
    is_hallucinated = hallucinated or (lambda i: _official_hallucinated(conversations[i]))
    text = ToolText.of(tools)
    out: dict[str, list[dict[str, Any]]] = {role: [] for role in ROLES}
    backbone_input = stale_backbone_input
    for index, turn in enumerate(conversations):
        history = list(conversations[:index])
        speaker = turn["from"]
        if speaker == "assistant":
            following = conversations[index + 1] if index + 1 < len(conversations) else None
            call_hallucinated = following is not None and following["from"] == "caller" and is_hallucinated(index + 1)
            _, decision = split_plan(turn["value"])
            dangling = decision in ("caller", "conclusion") and (following is None or following["from"] != decision)
            if decision is None or dangling or (call_hallucinated and policy.hallucinated_steps == "skip-step"):
                continue  # history, not an example (a decision cut off before its call or answer)
            if decision != GIVE_UP or backbone_input is None or not policy.stale_give_up_input:
                backbone_input = fill_rendered("backbone", family, text, history_text=serialise_backbone_history(history))
            if not (policy.strict_answers and decision == "conclusion" and _no_answer(following, policy)):
                out["backbone"].append(_record(tools, history, backbone_input, backbone_target(turn, following)))
            if not call_hallucinated:
                planner_input = fill_rendered("planner", family, text, history_text=serialise_history(history))
                out["planner"].append(_record(tools, history, planner_input, turn["value"]))
        elif speaker == "caller" and not is_hallucinated(index):
            shown = history
            if policy.hallucinated_steps == "official":
                shown = [t for i, t in enumerate(history) if not (t["from"] == "caller" and is_hallucinated(i))]
            out["caller"].append(_caller_record(tools, text, history, shown, turn, family))
        elif speaker == "conclusion" and not _no_answer(turn, policy):
            shown = [t for t in history if not _no_answer(t, policy)] if policy.summarizer_hides_no_answer else history
            summary_input = fill_rendered("summarizer", family, text, history_text=serialise_history(shown))
            out["summarizer"].append(_record(tools, history, summary_input, turn["value"]))
    return out


def backbone_target(assistant: TurnDict, following: TurnDict | None) -> str:
    """What the single-model backbone must write for one step: the stripped thought, then the
    call (`"\\nAction: ..."`), the answer (`"\\nconclusion: ..."`) or `"\\nconclusion: give up."`."""
    thought, decision = split_plan(assistant["value"])
    expected = {"caller": "caller", "conclusion": "conclusion"}.get(decision or "")
    if decision == GIVE_UP:
        return f"{thought}\nconclusion: give up."
    if expected is None or following is None or following["from"] != expected:
        found = following["from"] if following is not None else "the end of the conversation"
        raise ValueError(
            f"assistant turn {assistant['value'][-40:]!r} decides {decision!r} but is followed by {found}; "
            "a decision must be followed by its caller or conclusion turn"
        )
    if decision == "caller":
        return f"{thought}\n{following['value']}"
    return f"{thought}\nconclusion: {following['value']}"


def _caller_record(
    tools: Any, text: ToolText, history: list[TurnDict], shown: list[TurnDict], turn: TurnDict, family: str
) -> dict[str, Any]:
    """A caller example: its prompt serialises `shown` (official: the history without
    hallucinated calls), its `history` field is the whole history (as the official file keeps it)."""
    # The caller's thought is the assistant value just before it, suffix and all.
    thought = history[-1]["value"]
    prompt = fill_rendered("caller", family, text, history_text=serialise_history(shown), thought=thought)
    return _record(tools, history, prompt, turn["value"])


def _official_hallucinated(turn: TurnDict) -> bool:
    return turn["from"] == "caller" and HALLUCINATED_NAME in turn["value"]


def _no_answer(turn: TurnDict | None, policy: RenderPolicy) -> bool:
    if turn is None or turn["from"] != "conclusion":
        return False
    value = turn["value"]
    if policy.strict_answers:
        return not isinstance(value, str) or value.strip() in ("", NO_ANSWER)
    return value == NO_ANSWER


def _record(tools: Any, history: Sequence[TurnDict], text: str, target: str) -> dict[str, Any]:
    return {"tools": tools, "history": list(history), "input": text, "target": target}


# --- default mode -----------------------------------------------------------------------------


def observation_text(turn: ObservationTurn) -> str:
    """What a model sees of an observation in umi's default mode (and in umi's agent loop):
    the response, ToolBench's `...` when it was cut, then `Error: <text>` when the tool
    reported one (the official stage 2 keeps only the response and loses the error)."""
    text = turn.response + (TRUNCATION_MARK if turn.truncated and not turn.response.endswith(TRUNCATION_MARK) else "")
    if turn.error:
        text = f"{text}\nError: {turn.error}" if text else f"Error: {turn.error}"
    return text


def default_conversation(trajectory: Trajectory) -> tuple[list[dict[str, Any]], frozenset[int]]:
    """The stage-2 style conversation umi trains on by default, and the indices of its
    hallucinated calls (from the trajectory's `hallucinated` flags, not a name match).

    Unlike the official stage 2 it keeps thoughts that decide nothing (history, not examples),
    the observation's error text, and the decoded text of cut observations."""
    return turns_conversation(trajectory.turns)


def turns_conversation(turns: Sequence[Any]) -> tuple[list[dict[str, Any]], frozenset[int]]:
    """`default_conversation` of a turn list (also what umi's agent loop shows its models)."""
    conversation: list[dict[str, Any]] = []
    hallucinated: set[int] = set()
    for turn in turns:
        if isinstance(turn, PlannerTurn) and turn.next is None and not turn.thought.strip():
            continue  # an empty message that decides nothing says nothing
        if isinstance(turn, CallerTurn) and turn.hallucinated:
            hallucinated.add(len(conversation))
        if isinstance(turn, PlannerTurn) and turn.empty_thought != "null":
            turn = turn.model_copy(update={"empty_thought": "null"})  # how a source spelled "no thought" is not text
        conversation.append({"from": SPEAKER[turn.role], "value": conversation_value(turn, observation_text, _answer)})
    return conversation, frozenset(hallucinated)


def _answer(turn: ConclusionTurn) -> str:
    return turn.answer


class DefaultRenderer:
    """umi's default rendering: official prompts and target format, official bugs fixed
    (docs/differences.md). Stateless: each trajectory renders on its own."""

    def __call__(self, trajectory: Trajectory) -> Rendered:
        conversation, hallucinated = default_conversation(trajectory)
        records = role_records(
            conversation, short_form_tools(trajectory), family_for(trajectory),
            policy=FIXED, hallucinated=hallucinated.__contains__,
        )
        return _examples(records), {}


class AlphaUmiCompatRenderer:
    """The official α-UMi preprocessing, one trajectory at a time, in input order.

    Stateful on purpose: the official loop's stale backbone input of give-up steps carries over
    from the previous record, so records must come in the order the official scripts see them.
    Writes `raw_data_stage_1` (only for sources that carry the ToolBench chain), `raw_data_stage_2`
    and the four `train_*` files.

    A build split into parts (workers, shards) renders each part on its own, starting from
    `STALE_INPUT` instead of the unknown input of the part before: the part's first backbone
    examples that reuse it (`stale_rows`) get the real text when the parts are joined in order
    (`fresh_input` is what they get when no part before has any backbone example)."""

    def __init__(self, stale_input: str | None = None) -> None:
        self._last_backbone_input = stale_input
        self.stale_rows = 0
        self.fresh_input: str | None = None

    @property
    def last_input(self) -> str | None:
        """The backbone input the next trajectory would reuse; None while it is the one this
        renderer started from (no backbone example computed its own yet)."""
        return None if self._last_backbone_input == STALE_INPUT else self._last_backbone_input

    def __call__(self, trajectory: Trajectory) -> Rendered:
        """Raises `OfficialWouldFail` where an official script would raise on this trajectory
        (given the ones rendered before it), and `UnstorableValueError` where the official
        reading of its text holds a lone surrogate; the renderer's state is then unchanged."""
        official: dict[str, list[dict[str, Any]]] = {}
        if can_rebuild_stage1(trajectory):
            official["raw_data_stage_1"] = [stage1_record(trajectory)]
        stage2 = stage2_record(trajectory)
        failure = official_failure(stage2["conversations"], backbone_input_known=self._last_backbone_input is not None)
        if failure is not None:
            raise OfficialWouldFail(failure)
        unstorable = find_unstorable(stage2["conversations"], "$.alpha_umi.raw_data_stage_2.conversations")
        if unstorable is not None:
            raise unstorable
        official["raw_data_stage_2"] = [stage2]
        records = role_records(
            stage2["conversations"], stage2["tools"], family_for(trajectory),
            policy=OFFICIAL, stale_backbone_input=self._last_backbone_input,
        )
        if records["backbone"]:
            self._last_backbone_input = records["backbone"][-1]["input"]
        stale = sum(record["input"] == STALE_INPUT for record in records["backbone"])
        if stale and self.fresh_input is None:
            fresh = role_records(stage2["conversations"], stage2["tools"], family_for(trajectory), policy=OFFICIAL)
            self.fresh_input = fresh["backbone"][0]["input"]
        self.stale_rows += stale
        for role, rows in records.items():
            official[f"train_{role}"] = rows
        return _examples(records), official


def _examples(records: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str]]:
    return [(role, record["input"], record["target"]) for role, rows in records.items() for record in rows]


__all__ = [
    "OFFICIAL", "FIXED", "STALE_INPUT", "RenderPolicy", "role_records", "backbone_target", "observation_text",
    "default_conversation", "turns_conversation", "family_for", "DefaultRenderer", "AlphaUmiCompatRenderer",
]
