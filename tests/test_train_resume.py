"""Training runs and their directories (docs/guarantees.md): a damaged newest checkpoint is set
aside and the newest good one resumed, a moved run directory still resumes, a second writer
fails at once, a foreign --out is refused, an empty corpus is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from umi_data.building.build import BuildConfig, build_corpus
from umi_data.plumbing.outdir import LOCK_FILE, claim_out_dir
from umi_train import glpft, sft, tiny
from umi_train.checkpoints import checkpoint_problem, same_training
from train_fixtures import corpus, model  # noqa: F401 (fixtures)
from umi_train.testing import FAST_OPTIONS, cli_args

OPTIONS = {"role": "backbone", "max_steps": 5, "save_steps": 2, "lora_dropout": 0.1}


@pytest.fixture(scope="module")
def whole(model: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    assert sft.main(sft_args(model, corpus, out, **OPTIONS)) == 0
    return out


def sft_args(model: Path, corpus: Path, out: Path, **options) -> list[str]:
    return ["--model", str(model), "--corpus", str(corpus), "--out", str(out), *cli_args({**FAST_OPTIONS, **options})]


def interrupted_copy(whole: Path, out: Path) -> Path:
    """`whole` as if the process died after step 4's checkpoint."""
    shutil.copytree(whole, out)
    for name in ("checkpoints/checkpoint-5", "adapter", "run.json"):
        shutil.rmtree(out / name) if (out / name).is_dir() else (out / name).unlink()
    return out


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def adapter_sha(run: Path) -> str:
    return json.loads((run / "run.json").read_text())["adapter"]["sha256"]


