"""`python -m umi_train.glpft`: one of the paper's training setups, every stage of it.

The setups are the table in `umi_data.rendering.variants`: stage 1 trains the backbone adapter on the
global corpus and, when a later stage starts from it, folds it into a full model; stage 2
trains one adapter per part (planner, caller, summarizer, or the multi-task union) on the base
model or on that merged backbone, as the variant says. Each adapter is an `sft` run directory,
so each stage skips what is already complete and resumes what was interrupted.

    RUN/stage1/backbone/   sft run (adapter, run.json)
    RUN/stage1/merged/     base + backbone adapter as a full model, umi_model.json written last
    RUN/stage2/<part>/     sft runs; their run.json records stage 1's provenance (read from disk)
    RUN/glpft.json         the variant, its stages and their runs: written last (complete)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from umi_data.plumbing.outdir import Output, atomic_dir
from umi_data.rendering.variants import Part, Stage, Variant, get_variant
from umi_data.plumbing.write import write_json
from umi_train import dist
from umi_train.checkpoints import same_training
from umi_train.config import GLPFTConfig, SFTConfig, UsageError, parse_config, run_cli
from umi_train.data import check_corpus
from umi_train.provenance import MODEL_FILE, model_identity, read_json, versions, write_model_card
from umi_train.sft import ADAPTER, RUN_FILE, comparable, finished_run, locked_run_dir, roles_of, train_adapter

PROG = "umi-train glpft"
GLPFT_FILE = "glpft.json"
MERGED = "merged"
#: markers: glpft.json, or (a run interrupted before locks existed) the config.json of a stage's first sft run
GLPFT_OUTPUT = Output(command=PROG, markers=(GLPFT_FILE, "stage1/backbone/config.json", "stage2/planner/config.json",
                                             "stage2/multi_task/config.json"), owns=("stage1", "stage2", GLPFT_FILE))


def part_role(part: Part) -> str:
    """The `sft --role` that trains a variant part: its one role, or `multi-task`."""
    if len(part.roles) == 1:
        return part.roles[0]
    if part.roles == roles_of("multi-task"):
        return "multi-task"
    raise ValueError(f"part {part.name} trains roles {part.roles}, which no sft --role selects")


def part_dir(run: Path, stage: Stage, part: Part) -> Path:
    return run / stage.name / part.name


def merged_dir(run: Path) -> Path:
    return run / "stage1" / MERGED


def stage_base(config: GLPFTConfig, stage: Stage) -> Path:
    """The model a stage's adapters train on."""
    if stage.init == "base":
        return config.model
    merged = merged_dir(config.out)
    if not (merged / MODEL_FILE).is_file():
        raise RuntimeError(f"{stage.name} starts from the stage-1 model, but {merged} is not complete")
    return merged


def part_config(config: GLPFTConfig, stage: Stage, part: Part) -> SFTConfig:
    return SFTConfig(
        **config.training_options().model_dump(), model=stage_base(config, stage), corpus=config.corpus,
        role=part_role(part), split=stage.split or "all", out=part_dir(config.out, stage, part), resume=config.resume,
    )


def write_merged(base: Path, backbone_run: Path, merged: Path) -> None:
    """Base + the run's adapter as one full model directory, written beside `merged` and renamed
    into place once its umi_model.json (the stage-1 run record, for stage 2 to read) is there."""
    from transformers import AutoTokenizer

    from umi_train.lora import merged_model

    with atomic_dir(merged) as tmp:
        merged_model(base, backbone_run / ADAPTER).save_pretrained(tmp)
        AutoTokenizer.from_pretrained(backbone_run / ADAPTER).save_pretrained(tmp)
        write_model_card(tmp, {"kind": "umi-merged", "base_model": model_identity(base),
                               "adapter": str(backbone_run / ADAPTER), "stage1_run": read_json(backbone_run / RUN_FILE)})


def merge_backbone(config: GLPFTConfig, stage: Stage, backbone_run: Path) -> Path:
    """RUN/stage1/merged, written by rank 0 unless already complete; every rank waits for it."""
    merged, base = merged_dir(config.out), stage_base(config, stage)
    if dist.is_main() and not (merged / MODEL_FILE).is_file():
        print(f"{PROG}: merging {backbone_run / ADAPTER} into {base} -> {merged}", flush=True)
        write_merged(base, backbone_run, merged)
    dist.barrier()
    return merged


def needs_merge(variant: Variant) -> bool:
    return any(stage.init == "stage1" for stage in variant.stages)


