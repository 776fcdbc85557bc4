"""ToolBench tasks in the agent loop (umi_agent.toolbench, toolbench_run): functions built as
ToolBench builds them, its environment (Finish, lookup, codes, the observation cut), the HTTP
backend against a real loopback server, replays of real answer files, and the answer files umi
writes read back by umi's builder."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.toolbench_replay import final_answer, load, scripted_roles, task_from_answer
from umi_agent.backends import ScriptedModel
from umi_agent.dfsdt import DfsdtConfig, Played, play_cot, play_dfsdt
from umi_agent.loop import SingleAgent
from umi_agent.toolbench import (
    ToolBenchRegistry, build_task, finish_status, observation_code, observation_text, read_queries,
)
from umi_agent.toolbench_http import HttpBackend, ToolServerError
from umi_data.sources import discover_files, get_source, read_source
from umi_data.core import Trajectory
from umi_data.sources.toolbench_names import standardize

WEATHER = {"category_name": "Weather", "tool_name": "Open Weather", "api_name": "Current Weather",
           "api_description": "Current Weather of a city", "method": "GET",
           "required_parameters": [{"name": "city", "type": "STRING", "description": "a city", "default": "Paris"}],
           "optional_parameters": [{"name": "id", "type": "NUMBER", "description": "station", "default": ""},
                                   {"name": "Units", "type": "ENUM", "description": "metric or imperial", "default": None}]}
QUERY = {"query_id": 7, "query": "What is the weather in Paris?", "api_list": [WEATHER]}


def echo_backend(request: dict[str, Any]) -> dict[str, Any]:
    return {"error": "", "response": f"{request['tool_name']}/{request['api_name']} {request['tool_input']}"}


# --- functions ---------------------------------------------------------------------------------


def test_functions_are_built_as_toolbench_builds_them() -> None:
    task = build_task(QUERY, 0)
    weather, finish = task.functions
    assert weather["name"] == "current_weather_for_open_weather"
    assert weather["description"] == ('This is the subfunction for tool "open_weather", you can use this tool.The description of '
                                      'this function is: "current_weather_for_open_weather of a city"')
    assert weather["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "a city", "example_value": "Paris"},
                       "is_id": {"type": "integer", "description": "station"},
                       "units": {"type": "string", "description": "metric or imperial", "example_value": None}},
        "required": ["city"], "optional": ["is_id", "units"]}
    assert finish["name"] == "Finish" and finish["parameters"]["required"] == ["return_type"]
    assert task.apis[0] == ("current_weather_for_open_weather", "Weather", "open_weather", "current_weather")
    assert task.system_prompt.endswith("You have access of the following tools:\n1.open_weather: None\n")
    # ToolBench reads optional parameters only inside its `required` branch (quirk kept)
    no_required = build_task({**QUERY, "api_list": [{**WEATHER, "required_parameters": []}]}, 0)
    assert no_required.functions[0]["parameters"]["properties"] == {}


def test_unplayable_queries_are_counted_with_a_reason(tmp_path: Path) -> None:
    bare = {"query_id": 1, "query": "q", "api_list": [{"category_name": "Social", "tool_name": "Olato Quotes", "api_name": "Love Quote"}]}
    path = tmp_path / "queries.json"
    path.write_text(json.dumps([QUERY, bare, {"query_id": 2, "query": "open domain"}, "junk", QUERY, {**QUERY, "query_id": "../x"},
                                {**QUERY, "query_id": "a_b"}, {**QUERY, "query_id": None}]))
    tasks, rejects = read_queries(path)
    assert [t.query_id for t in tasks] == ["7"]
    assert [(r.query_id, r.reason) for r in rejects] == [
        ("1", "no_documentation"), ("2", "no_api_list"), ("3", "wrong_shape"), ("7", "duplicate_query_id"),
        ("../x", "bad_query_id"), ("a_b", "bad_query_id"), ("None", "bad_query_id")]


def test_tools_dir_gives_toolbench_names_and_descriptions(tmp_path: Path) -> None:
    tool = {"tool_name": "Open Weather", "tool_description": "Weather\nfor everyone", "api_list": [
        {"name": "Current Weather", "description": "now", "required_parameters": [], "optional_parameters": []}]}
    (tmp_path / "Weather").mkdir()
    (tmp_path / "Weather" / "open_weather.json").write_text(json.dumps(tool))
    bare = {"query_id": 1, "query": "q", "api_list": [{"category_name": "Weather", "tool_name": "Open Weather", "api_name": "current weather"}]}
    path = tmp_path / "q.json"
    path.write_text(json.dumps([bare]))
    (task,), _ = read_queries(path, tmp_path)
    # the tool document found by the standardised tool name, the api by its standardised name,
    # the tool description (newlines removed) in the system prompt
    assert task.functions[0]["name"] == "current_weather_for_open_weather"
    assert task.functions[0]["description"].endswith('The description of this function is: "now"')
    assert task.system_prompt.endswith("1.open_weather: Weatherfor everyone\n")
    missing = tmp_path / "m.json"
    missing.write_text(json.dumps([{**bare, "api_list": [{**bare["api_list"][0], "api_name": "Forecast"}]}]))
    assert [r.reason for r in read_queries(missing, tmp_path)[1]] == ["api_not_found"]


# --- the environment ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "code"), [
    ('{"return_type": "give_answer", "final_answer": "42"}', 3),
    ('{"return_type": "give_up_and_restart"}', 4),
    ('{"return_type": "give_answer"}', 2),
    ('{"final_answer": "x"}', 2),
    ('{"return_type": "maybe"}', 2),
    ('{"return_type": "give_answer", "final_answer": "cut', 3),  # the substring scan of unparsable arguments
    ("not json", 2),
])
def test_finish_codes(raw: str, code: int) -> None:
    assert finish_status(raw)[1] == code


def test_registry_plays_toolbench_environment() -> None:
    requests: list[dict] = []
    registry = ToolBenchRegistry(build_task(QUERY, 0), lambda r: requests.append(r) or echo_backend(r), observation_chars=60)
    # a call goes to the first function whose name ends with the called name
    turn = registry.execute("weather_for_open_weather", '{"city": "Rome"}')
    assert requests[-1] == {"category": "Weather", "tool_name": "open_weather", "api_name": "current_weather",
                            "tool_input": '{"city": "Rome"}', "strip": "truncate", "toolbench_key": ""}
    text = json.dumps(echo_backend(requests[-1]))
    assert observation_text(turn) == text[:60] + "..." and turn.truncated
    unknown = registry.execute("nope", "{}")
    assert observation_text(unknown) == '{"error": "No such function name: nope", "response": ""}' and observation_code(unknown) == 1
    assert observation_code(registry.execute("current_weather_for_open_weather", "{}")) == 0
    assert "Finish" in registry and [s.name for s in registry.specs] == ["current_weather_for_open_weather"]


def test_a_caller_finish_ends_the_episode_as_the_answer_files_record_it() -> None:
    task = build_task(QUERY, 0)
    raw = '{"return_type": "give_answer", "final_answer": "Sunny."}'
    agent = SingleAgent(ScriptedModel([f"Done.\nAction: Finish\nAction Input: {raw}"]))
    played = play_cot(agent, task, ToolBenchRegistry(task, echo_backend), "7")
    turns = played.episode.trajectory.turns
    assert [t.role for t in turns] == ["user", "planner", "conclusion"] and turns[1].next == "conclusion"
    assert turns[2].answer == "Sunny." and turns[2].raw_arguments == raw
    assert played.answer["answer_generation"]["final_answer"] == raw and played.answer["win"] is True


# --- HTTP backend against a real server --------------------------------------------------------


class _Virtual(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set = set()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        _Virtual.connections.add(self.client_address)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, payload = (500, b"oops") if body["api_name"] == "broken" else (200, json.dumps(echo_backend(body)).encode())
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def virtual_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Virtual)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/virtual"
    server.shutdown()
    server.server_close()


def test_http_backend_keeps_one_connection_and_maps_failures(virtual_server: str) -> None:
    _Virtual.connections.clear()
    backend = HttpBackend(virtual_server, timeout=5)
    request = {"category": "Weather", "tool_name": "open_weather", "api_name": "current_weather", "tool_input": "{}",
               "strip": "truncate", "toolbench_key": ""}
    assert backend(request) == echo_backend(request) and backend(request) == echo_backend(request)
    assert len(_Virtual.connections) == 1  # keep-alive: both requests on one connection
    assert backend({**request, "api_name": "broken"}) == {"error": "request invalid, data error. status_code=500", "response": ""}
    dead = HttpBackend("http://127.0.0.1:9/virtual", timeout=2)
    with pytest.raises(ToolServerError, match="unreachable"):
        dead(request)


# --- real data -----------------------------------------------------------------------------------


def test_functions_from_real_queries_equal_the_recorded_answer_files(shared_data: Path) -> None:
    """StableToolBench's data_example answers were played on G1_instruction queries 588, 608 and
    1073: the functions umi builds from the query file equal the recorded `function` lists."""
    tasks, rejects = read_queries(shared_data / "stabletoolbench/solvable_queries/test_instruction/G1_instruction.json")
    assert rejects == [] and len(tasks) == 163
    by_id = {task.query_id: task for task in tasks}
    files = sorted((shared_data / "stabletoolbench/data_example/answer").glob("*/*/*.json"))
    assert len(files) == 6
    for path in files:
        answer = load(path)
        task = by_id[path.name.split("_")[0]]
        assert task.functions == answer["answer_generation"]["function"], path.name
        assert task.query == answer["answer_generation"]["query"]


def test_every_real_query_file_builds(shared_data: Path) -> None:
    files = sorted((shared_data / "stabletoolbench/solvable_queries/test_instruction").glob("*.json"))
    files += sorted((shared_data / "toolbench/instruction").glob("G*_query.json"))
    counts = {}
    for path in files:
        tasks, rejects = read_queries(path)
        assert rejects == [], path
        for task in tasks:
            names = [f["name"] for f in task.functions]
            assert len(names[-1]) and names[-1] == "Finish" and all(len(n) <= 64 for n in names)
        counts[path.stem] = len(tasks)
    assert sum(v for k, v in counts.items() if not k.endswith("_query")) == 765


def _replayable(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "toolbench/answer").glob("*/*.json"))
    files += sorted((shared_data / "stabletoolbench/data_example/answer").glob("*/*/*.json"))
    return [path for path in files if load(path)["answer_generation"]["valid_data"]]


def _replay(path: Path, answer: dict[str, Any], index: int, caches: Path) -> Played:
    """The file's chosen chain replayed by scripted α-UMi roles, with the file's own search:
    CoT, or DFSDT with a budget of exactly the chain's decisions; tool calls answered in process by
    umi's cache of this file's recorded responses (one cache per file: two runs of one query may
    have recorded different responses)."""
    from umi_agent.virtual import VirtualAPI
    from umi_data.toolcache.build import build_tool_cache

    chain = answer["answer_generation"]["train_messages"][-1]
    task = task_from_answer(answer, str(index))
    build_tool_cache([path], caches / str(index))
    backend = VirtualAPI(caches / str(index))
    agent, registry = scripted_roles(chain), ToolBenchRegistry(task, backend)
    if "DFS" in path.name:
        decisions = sum(m["role"] == "assistant" for m in chain)
        return play_dfsdt(agent, task, registry, str(index), DfsdtConfig(max_queries=decisions))
    return play_cot(agent, task, registry, str(index))


def _path_summary(chain: list[dict[str, Any]]) -> list[tuple]:
    return [(n["node_type"], n["description"].strip(), n.get("observation_code"),
             n.get("observation") if not n.get("observation", "").endswith("...") else None) for n in chain]


def test_replaying_recorded_actions_reaches_the_recorded_answer(shared_data: Path, tmp_path: Path) -> None:
    """Each valid answer file's chosen chain (15 ToolBench DFS files and StableToolBench's
    data_example), replayed by scripted α-UMi roles through umi's cache of the recorded responses
    (`VirtualAPI`), reaches the recorded final answer or give-up, along the recorded path (node types,
    thoughts, calls, observations, codes); the answer files umi writes for the replays are read
    back by umi's builder with zero rejects, turn for turn equal to the episodes."""
    paths = _replayable(shared_data)
    assert len(paths) == 18
    episodes: dict[str, Trajectory] = {}
    for index, path in enumerate(paths):
        answer = load(path)
        played = _replay(path, answer, index, tmp_path / "caches")
        ours, theirs = played.answer["answer_generation"], answer["answer_generation"]
        assert list(played.answer) == list(answer) and set(ours) == set(theirs), path  # CoT: trys; DFS: tree
        assert final_answer(played.answer) == final_answer(answer), path
        assert ours["final_answer"] == theirs["final_answer"] and ours.get("finish_type") == theirs.get("finish_type"), path
        recorded_path = answer["compare_candidates"][0] if answer["compare_candidates"] else None
        if recorded_path is not None and "tree" in answer:
            assert _path_summary(played.answer["compare_candidates"][0]) == _path_summary(recorded_path), path
        recorded = [m["content"] for m in theirs["train_messages"][-1] if m["role"] == "function"]
        mine = [m["content"] for m in ours["train_messages"][-1] if m["role"] == "function"]
        assert len(mine) == len(recorded) and all(a == b or b.endswith("...") for a, b in zip(mine, recorded)), path
        out = tmp_path / "written" / "G1_answer" / f"{index}_{played.method}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(played.answer))
        episodes[str(index)] = played.episode.trajectory
    read = list(read_source(get_source("toolbench"), discover_files([tmp_path / "written"]), {}))
    assert [r for r in read if not isinstance(r, Trajectory)] == []
    assert len(read) == 18 and sum(t.outcome == "give_up" for t in read) == 4
    for trajectory in read:
        assert trajectory.turns == episodes[trajectory.meta["query_id"]].turns


