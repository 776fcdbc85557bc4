"""Learning curves (`python -m umi_agent.curves`): GLPFT runs evaluated at their checkpoints,
static and live, written as curves.json and curves.png; the last point is the finished run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umi_agent import curves
from umi_train import glpft
from umi_train.testing import FAST_OPTIONS, cli_args, single_thread, tiny_glpft_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    single_thread()
    root = tiny_glpft_runs(tmp_path_factory.getbasetemp() / "tiny-glpft", variants=())["root"]  # world, corpora, model
    out = tmp_path_factory.mktemp("curve-runs")
    for variant in ("single", "reuse"):
        shared = ["--stage1-from", str(out / "single")] if variant == "reuse" else []
        args = ["--model", str(root / "tiny"), "--corpus", str(root / "corpus"), "--variant", variant, "--out", str(out / variant),
                "--max-steps", "4", "--save-steps", "2", "--eval-fraction", "0", *cli_args(FAST_OPTIONS), *shared]
        assert glpft.main(args) == 0
    return {"root": root, "single": out / "single", "reuse": out / "reuse"}


def curve_args(runs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    root = runs["root"]
    return ["--run", str(runs["single"]), "--run", str(runs["reuse"]), "--test", str(root / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"),
            "--tasks", str(root / "heldout" / "tasks.jsonl"), "--out", str(out), "--max-new-tokens", "8", "--live-max-steps", "2",
            "--batch-size", "4", *extra]


def test_curves_evaluate_every_shared_checkpoint_static_and_live(runs, tmp_path) -> None:
    from umi_agent.backends import role_models
    from umi_agent.evaluate import evaluate, rows_from_records
    from umi_agent.predict import predict
    from umi_agent.static import load_samples

    assert curves.checkpoint_steps(runs["single"]) == [2, 4] and curves.checkpoint_steps(runs["reuse"]) == [2, 4]
    assert curves.main(curve_args(runs, tmp_path)) == 0
    record = json.loads((tmp_path / "curves.json").read_text())
    assert record["steps"] == [2, 4] and set(record["curves"]) == {"single", "reuse"}
    for points in record["curves"].values():
        assert [p["step"] for p in points] == [2, 4]
        for p in points:
            assert p["episodes"] == record["tasks"] > 0 and p["plan_scored"] > 0
            low, high = p["answered_correctly_interval"]
            assert 0 <= low <= p["answered_correctly"] <= high <= 1
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the last checkpoint is the finished run: the same static numbers as its final adapters
    samples = load_samples(runs["root"] / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json")
    final = evaluate(rows_from_records(predict(role_models(runs["reuse"], max_new_tokens=8), samples, batch_size=4)))
    assert record["curves"]["reuse"][-1]["plan_em"] == final["plan_em"] and record["curves"]["reuse"][-1]["f1"] == final["f1"]


def test_a_step_without_checkpoints_is_one_line(runs, tmp_path, capsys) -> None:
    assert curves.main(curve_args(runs, tmp_path, "--steps", "3")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoints to evaluate" in err[0] and not (tmp_path / "curves.json").exists()


def test_the_finished_run_is_read_from_its_scores_not_evaluated_again(runs, tmp_path, capsys) -> None:
    from umi_agent import evaluate, predict, run

    root, test = runs["root"], runs["root"] / "heldout-corpus" / "alpha_umi" / "raw_data_stage_2.json"
    finals = []
    for name in ("single", "reuse"):
        scored = tmp_path / "scored" / name
        assert predict.main(["--run", str(runs[name]), "--test", str(test), "--out", str(scored / "p.json"), "--max-new-tokens", "8",
                             "--batch-size", "4"]) == 0
        assert evaluate.main(["--predictions", str(scored / "p.json"), "--out", str(scored / "static.json")]) == 0
        assert run.main(["--run", str(runs[name]), "--tasks", str(root / "heldout" / "tasks.jsonl"), "--out", str(scored / "live"),
                         "--max-steps", "2", "--max-new-tokens", "8", "--batch-size", "4"]) == 0
        finals += ["--final", str(runs[name]), str(scored / "static.json"), str(scored / "live" / "metrics.json")]
    assert curves.final_step(runs["single"]) == curves.final_step(runs["reuse"]) == 4
    assert curves.main(curve_args(runs, tmp_path / "read", *finals)) == 0
    assert curves.main(curve_args(runs, tmp_path / "evaluated")) == 0
    read, evaluated = (json.loads((tmp_path / d / "curves.json").read_text())["curves"] for d in ("read", "evaluated"))
    for name in ("single", "reuse"):
        assert "from" not in read[name][0] and read[name][0] == evaluated[name][0]  # step 2 is evaluated either way
        last = {k: v for k, v in read[name][1].items() if k != "from"}
        assert read[name][1]["from"]["live"].endswith("metrics.json") and last == evaluated[name][1]
    capsys.readouterr()
    # another run's scores are refused, in one line, before anything is evaluated
    wrong = ["--final", str(runs["reuse"]), str(tmp_path / "scored" / "reuse" / "static.json"), str(tmp_path / "scored" / "single" / "live" / "metrics.json")]
    assert curves.main(curve_args(runs, tmp_path / "wrong", *wrong)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no live metrics of the run" in err[0] and not (tmp_path / "wrong" / "curves.json").exists()
    # a file that is not evaluate's metrics is one line too, not a traceback
    (tmp_path / "bad.json").write_text('{"plan_em": 0.5, "action_em": 0.5, "f1": 0.5, "counts": {"samples": 3}}')
    bad = ["--final", str(runs["reuse"]), str(tmp_path / "bad.json"), str(tmp_path / "scored" / "reuse" / "live" / "metrics.json")]
    assert curves.main(curve_args(runs, tmp_path / "bad", *bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not umi_agent.evaluate's metrics" in err[0]