def adopt_part(config: GLPFTConfig, stage: Stage, part: Part) -> Path:
    """Copy a part of `--stage1-from`'s stage 1 into this run, so that training it finds it
    complete: the same adapter as training it again with the same options and seed, without the
    cost (reuse and single train the same backbone). Only a finished run trained exactly as this
    one would be is taken; anything else is a usage error, never a silent substitute. A rerun
    whose part is already complete here with these options (the skip check of any rerun) takes
    it as it is: the source is only read to copy, so it may since have been moved or deleted."""
    assert config.stage1_from is not None
    source, target = part_dir(config.stage1_from, stage, part), part_dir(config.out, stage, part)
    if finished_run(part_config(config, stage, part)) is None:
        check_source(config, stage, part)
        if dist.is_main():
            if target.exists() and any(target.iterdir()):
                raise UsageError(f"--stage1-from: {target} already holds a {part.name} run in progress; resume it without --stage1-from")
            print(f"{PROG}: {stage.name} {part.name} copied from {source}", flush=True)
            with atomic_dir(target) as tmp:
                # the source's .umi-lock comes along: the record that umi-train sft wrote this part
                shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints"))
    dist.barrier()
    return source


def check_source(config: GLPFTConfig, stage: Stage, part: Part) -> None:
    """A usage error unless `--stage1-from` holds this part finished and trained as this run would train it."""
    assert config.stage1_from is not None
    source = part_dir(config.stage1_from, stage, part)
    done = read_json(source / RUN_FILE)
    if done is None:
        raise UsageError(f"--stage1-from {config.stage1_from}: no finished {stage.name} {part.name} run in {source}")
    if not same_training(done["config"], comparable(part_config(config, stage, part))):
        raise UsageError(f"--stage1-from {config.stage1_from}: its {part.name} was trained with other options "
                         f"(base model, corpus, split or training options differ)")


def run_stage(config: GLPFTConfig, variant: Variant, stage: Stage) -> dict[str, Any]:
    """Train every part of one stage (each skipped when complete); the stage's summary."""
    if dist.is_main():
        names = ", ".join(part.name for part in stage.parts)
        print(f"{PROG}: {stage.name} of {variant.name} (from {stage.init}, split {stage.split or 'all'}): {names}", flush=True)
    parts = {}
    for part in stage.parts:
        copied = adopt_part(config, stage, part) if stage.name == "stage1" and config.stage1_from else None
        record = train_adapter(part_config(config, stage, part))
        losses = record["training"]["loss_history"]
        parts[part.name] = {
            "run": f"{stage.name}/{part.name}", "roles": list(part.roles), "steps": record["training"]["steps"],
            "first_loss": losses[0]["loss"] if losses else None, "last_loss": losses[-1]["loss"] if losses else None,
            "final_eval_loss": record["training"]["final_eval_loss"], "adapter_sha256": record["adapter"]["sha256"],
        }
        if copied is not None:
            parts[part.name]["copied_from"] = str(copied)
    summary = {"init": stage.init, "split": stage.split or "all", "base_model": str(stage_base(config, stage)), "parts": parts}
    if stage.name == "stage1" and needs_merge(variant):
        summary["merged"] = str(merge_backbone(config, stage, part_dir(config.out, stage, stage.parts[0])).relative_to(config.out))
    return summary


def run_glpft(config: GLPFTConfig) -> dict[str, Any]:
    """Run (or finish, or skip) every stage of `config.variant`, holding the run directory's
    lock; the record in glpft.json."""
    check_corpus(config.corpus)
    dist.init_process_group()
    with locked_run_dir(config.out, GLPFT_OUTPUT):
        return _run_glpft(config)


def _run_glpft(config: GLPFTConfig) -> dict[str, Any]:
    done = read_json(config.out / GLPFT_FILE)
    if done is not None:
        if not same_training(done["config"], comparable(config)):
            raise UsageError(f"--out {config.out}: holds a finished {done['variant']} run with different options; choose another --out")
        if dist.is_main():
            print(f"{PROG}: {config.out} is complete; nothing to do", flush=True)
        return done
    variant = get_variant(config.variant)
    stages = {stage.name: run_stage(config, variant, stage) for stage in variant.stages}
    record = {"kind": "umi-glpft-run", "variant": variant.name, "paper_row": variant.paper_row, "config": comparable(config),
              "base_model": model_identity(config.model), "stages": stages, "versions": versions()}
    if dist.is_main():
        write_json(config.out / GLPFT_FILE, record)
    dist.barrier()
    return record


def main(argv: list[str] | None = None) -> int:
    from umi_data.rendering.variants import VARIANTS

    setups = "\n".join(f"  {v.name:<11} {v.paper_row}: {v.description}" for v in VARIANTS.values())
    config = parse_config(GLPFTConfig, argv, PROG, f"Train one of the alpha-UMi setups (GLPFT stages) with LoRA.\n\nvariants:\n{setups}")

    def command() -> int:
        record = run_glpft(config)
        if dist.is_main():
            for name, stage in record["stages"].items():
                for part, run in stage["parts"].items():
                    print(f"{PROG}: {name} {part}: {run['steps']} steps, loss {run['first_loss']:.4f} -> {run['last_loss']:.4f}")
            print(f"{PROG}: variant {record['variant']} complete -> {config.out / GLPFT_FILE}")
        return 0

    return run_cli(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
