"""ToolAlpaca: the clean path on hand-written fixtures (tests/fixtures/toolalpaca/, the training
format of ../shared/FORMATS.md §6), each messy case on small inline variants of them, the
decisions and counts on the real runs in ../shared/data/toolalpaca/instances/, the evaluation
sets, and `build`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.corpus.layout import MANIFEST, REJECTS, TRAJECTORIES
from umi_data.core import (
    CallerTurn,
    ConclusionTurn,
    ObservationTurn,
    PlannerTurn,
    Reject,
    RejectReason,
    Trajectory,
    UserTurn,
    make_instruction_id,
)
from umi_data.sources import get_source, read_source
from umi_data.sources.base import InputFile, RecordContext, Source, convert_guarded, convert_record
from umi_data.sources.toolalpaca import extract_arguments, observation_error, step_thought
from umi_data.sources.toolalpaca_eval import EvalFileError, load_eval_cases
from umi_data.sources.toolalpaca_tools import parameters_schema, property_schema

FIXTURE = Path(__file__).parent / "fixtures" / "toolalpaca" / "train.json"
REPO = Path(__file__).resolve().parents[1]
RETRY_ADVICE = (
    " You should choose one of: (1) change the input and retry; (2) return the 'Final Answer' and explain what "
    "happened; (You must choose this one when the error occurs more than 3 times.) (3) call another function."
)


def read_file(path: Path, name: str | None = None) -> list[Trajectory | Reject]:
    return list(read_source(get_source("toolalpaca"), [InputFile(path, name or path.name)]))


def fixture_entries() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text("utf-8"))


def read_entries(entries: list[dict[str, Any]], tmp_path: Path) -> list[Trajectory | Reject]:
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return read_file(path)


def read_instance(instance: Any, tmp_path: Path) -> Trajectory | Reject:
    """The one item that a variant of the fixture's first API with one instance yields."""
    entry = fixture_entries()[0]
    entry["Instances"] = [instance]
    [item] = read_entries([entry], tmp_path)
    return item


def clean_instance() -> dict[str, Any]:
    return copy.deepcopy(fixture_entries()[0]["Instances"][0])


# --- the clean path -------------------------------------------------------------------------


def test_fixture_yields_one_trajectory_per_instance() -> None:
    items = read_file(FIXTURE)
    assert all(isinstance(item, Trajectory) for item in items)
    assert [item.meta["locator"] for item in items] == ["$[0].Instances[0]", "$[0].Instances[1]", "$[0].Instances[2]", "$[1].Instances[0]"]
    assert len({item.id for item in items}) == 4
    assert all(item.source == "toolalpaca" and item.outcome == "answer" and item.meta["repairs"] == [] for item in items)


def test_clean_training_format_exact_turns() -> None:
    trajectory = read_file(FIXTURE)[0]
    assert trajectory.instruction == "What's the weather like in Lyon right now, and will it rain tomorrow?"
    assert trajectory.instruction_id == make_instruction_id(trajectory.instruction)
    assert trajectory.turns == [
        UserTurn(content="What's the weather like in Lyon right now, and will it rain tomorrow?"),
        PlannerTurn(thought="I need the current weather in Lyon first.", next="caller"),
        CallerTurn(name="getCurrentWeather", arguments={"city": "Lyon"}, raw_arguments='{"city": "Lyon"}'),
        ObservationTurn(response='Status Code: 200. Response: {"temperature": 18, "condition": "cloudy"}'),
        PlannerTurn(thought="Now I need tomorrow's forecast for Lyon.", next="caller"),
        CallerTurn(name="getForecast", arguments={"city": "Lyon", "days": 2}, raw_arguments='{"city": "Lyon", "days": 2}'),
        ObservationTurn(
            response='Status Code: 200. Response: [{"date": "2023-05-01", "high": 19, "low": 12, "condition": "cloudy"}, '
            '{"date": "2023-05-02", "high": 16, "low": 11, "condition": "light rain"}]'
        ),
        PlannerTurn(thought="I have the current weather and tomorrow's forecast for Lyon.", next="conclusion"),
        ConclusionTurn(answer="It is 18°C and cloudy in Lyon right now, and light rain is expected tomorrow (high 16°C, low 11°C)."),
    ]
    assert {k: trajectory.meta[k] for k in ("file", "api", "category", "instance")} == {
        "file": "train.json", "api": "CityWeather", "category": "Weather", "instance": 0,
    }


