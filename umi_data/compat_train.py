"""The four official α-UMi training files built from stage-2 records, quirks included.

Each record is `{tools, history, input, target}` (../shared/FORMATS.md §4). Reproduced as the
shipped `train_*.json` show them, bugs and all, because the published models were trained on
exactly these inputs:

- backbone: one record per assistant turn; a give-up reuses the backbone `input` computed last
  (the official loop never recomputes it for give-ups). The shipped files only show give-ups
  after another assistant turn of the same record; `training_files` carries the stale input
  across records like a plain loop variable would, and for a give-up with nothing before it
  at all the fresh input is used (unobserved: the official script would crash there).
- planner: one record per assistant turn, except steps whose caller turn names
  `invalid_hallucination_function_name` (those stay in the history).
- caller: one record per caller turn except hallucinated ones, which are also left out of the
  history (their observations stay).
- summarizer: one record per conclusion whose answer is not `"none"`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from umi_data.core import HALLUCINATED_NAME
from umi_data.prompts import fill, serialise_backbone_history, serialise_history, split_plan

TRAINING_FILES = ("backbone", "planner", "caller", "summarizer")
GIVE_UP = "give up"
NO_ANSWER = "none"

__all__ = ["TRAINING_FILES", "training_records", "training_files", "backbone_target"]

#: One stage-2 conversation turn, `{"from": speaker, "value": text}`.
TurnDict = Mapping[str, Any]


def training_files(stage2_records: Iterable[Mapping[str, Any]], family: str = "toolbench") -> dict[str, list[dict[str, Any]]]:
    """All four training files for a list of stage-2 records, in the official order, with the
    stale backbone input carried from one record to the next."""
    files: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAINING_FILES}
    for record in stage2_records:
        stale = files["backbone"][-1]["input"] if files["backbone"] else None
        for name, rows in training_records(record, family, stale_backbone_input=stale).items():
            files[name].extend(rows)
    return files


def training_records(
    stage2: Mapping[str, Any], family: str = "toolbench", *, stale_backbone_input: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`{backbone, planner, caller, summarizer}` records of one stage-2 record.

    `stale_backbone_input` is the backbone input the official loop computed last before this
    record; a give-up that is the record's first assistant turn reuses it (official bug)."""
    tools, conversations = stage2["tools"], stage2["conversations"]
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAINING_FILES}
    backbone_input = stale_backbone_input
    for index, turn in enumerate(conversations):
        history = list(conversations[:index])
        following = conversations[index + 1] if index + 1 < len(conversations) else None
        speaker = turn["from"]
        if speaker == "assistant":
            _, decision = split_plan(turn["value"])
            if decision != GIVE_UP or backbone_input is None:
                backbone_input = fill("backbone", family, tools=tools, history_text=serialise_backbone_history(history))
            out["backbone"].append(_row(tools, history, backbone_input, backbone_target(turn, following)))
            if not _is_hallucinated_call(following):
                planner_input = fill("planner", family, tools=tools, history_text=serialise_history(history))
                out["planner"].append(_row(tools, history, planner_input, turn["value"]))
        elif speaker == "caller" and not _is_hallucinated_call(turn):
            out["caller"].append(_caller_row(tools, history, turn, family))
        elif speaker == "conclusion" and turn["value"] != NO_ANSWER:
            summary_input = fill("summarizer", family, tools=tools, history_text=serialise_history(history))
            out["summarizer"].append(_row(tools, history, summary_input, turn["value"]))
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
            "the official training files only hold decisions followed by their caller or conclusion turn"
        )
    if decision == "caller":
        return f"{thought}\n{following['value']}"
    return f"{thought}\nconclusion: {following['value']}"


def _caller_row(tools: Any, history: list[TurnDict], turn: TurnDict, family: str) -> dict[str, Any]:
    # The caller's thought is the assistant value just before it, suffix and all.
    thought = history[-1]["value"]
    visible = [t for t in history if not (t["from"] == "caller" and _is_hallucinated_call(t))]
    text = fill("caller", family, tools=tools, history_text=serialise_history(visible), thought=thought)
    return _row(tools, visible, text, turn["value"])


def _is_hallucinated_call(turn: TurnDict | None) -> bool:
    return turn is not None and turn["from"] == "caller" and HALLUCINATED_NAME in turn["value"]


def _row(tools: Any, history: Sequence[TurnDict], text: str, target: str) -> dict[str, Any]:
    return {"tools": tools, "history": list(history), "input": text, "target": target}
