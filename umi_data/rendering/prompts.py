"""α-UMi prompt templates and the official history serialisation.

The official α-UMi training files (``train_{backbone,planner,caller,summarizer}.json``)
store each prompt already filled in.  To train or evaluate against the published
models we must build byte-identical prompts, so the templates below were
reconstructed from those shipped inputs (not copied from the reference code) and
are checked record-for-record by ``tests/test_prompts.py``.  Typos such as
"You have assess to" and "Base on the thought" are deliberate: they are what the
models were trained on.

Stdlib only, so that it can be imported without the rest of the project.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, NamedTuple, Sequence

__all__ = [
    "TOOLBENCH_BACKBONE", "TOOLBENCH_PLANNER", "TOOLBENCH_CALLER", "TOOLBENCH_SUMMARIZER",
    "TOOLALPACA_BACKBONE", "TOOLALPACA_PLANNER", "TOOLALPACA_CALLER", "TOOLALPACA_SUMMARIZER",
    "FAMILIES", "ROLES", "ROLE_SUFFIX", "END", "NEXT_SUFFIXES",
    "template", "render_doc", "render_tool_names", "serialise_history",
    "split_plan", "serialise_backbone_history", "fill", "fill_rendered", "ToolText",
]

#: End-of-turn marker written after every turn except observations.
END = "</s>"

# --- toolbench family (measured on the shipped train-example inputs) ---------
# Placeholders are str.format fields; the templates contain no literal braces.
# Values substituted by str.format are never re-parsed, so JSON braces in
# ``{doc}`` or ``{history}`` are safe.

_APIS_AND_HISTORY = (
    "You have assess to the following apis:\n{doc}\n"
    "The conversation history is:\n{history}\n"
)

TOOLBENCH_BACKBONE = (
    _APIS_AND_HISTORY
    + "You should answer the action of next step in the following format:\n"
    "The thought to solve the question,\n"
    "Action: the name of api that should be called in this step, "
    "should be exactly in [{tool_names}],\n"
    "Action Input: the api call request.\n"
    "Once you think the question is finished, output conclusion: the final answer "
    "of the question or give up if you think you cannot answer this question.\n"
)

TOOLBENCH_PLANNER = (
    _APIS_AND_HISTORY
    + "You are the assistant to plan what to do next and whether is caller's or "
    "conclusion's turn to answer.\n"
    "Answer with a following format:\n"
    "The thought of the next step, followed by Next: caller or conclusion or give up."
)

TOOLBENCH_CALLER = (
    _APIS_AND_HISTORY
    + "The thought of this step is:\n{thought}\n"
    "Base on the thought make an api call in the following format:\n"
    "Action: the name of api that should be called in this step, "
    "should be exactly in [{tool_names}],\n"
    "Action Input: the api call request."
)

TOOLBENCH_SUMMARIZER = "Make a conclusion based on the conversation history:\n{history}"

# --- toolalpaca family --------------------------------------------------------
# No shipped toolalpaca outputs exist to measure, so these are DERIVED from the
# toolbench templates by the two edits FORMATS.md documents: the planner offers
# only "Next: caller or conclusion." and the backbone drops the give-up clause
# (we remove " or give up if you think you cannot answer this question", keeping
# the conclusion instruction).  Caller and summarizer are unchanged.

TOOLALPACA_BACKBONE = TOOLBENCH_BACKBONE.replace(
    " or give up if you think you cannot answer this question.", "."
)
TOOLALPACA_PLANNER = TOOLBENCH_PLANNER.replace(
    "Next: caller or conclusion or give up.", "Next: caller or conclusion."
)
TOOLALPACA_CALLER = TOOLBENCH_CALLER
TOOLALPACA_SUMMARIZER = TOOLBENCH_SUMMARIZER

FAMILIES: tuple[str, ...] = ("toolbench", "toolalpaca")
ROLES: tuple[str, ...] = ("backbone", "planner", "caller", "summarizer")

_TEMPLATES: dict[tuple[str, str], str] = {
    ("toolbench", "backbone"): TOOLBENCH_BACKBONE,
    ("toolbench", "planner"): TOOLBENCH_PLANNER,
    ("toolbench", "caller"): TOOLBENCH_CALLER,
    ("toolbench", "summarizer"): TOOLBENCH_SUMMARIZER,
    ("toolalpaca", "backbone"): TOOLALPACA_BACKBONE,
    ("toolalpaca", "planner"): TOOLALPACA_PLANNER,
    ("toolalpaca", "caller"): TOOLALPACA_CALLER,
    ("toolalpaca", "summarizer"): TOOLALPACA_SUMMARIZER,
}

#: Appended after the filled template: the speaker tag the model continues from.
#: Note the leading space (the backbone template ends in "\n", so it reads "\n assistant: ").
ROLE_SUFFIX: dict[str, str] = {
    "backbone": " assistant: ",
    "planner": " assistant: ",
    "caller": " caller: ",
    "summarizer": " conclusion: ",
}

#: Planner decisions as stage 2 appends them to the assistant value.
NEXT_SUFFIXES: dict[str, str] = {
    "caller": " Next: caller.",
    "conclusion": " Next: conclusion.",
    "give up": " Next: give up.",
}

_TERMINATED = ("user", "assistant", "caller", "conclusion")


def template(family: str, role: str) -> str:
    """Return the raw template so callers never hard-code prompt text."""
    if family not in FAMILIES:
        raise ValueError(f"unknown prompt family {family!r}; valid: {', '.join(FAMILIES)}")
    if role not in ROLES:
        raise ValueError(f"unknown prompt role {role!r}; valid: {', '.join(ROLES)}")
    return _TEMPLATES[(family, role)]


def render_doc(tools: Sequence[Mapping[str, Any]]) -> str:
    """Render ``{doc}``: one ``json.dumps`` line per tool, each ending in a newline.

    Default ``json.dumps`` settings (ASCII escapes, ", " / ": " separators, key
    order as given) are what the official inputs contain.
    """
    return "".join(json.dumps(tool) + "\n" for tool in tools)


def render_tool_names(tools: Sequence[Mapping[str, Any]]) -> str:
    """Render ``{tool_names}``: the stage-1 ``Name`` fields joined by ", "."""
    return ", ".join(str(tool["Name"]) for tool in tools)


def serialise_history(history: Sequence[Mapping[str, str]]) -> str:
    """Serialise turns as the planner, caller and summarizer prompts show them.

    Every turn is ``"{from}: {value}"``; all but observations are closed by
    ``</s>`` (so the next speaker follows an observation directly).  Unknown
    speakers are rejected rather than guessed: the shipped data has none.
    """
    parts: list[str] = []
    for turn in history:
        speaker, value = turn["from"], turn["value"]
        if speaker == "observation":
            parts.append(f"observation: {value}")
        elif speaker in _TERMINATED:
            parts.append(f"{speaker}: {value}{END}")
        else:
            valid = ", ".join((*_TERMINATED, "observation"))
            raise ValueError(f"unknown history speaker {speaker!r}; valid: {valid}")
    return "".join(parts)


def split_plan(value: str) -> tuple[str, str | None]:
    """Split an assistant value into (stripped thought, decision or None).

    Stage 2 writes ``thought + "\\n" + " Next: X."`` (or just ``" Next: X."``
    when the thought was null); the backbone sees only the stripped thought.
    """
    for decision, suffix in NEXT_SUFFIXES.items():
        if value.endswith(suffix):
            return value[: -len(suffix)].strip(), decision
    return value.strip(), None


def serialise_backbone_history(history: Sequence[Mapping[str, str]]) -> str:
    """Serialise history for the single-model backbone.

    The backbone produces thought and action in one turn, so each assistant turn
    is merged with the caller/conclusion turn that follows it:
    ``"assistant: " + thought + "\\n" + caller_value + "</s>"`` or
    ``... + "\\nconclusion: " + answer + "</s>"``; a give-up plan with no
    following turn becomes ``"\\nconclusion: give up."`` like the backbone target.
    Other turns are serialised as in :func:`serialise_history`.
    """
    parts: list[str] = []
    i = 0
    while i < len(history):
        turn = history[i]
        if turn["from"] != "assistant":
            parts.append(serialise_history([turn]))
            i += 1
            continue
        thought, decision = split_plan(turn["value"])
        nxt = history[i + 1] if i + 1 < len(history) else None
        if nxt is not None and nxt["from"] == "caller":
            parts.append(f"assistant: {thought}\n{nxt['value']}{END}")
            i += 2
        elif nxt is not None and nxt["from"] == "conclusion":
            parts.append(f"assistant: {thought}\nconclusion: {nxt['value']}{END}")
            i += 2
        else:
            tail = "\nconclusion: give up." if decision == "give up" else ""
            parts.append(f"assistant: {thought}{tail}{END}")
            i += 1
    return "".join(parts)


def fill(
    role: str,
    family: str,
    *,
    tools: Sequence[Mapping[str, Any]],
    history_text: str,
    thought: str | None = None,
) -> str:
    """Build the complete model input (template + role suffix) for one step.

    ``history_text`` comes from :func:`serialise_history` (or
    :func:`serialise_backbone_history` for the backbone); it is taken as text so
    the caller decides which serialisation applies.  ``thought`` is required for
    the caller (the preceding assistant value, verbatim) and rejected otherwise.
    """
    return fill_rendered(role, family, ToolText.of(tools), history_text=history_text, thought=thought)


class ToolText(NamedTuple):
    """``{doc}`` and ``{tool_names}`` of one tool list. Rendered once per trajectory: the list
    never changes within one, and JSON-serialising it again for every example was the
    costliest part of rendering."""

    doc: str
    names: str

    @classmethod
    def of(cls, tools: Sequence[Mapping[str, Any]]) -> "ToolText":
        return cls(render_doc(tools), render_tool_names(tools))


def fill_rendered(role: str, family: str, tools: ToolText, *, history_text: str, thought: str | None = None) -> str:
    """:func:`fill` with the tool list already rendered (:class:`ToolText`)."""
    tpl = template(family, role)
    if (role == "caller") != (thought is not None):
        raise ValueError("thought is required for role 'caller' and only for it")
    fields = {
        "doc": tools.doc,
        "tool_names": tools.names,
        "history": history_text,
        "thought": thought if thought is not None else "",
    }
    return tpl.format(**fields) + ROLE_SUFFIX[role]