def test_assistant_prefix_error_observation_and_retry() -> None:
    trajectory = read_file(FIXTURE)[1]
    planners = [t for t in trajectory.turns if t.role == "planner"]
    assert [p.thought for p in planners] == [
        "The user wants a 3-day forecast for Oslo.",
        "The number of days must be an integer, so I retry with 3.",
        "The retry worked and I have the 3-day forecast for Oslo.",
    ]
    first, second = [t for t in trajectory.turns if t.role == "observation"]
    assert first.error == "status code 400" and first.response.endswith(RETRY_ADVICE)  # the text the model saw
    assert second.error == ""
    retry = [t for t in trajectory.turns if t.role == "caller"][1]
    assert retry.raw_arguments == '{"city": "Oslo", "days": 3}\n' and retry.arguments == {"city": "Oslo", "days": 3}


def test_missing_final_thought_hint_and_get_details() -> None:
    trajectory = read_file(FIXTURE)[2]
    assert trajectory.turns[0] == UserTurn(content="I need the weather for my trip.")
    assert trajectory.instruction == "I need the weather for my trip."
    assert trajectory.meta["hint"] == "the user is travelling to Nice"
    details = trajectory.turns[2]
    assert details.name == "getDetails" and not details.hallucinated  # offered to training instances
    assert trajectory.turns[-2] == PlannerTurn(thought="", next="conclusion")


def test_authentication_stays_in_the_user_turn_not_the_instruction() -> None:
    trajectory = read_file(FIXTURE)[3]
    assert trajectory.turns[0].content.endswith("\nAuthentication information: api_key=***")
    assert trajectory.instruction == "Give me an inspiring quote for my team meeting."
    assert trajectory.tool_names == ["retrievalDataFromFile", "getQuote"]  # external_tools, no getDetails


def test_tools_from_function_description() -> None:
    trajectory = read_file(FIXTURE)[0]
    assert trajectory.tool_names == ["getDetails", "getCurrentWeather", "getForecast"]
    forecast = trajectory.tools[2]
    assert forecast.description == "Get the daily forecast of a city"
    assert forecast.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name."},
            "days": {"type": "integer", "description": "Number of days, from 1 to 7."},
            "fields": {"type": "array", "items": {"type": "string"}, "description": "The fields to return."},
        },
        "required": ["city"],
    }
    assert trajectory.tools[0].parameters["required"] == ["Question"]
    docs = trajectory.meta["tool_docs"]
    assert list(docs) == trajectory.tool_names
    entry = fixture_entries()[0]["Function_Description"]
    assert docs["getCurrentWeather"] == entry["getCurrentWeather"]
    assert docs["getForecast"] == entry["getForecast"] + "\n" + entry["components"]  # appended to the last function


@pytest.mark.parametrize(
    "text,schema,required",
    [
        ("Required. string. Two-letter code.", {"type": "string", "description": "Two-letter code."}, True),
        ("number. Number of cats to skip.", {"type": "number", "description": "Number of cats to skip."}, False),
        ("Object.  Filters to apply.", {"type": "object", "description": "Filters to apply."}, False),
        ("integer.", {"type": "integer", "description": ""}, False),
        ("Required. String. The path.", {"type": "string", "description": "The path."}, True),
        (
            "Array[Object{id: string. The id., name: string. The name.}. ]. Permission objects.",
            {"type": "array", "items": {"type": "object"}, "description": "Permission objects."},
            False,
        ),
        ("Number of cats", {"description": "Number of cats"}, False),  # a description, not the type `number`
        ("The question to ask.", {"description": "The question to ask."}, False),
    ],
)
def test_parameter_strings(text: str, schema: dict, required: bool) -> None:
    assert property_schema(text) == (schema, required)


