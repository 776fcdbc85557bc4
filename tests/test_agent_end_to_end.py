"""With a tiny GLPFT run from umi_train, `predict` + `evaluate` and `run` complete end to end on CPU
(the numbers of a 6-step tiny model are noise; what is checked is that every stage works)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_agent.evaluate import main as evaluate_main
from umi_agent.predict import main as predict_main
from umi_agent.run import main as run_main
from umi_train.testing import single_thread, tiny_glpft_runs

METRICS = {"plan_em", "action_em", "hallu_rate", "easy_f1", "hard_f1", "f1", "rouge"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    single_thread()
    return tiny_glpft_runs(tmp_path_factory.getbasetemp() / "tiny-glpft")  # shared with test_agent_served


def test_reuse_on_a_synthetic_corpus_learns_in_every_stage(runs: dict[str, Path]) -> None:
    """Issue 6's acceptance on synthetic data: the loss falls in every GLPFT stage."""
    record = json.loads((runs["reuse"] / "glpft.json").read_text())
    stages = [f"{stage}/{part}" for stage, summary in record["stages"].items() for part in summary["parts"]]
    assert stages == ["stage1/backbone", "stage2/planner", "stage2/caller", "stage2/summarizer"]
    for stage in stages:
        history = json.loads((runs["reuse"] / stage / "run.json").read_text())["training"]["loss_history"]
        losses = [entry["loss"] for entry in history]
        assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3, f"{stage}: {losses}"


@pytest.mark.parametrize("variant", ["reuse", "single"])
def test_predict_and_evaluate(runs: dict[str, Path], variant: str, tmp_path: Path) -> None:
    test = runs["root"] / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"
    assert predict_main(["--run", str(runs[variant]), "--test", str(test), "--out", str(tmp_path / "p.json"),
                         "--limit", "6", "--max-new-tokens", "24"]) == 0
    predictions = json.loads((tmp_path / "p.json").read_text())
    assert len(predictions) == 6 and all(p["predictions"] and p["reference"] for p in predictions)
    assert evaluate_main(["--predictions", str(tmp_path / "p.json"), "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert METRICS <= set(metrics)
    assert 0.0 <= metrics["plan_em"] <= 1.0


def test_live_run_side_by_side(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tasks = runs["root"] / "heldout" / "tasks.jsonl"
    assert run_main(["--run", str(runs["reuse"]), "--run", str(runs["single"]), "--tasks", str(tasks),
                     "--out", str(tmp_path / "live"), "--limit", "2", "--max-steps", "2", "--max-new-tokens", "16"]) == 0
    metrics = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert set(metrics) == {"reuse", "single"} and all(m["episodes"] == 2 for m in metrics.values())
    assert set(metrics["reuse"]["latency_ms"]) >= {"planner"} and set(metrics["single"]["latency_ms"]) == {"backbone"}
    for name in ("reuse", "single"):
        manifest = json.loads((tmp_path / "live" / name / "corpus" / "manifest.json").read_text())
        assert manifest["counts"]["accepted"] == 2 and manifest["config"]["source"] == "agent-run"
    assert "answered correctly" in capsys.readouterr().out
