"""What umi_agent writes (docs/guarantees.md): live episodes are logged as they finish and no
model output stops the writer; bad prediction files are one line and exit 2 with nothing
half-written; the demo never deletes a directory it did not write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_agent import run as live
from umi_agent.backends import ScriptedModel
from umi_agent.demo import main as demo_main
from umi_agent.evaluate import main as evaluate_main
from umi_agent.loop import MultiAgent
from umi_data.synth.world import write_synthetic

SURROGATE = "\ud800"


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_synthetic(out, 3, seed=0)
    return out / "tasks.jsonl"


def surrogate_agent() -> MultiAgent:
    """A model that answers at once, with a lone surrogate in its thought and its answer."""
    planner = ScriptedModel(lambda prompt: f"Done {SURROGATE}.\n Next: conclusion.")
    return MultiAgent(planner, ScriptedModel([]), ScriptedModel(lambda prompt: f"It is {SURROGATE} sunny."), max_steps=2)


def test_model_output_with_a_lone_surrogate_is_written(tasks: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(live, "agent_from_run", lambda run, steps, tokens: surrogate_agent())
    out = tmp_path / "live"
    assert live.main(["--run", str(tmp_path / "a"), "--run", str(tmp_path / "b"), "--tasks", str(tasks), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"a", "b"} and metrics["a"]["episodes"] == 3 and metrics["a"]["answered"] == 1.0
    episodes = json.loads((out / "a" / "episodes.json").read_text(encoding="utf-8"))
    assert len(episodes) == 3 and episodes[0]["turns"][-1]["answer"] == "It is \ufffd sunny."
    assert json.loads((out / "a" / "corpus" / "manifest.json").read_text())["counts"]["accepted"] == 3


def test_episodes_are_on_disk_as_they_finish(tasks: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """A run that dies on its third episode keeps the first two, and the earlier run's metrics."""
    calls, out = {"n": 0}, tmp_path / "live"
    on_disk_when_it_died: list[str] = []

    def dying_agent() -> MultiAgent:
        def planner(prompt: str) -> str:
            calls["n"] += 1
            if calls["n"] == 3:
                on_disk_when_it_died.append((out / "second" / "episodes.json").read_text())  # what a kill -9 would leave
                raise KeyboardInterrupt  # the process is stopped mid-run
            return "Done.\n Next: conclusion."
        return MultiAgent(ScriptedModel(planner), ScriptedModel([]), ScriptedModel(lambda p: "Sunny."), max_steps=2)

    agents = iter([surrogate_agent(), dying_agent()])
    monkeypatch.setattr(live, "agent_from_run", lambda run, steps, tokens: next(agents))
    with pytest.raises(KeyboardInterrupt):
        live.main(["--run", str(tmp_path / "first"), "--run", str(tmp_path / "second"), "--tasks", str(tasks), "--out", str(out)])
    assert set(json.loads((out / "metrics.json").read_text())) == {"first"}
    assert on_disk_when_it_died[0].count('"task_id"') == 2  # both finished episodes were flushed
    kept = (out / "second" / "episodes.json").read_text()
    assert kept.endswith("\n]\n") and [e["meta"]["task_id"] for e in json.loads(kept)] == [json.loads(line)["id"] for line in tasks.read_text().splitlines()[:2]]


def test_a_rerun_replaces_the_earlier_live_run(tasks: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(live, "agent_from_run", lambda run, steps, tokens: surrogate_agent())
    out = tmp_path / "live"
    assert live.main(["--run", str(tmp_path / "a"), "--run", str(tmp_path / "b"), "--tasks", str(tasks), "--out", str(out)]) == 0
    assert live.main(["--run", str(tmp_path / "a"), "--tasks", str(tasks), "--out", str(out), "--limit", "1"]) == 0
    assert not (out / "b").exists() and set(json.loads((out / "metrics.json").read_text())) == {"a"}
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert live.main(["--run", str(tmp_path / "a"), "--tasks", str(tasks), "--out", str(mine)]) == 2
    assert "not written by `umi-agent run`" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


BAD_PREDICTIONS = {
    "deep": "[" * 100_000 + "]" * 100_000,
    "long_number": '[{"reference": "x", "predictions": "y", "tool_names": [], "id": ' + "7" * 5000 + "}]",
    "surrogate_id": '[{"reference": "x", "predictions": "y", "tool_names": [], "id": "a\\ud800b"}]',
    "deep_record": '[{"reference": "x", "predictions": "y", "tool_names": [], "id": ' + "[" * 5000 + "]" * 5000 + "}]",
}


@pytest.mark.parametrize("name", list(BAD_PREDICTIONS))
def test_unusable_prediction_files_are_one_line_and_write_nothing(name: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.json"
    path.write_text(BAD_PREDICTIONS[name])
    assert evaluate_main(["--predictions", str(path), "--out", str(tmp_path / "m.json"), "--cases", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("umi-agent evaluate: error:"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_the_demo_never_deletes_a_directory_it_did_not_write(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work")
    assert demo_main(["--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not written by `umi-agent demo`" in err
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_file_outputs_replace_only_their_own_kind(tmp_path: Path, capsys) -> None:
    from umi_agent.predict import main as predict_main

    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps([{"reference": "Next: give up.", "predictions": "Next: give up.", "tool_names": []}]))
    notes = tmp_path / "notes.md"
    notes.write_text("my notes")
    args = ["--predictions", str(predictions), "--out", str(tmp_path / "m.json"), "--cases", str(tmp_path / "c.json")]
    assert evaluate_main(args) == 0 and evaluate_main(args) == 0  # its own metrics and cases are replaced
    for flag in ("--out", "--cases"):
        bad = [*args]
        bad[bad.index(flag) + 1] = str(notes)
        assert evaluate_main(bad) == 2
    # predict checks --out before it loads any model (the run directory does not even exist here)
    assert predict_main(["--run", str(tmp_path / "no-run"), "--test", str(predictions), "--out", str(notes)]) == 2
    assert predict_main(["--run", str(tmp_path / "no-run"), "--test", str(predictions), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all("was not written by `umi-agent " in line for line in err), err
    assert notes.read_text() == "my notes"