def test_parameters_already_a_json_schema_are_kept() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    assert parameters_schema(schema) == schema
    assert parameters_schema({"q": {"type": "string"}}) == {"type": "object", "properties": {"q": {"type": "string"}}, "required": []}


def test_ids_are_per_instance(tmp_path: Path) -> None:
    before = read_file(FIXTURE, "train.json")
    entries = fixture_entries()
    entries[0]["Instances"][1]["output"] = "changed"
    path = tmp_path / "train.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    after = read_file(path, "train.json")
    assert [b.id == a.id for b, a in zip(before, after)] == [True, False, True, True]


# --- messy cases, one by one ------------------------------------------------------------------


def with_final(final_thought: str | None, output: str) -> dict[str, Any]:
    instance = clean_instance()
    if final_thought is None:
        instance.pop("Final Thought")
    else:
        instance["Final Thought"] = final_thought
    instance["output"] = output
    return instance


def with_step(index: int, action: str | None = None, action_input: str | None = None, log: str | None = None, observation: Any = None) -> dict[str, Any]:
    instance = clean_instance()
    (old_action, old_input, old_log), old_observation = instance["intermediate_steps"][index]
    instance["intermediate_steps"][index] = [
        [action or old_action, old_input if action_input is None else action_input, log or old_log],
        old_observation if observation is None else observation,
    ]
    return instance


INVENTED_CALL = '\nASSISTANT Action: getForecast\nASSISTANT Action Input: {"city": "Paris"}\nASSISTANT Observation: sunny'


@pytest.mark.parametrize(
    "instance,reason,detail",
    [
        ("This instance is not used.", RejectReason.INVALID_DATA, "the instance is a string, not a run: 'This instance is not used.'"),
        ({"error": "Could not parse LLM output: ` I am`"}, RejectReason.RUN_ERROR, "the run failed: 'Could not parse LLM output: ` I am`'"),
        (with_final("", "Could not parse LLM output: `It is sunny.`"), RejectReason.RUN_ERROR, "the run ended in a parse failure"),
        ({**clean_instance(), "intermediate_steps": []}, RejectReason.NO_TOOL_CALL, "intermediate_steps is empty"),
        (
            with_step(1, log=" Done.\n\nUSER: And in Paris?\nASSISTANT Thought: Paris.\nASSISTANT Action: getForecast\nASSISTANT Action Input: {}"),
            RejectReason.INVENTED_DIALOGUE,
            "$[0].Instances[0].intermediate_steps[1][0][2] (the thought before the action) contains an invented 'USER:' turn",
        ),
        (
            with_step(0, action_input='{}\nASSISTANT Observation: {"temperature": 30}'),
            RejectReason.INVENTED_DIALOGUE,
            "$[0].Instances[0].intermediate_steps[0][0][1] (the action input) contains an invented 'ASSISTANT Observation:' turn",
        ),
        (
            with_step(0, log=" I check.\nObservation: it is sunny\nAction: getCurrentWeather\nAction Input: {}"),
            RejectReason.INVENTED_DIALOGUE,
            "contains an invented 'Observation:' turn",  # the training format's words, at a line start
        ),
        (
            with_final("I have Lyon." + INVENTED_CALL, "It is sunny in Paris."),
            RejectReason.INVENTED_DIALOGUE,
            "$[0].Instances[0].Final Thought contains an invented 'ASSISTANT Action:' turn",
        ),
        (
            with_final("I have Lyon.\nUSER: And Paris?\nASSISTANT Thought: Paris is sunny.", "Paris is sunny."),
            RejectReason.INVENTED_DIALOGUE,
            "$[0].Instances[0].Final Thought contains an invented 'USER:' turn",
        ),
        (
            with_final("I have Lyon.", "USER: thanks!"),
            RejectReason.INVENTED_DIALOGUE,
            "$[0].Instances[0].output starts with an invented 'USER:' turn",
        ),
        (
            {key: value for key, value in clean_instance().items() if key != "output"},
            RejectReason.WRONG_SHAPE,
            "'output' is a required property",
        ),
        (with_step(0, observation=7), RejectReason.WRONG_TYPE, "$[0].Instances[0].intermediate_steps[0][1]: expected string or object, got integer"),
    ],
    ids=[
        "string", "error", "parse-failure", "empty-steps", "user-in-thought", "observation-in-input",
        "training-format-marker", "call-in-final-thought", "user-in-final-thought", "output-starts-invented",
        "missing-output", "observation-wrong-type",
    ],
)
def test_messy_instance_is_rejected(instance: Any, reason: RejectReason, detail: str, tmp_path: Path) -> None:
    reject = read_instance(instance, tmp_path)
    assert isinstance(reject, Reject)
    assert (reject.reason, reject.locator) == (reason, "$[0].Instances[0]")
    assert detail in reject.detail


