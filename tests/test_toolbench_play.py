"""ToolBench play as one product: the cache umi builds, its server and in-process replay, the
answer files umi writes and the pass rate read from them.

- the 15 ToolBench answer files -> `python -m umi_data tool-cache` -> the real
  `python -m umi_agent.toolserver` on loopback (and the same cache in process): scripted α-UMi
  roles replaying each file's recorded actions reach every recorded final answer, every call a hit;
- every answer file umi writes (CoT and DFSDT; answered, gave up, unfinished) builds with zero
  rejects, while the same file without umi's provenance is ToolBench's `invalid_data`;
- the two commands that play a group and score it, on the tiny model and real G1_instruction
  queries: `umi_agent.run --toolbench-queries --cache --search dfsdt` then `umi_agent.passrate`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_dfsdt import call, play, single_model
from tests.test_toolserver import REPO, Server
from tests.toolbench_replay import final_answer, load, scripted_roles, task_from_answer
from umi_agent.backends import ScriptedModel
from umi_agent.dfsdt import DfsdtConfig, Played, play_cot, play_dfsdt
from umi_agent.loop import SingleAgent
from umi_agent.toolbench import ToolBenchRegistry, build_task
from umi_agent.toolbench_backend import CountingBackend
from umi_agent.toolbench_http import HttpBackend
from umi_agent.toolbench_run import with_provenance
from umi_agent.virtual import VirtualAPI


def tool_cache(corpus: Path, out: Path) -> Path:
    """A cache built by the command a user runs."""
    subprocess.run([sys.executable, "-m", "umi_data", "tool-cache", str(corpus), "--out", str(out)], check=True,
                   capture_output=True, cwd=REPO)
    return out


def replay_all(answer_dir: Path, backend: Any) -> dict[str, CountingBackend]:
    """Each valid answer file's recorded actions, replayed by scripted roles through `backend`
    with the file's own search; asserts the recorded final answer; the counts per file."""
    counted = {}
    for index, path in enumerate(sorted(answer_dir.glob("*/*.json"))):
        answer = load(path)
        if not answer["answer_generation"]["valid_data"]:
            continue
        chain = answer["answer_generation"]["train_messages"][-1]
        counts = counted[f"{path.parent.name}/{path.name}"] = CountingBackend(backend)
        task, agent = task_from_answer(answer, str(index)), scripted_roles(chain)
        registry = ToolBenchRegistry(task, counts)
        decisions = sum(m["role"] == "assistant" for m in chain)
        played = (play_dfsdt(agent, task, registry, str(index), DfsdtConfig(max_queries=decisions)) if "DFS" in path.name
                  else play_cot(agent, task, registry, str(index)))
        assert final_answer(played.answer) == final_answer(answer), path
        assert played.answer["answer_generation"]["final_answer"] == answer["answer_generation"]["final_answer"], path
    return counted


def test_recorded_actions_reach_the_recorded_answers_through_the_server_and_in_process(toolbench_answer: Path, tmp_path: Path) -> None:
    cache = tool_cache(toolbench_answer, tmp_path / "cache")
    server = Server(cache)
    try:
        http = HttpBackend(f"http://127.0.0.1:{server.port}/virtual", timeout=10)
        assert http.is_umi_server()
        over_http = replay_all(toolbench_answer, http)
    finally:
        assert "Traceback" not in server.stop()
    in_process = replay_all(toolbench_answer, VirtualAPI(cache))
    assert len(over_http) == len(in_process) == 13  # the 15 files less the 2 ToolBench marks invalid
    for name, counts in over_http.items():
        assert counts.tool_cache() == in_process[name].tool_cache() and counts.tool_cache()["misses"] == 0, name
        assert counts.tool_cache()["hits"] == counts.requests > 0, name
    assert sum(c.requests for c in over_http.values()) == 37


# --- every answer file umi writes builds ---------------------------------------------------------------