# --- StableToolBench's own converter (a checkout the user points to; not shipped) ---------------------


def test_stabletoolbench_converter_reads_umi_answer_files(tmp_path: Path) -> None:
    """With UMI_STABLETOOLBENCH=<a StableToolBench checkout>, its `convert_to_answer_format.py`
    converts the CoT and DFSDT answer files umi writes (valid and invalid, with umi's top-level
    `umi` and `tool_cache` keys, which it ignores) without an error."""
    import os
    import subprocess
    import sys

    from tests.test_dfsdt import call, play, single_model
    from umi_agent.toolbench_run import with_provenance

    checkout = os.environ.get("UMI_STABLETOOLBENCH")
    if not checkout:
        pytest.skip("set UMI_STABLETOOLBENCH to a StableToolBench checkout to run its converter on umi's answer files")
    task = build_task(QUERY, 0)
    runs = {"dfs": {"1": play(single_model([])), "2": play(lambda p: "No.\nconclusion: give up."),
                    "3": play(lambda p: call("current"), DfsdtConfig(max_queries=5))},
            "cot": {q: play_cot(SingleAgent(ScriptedModel(script), max_steps=2), task, ToolBenchRegistry(task, echo_backend), q)
                    for q, script in {"1": ["ok\nconclusion: sunny"], "2": ["no\nconclusion: give up."], "3": [call("current")] * 2}.items()}}
    for kind, played in runs.items():
        (tmp_path / kind).mkdir()
        for query_id, one in played.items():
            written = with_provenance(one, f"G1_instruction/{query_id}", kind, {"hits": 1, "misses": 0})  # umi's own top-level keys
            (tmp_path / kind / f"{query_id}_{one.method}.json").write_text(json.dumps(written))
        method = next(iter(played.values())).method
        done = subprocess.run([sys.executable, "convert_to_answer_format.py", "--answer_dir", str(tmp_path / kind), "--method", method,
                               "--output", str(tmp_path / f"{kind}.json")], cwd=Path(checkout) / "toolbench" / "tooleval",
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        converted = json.loads((tmp_path / f"{kind}.json").read_text())
        assert sorted(converted) == ["1", "2", "3"]
        for query_id, one in played.items():
            assert converted[query_id]["answer"]["final_answer"] == one.answer["answer_generation"]["final_answer"]


def test_with_tool_documents_the_system_prompt_equals_the_recorded_one(shared_data: Path, tmp_path: Path) -> None:
    """Through `--tools-dir` (a toolenv written here from the queries' api_list and the tool
    descriptions the recorded system prompts show), the functions and the whole system message
    equal the data_example answer files'."""
    queries = json.loads((shared_data / "stabletoolbench/solvable_queries/test_instruction/G1_instruction.json").read_text())
    answers = {path.name.split("_")[0]: load(path) for path in (shared_data / "stabletoolbench/data_example/answer").glob("*dfs/*/*.json")}
    chosen = [q for q in queries if str(q["query_id"]) in answers]
    for query in chosen:
        system = answers[str(query["query_id"])]["answer_generation"]["train_messages"][-1][0]["content"]
        described = {}
        for line in system.split("You have access of the following tools:\n")[1].splitlines():  # "1.<tool>: <description>"
            head, _, description = line.partition(": ")
            described[head.split(".", 1)[1]] = description
        for api in query["api_list"]:
            path = tmp_path / "tools" / api["category_name"] / f"{standardize(api['tool_name'])}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            document = json.loads(path.read_text()) if path.exists() else {
                "tool_name": api["tool_name"], "tool_description": described[standardize(api["tool_name"])], "api_list": []}
            document["api_list"].append({"name": api["api_name"], "description": api["api_description"],
                                         "required_parameters": api["required_parameters"], "optional_parameters": api["optional_parameters"]})
            path.write_text(json.dumps(document))
    (tmp_path / "q.json").write_text(json.dumps(chosen))
    tasks, rejects = read_queries(tmp_path / "q.json", tmp_path / "tools")
    assert rejects == [] and len(tasks) == 3
    for task in tasks:
        recorded = answers[task.query_id]["answer_generation"]
        assert task.functions == recorded["function"]
        assert [task.system_prompt, task.user_prompt] == [m["content"] for m in recorded["train_messages"][-1][:2]]