def test_output_with_invented_continuation_is_cut(tmp_path: Path) -> None:
    tail = "USER: Thanks! And Paris?\nASSISTANT Thought: Let me check Paris."
    trajectory = read_instance(with_final("I have Lyon.", "It is 18°C in Lyon.\n\n" + tail), tmp_path)
    assert trajectory.turns[-1] == ConclusionTurn(answer="It is 18°C in Lyon.")
    assert trajectory.turns[-2] == PlannerTurn(thought="I have Lyon.", next="conclusion")
    assert trajectory.meta["repairs"] == ["output_cut"] and trajectory.meta["removed"] == {"output": tail}


def test_first_response_in_final_thought_is_the_answer(tmp_path: Path) -> None:
    final_thought = "I have Lyon.\nASSISTANT Response: It is 18°C in Lyon.\n\nUSER: And Paris?\nASSISTANT Thought: Paris is sunny."
    trajectory = read_instance(with_final(final_thought, "Paris is sunny."), tmp_path)
    assert trajectory.turns[-2:] == [PlannerTurn(thought="I have Lyon.", next="conclusion"), ConclusionTurn(answer="It is 18°C in Lyon.")]
    assert trajectory.meta["repairs"] == ["answer_from_final_thought"]
    assert trajectory.meta["removed"] == {"final_thought": "USER: And Paris?\nASSISTANT Thought: Paris is sunny.", "output": "Paris is sunny."}


def test_non_json_action_inputs(tmp_path: Path) -> None:
    trajectory = read_instance(with_step(0, action_input='{"city": "Lyon"}\n...'), tmp_path)
    call = trajectory.turns[2]
    assert (call.raw_arguments, call.arguments) == ('{"city": "Lyon"}\n...', {"city": "Lyon"})
    assert trajectory.meta["repairs"] == ["arguments_extracted"]
    unparsable = read_instance(with_step(0, action_input='{city: "Lyon"}'), tmp_path).turns[2]
    assert (unparsable.raw_arguments, unparsable.arguments) == ('{city: "Lyon"}', None)


def test_unknown_action_is_kept_and_hallucinated(tmp_path: Path) -> None:
    name = 'getCurrentWeather({"city": "Lyon"})'
    refusal = f"`{name}` is not a valid action. The action must be one of ['getDetails', 'getCurrentWeather', 'getForecast']."
    trajectory = read_instance(with_step(0, action=name, observation=refusal), tmp_path)
    call, observation = trajectory.turns[2], trajectory.turns[3]
    assert (call.name, call.hallucinated) == (name, True)
    assert (observation.response, observation.error) == (refusal, "not a valid action")


def test_object_observation_is_json_text(tmp_path: Path) -> None:
    trajectory = read_instance(with_step(0, observation={"retrieved_info": "sunny"}), tmp_path)
    assert trajectory.turns[3] == ObservationTurn(response='{"retrieved_info": "sunny"}')


@pytest.mark.parametrize(
    "text,error",
    [
        ("Status Code: 200. Response: {}", ""),
        ("Status Code: 204. Response: ", ""),
        ("Status Code: 500. Response: Internal Server Error." + RETRY_ADVICE, "status code 500"),
        ("Invalid JSON format. Please ensure 'Action Input' is a valid JSON object.", "invalid JSON action input"),
        ("'Action Input' cannot be a list. Only call one function per action.", "action input is a list"),
        ("File does not exist.", ""),  # the retrieval tool's own answer, not an executor failure
    ],
)
def test_observation_error_labels(text: str, error: str) -> None:
    assert observation_error(text) == error