def written_runs() -> dict[str, Played]:
    """CoT and DFSDT runs that answered, gave up, or neither (scripted models)."""
    task = build_task({"query_id": 7, "query": "What is the weather in Paris?", "api_list": [
        {"category_name": "Weather", "tool_name": "Open Weather", "api_name": name, "api_description": "", "method": "GET",
         "required_parameters": [{"name": "city", "type": "STRING", "description": "", "default": ""}], "optional_parameters": []}
        for name in ("Current", "Forecast")]}, 0)
    echo = lambda request: {"error": "", "response": f"{request['api_name']}: sunny"}  # noqa: E731

    def cot(script: list[str]) -> Played:
        return play_cot(SingleAgent(ScriptedModel(script), max_steps=2), task, ToolBenchRegistry(task, echo), "7")

    return {"dfs-answer": play(single_model([])), "dfs-give-up": play(lambda p: "No.\nconclusion: give up.", DfsdtConfig(max_queries=4)),
            "dfs-unfinished": play(lambda p: call("current"), DfsdtConfig(max_queries=5)),
            "cot-answer": cot([call("current"), "ok\nconclusion: sunny"]), "cot-give-up": cot(["no\nconclusion: give up."]),
            "cot-unfinished": cot([call("current")] * 2)}


def build(answer_dir: Path, out: Path) -> dict[str, Any]:
    from umi_data.building.build import BuildConfig, build_corpus

    return build_corpus(BuildConfig(source="toolbench", inputs=[str(answer_dir)]), out, progress=False).manifest["counts"]


def test_every_answer_file_umi_writes_builds_with_zero_rejects(tmp_path: Path) -> None:
    from umi_data.core import Trajectory
    from umi_data.sources import get_source
    from umi_data.sources.base import discover_files, read_source

    runs = written_runs()
    for number, (name, played) in enumerate(runs.items()):
        answer = with_provenance(played, f"G1_instruction/{number}", name.split("-")[0], {"hits": 1, "misses": 0})
        for where, document in (("umi", answer), ("toolbench", {k: v for k, v in answer.items() if k != "umi"})):
            path = tmp_path / where / "G1_answer" / f"{number}_{played.method}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document))
    assert [runs[n].answer["answer_generation"]["valid_data"] for n in runs] == [True, True, False, True, False, False]  # a CoT give-up is invalid, as ToolBench writes it
    counts = build(tmp_path / "umi", tmp_path / "built")
    assert (counts["accepted"], counts["rejected"]) == (6, 0)
    read = list(read_source(get_source("toolbench"), discover_files([tmp_path / "umi"]), {}))
    assert all(isinstance(t, Trajectory) for t in read)
    by_number = {int(t.meta["query_id"]): t for t in read}
    assert [by_number[i].outcome for i in range(6)] == [runs[n].episode.trajectory.outcome for n in runs]
    assert sorted({t.outcome for t in read}) == ["answer", "give_up", "unfinished"]
    assert all(t.turns == runs[n].episode.trajectory.turns for t, n in zip((by_number[i] for i in range(6)), runs))
    assert by_number[2].meta["umi"] == {"version": by_number[2].meta["umi"]["version"], "episode_id": "G1_instruction/2",
                                        "method": "DFS_woFilter_w2", "search": "dfs", "outcome": "unfinished"}
    foreign = build(tmp_path / "toolbench", tmp_path / "built-foreign")  # ToolBench's own invalid files stay rejects
    assert (foreign["accepted"], foreign["rejected"], foreign["rejected_by_reason"]) == (3, 3, {"invalid_data": 3})


# --- the two commands that play a group and score it ----------------------------------------------------


