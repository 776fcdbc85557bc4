"""ToolAlpaca's evaluation sets (`eval_simulated.json`, `eval_real.json`, `eval_mix.json`) as
typed test cases for the agent's evaluation: one `EvalCase` per instruction, with the API's
tools (as the `toolalpaca` source builds them) and the gold action sequence.

Gold `Action_Input`s are kept as written; `arguments` is their JSON object, or None where they
are not JSON: the gold answers use placeholders for values that depend on an earlier call
(`{"animeId": ${animeId from searchAnime}}`, 32 of 154 in eval_simulated.json). A gold action
may be marked optional (`"[Optional]updateUserProfile"`): `GoldAction.name` and `.optional`
split the mark off, `action` keeps it.

A file that cannot be used raises `EvalFileError` naming the file and the JSON path: an
evaluation set is a fixed input, so a bad one is a usage error, not data to count and skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from umi_data.core import ToolSpec, make_instruction_id
from umi_data.sources.base import MAX_ERRORS_IN_DETAIL, InputFile, load_json, schema_errors
from umi_data.sources.toolalpaca import SCHEMA
from umi_data.sources.toolalpaca_tools import ToolDocError, api_tools
from umi_data.sources.toolbench import parse_json_object

OPTIONAL_MARK = "[Optional]"
AUTHENTICATION_PREFIX = "\nAuthentication information: "


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldAction(_Frozen):
    """One expected call: the action and its input as the gold answer wrote them."""

    action: str
    action_input: str
    arguments: dict[str, Any] | None = None

    @property
    def optional(self) -> bool:
        return self.action.startswith(OPTIONAL_MARK)

    @property
    def name(self) -> str:
        return self.action.removeprefix(OPTIONAL_MARK)


class EvalCase(_Frozen):
    """One instruction of an evaluation set with its tools and gold action sequence."""

    file: str = Field(description="the evaluation file's name")
    api: str = Field(description="the API entry's Name")
    category: str | None = None
    index: int = Field(ge=0, description="position in the entry's Instructions (and Golden_Answers)")
    instruction: str
    instruction_id: str
    tools: list[ToolSpec]
    gold_actions: list[GoldAction]
    authentication: dict[str, str] = Field(default_factory=dict)

    def user_message(self) -> str:
        """The instruction as ToolAlpaca's run generator sends it: with
        `"\\nAuthentication information: key=value ..."` appended for APIs that need a key."""
        if not self.authentication:
            return self.instruction
        pairs = " ".join(f"{key}={value}" for key, value in self.authentication.items())
        return self.instruction + AUTHENTICATION_PREFIX + pairs


class EvalFileError(ValueError):
    """An evaluation file that cannot be loaded; the message names the file and what is wrong."""


def load_eval_cases(path: str | Path) -> list[EvalCase]:
    """Every instruction of a ToolAlpaca evaluation file as an `EvalCase`, in file order."""
    path = Path(path)
    entries = _load_entries(path)
    cases = []
    for entry_index, entry in enumerate(entries):
        try:
            tools, _ = api_tools(entry, f"$[{entry_index}]")
        except ToolDocError as exc:
            raise EvalFileError(f"{path}: {exc}") from None
        cases.extend(_entry_cases(path.name, entry, tools))
    return cases


def _load_entries(path: Path) -> list[dict[str, Any]]:
    loaded = load_json(InputFile(path, path.name))
    if loaded.reject is not None:
        raise EvalFileError(f"{path}: {loaded.reject.reason.value}: {loaded.reject.detail}")
    if not isinstance(loaded.value, list):
        raise EvalFileError(f"{path}: expected a JSON array of ToolAlpaca API entries")
    errors = [e for i, entry in enumerate(loaded.value) for e in schema_errors(entry, SCHEMA, "eval_record", f"$[{i}]")]
    if errors:
        shown = "; ".join(f"{e.path}: {e.message}" for e in errors[:MAX_ERRORS_IN_DETAIL])
        raise EvalFileError(f"{path}: not a ToolAlpaca evaluation file: {shown}")
    for i, entry in enumerate(loaded.value):
        instructions, gold = len(entry["Instructions"]), len(entry["Golden_Answers"])
        if instructions != gold:
            raise EvalFileError(f"{path}: $[{i}]: {instructions} Instructions but {gold} Golden_Answers")
    return loaded.value


def _entry_cases(file: str, entry: dict[str, Any], tools: list[ToolSpec]) -> list[EvalCase]:
    return [
        EvalCase(
            file=file,
            api=entry["Name"],
            category=entry.get("Category"),
            index=index,
            instruction=instruction,
            instruction_id=make_instruction_id(instruction),
            tools=tools,
            gold_actions=[_gold_action(action) for action in gold],
            authentication=entry.get("Authentication") or {},
        )
        for index, (instruction, gold) in enumerate(zip(entry["Instructions"], entry["Golden_Answers"]))
    ]


def _gold_action(action: dict[str, str]) -> GoldAction:
    raw = action["Action_Input"]
    return GoldAction(action=action["Action"], action_input=raw, arguments=parse_json_object(raw))