def test_thought_split_and_argument_extraction() -> None:
    assert step_thought(' Check it.\nAction: f\nAction Input: {"a": 1}') == "Check it."
    assert step_thought("Check it.\n\nASSISTANT Action: f\nASSISTANT Action Input: {}") == "Check it."
    assert step_thought("no call at all") == "no call at all"
    assert extract_arguments('{"a": 1}\n...') == {"a": 1}
    assert extract_arguments('Input: {"a": {"b": [1]}} ok') == {"a": {"b": [1]}}
    assert extract_arguments('[{"a": 1}]') is None  # a list: ToolAlpaca's executor refuses it too
    assert extract_arguments("{a: 1}") is None and extract_arguments("} {") is None and extract_arguments("none") is None


def test_bad_api_part_rejects_every_instance(tmp_path: Path) -> None:
    entries = fixture_entries()
    entries[0]["Function_Description"]["getForecast"] = 'Forecast\nParameters: {"city": \nOutput: x'
    entries[1]["Name"] = 3
    items = read_entries(entries, tmp_path)
    assert [(i.locator, i.reason) for i in items] == [
        ("$[0].Instances[0]", RejectReason.WRONG_TYPE),
        ("$[0].Instances[1]", RejectReason.WRONG_TYPE),
        ("$[0].Instances[2]", RejectReason.WRONG_TYPE),
        ("$[1].Instances[0]", RejectReason.WRONG_TYPE),
    ]
    assert items[0].detail.startswith("$[0].Function_Description.getForecast: the JSON after 'Parameters:' is not valid")
    assert items[3].detail == "$[1].Name: expected string, got integer"


@pytest.mark.parametrize("instances", [None, []])
def test_entry_without_instances_is_one_reject(instances: list | None, tmp_path: Path) -> None:
    entry = fixture_entries()[0]
    if instances is None:
        entry.pop("Instances")
    else:
        entry["Instances"] = instances
    [reject] = read_entries([entry], tmp_path)
    assert (reject.reason, reject.locator) == (RejectReason.WRONG_SHAPE, "$[0]")


def test_one_bad_instance_rejects_only_itself(tmp_path: Path) -> None:
    entry = fixture_entries()[0]
    entry["Instances"].insert(1, {"input": 3, "output": "x", "intermediate_steps": []})
    items = read_entries([entry], tmp_path)
    assert [type(i).__name__ for i in items] == ["Trajectory", "Reject", "Trajectory", "Trajectory"]
    assert items[1].detail == "$[0].Instances[1].input: expected string, got integer"


def test_convert_record_flattens_items_and_guards_each() -> None:
    """base: a record may yield several items; one whose trajectory fails validation becomes a
    reject at its own locator and the other items of the record go on."""

    def convert_item(value: int, ctx: RecordContext) -> Trajectory:
        turns = [UserTurn(content="q")] if value else []
        return Trajectory(id=f"t{value}", source="toolalpaca", instruction="q", instruction_id="i", turns=turns, outcome="unfinished")

    def convert(record: dict, ctx: RecordContext) -> Iterator[Trajectory | Reject]:
        for index, value in enumerate(record["Instances"]):
            yield convert_guarded(convert_item, value, ctx.item(f".Instances[{index}]", str(value)))

    source = Source(name="t", schema="toolalpaca.schema.json", records_per_file="list", convert=convert)
    items = list(convert_record(source, {"Instances": [1, 0, 2]}, RecordContext(InputFile(Path("x.json"), "x.json"), "$[0]", "")))
    assert [type(i).__name__ for i in items] == ["Trajectory", "Reject", "Trajectory"]
    assert (items[1].locator, items[1].reason) == ("$[0].Instances[1]", RejectReason.WRONG_TYPE)
    assert items[1].detail.startswith("converted record is invalid at turns")


# --- the real runs --------------------------------------------------------------------------

