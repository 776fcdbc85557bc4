"""The synthetic tool world (umi_data.synth): determinism, ToolBench compatibility, replayable
observations, schema-valid arguments, correct answers, and the tool registry's error handling."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import orjson
import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.corpus.rows import read_trajectories
from umi_data.sources import toolbench
from umi_data.synth import (
    FINISH_FUNCTION,
    WORLD,
    answer_is_correct,
    call_tool,
    function_schemas,
    generate,
    generate_tasks,
    normalise_answer,
    observation_content,
    solve,
    tool_by_name,
)
from umi_data.synth import answer_file, cli

N, SEED = 300, 0


def _write(out: Path, n: int = N, seed: int = SEED) -> cli.SynthStats:
    return cli.write_synthetic(out, n, seed)


def _digests(root: Path) -> dict[str, str]:
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    _write(out)
    return out


@pytest.fixture(scope="module")
def records(synth_dir: Path) -> dict[str, dict]:
    """Answer files by query id."""
    files = sorted((synth_dir / "answer" / "G1_answer").glob("*.json"))
    return {f.name.split("_")[0]: orjson.loads(f.read_bytes()) for f in files}


@pytest.fixture(scope="module")
def task_rows(synth_dir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (synth_dir / "tasks.jsonl").read_bytes().splitlines()]


def _chain(record: dict) -> list[dict]:
    return record["answer_generation"]["train_messages"][-1]


def _calls(record: dict) -> list[tuple[dict, dict]]:
    """(assistant message, function message) pairs of the tool calls, Finish excluded."""
    chain = _chain(record)
    return [(m, chain[i + 1]) for i, m in enumerate(chain) if m["role"] == "assistant" and m["function_call"]["name"] != "Finish"]


def _finish(record: dict) -> dict:
    last = _chain(record)[-1]
    assert last["role"] == "assistant" and last["function_call"]["name"] == "Finish"
    return orjson.loads(last["function_call"]["arguments"])


# --- determinism and the output directory -------------------------------------------------

def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path, synth_dir: Path) -> None:
    _write(tmp_path / "again")
    assert _digests(tmp_path / "again") == _digests(synth_dir)
    _write(tmp_path / "other", seed=SEED + 1)
    other = _digests(tmp_path / "other")
    assert set(other) == set(_digests(synth_dir))  # same file names...
    assert other["tasks.jsonl"] != _digests(synth_dir)["tasks.jsonl"]  # ...other tasks
    differing = sum(other[name] != digest for name, digest in _digests(synth_dir).items())
    assert differing > N * 0.9


def test_rerun_replaces_the_previous_output_without_leftovers(tmp_path: Path) -> None:
    rerun, fresh = tmp_path / "rerun", tmp_path / "fresh"
    _write(rerun, n=40, seed=5)
    _write(rerun, n=12, seed=5)
    names = sorted(p.name for p in (rerun / "answer" / "G1_answer").iterdir())
    assert names == [f"{i:06d}_synthetic.json" for i in range(12)]
    assert sorted(p.name for p in rerun.iterdir()) == [".umi-lock", "answer", "tasks.jsonl"]  # no staging directory left
    _write(fresh, n=12, seed=5)
    assert _digests(fresh) == _digests(rerun)


def test_files_do_not_depend_on_the_process(tmp_path: Path, synth_dir: Path) -> None:
    """Another interpreter with another hash seed writes the same bytes (no set-order or salted-hash leaks)."""
    code = "import sys; from pathlib import Path; from umi_data.synth.world import write_synthetic; write_synthetic(Path(sys.argv[1]), 40, 0)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env)
    expected = {name: digest for name, digest in _digests(synth_dir).items() if name.startswith("answer/")}
    ours = _digests(tmp_path)
    assert {name: ours[name] for name in ours if name.startswith("answer/")} == {n: expected[n] for n in list(expected)[:40]}
    assert (tmp_path / "tasks.jsonl").read_bytes().splitlines() == (synth_dir / "tasks.jsonl").read_bytes().splitlines()[:40]


def test_tasks_are_prefix_stable() -> None:
    """Task i does not depend on n, so a bigger run extends a smaller one."""
    assert list(generate_tasks(20, 7)) == list(generate_tasks(50, 7))[:20]


# --- ToolBench compatibility --------------------------------------------------------------

def test_build_toolbench_accepts_every_file_as_synthetic(synth_dir: Path, tmp_path: Path) -> None:
    result = build_corpus(BuildConfig(source="toolbench", inputs=[str(synth_dir / "answer")]), tmp_path / "corpus", progress=False)
    counts = result.manifest["counts"]
    assert (counts["read"], counts["accepted"], counts["rejected"]) == (N, N, 0)
    assert counts["outcomes"]["answer"] > 0 and counts["outcomes"]["give_up"] > 0 and counts["outcomes"]["unfinished"] == 0
    assert counts["hallucinated_calls"] == 0
    trajectories = list(read_trajectories(str(tmp_path / "corpus" / "trajectories.parquet")))
    assert {t.source for t in trajectories} == {"synthetic"}
    assert all(t.meta["group"] == "G1" and t.meta["method"] == "synthetic" for t in trajectories)
    assert all(t.turns[0].content == t.instruction and not t.turns[0].diversity_prompt for t in trajectories)
    observations = [turn for t in trajectories for turn in t.turns if turn.role == "observation"]
    assert any(o.error for o in observations) and all(o.raw is None for o in observations)  # envelopes rebuilt exactly


def test_names_agree_with_the_toolbench_reader() -> None:
    assert answer_file.SYNTHETIC_METHOD == toolbench.SYNTHETIC_METHOD
    assert answer_file.FINISH == toolbench.FINISH


def test_answer_files_mirror_toolbench_shape(records: dict[str, dict]) -> None:
    for query_id, record in records.items():
        generation = record["answer_generation"]
        chain = _chain(record)
        assert chain[0]["role"] == "system" and chain[1] == {"role": "user", "content": f"\n{generation['query']}\nBegin!\n"}
        histories = generation["train_messages"]
        assistants = [i for i, m in enumerate(chain) if m["role"] == "assistant"]
        assert histories == [chain[: i + 1] for i in assistants], query_id
        assert generation["query_count"] == len(histories)
        assert generation["final_answer"] == chain[-1]["function_call"]["arguments"]
        assert generation["function"][-1] == FINISH_FUNCTION
        assert all(len(f["name"]) <= 64 for f in generation["function"])
        finish = _finish(record)
        assert generation["finish_type"] == ("give_answer" if finish["return_type"] == "give_answer" else "give_up")
        assert record["win"] is (finish["return_type"] == "give_answer")
        assert record["tree"]["size"] == 2 * len(assistants) + 1


# --- the trajectories ---------------------------------------------------------------------

def test_every_observation_replays_against_the_registry(records: dict[str, dict]) -> None:
    replayed = 0
    for record in records.values():
        for call, observation in _calls(record):
            assert observation["role"] == "function" and observation["name"] == call["function_call"]["name"]
            tool = tool_by_name(call["function_call"]["name"])
            result = tool.call(orjson.loads(call["function_call"]["arguments"]))
            assert observation_content(result) == observation["content"]
            replayed += 1
    assert replayed > N


def test_recorded_arguments_validate_against_the_offered_schemas(records: dict[str, dict]) -> None:
    for record in records.values():
        schemas = {f["name"]: f["parameters"] for f in record["answer_generation"]["function"]}
        for message in _chain(record):
            if message["role"] == "assistant":
                call = message["function_call"]
                assert call["name"] in schemas  # every call uses an offered function
                jsonschema.validate(orjson.loads(call["arguments"]), schemas[call["name"]])


def test_outcomes_errors_and_retries(records: dict[str, dict]) -> None:
    outcomes = Counter(_finish(r)["return_type"] for r in records.values())
    assert outcomes["give_answer"] > 0 and outcomes["give_up_and_restart"] > 0
    errors, retries_elsewhere = Counter(), 0
    for record in records.values():
        calls = _calls(record)
        for (call, observation), following in zip(calls, calls[1:] + [None]):
            error = orjson.loads(observation["content"])["error"]
            if error:
                errors[call["function_call"]["name"], error.split(" ")[0]] += 1
                if following is not None:
                    assert following[0]["function_call"]["name"] != call["function_call"]["name"]  # never the same API again
                    retries_elsewhere += 1
    assert retries_elsewhere > 10
    assert {
        ("daily_forecast_for_skycast", "429"),  # rate limits, with working backups
        ("convert_for_fx_rates", "429"),
        ("product_details_for_shopcatalog", "503"),  # an outage, with a backup
        ("daily_forecast_for_skycast", "404"),  # unknown city
        ("weather_by_city_for_weatherhub", "city"),  # "city not found: ..."
        ("convert_for_fx_rates", "400"),  # unsupported currency
        ("next_public_holiday_for_holidayapi", "404"),  # no calendar
    } <= set(errors), errors


def test_give_ups_follow_failed_calls(records: dict[str, dict]) -> None:
    for record in records.values():
        if _finish(record)["return_type"] == "give_up_and_restart":
            last_call, last_observation = _calls(record)[-1]
            assert orjson.loads(last_observation["content"])["error"] or "rates" in last_observation["content"]


def test_calls_per_task_are_one_to_four(records: dict[str, dict]) -> None:
    histogram = Counter(len(_calls(r)) for r in records.values())
    assert set(histogram) <= {1, 2, 3, 4}
    assert histogram[1] and histogram[2] and histogram[3] and histogram[4]


def test_final_answers_are_correct_and_wrong_ones_are_not(records: dict[str, dict], task_rows: list[dict]) -> None:
    checked = 0
    for row in task_rows:
        finish = _finish(records[row["id"]])
        if row["expected_outcome"] == "give_up":
            assert finish["return_type"] == "give_up_and_restart"
            continue
        answer = finish["final_answer"]
        assert answer_is_correct(row, answer), (row["expected_facts"], answer)
        wrong = answer.replace(row["expected_facts"][0], "something else")
        assert not answer_is_correct(row, wrong)
        checked += 1
    assert checked > N / 2


def test_answer_check_normalises_lightly() -> None:
    task = {"expected_facts": ["92.50 EUR", "18°C"], "expected_outcome": "answer"}
    assert answer_is_correct(task, "That is 92.5 eur; expect 18 °C.")
    assert answer_is_correct(task, "It's 18°C and the total is 92.50 EUR.")
    assert not answer_is_correct(task, "That is 92.5 EUR; expect -18°C.")
    assert not answer_is_correct(task, "That is 92.5 EUR; expect 118°C.")
    assert not answer_is_correct(task, "That is 92.55 EUR; expect 18°C.")
    assert not answer_is_correct({"expected_facts": [], "expected_outcome": "give_up"}, "anything")
    assert normalise_answer("$1,099.00 and 3.10") == "$1099 and 3.1"


def test_solver_reaches_the_expected_outcome_of_every_task() -> None:
    for task in generate_tasks(500, 11):
        episode = solve(task)
        assert episode.outcome == task.outcome, task
        assert episode.answer is None or answer_is_correct(task, episode.answer)


def test_tasks_jsonl_matches_the_answer_files(synth_dir: Path, records: dict[str, dict], task_rows: list[dict]) -> None:
    assert [row["id"] for row in task_rows] == sorted(records)
    for row in task_rows:
        record = records[row["id"]]
        generation = record["answer_generation"]
        assert (synth_dir / row["answer_file"]).is_file() and row["answer_file"].endswith(f"/{row['id']}_synthetic.json")
        assert row["instruction"] == generation["query"]
        # byte-equal, not just dict-equal: the order of parameters is what a model is shown
        assert orjson.dumps(row["tools"]) == orjson.dumps(generation["function"][:-1])
        assert row["expected_outcome"] == {"give_answer": "answer", "give_up": "give_up"}[generation["finish_type"]]
        assert bool(row["expected_facts"]) == (row["expected_outcome"] == "answer")


def test_generate_streams_what_the_cli_writes(synth_dir: Path) -> None:
    for item in generate(25, SEED):
        written = (synth_dir / "answer" / "G1_answer" / f"{item.task.id}_synthetic.json").read_bytes()
        assert answer_file.answer_file_bytes(item.record) == written


# --- the tool registry --------------------------------------------------------------------

def test_registry_names_and_schemas() -> None:
    names = [tool.name for tool in WORLD]
    assert 10 <= len(WORLD) <= 20 and len(set(names)) == len(names)
    for tool in WORLD:
        assert re.fullmatch(r"[a-z_]+_for_[a-z_]+", tool.name) and len(tool.name) <= 64 and tool.name.endswith(f"_for_{tool.tool}")
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
        assert tool_by_name(tool.name) is tool
    assert [f["name"] for f in function_schemas()] == names
    assert tool_by_name("nope") is None


@pytest.mark.parametrize(
    "name, arguments, expected",
    [
        ("daily_forecast_for_skycast", {"city": "Paris"}, "missing required argument 'date'"),
        ("daily_forecast_for_skycast", {"city": "Paris", "date": "tomorrow"}, "must match"),
        ("convert_for_fx_rates", {"amount": "100", "from_currency": "USD", "to_currency": "EUR"}, "must be of type number"),
        ("convert_for_fx_rates", {"amount": True, "from_currency": "USD", "to_currency": "EUR"}, "must be of type number"),
        ("search_products_for_shopcatalog", {"query": "laptop", "colour": "red"}, "unknown argument 'colour'"),
        ("search_products_for_shopcatalog", {"query": "laptop", "sort": "cheapest"}, "must be one of"),
        ("timezone_for_worldclock", ["Paris"], "must be a JSON object"),
        ("timezone_for_worldclock", {"city": "Atlantis"}, "unknown city 'Atlantis'"),
        ("convert_units_for_unitconverter", {"value": 3, "from_unit": "furlong", "to_unit": "meter"}, "unknown unit 'furlong'"),
        ("convert_units_for_unitconverter", {"value": 3, "from_unit": "kilogram", "to_unit": "meter"}, "cannot convert mass"),
        ("public_holidays_for_holidayapi", {"country_code": "IN", "year": 2025}, "no holiday calendar"),
        ("invented_for_nothing", {}, "no such function 'invented_for_nothing'"),
    ],
)
def test_bad_calls_are_error_results(name: str, arguments: object, expected: str) -> None:
    result = call_tool(name, arguments)
    assert expected in result.error and result.response == "" and not result.ok


def test_tool_answers_come_from_the_tables() -> None:
    marathon = call_tool("convert_units_for_unitconverter", {"value": 26.2, "from_unit": "mile", "to_unit": "km"})
    assert orjson.loads(marathon.response)["result"] == 42.16
    late_call = call_tool("convert_time_for_worldclock", {"time": "23:30", "from_city": "london", "to_city": "Tokyo"})
    assert orjson.loads(late_call.response)["to"] == {"city": "Tokyo", "time": "08:30", "utc_offset": "+09:00", "day_offset": 1}
    found = orjson.loads(call_tool("city_details_for_geodb", {"city": "sao paulo"}).response)  # accent- and case-insensitive
    assert found["name"] == "São Paulo" and found["currency"] == "BRL"
    primary = {"amount": 100, "from_currency": "USD", "to_currency": "EUR"}
    assert call_tool("convert_for_fx_rates", primary) == call_tool("convert_for_fx_rates", primary)  # deterministic


def test_importing_the_world_loads_no_model_library() -> None:
    code = "import sys, umi_data.synth; sys.exit(any(m in sys.modules for m in ('torch', 'transformers', 'peft')))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cli_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["synth", "--n", "7", "--seed", "2", "--out", str(tmp_path)]) == 0
    assert "7 tasks" in capsys.readouterr().out
    assert len((tmp_path / "tasks.jsonl").read_bytes().splitlines()) == 7
    with pytest.raises(SystemExit):
        cli.main(["synth", "--n", "0", "--out", str(tmp_path)])
