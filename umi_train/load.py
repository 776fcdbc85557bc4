"""`load_role(RUN, role)`: the model and tokenizer that play a role, from a finished run.

Which model plays which role follows the variant table (`umi_data.rendering.variants`): a role is played
by the part of the latest stage that trained it, on that stage's starting model (the base
model, or the merged stage-1 backbone). In the Single-LLM setup the backbone plays every role;
a role that a setup never trained (the backbone of one-stage or multi-task) is an error, not a
silent stand-in. An `sft` run directory works too: its adapter plays the roles it trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umi_data.rendering.examples import EXAMPLE_ROLES
from umi_data.rendering.variants import Part, Stage, Variant, get_variant
from umi_train.provenance import MODEL_FILE, RUN_FILE, read_json


class RoleNotTrainedError(ValueError):
    """The run has no model for the role asked for."""


def _role_part(variant: Variant, role: str) -> tuple[Stage, Part]:
    for stage in reversed(variant.stages):
        for part in stage.parts:
            if role in part.roles:
                return stage, part
    trained = {r for stage in variant.stages for part in stage.parts for r in part.roles}
    if trained == {"backbone"}:  # Single-LLM: the backbone model plays every role
        return variant.stages[0], variant.stages[0].parts[0]
    raise RoleNotTrainedError(f"variant {variant.name} trains no model for role {role!r} (it trains: {', '.join(sorted(trained))})")


def checkpoint_adapter(part_run: Path, step: int) -> Path:
    """The adapter a part's Trainer saved at `step` (`checkpoints/checkpoint-N`: adapter and tokenizer)."""
    adapter = part_run / "checkpoints" / f"checkpoint-{step}"
    if not (adapter / "adapter_config.json").is_file():
        kept = sorted(int(p.name.split("-")[1]) for p in (part_run / "checkpoints").glob("checkpoint-*")) if (part_run / "checkpoints").is_dir() else []
        raise FileNotFoundError(f"{part_run}: no checkpoint at step {step} (kept: {', '.join(map(str, kept)) or 'none'}); "
                                "train with a --save-steps that divides it and a --save-total-limit that keeps it")
    return adapter


def resolve_role(run: Path, role: str, step: int | None = None) -> tuple[Path, Path | None]:
    """(model directory, adapter directory or None) that play `role` in the run `run`; with
    `step`, the role's adapter as its Trainer checkpointed it at that step of its own stage
    (the model under it as in the finished run: the base or the whole stage-1 model)."""
    if role not in EXAMPLE_ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of: {', '.join(EXAMPLE_ROLES)}")
    glpft = read_json(run / "glpft.json")
    if glpft is not None:
        stage, part = _role_part(get_variant(glpft["variant"]), role)
        merged = run / "stage1" / "merged"
        part_run = run / stage.name / part.name
        if step is not None:
            return (Path(glpft["config"]["model"]) if stage.init == "base" else merged), checkpoint_adapter(part_run, step)
        if stage.name == "stage1" and (merged / MODEL_FILE).is_file():
            return merged, None
        base = Path(glpft["config"]["model"]) if stage.init == "base" else merged
        return base, part_run / "adapter"
    sft = read_json(run / RUN_FILE)
    if sft is None:
        raise FileNotFoundError(f"{run}: neither glpft.json nor run.json; not a finished umi_train run")
    roles = sft["data"]["roles"]
    if role not in roles and roles != ["backbone"]:
        raise RoleNotTrainedError(f"{run} trained {', '.join(roles)}, not {role!r}")
    return Path(sft["config"]["model"]), (checkpoint_adapter(run, step) if step is not None else run / "adapter")


def agent_roles(variant: str) -> tuple[str, ...]:
    """The roles an agent of this variant plays: `backbone` alone for the Single-LLM baseline,
    else the α-UMi planner, caller and summarizer."""
    return ("backbone",) if variant == "single" else ("planner", "caller", "summarizer")


def load_role(run: str | Path, role: str, step: int | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for `role`, the adapter merged in, in eval mode, ready to `generate`;
    with `step`, the adapter of the role's checkpoint at that step (`resolve_role`)."""
    from transformers import AutoTokenizer

    from umi_train.lora import load_base, merged_model

    model_dir, adapter = resolve_role(Path(run), role, step)
    model = merged_model(model_dir, adapter) if adapter is not None else load_base(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(adapter if adapter is not None else model_dir)
    return model.eval(), tokenizer