REAL_COUNTS = {
    # file: (read, accepted, rejects by reason, repairs by code)
    "chatgpt-3.5-turbo_real.json": (
        114, 8,
        {"invalid_data": 26, "no_tool_call": 59, "run_error": 14, "invented_dialogue": 7},
        {"output_cut": 4, "answer_from_final_thought": 3},
    ),
    "llama2-7b-real.json": (
        114, 60,
        {"run_error": 45, "no_tool_call": 3, "invented_dialogue": 6},
        {"output_cut": 49, "answer_from_final_thought": 3, "arguments_extracted": 32},
    ),
    "toolalpaca-7b-sim.json": (100, 89, {"run_error": 10, "invented_dialogue": 1}, {"output_cut": 2}),
}


@pytest.fixture(scope="module")
def real_runs(shared_data: Path) -> dict[str, list[Trajectory | Reject]]:
    folder = shared_data / "toolalpaca" / "instances"
    return {name: read_file(folder / name) for name in REAL_COUNTS}


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_runs_counts(real_runs: dict, shared_data: Path, name: str) -> None:
    read, accepted, rejects, repairs = REAL_COUNTS[name]
    items = real_runs[name]
    raw = json.loads((shared_data / "toolalpaca" / "instances" / name).read_text("utf-8"))
    assert len(items) == read == sum(len(entry["Instances"]) for entry in raw)
    trajectories = [i for i in items if isinstance(i, Trajectory)]
    assert len(trajectories) == accepted and all(t.outcome == "answer" for t in trajectories)
    assert Counter(i.reason.value for i in items if isinstance(i, Reject)) == rejects
    assert Counter(code for t in trajectories for code in t.meta["repairs"]) == repairs


def test_real_runs_decisions_follow_the_raw_instances(real_runs: dict, shared_data: Path) -> None:
    """Every string instance is `invalid_data`, every {"error"} one `run_error`, every parse-failure
    output `run_error`, every other empty run `no_tool_call`."""
    for name, items in real_runs.items():
        raw = json.loads((shared_data / "toolalpaca" / "instances" / name).read_text("utf-8"))
        located = {(i.locator if isinstance(i, Reject) else i.meta["locator"]): i for i in items}
        for e, entry in enumerate(raw):
            for j, instance in enumerate(entry["Instances"]):
                item = located[f"$[{e}].Instances[{j}]"]
                if isinstance(instance, str):
                    expected = RejectReason.INVALID_DATA
                elif "error" in instance or instance["output"].startswith("Could not parse LLM output:"):
                    expected = RejectReason.RUN_ERROR
                elif not instance["intermediate_steps"]:
                    expected = RejectReason.NO_TOOL_CALL
                else:
                    continue
                assert isinstance(item, Reject) and item.reason == expected, (name, item)


def test_real_runs_repairs_and_rejects(real_runs: dict) -> None:
    def at(name: str, locator: str) -> Trajectory | Reject:
        return next(i for i in real_runs[name] if (i.locator if isinstance(i, Reject) else i.meta["locator"]) == locator)

    chatgpt, llama = "chatgpt-3.5-turbo_real.json", "llama2-7b-real.json"
    jokes = at(chatgpt, "$[3].Instances[4]")
    assert jokes.meta["repairs"] == ["answer_from_final_thought"]
    assert jokes.turns[-1].answer.startswith("Here are some Chuck Norris sports-themed jokes") and "USER:" not in jokes.turns[-1].answer
    assert jokes.meta["removed"]["output"].startswith("Here is a Chuck Norris martial arts-themed joke")
    charts = at(chatgpt, "$[2].Instances[1]")
    assert charts.meta["repairs"] == ["output_cut"] and charts.turns[-1].answer.endswith("- Approaches: [Not available]")
    assert at(chatgpt, "$[2].Instances[4]").detail.endswith("(the action input) contains an invented 'ASSISTANT Observation:' turn")
    assert at(llama, "$[0].Instances[0]").detail.startswith("$[0].Instances[0].intermediate_steps[1][0][2] (the thought before the action)")
    assert at("toolalpaca-7b-sim.json", "$[8].Instances[0]").reason == RejectReason.INVENTED_DIALOGUE
    words = at(llama, "$[6].Instances[1]")
    call = [t for t in words.turns if t.role == "caller"][1]
    assert (call.raw_arguments, call.arguments) == ('{"word": "serendipity"}\n...', {"word": "serendipity"})
    hallucinated = sorted(t.name for i in real_runs[llama] if isinstance(i, Trajectory) for t in i.turns if t.role == "caller" and t.hallucinated)
    assert hallucinated == [
        'api_v2_entries_en_word_get({"word": "serendipity"})', 'getFruitsByGenus({"genus": "Rosaceae"})',
        'retrievalDataFromFile({"file_path": "fruits_by_genus.json"})', 'retrievalDataFromFile({"file_path": "word_definitions.json"})',
        'retrieveFruitsByGenus({"genus": "Rosaceae"})',
    ]


