"""`umi_agent.predict` without a trained model: replayed backbones through the Single-LLM path."""

from __future__ import annotations

from pathlib import Path

import pytest

from umi_agent.backends import ReplayModel
from umi_agent.evaluate import evaluate, rows_from_records
from umi_agent.predict import main as predict_main
from umi_agent.predict import predict_single
from umi_agent.static import load_samples
from umi_data.building.build import BuildConfig, build_corpus
from umi_data.synth.world import write_synthetic


@pytest.fixture(scope="module")
def compat_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compat-world")
    write_synthetic(out / "synth", 30, seed=11)
    build_corpus(BuildConfig(source="toolbench", inputs=[str(out / "synth" / "answer")], compat="alpha-umi"), out / "corpus", progress=False)
    return out / "corpus"


def test_single_llm_predictions_of_the_recorded_backbone_score_perfectly(compat_world: Path) -> None:
    """The stage-2 file of a compat build is a static test set; replaying its backbone examples
    (give-ups, whose official input is stale, answered by hand) must score 1.0 everywhere."""
    samples = load_samples(compat_world / "alpha_umi" / "raw_data_stage_2.json")
    replay = ReplayModel.from_corpus(compat_world, "backbone")
    backbone = lambda prompt: replay.answers.get(prompt, "No tool can answer this.\nconclusion: give up.")  # noqa: E731
    records = [predict_single(sample, backbone) for sample in samples]
    metrics = evaluate(rows_from_records(records), compat="alpha-umi")
    assert {k: metrics[k] for k in ("plan_em", "action_em", "f1")} == pytest.approx({"plan_em": 1.0, "action_em": 1.0, "f1": 1.0})
    assert metrics["hallu_rate"] == pytest.approx(0.0, abs=1e-20) and metrics["rouge"] == pytest.approx(1.0, abs=1e-7)
    decisions = {s.decision for s in samples}
    assert decisions == {"caller", "conclusion", "give up"}


def test_a_wrong_backbone_is_scored_as_wrong(compat_world: Path) -> None:
    samples = load_samples(compat_world / "alpha_umi" / "raw_data_stage_2.json")
    records = [predict_single(s, lambda prompt: 'Hm.\nAction: invented_tool\nAction Input: {}') for s in samples]
    metrics = evaluate(rows_from_records(records))
    calls = sum(s.decision == "caller" for s in samples)
    assert metrics["plan_em"] == pytest.approx(calls / len(samples)) and metrics["action_em"] == 0.0
    assert metrics["hallu_rate"] == 1.0  # default mode: over predicted calls


def test_predict_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert predict_main(["--run", str(tmp_path), "--test", str(tmp_path / "missing.json"), "--out", str(tmp_path / "p.json")]) == 2
    assert "Traceback" not in capsys.readouterr().err