def test_play_a_group_with_the_tiny_model_and_score_it(shared_data: Path, tmp_path: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("openai", reason="the pass-rate judge client needs pip install -e '.[serve]'")
    from passrate_replay import Replay, replay_server

    from umi_agent.passrate.__main__ import main as passrate_main
    from umi_agent.run import main as run_main
    from umi_train.testing import single_thread, tiny_glpft_runs

    example = shared_data / "stabletoolbench" / "data_example"
    cache = tool_cache(example / "answer", tmp_path / "cache")  # recorded responses of queries 588, 608, 1073
    group = json.loads((shared_data / "stabletoolbench/solvable_queries/test_instruction/G1_instruction.json").read_text())
    queries = tmp_path / "G1_instruction.json"
    queries.write_text(json.dumps([q for q in group if str(q["query_id"]) in {"588", "608", "1073"}]))
    single_thread()
    runs = tiny_glpft_runs(tmp_path_factory.getbasetemp() / "tiny-glpft")
    out = tmp_path / "play"
    assert run_main(["--run", str(runs["reuse"]), "--toolbench-queries", str(queries), "--cache", str(cache), "--search", "dfsdt",
                     "--max-queries", "3", "--max-steps", "2", "--max-new-tokens", "24", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["reuse"]
    assert metrics["episodes"] == 3 and isinstance(metrics["tool_cache"], dict)
    looked_up = metrics["tool_cache"]["hits"] + metrics["tool_cache"]["misses"]
    assert metrics["cache_hit_rate"] == (metrics["tool_cache"]["hits"] / looked_up if looked_up else None)
    answers = out / "reuse" / "answer" / "G1_instruction"
    written = [json.loads(p.read_text()) for p in sorted(answers.iterdir())]
    assert len(written) == 3 and all(a["tool_cache"] and a["umi"]["search"] == "dfsdt" for a in written)
    assert build(answers, tmp_path / "built")["rejected"] == 0
    replay = Replay({q["query"]: ["AnswerStatus.Solved"] for q in json.loads(queries.read_text())})
    with replay_server(replay) as url:
        assert passrate_main([str(answers), "--out", str(tmp_path / "score"), "--judge-url", url, "--judge-model", "replay",
                              "--evaluate-times", "1", "--quiet"]) == 0
    result = json.loads((tmp_path / "score" / "summary.json").read_text())["groups"]["G1_instruction"]
    assert list(result) == ["reuse"]  # named after the agent, not its answer/ directory
    (scored,) = result.values()
    assert scored["evaluated"] == 3 and 0 <= scored["pass_rate"] <= 100
    assert scored["answered_share"] == metrics["answered"] and scored["tool_cache_hit_rate"] == metrics["cache_hit_rate"]


def test_hits_and_misses_are_counted_per_api(tmp_path: Path) -> None:
    """In process: a recorded input is a hit, another input a miss (an error the model sees, or
    with `nearest` the closest recorded response, still counted a miss); a parse error is neither."""
    from umi_agent.toolbench_backend import cache_outcome
    from umi_data.toolcache.build import build_tool_cache

    path = tmp_path / "tool_response_cache" / "Weather" / "open_weather_for_Weather" / "current.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"{'city': 'Paris'}": {"error": "", "response": "sunny"}}))
    build_tool_cache([tmp_path / "tool_response_cache"], tmp_path / "cache")
    request = {"category": "Weather", "tool_name": "Open Weather", "api_name": "current", "tool_input": '{"city": "Paris"}'}
    for on_miss in ("error", "nearest"):
        counts = CountingBackend(VirtualAPI(tmp_path / "cache", on_miss=on_miss))
        assert counts(request) == {"error": "", "response": "sunny"}
        missed = counts({**request, "tool_input": '{"city": "Rome"}'})
        assert missed["response"] == ("sunny" if on_miss == "nearest" else "") and cache_outcome(missed) == "miss"
        assert cache_outcome(counts({**request, "tool_input": "{not json"})) is None
        assert counts.tool_cache() == {"hits": 1, "misses": 1} and counts.requests == 3
        assert counts.metrics()["misses_per_api"] == {"Weather/Open Weather/current": 1} and counts.metrics()["cache_hit_rate"] == 0.5
    assert CountingBackend(lambda r: {"error": "", "response": ""}, misses_known=False).metrics()["cache_hit_rate"] is None