def test_real_runs_tools(real_runs: dict) -> None:
    """Real-API runs were offered retrieval and no getDetails (their "not a valid action" messages
    list the tools); every accepted answer is free of invented turns."""
    for name, items in real_runs.items():
        for trajectory in (i for i in items if isinstance(i, Trajectory)):
            assert ("retrievalDataFromFile" in trajectory.tool_names) == ("real" in name)
            assert ("getDetails" in trajectory.tool_names) == name.endswith("-sim.json")
            assert "USER:" not in trajectory.turns[-1].answer and "ASSISTANT" not in trajectory.turns[-1].answer


# --- evaluation sets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,cases,apis,gold,unparsed,optional",
    [
        ("eval_simulated.json", 100, 10, 154, 32, 1),
        ("eval_real.json", 114, 11, 143, 4, 0),
        ("eval_mix.json", 214, 21, 297, 9, 1),
    ],
)
def test_eval_cases_load(shared_data: Path, name: str, cases: int, apis: int, gold: int, unparsed: int, optional: int) -> None:
    loaded = load_eval_cases(shared_data / "toolalpaca" / name)
    assert len(loaded) == cases and len({c.api for c in loaded}) == apis
    actions = [a for c in loaded for a in c.gold_actions]
    assert len(actions) == gold
    assert sum(a.arguments is None for a in actions) == unparsed
    assert sum(a.optional for a in actions) == optional
    assert all(c.instruction_id == make_instruction_id(c.instruction) for c in loaded)


def test_eval_case_content(shared_data: Path) -> None:
    cases = load_eval_cases(shared_data / "toolalpaca" / "eval_real.json")
    first = cases[0]
    assert (first.api, first.index, first.instruction) == ("Nager.Date", 0, "Can you check if today is a public holiday in China?")
    assert [(a.action, a.action_input, a.arguments) for a in first.gold_actions] == [
        ("PublicHolidayIsTodayPublicHoliday", '{"countryCode": "CN"}', {"countryCode": "CN"})
    ]
    assert first.tools[0].name == "retrievalDataFromFile" and "PublicHolidayIsTodayPublicHoliday" in [t.name for t in first.tools]
    authenticated = [c for c in cases if c.authentication]
    assert len(authenticated) == 34
    assert authenticated[0].user_message().startswith(authenticated[0].instruction + "\nAuthentication information: ")
    simulated = load_eval_cases(shared_data / "toolalpaca" / "eval_simulated.json")
    gold_names = {a.name for c in simulated for a in c.gold_actions}
    assert "getDetails" in gold_names and all(a.name in [t.name for t in c.tools] for c in simulated for a in c.gold_actions)


