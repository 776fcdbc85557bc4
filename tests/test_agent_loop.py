"""The agent loop, its tools and its replay/scripted backends (no trained model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import umi_data
from umi_agent.backends import ReplayMiss, ReplayModel, ScriptedModel
from umi_agent.loop import MultiAgent, SingleAgent, parse_backbone, parse_call, parse_plan, run_episode
from umi_agent.tools import ReplayExecutor, synthetic_registry
from umi_data.__main__ import main
from umi_data.building.build import BuildConfig, build_corpus
from umi_data.synth.world import write_synthetic

N_TASKS = 40


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_synthetic(out / "synth", N_TASKS, seed=3)
    build_corpus(BuildConfig(source="toolbench", inputs=[str(out / "synth" / "answer")]), out / "corpus", progress=False)
    return out


def tasks(world: Path) -> list[dict]:
    return [json.loads(line) for line in (world / "synth" / "tasks.jsonl").read_text().splitlines()]


def comparable(trajectory: umi_data.Trajectory) -> list[dict]:
    """Turns as data; `raw` texts and ToolBench's Finish argument string are source details."""
    return [turn.model_dump(exclude={"raw"} | ({"raw_arguments"} if turn.role in ("conclusion", "planner") else set())) for turn in trajectory.turns]


@pytest.mark.parametrize("agent_kind", ["multi", "single"])
def test_replayed_models_reenact_the_training_trajectories(world: Path, agent_kind: str) -> None:
    """Models that answer every training prompt with its training target make the loop redo the
    scripted trajectories turn for turn: the loop's prompts are byte-identical to the corpora's."""
    corpus = world / "corpus"
    recorded = {t.meta["file"]: t for t in umi_data.read_trajectories(corpus / "trajectories.parquet")}
    for task in tasks(world):
        trajectory = recorded[task["answer_file"].removeprefix("answer/")]
        replay = lambda role: ReplayModel.from_corpus(corpus, role, trajectory.id)  # noqa: E731
        agent = MultiAgent(replay("planner"), replay("caller"), replay("summarizer")) if agent_kind == "multi" else SingleAgent(replay("backbone"))
        episode = run_episode(agent, task["instruction"], synthetic_registry(task["tools"]), episode_id=task["id"])
        assert comparable(episode.trajectory) == comparable(trajectory), task["id"]
        assert episode.trajectory.outcome == task["expected_outcome"]
        assert episode.hallucinated_calls == episode.invalid_arguments == 0


def test_model_mistakes_become_observations_and_runs_read_back(world: Path, tmp_path: Path) -> None:
    task = next(t for t in tasks(world) if t["kind"] == "weather")
    registry = synthetic_registry([t["name"] for t in task["tools"]])  # by name: the world's own specs
    planner = ScriptedModel(["Let me look it up.\n Next: caller."] * 3 + ["Hmm.", "I have it.\n Next: conclusion."])
    caller = ScriptedModel([
        'Action: moon_weather_for_skycast\nAction Input: {"city": "Paris"}',
        'Action: daily_forecast_for_skycast\nAction Input: {"city": 5}',
        "Action: daily_forecast_for_skycast\nAction Input: city=Paris",
    ])
    summarizer = ScriptedModel(["Sunny.</s>ignored"])
    episode = run_episode(MultiAgent(planner, caller, summarizer), task["instruction"], registry, episode_id="mistakes")
    observations = [t for t in episode.trajectory.turns if t.role == "observation"]
    assert "unknown tool 'moon_weather_for_skycast'" in observations[0].error and "daily_forecast_for_skycast" in observations[0].error
    assert observations[1].error.startswith("invalid arguments for daily_forecast_for_skycast")
    assert observations[2].error.startswith("the Action Input of daily_forecast_for_skycast is not a JSON object")
    assert episode.hallucinated_calls == 1 and episode.invalid_arguments == 2
    assert episode.trajectory.turns[-1].answer == "Sunny." and episode.trajectory.outcome == "answer"
    assert [t.next for t in episode.trajectory.turns if t.role == "planner"] == ["caller"] * 3 + [None, "conclusion"]
    assert "observation: Error: unknown tool" in planner.prompts[1]  # the planner saw the mistake
    # the trace is a Trajectory that umi_data reads back as the `agent-run` source
    (tmp_path / "episodes.json").write_text(json.dumps([episode.trajectory.model_dump(mode="json")]))
    assert main(["build", "agent-run", str(tmp_path / "episodes.json"), "--out", str(tmp_path / "c"), "--no-progress", "--strict"]) == 0
    (back,) = umi_data.read_trajectories(tmp_path / "c" / "trajectories.parquet")
    assert back == episode.trajectory


