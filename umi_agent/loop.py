"""The α-UMi agent loop: planner → (caller → tool → observation)* → summarizer, or give-up.

Prompts are rendered by the same templates and history serialisation as umi's default training
corpora (`umi_data.rendering.prompts`, `umi_data.rendering.render.turns_conversation`), so a model sees at inference
exactly the format it was trained on. Each episode's trace is a `Trajectory`
(`source="agent_run"`), so agent runs go through DuckDB and the corpus builder like any source.

Two agents share the loop: `MultiAgent` (planner, caller and summarizer models, the paper's
α-UMi) and `SingleAgent` (one backbone model writing thought and action in one turn: the
Single-LLM baseline).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from umi_data.rendering.compat import planner_value, short_form_tool
from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    PlannerTurn,
    ToolSpec,
    Trajectory,
    UserTurn,
    make_instruction_id,
    make_trajectory_id,
    outcome_of,
)
from umi_data.rendering.prompts import END, fill, serialise_backbone_history, serialise_history
from umi_data.rendering.render import turns_conversation
from umi_data.sources.toolbench import parse_json_object
from umi_agent.jsonio import scrub_text
from umi_agent.tools import INVALID_ARGUMENTS, ToolRegistry

DEFAULT_MAX_STEPS = 8
_NEXT = re.compile(r"Next:\s*(caller|conclusion|give up)\.?", re.I)
_DECISIONS = {"caller": "caller", "conclusion": "conclusion", "give up": "give_up"}


class Model(Protocol):
    """Anything that continues a prompt: a local transformers model, a scripted one in tests."""

    def generate(self, prompt: str) -> str: ...


# --- parsing model outputs --------------------------------------------------------------------


def parse_plan(text: str) -> PlannerTurn:
    """A planner output cut after its first `Next:` marker: the thought before it, the decision;
    no marker is a thought that decides nothing (it stays in the history)."""
    text = text.split(END)[0]
    match = _NEXT.search(text)
    if match is None:
        return PlannerTurn(thought=text.strip(), next=None)
    return PlannerTurn(thought=text[: match.start()].strip(), next=_DECISIONS[match.group(1).lower()])


def parse_call(text: str) -> tuple[str, str]:
    """(tool name, raw argument string) from `Action: X\\nAction Input: {...}`: the text after
    the last `Action:` up to `Action Input:`, and everything after `Action Input:`."""
    text = text.split(END)[0]
    head, marker, arguments = text.rpartition("Action Input:")
    if not marker:
        head, arguments = text, ""
    name = head.rpartition("Action:")[2] if "Action:" in head else ""
    return name.strip(), arguments.strip()


def parse_backbone(text: str) -> tuple[PlannerTurn, tuple[str, str] | str | None]:
    """The Single-LLM turn: thought, then `Action: ...` (a call), `conclusion: give up.` or
    `conclusion: <answer>`; anything else decides nothing."""
    text = text.split(END)[0]
    if "Action:" in text:
        thought = text[: text.index("Action:")].strip()
        return PlannerTurn(thought=thought, next="caller"), parse_call(text)
    head, marker, answer = text.partition("conclusion:")
    if not marker:
        return PlannerTurn(thought=text.strip(), next=None), None
    answer = answer.strip()
    if re.fullmatch(r"give up\.?", answer, flags=re.I):
        return PlannerTurn(thought=head.strip(), next="give_up"), None
    return PlannerTurn(thought=head.strip(), next="conclusion"), answer


# --- one episode ------------------------------------------------------------------------------


@dataclass
class Episode:
    """A finished episode: its trajectory and what was measured along the way."""

    trajectory: Trajectory
    latency: dict[str, list[float]]  # seconds per model call, by role
    steps: int  # planner decisions (and undecided planner turns, which also cost a step)

    @property
    def hallucinated_calls(self) -> int:
        return sum(t.role == "caller" and t.hallucinated for t in self.trajectory.turns)

    @property
    def invalid_arguments(self) -> int:
        return sum(t.role == "observation" and t.error.startswith(INVALID_ARGUMENTS) for t in self.trajectory.turns)


@dataclass
class _State:
    instruction: str
    registry: ToolRegistry
    family: str
    turns: list[Any] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    tools: list[dict[str, Any]] = field(init=False)  # the {doc} of every prompt: rendered once

    def __post_init__(self) -> None:
        self.tools = [short_form_tool(spec) for spec in self.registry.specs]

    def history(self, backbone: bool = False) -> str:
        conversation, _ = turns_conversation(self.turns)
        return serialise_backbone_history(conversation) if backbone else serialise_history(conversation)

    def ask(self, role: str, model: Model, prompt: str) -> str:
        start = time.perf_counter()
        output = scrub_text(model.generate(prompt))  # a model may emit lone surrogates; a Trajectory may not hold them
        self.latency[role].append(time.perf_counter() - start)
        return output

    def call(self, name: str, raw_arguments: str) -> bool:
        """The call and its observation; True when the call ended the episode instead (a world
        with a terminating function, ToolBench's `Finish`, records it as the answer or give-up
        it was, in place of the plan that led to it)."""
        ending = self.registry.ending(self.turns[-1], name, raw_arguments)
        if ending is not None:
            self.turns[-1:] = ending
            return True
        hallucinated = name not in self.registry
        self.turns.append(CallerTurn(name=name, arguments=parse_json_object(raw_arguments or "{}"),
                                     raw_arguments=raw_arguments, hallucinated=hallucinated))
        self.turns.append(self.registry.execute(name, raw_arguments))
        return False


@dataclass
class MultiAgent:
    """α-UMi: a planner decides, a caller writes the call, a summarizer writes the answer."""

    planner: Model
    caller: Model
    summarizer: Model
    family: str = "toolbench"
    max_steps: int = DEFAULT_MAX_STEPS

    def step(self, state: _State) -> bool:
        """One planner decision and what follows it; True when the episode is over."""
        plan = parse_plan(state.ask("planner", self.planner, fill("planner", state.family, tools=state.tools, history_text=state.history())))
        state.turns.append(plan)
        if plan.next == "caller":
            # As in the training corpora: the history ends with the plan, which is also `{thought}`.
            prompt = fill("caller", state.family, tools=state.tools, history_text=state.history(), thought=planner_value(plan))
            return state.call(*parse_call(state.ask("caller", self.caller, prompt)))
        if plan.next == "conclusion":
            prompt = fill("summarizer", state.family, tools=state.tools, history_text=state.history())
            answer = state.ask("summarizer", self.summarizer, prompt).split(END)[0].strip()
            state.turns.append(ConclusionTurn(answer=answer))
        return plan.next in ("conclusion", "give_up")


@dataclass
class SingleAgent:
    """The Single-LLM baseline: one backbone model writes thought and action in one turn."""

    backbone: Model
    family: str = "toolbench"
    max_steps: int = DEFAULT_MAX_STEPS

    def step(self, state: _State) -> bool:
        prompt = fill("backbone", state.family, tools=state.tools, history_text=state.history(backbone=True))
        plan, action = parse_backbone(state.ask("backbone", self.backbone, prompt))
        state.turns.append(plan)
        if plan.next == "caller":
            return state.call(*action)
        if plan.next == "conclusion":
            state.turns.append(ConclusionTurn(answer=action))
        return plan.next in ("conclusion", "give_up")


def run_episode(agent: MultiAgent | SingleAgent, instruction: str, registry: ToolRegistry, *,
                episode_id: str = "episode", meta: dict[str, Any] | None = None) -> Episode:
    """Run one task to an answer, a give-up or the step budget (then `unfinished`)."""
    state = _State(instruction, registry, agent.family, turns=[UserTurn(content=instruction)])
    steps = 0
    while steps < agent.max_steps:
        steps += 1
        if agent.step(state):
            break
    trajectory = _trajectory(state, episode_id, {**(meta or {}), "agent": type(agent).__name__, "max_steps": agent.max_steps})
    return Episode(trajectory=trajectory, latency=dict(state.latency), steps=steps)


def _trajectory(state: _State, episode_id: str, meta: dict[str, Any]) -> Trajectory:
    tools: list[ToolSpec] = state.registry.specs
    content = json.dumps([t.model_dump() for t in state.turns], sort_keys=True)
    return Trajectory(
        id=make_trajectory_id("agent_run", episode_id, "$", hashlib.sha256(content.encode()).hexdigest()),
        source="agent_run", instruction=state.instruction, instruction_id=make_instruction_id(state.instruction),
        tools=tools, turns=state.turns, outcome=outcome_of(state.turns), meta={"episode_id": episode_id, **meta},
    )


__all__ = ["Episode", "Model", "MultiAgent", "SingleAgent", "parse_backbone", "parse_call", "parse_plan", "run_episode"]
