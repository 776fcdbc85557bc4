"""Byte-exact checks of umi_data.rendering.prompts against the shipped official α-UMi inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_data.rendering import prompts
from umi_data.rendering.prompts import (
    fill,
    render_doc,
    render_tool_names,
    serialise_backbone_history,
    serialise_history,
    template,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
TRAIN_EXAMPLE = SHARED / "data" / "alpha_umi" / "train-example"
GIVE_UP_TARGET_END = "\nconclusion: give up."


def _load(role: str) -> list[dict]:
    if not TRAIN_EXAMPLE.is_dir():
        pytest.skip(f"{SHARED} not found (official train-example outputs live in ../shared)")
    with open(TRAIN_EXAMPLE / f"train_{role}.json", encoding="utf-8") as fh:
        return json.load(fh)


def _last_assistant(history: list[dict]) -> str:
    return [t["value"] for t in history if t["from"] == "assistant"][-1]


# --- against the shipped official outputs ------------------------------------


@pytest.mark.parametrize("role,count", [("planner", 79), ("caller", 59), ("summarizer", 14)])
def test_inputs_reproduced_exactly(role: str, count: int) -> None:
    records = _load(role)
    assert len(records) == count
    for k, rec in enumerate(records):
        thought = _last_assistant(rec["history"]) if role == "caller" else None
        got = fill(role, "toolbench", tools=rec["tools"],
                   history_text=serialise_history(rec["history"]), thought=thought)
        assert got == rec["input"], f"{role} record {k} differs"


def test_backbone_inputs_and_stale_give_ups() -> None:
    records = _load("backbone")
    assert len(records) == 79
    stale = []
    for k, rec in enumerate(records):
        got = fill("backbone", "toolbench", tools=rec["tools"],
                   history_text=serialise_backbone_history(rec["history"]))
        if rec["target"].endswith(GIVE_UP_TARGET_END):
            # Official bug: give-up records reuse the previous record's input.
            stale.append(k)
            assert k > 0 and rec["input"] == records[k - 1]["input"]
            assert got != rec["input"]
        else:
            assert got == rec["input"], f"backbone record {k} differs"
    assert stale == [6, 31, 36, 41, 60, 74]


# --- self-contained ---------------------------------------------------------------

TOOLS = [
    {"Name": "a_for_t", "function": "Desc \"q\" é", "input": {"x": "string, "}},
    {"Name": "b_for_t", "function": "{history} {doc}", "input": {}},
]
HISTORY = [
    {"from": "user", "value": "hi"},
    {"from": "assistant", "value": "think\n Next: caller."},
    {"from": "caller", "value": "Action: a_for_t\nAction Input: {}"},
    {"from": "observation", "value": " \"ok\""},
    {"from": "assistant", "value": " Next: caller."},
    {"from": "caller", "value": "Action: b_for_t\nAction Input: {}"},
    {"from": "observation", "value": "{}"},
    {"from": "assistant", "value": "done \n\n Next: conclusion."},
    {"from": "conclusion", "value": "answer"},
]


def test_serialise_history_handmade() -> None:
    assert serialise_history(HISTORY) == (
        "user: hi</s>assistant: think\n Next: caller.</s>"
        "caller: Action: a_for_t\nAction Input: {}</s>observation:  \"ok\""
        "assistant:  Next: caller.</s>caller: Action: b_for_t\nAction Input: {}</s>"
        "observation: {}assistant: done \n\n Next: conclusion.</s>conclusion: answer</s>"
    )
    with pytest.raises(ValueError, match="unknown history speaker 'system'"):
        serialise_history([{"from": "system", "value": "x"}])


def test_serialise_backbone_history_handmade() -> None:
    assert serialise_backbone_history(HISTORY) == (
        "user: hi</s>assistant: think\nAction: a_for_t\nAction Input: {}</s>"
        "observation:  \"ok\"assistant: \nAction: b_for_t\nAction Input: {}</s>"
        "observation: {}assistant: done\nconclusion: answer</s>"
    )
    give_up = [{"from": "assistant", "value": "stuck\n Next: give up."}]
    assert serialise_backbone_history(give_up) == "assistant: stuck\nconclusion: give up.</s>"


def test_render_doc_and_names() -> None:
    assert render_doc(TOOLS).splitlines()[0] == (
        '{"Name": "a_for_t", "function": "Desc \\"q\\" \\u00e9", "input": {"x": "string, "}}'
    )
    assert render_doc(TOOLS).endswith("}\n") and render_doc([]) == ""
    assert render_tool_names(TOOLS) == "a_for_t, b_for_t"


def test_fill_keeps_braces_and_suffixes() -> None:
    out = fill("caller", "toolbench", tools=TOOLS, history_text="H{x}", thought="T{y}")
    assert '"{history} {doc}"' in out and "H{x}\nThe thought of this step is:\nT{y}\n" in out
    assert out.endswith("should be exactly in [a_for_t, b_for_t],\nAction Input: the api call request. caller: ")
    summ = fill("summarizer", "toolbench", tools=TOOLS, history_text="h</s>")
    assert summ == "Make a conclusion based on the conversation history:\nh</s> conclusion: "
    assert fill("backbone", "toolbench", tools=[], history_text="").endswith("question.\n assistant: ")
    with pytest.raises(ValueError, match="thought"):
        fill("caller", "toolbench", tools=TOOLS, history_text="")
    with pytest.raises(ValueError, match="thought"):
        fill("planner", "toolbench", tools=TOOLS, history_text="", thought="x")


def test_template_errors_and_toolalpaca() -> None:
    with pytest.raises(ValueError, match="valid: toolbench, toolalpaca"):
        template("gorilla", "planner")
    with pytest.raises(ValueError, match="valid: backbone, planner, caller, summarizer"):
        template("toolbench", "judge")
    assert template("toolbench", "planner") is prompts.TOOLBENCH_PLANNER
    assert prompts.TOOLALPACA_PLANNER.endswith("followed by Next: caller or conclusion.")
    assert "give up" not in prompts.TOOLALPACA_BACKBONE
    assert "give up" in prompts.TOOLBENCH_BACKBONE
    assert prompts.TOOLALPACA_BACKBONE.endswith("the final answer of the question.\n")
    assert prompts.TOOLALPACA_CALLER == prompts.TOOLBENCH_CALLER
    assert prompts.TOOLALPACA_SUMMARIZER == prompts.TOOLBENCH_SUMMARIZER