def test_step_budget_leaves_an_unfinished_episode(world: Path) -> None:
    registry = synthetic_registry()
    agent = MultiAgent(ScriptedModel(lambda p: "thinking"), ScriptedModel([]), ScriptedModel([]), max_steps=3)
    episode = run_episode(agent, "Anything?", registry)
    assert episode.trajectory.outcome == "unfinished" and episode.steps == 3
    assert len(episode.latency["planner"]) == 3 and "caller" not in episode.latency


def test_long_observations_are_cut_and_flagged() -> None:
    from umi_agent.tools import Tool, ToolRegistry
    from umi_data.core import ToolSpec

    registry = ToolRegistry([Tool(ToolSpec(name="big"), lambda args: "x" * 5000)], observation_chars=1024)
    observation = registry.execute("big", "{}")
    assert len(observation.response) == 1024 and observation.truncated and not observation.error
    failing = ToolRegistry([Tool(ToolSpec(name="boom"), lambda args: 1 / 0)])
    assert failing.execute("boom", "").error == "boom raised ZeroDivisionError: division by zero"


def test_parsers() -> None:
    assert parse_plan("I should call it.\n Next: caller. and more").model_dump(include={"role", "thought", "next"}) == {"role": "planner", "thought": "I should call it.", "next": "caller"}
    assert parse_plan(" Next: give up.").next == "give_up" and parse_plan("no marker").next is None
    assert parse_call('Action: a_for_b\nAction Input: {"x": 1}</s>junk') == ("a_for_b", '{"x": 1}')
    assert parse_call("nothing useful") == ("", "")
    plan, call = parse_backbone('Think.\nAction: a_for_b\nAction Input: {"x": 1}')
    assert (plan.thought, plan.next, call) == ("Think.", "caller", ("a_for_b", '{"x": 1}'))
    assert parse_backbone("Stuck.\nconclusion: give up.")[0].next == "give_up"
    assert parse_backbone("Done.\nconclusion: 42 EUR") == (parse_backbone("Done.\nconclusion: 42 EUR")[0], "42 EUR")


def test_replay_executor_answers_recorded_calls(world: Path) -> None:
    trajectories = list(umi_data.read_trajectories(world / "corpus" / "trajectories.parquet"))
    replay = ReplayExecutor(trajectories)
    call, observation = next((a, b) for t in trajectories for a, b in zip(t.turns, t.turns[1:]) if a.role == "caller")
    spaced = json.dumps(json.loads(call.raw_arguments), indent=2)  # same arguments, other spelling
    assert replay.execute(call.name, spaced) == observation
    assert "no recorded observation" in replay.execute(call.name, '{"city": "Atlantis"}').error
    with pytest.raises(ReplayMiss):
        ReplayModel([("a", "b")]).generate("c")


def test_live_metrics_of_replayed_agents(world: Path, tmp_path: Path) -> None:
    from umi_agent.run import episode_metrics, play, read_tasks, side_by_side, write_episodes

    rows = read_tasks(world / "synth" / "tasks.jsonl", limit=12)
    corpus = world / "corpus"
    recorded = {t.meta["file"]: t.id for t in umi_data.read_trajectories(corpus / "trajectories.parquet")}
    episodes = []
    for task in rows:  # one replay agent per task (two tasks may share their opening prompt)
        trajectory_id = recorded[task["answer_file"].removeprefix("answer/")]
        agent = SingleAgent(ReplayModel.from_corpus(corpus, "backbone", trajectory_id))
        episodes += play(agent, [task])
    metrics = episode_metrics(rows, episodes)
    answering = sum(t["expected_outcome"] == "answer" for t in rows) / len(rows)
    assert metrics["answered_correctly"] == metrics["answered"] == answering and metrics["gave_up"] == pytest.approx(1 - answering)
    assert metrics["hallucinated_calls"] == metrics["invalid_arguments"] == 0 and set(metrics["latency_ms"]) == {"backbone"}
    wrong = [{**t, "expected_facts": ["no such fact"]} for t in rows]
    assert episode_metrics(wrong, episodes)["answered_correctly"] == 0.0
    back = write_episodes(tmp_path / "single", episodes)
    assert json.loads((back / "manifest.json").read_text())["counts"]["accepted"] == len(rows)
    assert "answered correctly" in side_by_side({"single": metrics, "again": metrics})


def test_live_run_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from umi_agent.run import main as run_main

    assert run_main(["--run", str(tmp_path), "--tasks", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "tasks.jsonl").write_text('{"id": "1"}\n')
    assert run_main(["--run", str(tmp_path), "--tasks", str(tmp_path / "tasks.jsonl"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no such task file" in err and "a task needs instruction" in err and "Traceback" not in err
