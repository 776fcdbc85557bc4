"""`python -m umi_train.sft`: provenance in run.json, skipping finished runs, exact resume, user errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
import subprocess
import sys
from pathlib import Path

import pytest

from umi_data.plumbing.write import sha256_file
from umi_train import sft
from train_fixtures import corpus, model  # noqa: F401 (fixtures)
from umi_train.testing import FAST_OPTIONS, cli_args, sample_corpus, tiny_model

REPO = Path(__file__).resolve().parents[1]


def sft_args(model: Path, corpus: Path, out: Path, **options) -> list[str]:
    return ["--model", str(model), "--corpus", str(corpus), "--out", str(out), *cli_args({**FAST_OPTIONS, **options})]


def test_run_records_provenance_and_losses(model, corpus, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert sft.main(sft_args(model, corpus, out, role="planner", max_steps=4, save_steps=2)) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["role"] == "planner" and run["config"]["max_steps"] == 4 and run["config"]["model"] == str(model)
    assert run["corpus"]["manifest_sha256"] == sha256_file(corpus / "manifest.json")
    assert run["base_model"]["config_sha256"] == sha256_file(model / "config.json")
    assert run["base_model"]["umi_model"]["kind"] == "umi-tiny"
    assert {"umi", "torch", "transformers", "peft"} <= set(run["versions"])
    assert [entry["step"] for entry in run["training"]["loss_history"]] == [1, 2, 3, 4]
    assert run["training"]["world_size"] == 1 and run["training"]["final_eval_loss"] > 0
    assert run["data"]["train_examples"] + run["data"]["eval_examples"] == 8 and run["data"]["eval_instructions"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "adapter" / "tokenizer.json").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert "4 steps, loss" in capsys.readouterr().out

    before = (out / "run.json").read_bytes()
    assert sft.main(sft_args(model, corpus, out, role="planner", max_steps=4, save_steps=2)) == 0
    assert "is complete; nothing to do" in capsys.readouterr().out and (out / "run.json").read_bytes() == before
    assert sft.main(sft_args(model, corpus, out, role="planner", max_steps=5, save_steps=2)) == 2
    assert "--out" in capsys.readouterr().err


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(model, corpus, tmp_path) -> None:
    options = {"role": "backbone", "max_steps": 5, "save_steps": 2, "lora_dropout": 0.1}  # dropout: RNG state must resume too
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    assert sft.main(sft_args(model, corpus, whole, **options)) == 0
    assert sft.main(sft_args(model, corpus, interrupted, **options)) == 0
    # as if the process died after step 2's checkpoint, in the middle of the first epoch
    for name in ("checkpoints/checkpoint-4", "checkpoints/checkpoint-5", "adapter", "run.json"):
        shutil.rmtree(interrupted / name) if (interrupted / name).is_dir() else (interrupted / name).unlink()
    assert sft.main(sft_args(model, corpus, interrupted, **options)) == 2  # refuses to restart silently
    assert sft.main(sft_args(model, corpus, interrupted, resume=True, **options)) == 0

    whole_run, resumed_run = (json.loads((d / "run.json").read_text()) for d in (whole, interrupted))
    assert resumed_run["training"]["resumed_from"] == "checkpoint-2"
    assert resumed_run["adapter"]["sha256"] == whole_run["adapter"]["sha256"]
    assert resumed_run["training"]["loss_history"] == whole_run["training"]["loss_history"]
    from safetensors.torch import load_file

    a, b = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (whole, interrupted))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_multi_task_role_trains_on_the_union_of_local_corpora(model, corpus, tmp_path) -> None:
    out = tmp_path / "mt"
    assert sft.main(sft_args(model, corpus, out, role="multi-task", max_steps=1, eval_fraction=0)) == 0
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["roles"] == ["planner", "caller", "summarizer"] and data["train_examples"] == 8 + 5 + 2


def test_user_errors_name_the_flag(model, corpus, tmp_path, capsys) -> None:
    assert sft.main(sft_args(model, tmp_path / "nowhere", tmp_path / "r", role="planner")) == 2
    assert "--corpus" in capsys.readouterr().err
    assert sft.main(sft_args(tmp_path, corpus, tmp_path / "r", role="planner")) == 2
    assert "--model" in capsys.readouterr().err
    one_sided = sample_corpus(tmp_path / "all-a", split_ratio=1.0)
    assert sft.main(sft_args(model, one_sided, tmp_path / "r", role="summarizer", split="B")) == 2
    assert "no summarizer examples in split B" in capsys.readouterr().err
    assert sft.main(sft_args(model, corpus, tmp_path / "r", role="planner", target_modules=["nope"])) == 2
    assert "--target-modules" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        sft.main(sft_args(model, corpus, tmp_path / "r", role="judge"))
    assert exit_info.value.code == 2 and "--role" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sft.main(sft_args(model, corpus, tmp_path / "r", role="planner", learning_rate=-1))
    assert "--learning-rate" in capsys.readouterr().err


def test_module_entry_point_reports_without_traceback(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "umi_train.sft", "--model", str(tmp_path), "--corpus", str(tmp_path / "missing"),
         "--role", "planner", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"umi-train sft: error: --corpus {tmp_path / 'missing'}: no such directory"
    for command, expected in (("sft", "multi-task"), ("glpft", "no-reuse"), ("tiny", "--vocab-size")):
        help_text = subprocess.run([sys.executable, "-m", f"umi_train.{command}", "--help"], capture_output=True, text=True, cwd=REPO)
        assert help_text.returncode == 0 and expected in help_text.stdout, help_text.stderr


def test_trainer_groups_batches_by_length_and_packs_or_pads(model, corpus, tmp_path) -> None:
    from umi_train.collate import PackingCollator, PaddingCollator
    from umi_train.sampling import EpochSeededLengthSampler
    from umi_train.config import SFTConfig

    config = SFTConfig(model=model, corpus=corpus, role="backbone", out=tmp_path / "r", **FAST_OPTIONS)
    prepared = sft.prepare(config)
    assert prepared.padding == "packed" and prepared.max_length == 1024
    trainer = sft.build_trainer(config, prepared)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, EpochSeededLengthSampler) and sampler.lengths == prepared.train["length"]
    first = list(sampler)
    assert sorted(first) == list(range(len(first))) and list(sampler) == first  # a permutation, the same for the same epoch
    assert isinstance(trainer.data_collator, PackingCollator)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()  # one example begins at each 0
    assert len(starts) == config.batch_size and starts[0] == 0 and (batch["labels"][0, starts] == -100).all()
    dynamic = sft.build_trainer(config, replace(prepared, padding="dynamic"))
    assert isinstance(dynamic.data_collator, PaddingCollator) and dynamic.data_collator.max_length is None
    batch = next(iter(dynamic.get_train_dataloader()))
    assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())
    baseline = sft.build_trainer(config, replace(prepared, padding="max-length"))
    assert next(iter(baseline.get_train_dataloader()))["input_ids"].shape[1] == prepared.max_length


LOSS_GOLDEN = Path(__file__).parent / "golden" / "train_loss" / "sft_backbone_tiny.json"
PINNED = ("torch", "transformers", "peft", "tokenizers")


def test_loss_curve_matches_golden_in_its_pinned_environment(model, corpus, tmp_path) -> None:
    """Six steps on the backbone corpus; regenerate with UMI_UPDATE_GOLDEN=1 after an intended change."""
    import os

    from umi_train.provenance import versions

    environment = {name: versions()[name] for name in PINNED}
    out = tmp_path / "curve"
    assert sft.main(sft_args(model, corpus, out, role="backbone", max_steps=6, eval_fraction=0)) == 0
    losses = [round(entry["loss"], 4) for entry in json.loads((out / "run.json").read_text())["training"]["loss_history"]]
    if os.environ.get("UMI_UPDATE_GOLDEN"):
        LOSS_GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        LOSS_GOLDEN.write_text(json.dumps({"environment": environment, "torch_threads": 1, "losses": losses}, indent=2) + "\n")
    golden = json.loads(LOSS_GOLDEN.read_text())
    if golden["environment"] != environment:
        pytest.skip(f"loss golden pinned to {golden['environment']}, running {environment}")
    assert losses == pytest.approx(golden["losses"], abs=2e-3), losses
    assert losses[-1] < losses[0]


def test_loss_golden_is_pinned_to_the_locked_versions() -> None:
    """A fresh clone installs requirements.lock (`make test`), so the golden above runs there only
    if it is pinned to the locked versions: a `make lock` that moves one of them must regenerate
    the golden (UMI_UPDATE_GOLDEN=1) in the same commit."""
    lock = Path(__file__).resolve().parents[1] / "requirements.lock"
    pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#"))
    golden = json.loads(LOSS_GOLDEN.read_text())["environment"]
    assert {name: version.split("+")[0] for name, version in golden.items()} == {name: pins[name] for name in PINNED}


def test_gradient_checkpointing_trains_the_same_and_long_targets_are_reported(model, corpus, tmp_path, capsys) -> None:
    histories = []
    for name, extra in (("plain", {}), ("checkpointed", {"gradient_checkpointing": True})):
        assert sft.main(sft_args(model, corpus, tmp_path / name, role="caller", max_steps=2, eval_fraction=0, **extra)) == 0
        histories.append(json.loads((tmp_path / name / "run.json").read_text())["training"]["loss_history"])
    plain, checkpointed = ([entry["loss"] for entry in history] for history in histories)
    assert checkpointed == pytest.approx(plain, abs=1e-5)
    assert sft.main(sft_args(model, corpus, tmp_path / "short", role="caller", max_length=12)) == 2
    assert "the target alone is" in capsys.readouterr().err


def test_max_length_is_bounded_by_the_model_positions_and_truncations_counted(corpus, tmp_path, capsys) -> None:
    """GPT-2-style learned positions (128 here): the default 4096 would index past the position
    table (IndexError); it is bounded, said in one line, and every cut example is counted."""
    gpt2 = tiny_model(tmp_path / "gpt2", corpus, architecture="gpt2", max_position_embeddings=128)
    options = {key: value for key, value in FAST_OPTIONS.items() if key != "max_length"}
    for given, expected in ((None, "the default max length 4096"), (2000, "--max-length 2000")):
        out = tmp_path / f"run-{given}"
        assert sft.main(sft_args(gpt2, corpus, out, role="caller", max_steps=1, max_length=given, **options)) == 0
        assert f"{expected} is more than the model's 128 positions" in capsys.readouterr().out
        data = json.loads((out / "run.json").read_text())["data"]
        assert data["max_length"] == 128 and data["truncated_examples"] == data["train_examples"] + data["eval_examples"] == 5
    assert sft.main(sft_args(gpt2, corpus, tmp_path / "short", role="caller", max_steps=1, max_length=100, **options)) == 0
    assert "positions" not in capsys.readouterr().out


def test_precision_and_attention_options_pass_through_or_are_refused_in_one_line(model, corpus, tmp_path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU refusals; a CUDA GPU is visible")
    for flags, message in ((["--fp16"], "--fp16: float16 mixed precision needs a CUDA GPU"),
                           (["--attn-implementation", "flash_attention_2"], "--attn-implementation flash_attention_2: flash-attention needs a CUDA GPU")):
        assert sft.main([*sft_args(model, corpus, tmp_path / "refused", role="caller", max_steps=1), *flags]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith(f"umi-train sft: error: {message}") and "\n" not in error
    assert not (tmp_path / "refused").exists()  # refused before anything was written
    with pytest.raises(SystemExit):
        sft.main([*sft_args(model, corpus, tmp_path / "both", role="caller"), "--bf16", "--fp16"])
    assert "--bf16 and --fp16 exclude each other" in capsys.readouterr().err
    out = tmp_path / "bf16-eager"
    assert sft.main([*sft_args(model, corpus, out, role="caller", max_steps=1, eval_fraction=0), "--bf16", "--attn-implementation", "eager"]) == 0
    training = json.loads((out / "run.json").read_text())["training"]
    assert training["precision"] == "bf16" and training["attn_implementation"] == "umi_packed_eager" and training["loss_history"][0]["loss"] > 0


def test_progress_lines_without_a_terminal_and_none_when_quiet(model, corpus, tmp_path, capsys) -> None:
    """Output to a pipe (as under `make demo`) gets a progress line about every tenth of the steps
    and one per evaluation, not the Trainer's per-step log dicts; --quiet prints neither."""
    assert sft.main(sft_args(model, corpus, tmp_path / "a", role="caller", max_steps=10, eval_steps=5, eval_fraction=0.3, quiet=False)) == 0
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if ": caller (split all): step " in line and ", loss " in line]
    assert [line.split("step ")[1].split(",")[0] for line in steps] == [f"{n}/10" for n in range(1, 11)]
    assert "eval loss" in out and "{'loss'" not in out
    assert sft.main(sft_args(model, corpus, tmp_path / "b", role="caller", max_steps=10, eval_steps=5, eval_fraction=0.3)) == 0
    out = capsys.readouterr().out
    assert ": step " not in out and "{'loss'" not in out and "10 steps, loss" in out


def test_eval_set_is_capped(model, corpus, tmp_path) -> None:
    from umi_train.data import select_examples, split_eval

    rows = select_examples(corpus, ("backbone",), None)
    every, capped = split_eval(rows, 0.5), split_eval(rows, 0.5, 3)
    assert len(every.eval) > 3 and len(capped.eval) == 3 and set(map(id, capped.eval)) <= set(map(id, every.eval))
    assert capped.train == every.train and capped.eval_instructions == every.eval_instructions  # capped rows stay out of training
    assert sft.main(sft_args(model, corpus, tmp_path / "r", role="backbone", max_steps=1, eval_fraction=0.5, max_eval_examples=3)) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text())["data"]["eval_examples"] == 3
