"""The paper's five training setups (Table 1) as selections of one corpus.

A variant is one or two stages; each stage trains models from the base checkpoint or from the
stage-1 model, on parts of the corpus (one model per part), restricted to an instruction split
or not. `python -m umi_data export` writes these selections for other trainers and
`python -m umi_train.glpft` trains them, both from this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LOCAL_ROLES = ("planner", "caller", "summarizer")
#: The file layouts `python -m umi_data export --format` writes (here, light, for the CLI's help).
#: The chat formats (`umi_data.exports.chat_export`): whole trajectories and role examples as chats.
CHAT_FORMATS: tuple[str, ...] = ("openai", "trl-chat", "llamafactory-sharegpt", "hermes")
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "trl", "llamafactory", "alpha-umi", *CHAT_FORMATS)


@dataclass(frozen=True)
class Part:
    """One model's training data: the union of some role corpora, in this order."""

    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    name: Literal["stage1", "stage2"]
    #: what the stage's models start from: the base checkpoint or the merged stage-1 model
    init: Literal["base", "stage1"]
    parts: tuple[Part, ...]
    #: the instruction split the stage trains on (None: all examples)
    split: Literal["A", "B"] | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    paper_row: str
    description: str
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.name == name), None)


_BACKBONE = (Part("backbone", ("backbone",)),)
_ROLE_MODELS = tuple(Part(role, (role,)) for role in LOCAL_ROLES)

VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "reuse", "α-UMi w/ reuse",
            "stage 1: backbone on all instructions; stage 2: planner, caller and summarizer from the stage-1 model, on all instructions",
            (Stage("stage1", "base", _BACKBONE), Stage("stage2", "stage1", _ROLE_MODELS)),
        ),
        Variant(
            "no-reuse", "α-UMi w/o reuse",
            "stage 1: backbone on split A; stage 2: planner, caller and summarizer from the stage-1 model, on split B (disjoint instructions)",
            (Stage("stage1", "base", _BACKBONE, split="A"), Stage("stage2", "stage1", _ROLE_MODELS, split="B")),
        ),
        Variant(
            "one-stage", "Multi-LLM one-stage",
            "no stage 1: planner, caller and summarizer from the base model, on all instructions",
            (Stage("stage2", "base", _ROLE_MODELS),),
        ),
        Variant(
            "multi-task", "Single-LLM multi-task",
            "one model from the base model on the union of the planner, caller and summarizer corpora",
            (Stage("stage2", "base", (Part("multi_task", LOCAL_ROLES),)),),
        ),
        Variant(
            "single", "Single-LLM",
            "one model from the base model on the backbone (global) corpus; it plays every role with the backbone prompt",
            (Stage("stage1", "base", _BACKBONE),),
        ),
    )
}


class UnknownVariantError(ValueError):
    pass


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariantError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}") from None


__all__ = ["CHAT_FORMATS", "EXPORT_FORMATS", "LOCAL_ROLES", "Part", "Stage", "Variant", "VARIANTS", "UnknownVariantError", "get_variant"]