def test_eval_case_from_fixture_and_frozen(tmp_path: Path) -> None:
    entries = fixture_entries()
    for entry in entries:
        entry.pop("Instances")
        entry["Golden_Answers"] = [[{"Action": "[Optional]getQuote", "Action_Input": "{\"category\": ${from user}}"}]] * len(entry["Instructions"])
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    cases = load_eval_cases(path)
    assert [(c.api, c.index) for c in cases] == [("CityWeather", 0), ("CityWeather", 1), ("CityWeather", 2), ("DailyQuotes", 0)]
    action = cases[0].gold_actions[0]
    assert (action.name, action.optional, action.arguments) == ("getQuote", True, None)
    assert cases[3].user_message() == "Give me an inspiring quote for my team meeting.\nAuthentication information: api_key=***"
    with pytest.raises(ValidationError):
        cases[0].instruction = "changed"


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda entries: "not json", "invalid_json"),
        (lambda entries: {"Name": "x"}, "expected a JSON array of ToolAlpaca API entries"),
        (lambda entries: [{k: v for k, v in entries[0].items() if k != "Golden_Answers"}], "$[0]: 'Golden_Answers' is a required property"),
        (lambda entries: [{**entries[0], "Golden_Answers": entries[0]["Golden_Answers"][:1]}], "$[0]: 3 Instructions but 1 Golden_Answers"),
        (lambda entries: [{**entries[0], "Golden_Answers": [[{"Action": "f"}]] * 3}], "$[0].Golden_Answers[0][0]: 'Action_Input' is a required property"),
    ],
)
def test_bad_eval_file_names_the_file(mutate, message: str, tmp_path: Path) -> None:
    entries = fixture_entries()
    for entry in entries:
        entry.pop("Instances")
        entry["Golden_Answers"] = [[{"Action": "getQuote", "Action_Input": "{}"}]] * len(entry["Instructions"])
    value = mutate(entries)
    path = tmp_path / "bad_eval.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    with pytest.raises(EvalFileError) as raised:
        load_eval_cases(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_missing_eval_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(EvalFileError, match="missing.json: unreadable_file"):
        load_eval_cases(tmp_path / "missing.json")


# --- build ------------------------------------------------------------------------------------


def _check_corpus(out: Path, read: int, accepted: int, rejected: dict[str, int]) -> None:
    manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    counts = manifest["counts"]
    assert (counts["read"], counts["accepted"], counts["rejected"]) == (read, accepted, read - accepted)
    assert counts["rejected_by_reason"] == rejected
    assert counts["outcomes"]["answer"] == accepted
    assert pq.read_table(out / TRAJECTORIES).num_rows == accepted
    rejects = [json.loads(line) for line in (out / REJECTS).read_text("utf-8").splitlines()]
    assert len(rejects) == read - accepted and Counter(r["reason"] for r in rejects) == Counter(rejected)


def test_cli_build_fixture(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    result = subprocess.run(
        [sys.executable, "-m", "umi_data", "build", "toolalpaca", str(FIXTURE), "--out", str(out), "--no-progress"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "read 4, accepted 4" in result.stdout
    _check_corpus(out, 4, 4, {})
    rows = pq.read_table(out / TRAJECTORIES).to_pylist()
    assert [row["source"] for row in rows] == ["toolalpaca"] * 4


def test_build_real_runs(shared_data: Path, tmp_path: Path) -> None:
    config = BuildConfig(source="toolalpaca", inputs=[str(shared_data / "toolalpaca" / "instances")])
    result = build_corpus(config, tmp_path / "corpus", progress=False)
    _check_corpus(
        tmp_path / "corpus", 328, 157,
        {"invalid_data": 26, "invented_dialogue": 14, "no_tool_call": 62, "run_error": 69},
    )
    assert result.manifest["counts"]["hallucinated_calls"] == 5


def test_validate_fixture_and_real_runs(shared_data: Path, tmp_path: Path) -> None:
    """No schema problem in the real runs; what validate reports is exactly what build rejects."""
    from umi_data.building.build import BuildConfig, build_corpus
    from umi_data.schema_docs import reject_counts, validate_files

    inputs = [str(FIXTURE), str(shared_data / "toolalpaca" / "instances")]
    count, problems = validate_files("toolalpaca", inputs)
    built = build_corpus(BuildConfig(source="toolalpaca", inputs=inputs), tmp_path / "c", progress=False)
    assert count == 4
    assert reject_counts(problems) == built.manifest["counts"]["rejected_by_reason"]
    assert len(problems) == built.manifest["counts"]["rejected"]  # no schema problem besides them
