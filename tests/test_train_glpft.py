"""`python -m umi_train.glpft`: the reuse setup end to end (loss falls in every stage, merged
backbone equals base + adapter, every role model generates after reloading), every other
setup with a step or two, stage skipping, and which model plays which role."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import mean

import pytest

from umi_data.rendering.variants import VARIANTS
from umi_train import RoleNotTrainedError, glpft, load_role
from train_fixtures import corpus, generate_each_role, model  # noqa: F401 (fixtures)
from umi_train.testing import FAST_OPTIONS, cli_args

ROLES = ("planner", "caller", "summarizer", "backbone")


def glpft_args(model: Path, corpus: Path, out: Path, variant: str, **options) -> list[str]:
    return ["--model", str(model), "--corpus", str(corpus), "--out", str(out), "--variant", variant,
            *cli_args({**FAST_OPTIONS, **options})]


@pytest.fixture(scope="module")
def reuse_run(model: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("glpft") / "reuse"
    assert glpft.main(glpft_args(model, corpus, out, "reuse", max_steps=12, save_steps=6)) == 0
    return out


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_reuse_writes_merged_backbone_and_three_adapters(reuse_run: Path) -> None:
    assert (reuse_run / "glpft.json").is_file()
    merged = reuse_run / "stage1" / "merged"
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "umi_model.json"} <= {p.name for p in merged.iterdir()}
    for role in ("planner", "caller", "summarizer"):
        assert (reuse_run / "stage2" / role / "adapter" / "adapter_model.safetensors").is_file()
        assert (reuse_run / "stage2" / role / "run.json").is_file()


def test_loss_falls_in_every_stage(reuse_run: Path) -> None:
    record = read(reuse_run / "glpft.json")
    runs = [f"{stage}/{part}" for stage, summary in record["stages"].items() for part in summary["parts"]]
    assert runs == ["stage1/backbone", "stage2/planner", "stage2/caller", "stage2/summarizer"]
    for run in runs:
        losses = [entry["loss"] for entry in read(reuse_run / run / "run.json")["training"]["loss_history"]]
        assert len(losses) == 12
        assert mean(losses[-3:]) < mean(losses[:3]) - 0.3, f"{run}: loss did not fall: {losses}"


def test_stage2_records_stage1_provenance_read_from_disk(reuse_run: Path) -> None:
    stage1 = read(reuse_run / "stage1" / "backbone" / "run.json")
    planner = read(reuse_run / "stage2" / "planner" / "run.json")
    base = planner["base_model"]
    assert base["path"] == str(reuse_run / "stage1" / "merged") and base["umi_model"]["kind"] == "umi-merged"
    assert base["umi_model"]["stage1_run"]["adapter"]["sha256"] == stage1["adapter"]["sha256"]
    assert base["umi_model"]["base_model"]["umi_model"]["kind"] == "umi-tiny"
    assert planner["corpus"] == stage1["corpus"]


def test_merged_backbone_logits_equal_base_plus_adapter(reuse_run: Path, model: Path) -> None:
    import torch

    from umi_train.lora import load_base, load_with_adapter

    reference = load_with_adapter(model, reuse_run / "stage1" / "backbone" / "adapter").eval()
    merged = load_base(reuse_run / "stage1" / "merged").eval()
    input_ids = torch.randint(4, merged.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, actual = reference(input_ids).logits, merged(input_ids).logits
        plain = load_base(model).eval()(input_ids).logits
    assert (actual - expected).abs().max().item() < 1e-5
    assert (plain - expected).abs().max().item() > 1e-3  # the adapter did change the model


def test_each_role_model_generates_after_reloading(reuse_run: Path, corpus: Path) -> None:
    for role, prompt, output, tokenizer in generate_each_role(reuse_run, corpus, ROLES, max_new_tokens=8):
        assert output.shape[1] > len(prompt), role
        assert tokenizer.decode(output[0, len(prompt):], skip_special_tokens=True) or output[0, -1] == tokenizer.eos_token_id


def test_rerun_skips_complete_stages(reuse_run: Path, model: Path, corpus: Path, capsys) -> None:
    before = {path: path.read_bytes() for path in reuse_run.rglob("run.json")}
    assert glpft.main(glpft_args(model, corpus, reuse_run, "reuse", max_steps=12, save_steps=6)) == 0
    assert "is complete; nothing to do" in capsys.readouterr().out
    assert {path: path.read_bytes() for path in reuse_run.rglob("run.json")} == before


@pytest.mark.parametrize("variant", ["no-reuse", "one-stage", "multi-task", "single"])
def test_every_variant_runs_its_stages(variant: str, model: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / variant
    assert glpft.main(glpft_args(model, corpus, out, variant, max_steps=2, eval_fraction=0)) == 0
    record = read(out / "glpft.json")
    for stage in VARIANTS[variant].stages:
        for part in stage.parts:
            run = read(out / stage.name / part.name / "run.json")
            assert run["training"]["steps"] == 2 and run["config"]["split"] == (stage.split or "all")
            assert record["stages"][stage.name]["parts"][part.name]["steps"] == 2
    assert (out / "stage1" / "merged").is_dir() == (variant == "no-reuse")
    for role in ROLES:
        if role == "backbone" and variant in ("one-stage", "multi-task"):
            with pytest.raises(RoleNotTrainedError, match=f"variant {variant} trains no model for role 'backbone'"):
                load_role(out, role)
        else:
            loaded, tokenizer = load_role(out, role)
            assert loaded.generate(tokenizer("user: hi", return_tensors="pt").input_ids, max_new_tokens=2).shape[1] >= 3


def test_interrupted_stage_is_finished_and_the_rest_skipped(model: Path, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "no-reuse"
    args = glpft_args(model, corpus, out, "no-reuse", max_steps=1, eval_fraction=0)
    assert glpft.main(args) == 0
    (out / "glpft.json").unlink()
    (out / "stage2" / "caller" / "run.json").unlink()
    kept = {path: path.read_bytes() for path in out.rglob("run.json")}
    assert glpft.main(args) == 2 and "--resume" in capsys.readouterr().err  # the caller has a checkpoint
    assert glpft.main([*args, "--resume"]) == 0
    assert {path: path.read_bytes() for path in kept} == kept
    assert (out / "stage2" / "caller" / "run.json").is_file() and (out / "glpft.json").is_file()


def test_stage1_from_copies_a_matching_backbone_and_refuses_another(reuse_run: Path, model: Path, corpus: Path, tmp_path: Path,
                                                                    capsys) -> None:
    """single trains exactly reuse's stage 1: --stage1-from takes it instead of training it again,
    and only when the base, corpus, split and options are the same."""
    out = tmp_path / "single"
    assert glpft.main([*glpft_args(model, corpus, out, "single", max_steps=12, save_steps=6), "--stage1-from", str(reuse_run)]) == 0
    assert "copied from" in capsys.readouterr().out
    source, copy = reuse_run / "stage1" / "backbone", out / "stage1" / "backbone"
    assert (copy / "run.json").read_bytes() == (source / "run.json").read_bytes()
    assert not (copy / "checkpoints").exists()
    record = read(out / "glpft.json")["stages"]["stage1"]["parts"]["backbone"]
    assert record["copied_from"] == str(source) and record["adapter_sha256"] == read(source / "run.json")["adapter"]["sha256"]
    loaded, tokenizer = load_role(out, "backbone")
    assert loaded.generate(tokenizer("user: hi", return_tensors="pt").input_ids, max_new_tokens=2).shape[1] >= 3
    for variant, options in (("single", {"max_steps": 3}), ("no-reuse", {"max_steps": 12, "save_steps": 6})):  # other steps; split A
        other = tmp_path / f"other-{variant}"
        assert glpft.main([*glpft_args(model, corpus, other, variant, **options), "--stage1-from", str(reuse_run)]) == 2
        assert "trained with other options" in capsys.readouterr().err
        assert not (other / "stage1" / "backbone" / "run.json").exists()


def test_stage1_from_rerun_takes_the_copied_stage1_without_the_source(reuse_run: Path, model: Path, corpus: Path, tmp_path: Path,
                                                                     capsys) -> None:
    """Once the run holds the copied, complete stage 1, a rerun of the same command (interrupted
    before glpft.json, say) takes it from there: the source may since have been moved or deleted.
    Without a complete stage 1 the source is still required, and a stage 1 trained with other
    options is still refused."""
    source = tmp_path / "source"
    shutil.copytree(reuse_run / "stage1" / "backbone", source / "stage1" / "backbone")
    out = tmp_path / "single"
    args = [*glpft_args(model, corpus, out, "single", max_steps=12, save_steps=6), "--stage1-from", str(source)]
    assert glpft.main(args) == 0
    backbone = out / "stage1" / "backbone"
    first, kept = read(out / "glpft.json"), (backbone / "run.json").read_bytes()
    shutil.rmtree(source)
    assert glpft.main(args) == 0 and "is complete; nothing to do" in capsys.readouterr().out
    (out / "glpft.json").unlink()  # interrupted after stage 1, before the record
    assert glpft.main(args) == 0
    assert "copied from" not in capsys.readouterr().out
    assert (backbone / "run.json").read_bytes() == kept and read(out / "glpft.json")["stages"] == first["stages"]
    assert first["stages"]["stage1"]["parts"]["backbone"]["copied_from"] == str(source / "stage1" / "backbone")
    (out / "glpft.json").unlink()
    for target, options, message in ((out, {"max_steps": 3}, "holds a finished run with different options"),
                                     (tmp_path / "fresh", {"max_steps": 12, "save_steps": 6}, "no finished stage1 backbone run")):
        assert glpft.main([*glpft_args(model, corpus, target, "single", **options), "--stage1-from", str(source)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert (backbone / "run.json").read_bytes() == kept and not (tmp_path / "fresh" / "stage1" / "backbone" / "run.json").exists()
