"""Teacher-forced static evaluation samples, as in the α-UMi paper's Table 1 (FORMATS.md §5).

A static test file is in the stage-2 shape (`[{tools, instruction, conversations}]`). Every
assistant turn that ends in a `Next:` decision is one sample; assistant turns without one are
history, not decisions (the official test set has 111 of them). A sample carries the *gold*
history (the conversation before the decision), so errors never compound across steps.

Which plan the caller and summarizer see. The history is gold, but within the step the system
runs as a pipeline, as the official inference does: the planner's *predicted* plan decides which
role runs next and is the `{thought}` the caller (or the summarizer's last history turn) sees.
`Sample.caller_input(plan)` / `summarizer_input(plan)` take that plan as an argument; pass
`sample.plan` to evaluate a caller or summarizer alone on gold plans. By default the plan turn
is serialised as `assistant: {plan}</s>`, as in the training inputs; `compat=True` writes
`planner: {plan}</s>`, which is what the official inference pipeline shows (a train/inference
mismatch of the official code, kept only for parity runs).

The predictions file (`write_predictions`) is a JSON array with one object per sample, in the
official predictions shape plus umi's own keys:

    {"id": "out_of_domain/12/3",          # umi: "{test file stem}/{item}/{step}"
     "item": 12, "step": 3, "turn": 7,    # umi: item index, decision index within the item,
                                          #      index of the assistant turn in `conversations`
     "decision": "caller",                # umi: gold decision (caller | conclusion | give up)
     "instruction": "...", "tools": [...short-form tools...], "tool_names": ["..."],
     "reference": "assistant: {plan}</s>caller: Action: ...\\nAction Input: {...}</s>",
     "predictions": "asssitant: {plan}</s>caller: Action: ...",   # sic, as the official files
     ...any extra keys the writer adds (raw role outputs, latencies)}

The official file also stores each sample's `history`; umi leaves it out (it is the test file's
`conversations[:turn]`): 6 MB instead of 10 MB for out_of_domain.json. The evaluator reads only
`reference`, `predictions` and `tools` (or `tool_names`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from umi_agent.jsonio import InputFileError, json_type, read_json_list, scrub_text, write_json
from umi_data.rendering.prompts import END, NEXT_SUFFIXES, fill, serialise_history, split_plan

Decision = Literal["caller", "conclusion", "give up"]
DECISIONS: tuple[str, ...] = ("caller", "conclusion", "give up")

#: The official predictions string opens with this misspelling; the evaluator does not read it,
#: but files meant for the official scripts should carry it.
PREDICTION_SPEAKER = "asssitant: "
#: What the official pipeline writes for an empty (or "." / ",") model output.
EMPTY_OUTPUT = "none"
#: Decision markers in the priority the official pipeline checks them, each cut after its end.
_MARKERS: tuple[tuple[str, Decision], ...] = (
    ("Next: give up.", "give up"),
    ("Next: conclusion.", "conclusion"),
    ("Next: caller.", "caller"),
)
_CALL = re.compile(r"Action: (.*?)\nAction Input: (.*)", re.S)
#: The turn that must follow each decision in a stage-2 conversation.
_FOLLOWER = {"caller": "caller", "conclusion": "conclusion"}


class StaticDataError(InputFileError):
    """A test file (or item) that is not a valid stage-2 static test set."""


@dataclass(frozen=True, eq=False)
class StaticSample:
    """One gold planner decision with everything needed to prompt the three roles and score them."""

    id: str
    item: int
    step: int
    turn: int
    instruction: str
    tools: list[dict[str, Any]]
    history: list[dict[str, str]]
    plan: str
    decision: Decision
    #: The caller turn's value ("Action: ...\nAction Input: ...") or the conclusion answer; None for give up.
    gold: str | None

    @property
    def tool_names(self) -> list[str]:
        return [str(tool["Name"]) for tool in self.tools]

    @property
    def gold_action(self) -> str | None:
        match = _CALL.fullmatch(self.gold or "") if self.decision == "caller" else None
        return match.group(1) if match else None

    @property
    def gold_arguments(self) -> str | None:
        match = _CALL.fullmatch(self.gold or "") if self.decision == "caller" else None
        return match.group(2) if match else None

    @property
    def reference(self) -> str:
        """The official reference: `assistant: {plan}</s>{caller|conclusion}: {value}</s>`, or
        the bare plan for a give-up."""
        if self.decision == "give up":
            return self.plan
        return f"assistant: {self.plan}{END}{self.decision}: {self.gold}{END}"

    def gold_prediction(self) -> str:
        """The gold step written as a prediction (what a perfect system would output)."""
        if self.decision == "give up":
            return self.plan
        return f"{PREDICTION_SPEAKER}{self.plan}{END}{self.decision}: {self.gold}"

    def planner_input(self, family: str = "toolbench") -> str:
        """The planner prompt on the gold history, as the planner was trained."""
        return fill("planner", family, tools=self.tools, history_text=serialise_history(self.history))

    def caller_input(self, plan: str, family: str = "toolbench", *, compat: bool = False) -> str:
        """The caller prompt after `plan` (the planner's cut output, or `self.plan` for gold)."""
        return fill("caller", family, tools=self.tools, history_text=self._history_with(plan, compat), thought=plan)

    def summarizer_input(self, plan: str, family: str = "toolbench", *, compat: bool = False) -> str:
        """The summarizer prompt after `plan`."""
        return fill("summarizer", family, tools=self.tools, history_text=self._history_with(plan, compat))

    def _history_with(self, plan: str, compat: bool) -> str:
        if compat:
            return serialise_history(self.history) + f"planner: {plan}{END}"
        return serialise_history([*self.history, {"from": "assistant", "value": plan}])


# --- building samples ---------------------------------------------------------------------------


#: where `umi-data build --compat alpha-umi` writes a corpus's trajectories in the stage-2 shape
ALPHA_UMI_TEST = Path("alpha_umi") / "raw_data_stage_2.json"
#: how to make a static test set, said by every error about one
MAKE_TEST_SET = ("a static test set from synthetic tasks is one command: `umi-data build toolbench TASKS_DIR/answer --compat alpha-umi "
                 "--out CORPUS` (TASKS_DIR from `umi-data synth`), then --test CORPUS")


def test_file(path: Path) -> Path:
    """The stage-2 file of `path`: the file itself, or a corpus directory's `alpha_umi/raw_data_stage_2.json`."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / ALPHA_UMI_TEST).is_file():
        return path / ALPHA_UMI_TEST
    raise InputFileError(f"{path}: a directory without {ALPHA_UMI_TEST}; expected a stage-2 static test set; {MAKE_TEST_SET}")


def load_samples(path: Path) -> list[StaticSample]:
    """Every gold decision of a stage-2 test file (or of a corpus built with `--compat alpha-umi`);
    ids are prefixed with the file's stem."""
    path = test_file(path)
    try:
        items = read_json_list(path, "a stage-2 static test set")
    except InputFileError as exc:
        raise InputFileError(f"{exc}; {MAKE_TEST_SET}") from None
    try:
        return samples_from_items(items, source=Path(path).stem)
    except StaticDataError as exc:
        raise StaticDataError(f"{path}: {exc}") from None


def samples_from_items(items: Sequence[Any], source: str = "test") -> list[StaticSample]:
    """One sample per gold decision, in file order. Raises `StaticDataError` naming the first bad
    item or turn: a decision must be followed by its caller or conclusion turn."""
    samples: list[StaticSample] = []
    for item_index, item in enumerate(items):
        tools, instruction, conversations = _check_item(item, item_index)
        step = 0
        for turn_index, turn in enumerate(conversations):
            if turn["from"] != "assistant":
                continue
            _, decision = split_plan(turn["value"])
            if decision is None:
                continue
            gold = _gold_output(conversations, turn_index, decision, item_index)
            samples.append(StaticSample(
                id=f"{source}/{item_index}/{step}", item=item_index, step=step, turn=turn_index,
                instruction=instruction, tools=tools, history=list(conversations[:turn_index]),
                plan=turn["value"], decision=decision, gold=gold,  # type: ignore[arg-type]
            ))
            step += 1
    return samples


def _check_item(item: Any, index: int) -> tuple[list[dict[str, Any]], str, list[dict[str, str]]]:
    where = f"[{index}]"
    if not isinstance(item, Mapping):
        raise StaticDataError(f"{where}: expected an object with tools and conversations, got {json_type(item)}")
    tools, conversations = item.get("tools"), item.get("conversations")
    if not isinstance(tools, list) or not all(isinstance(t, Mapping) and isinstance(t.get("Name"), str) for t in tools):
        raise StaticDataError(f"{where}.tools: expected an array of short-form tools with a string 'Name'")
    if not isinstance(conversations, list):
        raise StaticDataError(f"{where}.conversations: expected an array, got {json_type(conversations)}")
    for turn_index, turn in enumerate(conversations):
        if not (isinstance(turn, Mapping) and isinstance(turn.get("from"), str) and isinstance(turn.get("value"), str)):
            raise StaticDataError(f"{where}.conversations[{turn_index}]: expected {{\"from\": str, \"value\": str}}")
    instruction = item.get("instruction", "")
    return list(tools), instruction if isinstance(instruction, str) else "", list(conversations)


def _gold_output(conversations: list[dict[str, str]], index: int, decision: str, item: int) -> str | None:
    if decision == "give up":
        return None
    expected = _FOLLOWER[decision]
    following = conversations[index + 1] if index + 1 < len(conversations) else None
    if following is None or following["from"] != expected:
        found = following["from"] if following else "the end of the conversation"
        raise StaticDataError(
            f"[{item}].conversations[{index}]: the assistant decides {decision!r} but is followed by {found}, not {expected}"
        )
    return following["value"]


# --- predictions --------------------------------------------------------------------------------


def clean_output(text: str) -> str:
    """Normalise one role's raw output as the official pipeline does: drop a leading `": "`
    (left by the prompt's speaker tag) and write `none` for an empty, "." or "," output."""
    if text.startswith(": "):
        text = text[2:]
    return EMPTY_OUTPUT if text.strip() in ("", ".", ",") else text


def cut_plan(planner_output: str) -> tuple[str, Decision]:
    """The plan (cut right after its decision marker) and the decision.

    Markers are looked for in the official priority (give up, conclusion, caller), each at its
    first occurrence. Without a marker the step is a call and umi appends the training suffix
    `" Next: caller."` (the official pipeline appends `"Next: caller."` without the space, a text
    the caller never saw in training)."""
    text = clean_output(planner_output)
    for marker, decision in _MARKERS:
        at = text.find(marker)
        if at >= 0:
            return text[: at + len(marker)], decision
    return text + NEXT_SUFFIXES["caller"], "caller"


def format_prediction(planner_output: str, caller_output: str | None = None, summarizer_output: str | None = None) -> str:
    """The official predictions string for one step from the per-role outputs.

    `asssitant: {plan}</s>caller: {out}` or `...</s>conclusion: {out}` (sic), or the bare plan
    for a give-up. The role the plan chose must have an output; the others are ignored."""
    plan, decision = cut_plan(planner_output)
    if decision == "give up":
        return plan
    output = caller_output if decision == "caller" else summarizer_output
    if output is None:
        role = "caller" if decision == "caller" else "summarizer"
        raise ValueError(f"the plan decides {decision!r}, so the {role}'s output is required")
    return f"{PREDICTION_SPEAKER}{plan}{END}{decision}: {clean_output(output)}"


RoleModel = Callable[[str], str]
#: A role model over many prompts at once (outputs in prompt order): how batched backends are driven.
RoleBatch = Callable[[Sequence[str]], list[str]]


def predict_sample(
    sample: StaticSample,
    planner: RoleModel,
    caller: RoleModel,
    summarizer: RoleModel,
    family: str = "toolbench",
    *,
    compat: bool = False,
) -> dict[str, Any]:
    """Run one teacher-forced step through three role models (prompt → text) and return its
    predictions record. The caller or summarizer sees the *predicted* plan (module docstring)."""
    def each(model: RoleModel) -> RoleBatch:
        return lambda prompts: [model(prompt) for prompt in prompts]

    return predict_samples([sample], each(planner), each(caller), each(summarizer), family, compat=compat)[0]


def predict_samples(
    samples: Sequence[StaticSample],
    planner: RoleBatch,
    caller: RoleBatch,
    summarizer: RoleBatch,
    family: str = "toolbench",
    *,
    compat: bool = False,
) -> list[dict[str, Any]]:
    """`predict_sample` for many samples with each role asked once for all its prompts: every
    planner prompt, then the caller prompts of the samples whose predicted plan calls, then the
    summarizer prompts of those that conclude. The steps are independent (gold histories), so a
    batching backend shares its forward passes across samples without changing any output."""
    raw_plans = planner([sample.planner_input(family) for sample in samples])
    plans = [cut_plan(raw) for raw in raw_plans]
    outputs: list[dict[str, str]] = [{"planner_output": raw} for raw in raw_plans]
    followers = (("caller", caller, "caller_output", StaticSample.caller_input),
                 ("conclusion", summarizer, "summarizer_output", StaticSample.summarizer_input))
    for decision, model, key, prompt_of in followers:
        chosen = [i for i, (_, predicted) in enumerate(plans) if predicted == decision]
        texts = model([prompt_of(samples[i], plans[i][0], family, compat=compat) for i in chosen])
        for i, text in zip(chosen, texts):
            outputs[i][key] = text
    return [
        prediction_record(sample, format_prediction(out["planner_output"], out.get("caller_output"), out.get("summarizer_output")), **out)
        for sample, out in zip(samples, outputs)
    ]


def prediction_record(sample: StaticSample, predictions: str, **extra: Any) -> dict[str, Any]:
    """One object of the predictions file (shape in the module docstring)."""
    record: dict[str, Any] = {
        "id": sample.id, "item": sample.item, "step": sample.step, "turn": sample.turn,
        "decision": sample.decision, "instruction": sample.instruction,
        "tools": sample.tools, "tool_names": sample.tool_names,
        "reference": sample.reference, "predictions": predictions,
    }
    clash = set(extra) & set(record)
    if clash:
        raise ValueError(f"extra keys {sorted(clash)} would overwrite the predictions record's own keys")
    record.update(extra)
    return record


def oracle_predictions(samples: Sequence[StaticSample]) -> list[dict[str, Any]]:
    """Predictions records whose prediction is the gold step: every metric must score 1.0."""
    return [prediction_record(sample, sample.gold_prediction()) for sample in samples]


def is_predictions_file(value: Any) -> bool:
    """Whether a parsed JSON value is a predictions file (what `--out` may replace)."""
    return isinstance(value, list) and all(isinstance(r, Mapping) and "predictions" in r and "reference" in r for r in value)


def write_predictions(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Write a predictions file atomically (a JSON array, as the official scripts expect); what
    the models wrote is kept as text even when it holds a lone surrogate (`scrub_text`)."""
    write_json(path, scrub_text(list(records)))


__all__ = [
    "DECISIONS", "Decision", "PREDICTION_SPEAKER", "StaticDataError", "StaticSample",
    "load_samples", "samples_from_items", "clean_output", "cut_plan", "format_prediction",
    "RoleBatch", "predict_sample", "predict_samples", "prediction_record", "oracle_predictions", "is_predictions_file", "write_predictions",
]