@pytest.mark.parametrize("damaged", ["adapter_model.safetensors", "optimizer.pt", "trainer_state.json", "rng_state.pth"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumed(model, corpus, whole, tmp_path, capsys, damaged) -> None:
    run = interrupted_copy(whole, tmp_path / "run")
    assert checkpoint_problem(run / "checkpoints" / "checkpoint-4") is None
    truncate(run / "checkpoints" / "checkpoint-4" / damaged)
    assert damaged in (checkpoint_problem(run / "checkpoints" / "checkpoint-4") or "")
    assert sft.main(sft_args(model, corpus, run, resume=True, **OPTIONS)) == 0
    err = capsys.readouterr().err
    assert f"checkpoint-4 is damaged ({damaged}" in err and "Traceback" not in err
    record = json.loads((run / "run.json").read_text())
    assert record["training"]["resumed_from"] == "checkpoint-2"
    assert adapter_sha(run) == adapter_sha(whole)  # resumed from the good one, bit-identical to an uninterrupted run
    assert (run / "checkpoints" / "damaged-checkpoint-4").is_dir()


def test_no_good_checkpoint_is_one_line(model, corpus, whole, tmp_path, capsys) -> None:
    run = interrupted_copy(whole, tmp_path / "run")
    for checkpoint in ("checkpoint-2", "checkpoint-4"):
        truncate(run / "checkpoints" / checkpoint / "optimizer.pt")
    assert sft.main(sft_args(model, corpus, run, resume=True, **OPTIONS)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("umi-train sft: error:") and "every checkpoint is damaged" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_a_moved_run_directory_still_resumes(model, corpus, whole, tmp_path) -> None:
    run = interrupted_copy(whole, tmp_path / "before")
    shutil.rmtree(run / "checkpoints" / "checkpoint-4")  # died after step 2's checkpoint
    moved = run.rename(tmp_path / "renamed")
    assert sft.main(sft_args(model, corpus, moved, resume=True, **OPTIONS)) == 0
    assert json.loads((moved / "run.json").read_text())["training"]["resumed_from"] == "checkpoint-2"
    assert adapter_sha(moved) == adapter_sha(whole)
    moved_whole = tmp_path / "whole-moved"
    shutil.copytree(whole, moved_whole)  # a finished run that was moved is still complete with the same options
    assert sft.main(sft_args(model, corpus, moved_whole, **OPTIONS)) == 0


def test_same_training_ignores_out_but_not_what_is_trained() -> None:
    recorded = {"out": "/a/run", "model": "/a/run/stage1/merged", "corpus": "/data/c", "learning_rate": 0.1}
    assert same_training(recorded, {**recorded, "out": "/b/run2", "model": "/b/run2/stage1/merged"})
    assert same_training(recorded, {**recorded, "out": "/b/run2"})  # same absolute model
    assert not same_training(recorded, {**recorded, "out": "/b/run2", "learning_rate": 0.2})
    assert not same_training(recorded, {**recorded, "corpus": "/data/other"})


def test_a_second_writer_fails_at_once(model, corpus, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    with claim_out_dir(out, sft.SFT_OUTPUT):
        assert sft.main(sft_args(model, corpus, out, **OPTIONS)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is writing there right now" in err
    with claim_out_dir(tmp_path / "g", glpft.GLPFT_OUTPUT):
        args = ["--model", str(model), "--corpus", str(corpus), "--variant", "single", "--out", str(tmp_path / "g"), *cli_args(FAST_OPTIONS)]
        assert glpft.main(args) == 2
    assert "is writing there right now" in capsys.readouterr().err


def test_a_foreign_out_is_refused_and_kept(model, corpus, tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert sft.main(sft_args(model, corpus, mine, **OPTIONS)) == 2
    assert tiny.main(["--corpus", str(corpus), "--out", str(mine)]) == 2  # tiny used to rmtree its --out
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("not written by" in line for line in err)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    assert not (mine / LOCK_FILE).exists()


def test_an_empty_corpus_is_refused(model, tmp_path, capsys) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.json").write_text("[]")
    empty = tmp_path / "empty"
    build_corpus(BuildConfig(source="toolbench", inputs=[str(tmp_path / "in")]), empty, progress=False)
    assert tiny.main(["--corpus", str(empty), "--out", str(tmp_path / "t")]) == 2
    assert sft.main(sft_args(model, empty, tmp_path / "r", **OPTIONS)) == 2
    args = ["--model", str(model), "--corpus", str(empty), "--variant", "single", "--out", str(tmp_path / "g")]
    assert glpft.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("the corpus is empty (0 of 1 records accepted" in line for line in err), err
    assert not (tmp_path / "t").exists() and not (tmp_path / "r").exists() and not (tmp_path / "g").exists()


#: the options under which a mismatch could hide (issue 24): the issue's case (packed, eval every
#: 2 steps, a 5-step run over 5 examples in batches of 2, so the second epoch starts at step 4
#: and its order used to come from a re-seeded RNG on resume), padded batches with gradient
#: accumulation (each epoch's last optimizer step takes one micro-batch instead of two), and the
#: official pad-to-max-length recipe (random order instead of length groups)
RESUME_CASES = {
    "packed-eval": {"max_steps": 5, "eval_steps": 2},
    "dynamic-accumulated": {"max_steps": 5, "padding": "dynamic", "grad_accum": 2},
    "max-length": {"max_steps": 4, "padding": "max-length", "max_length": 512},
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_resuming_from_every_checkpoint_gives_the_uninterrupted_adapter(model, corpus, tmp_path, case) -> None:
    options = {"role": "backbone", "lora_dropout": 0.1, "save_steps": 1, "save_total_limit": 10, **RESUME_CASES[case]}
    whole = tmp_path / "whole"
    assert sft.main(sft_args(model, corpus, whole, **options)) == 0
    steps = json.loads((whole / "run.json").read_text())["training"]["steps"]
    assert steps == options["max_steps"]
    for step in range(1, steps):
        run = tmp_path / f"from-{step}"
        shutil.copytree(whole, run)
        for later in range(step + 1, steps + 1):
            shutil.rmtree(run / "checkpoints" / f"checkpoint-{later}")
        shutil.rmtree(run / "adapter")
        (run / "run.json").unlink()
        assert sft.main(sft_args(model, corpus, run, resume=True, **options)) == 0
        record = json.loads((run / "run.json").read_text())
        assert record["training"]["resumed_from"] == f"checkpoint-{step}"
        assert adapter_sha(run) == adapter_sha(whole), f"{case}: resumed from checkpoint-{step}"
