"""Typed configurations of the training commands, and the command line generated from them.

Each command's options are the fields of one pydantic model: the field's description is the
`--help` text, its type gives the argparse type and choices, its default the default. So help
text is written once, and a config built from Python is validated exactly like one built from
the command line. Errors are reported as the flag and what was expected, never as a traceback.
"""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from umi_data.plumbing.cli import CONFIG_HELP, Parser, apply_config_file, run_guarded
from umi_data.rendering.examples import EXAMPLE_ROLES
from umi_data.rendering.variants import VARIANTS

ROLE_CHOICES = (*EXAMPLE_ROLES, "multi-task")


class UsageError(ValueError):
    """A user mistake (a missing file, a bad option): the CLI prints it on one line and exits 2."""


class TrainOptions(BaseModel):
    """How one LoRA adapter is trained; shared by `sft` and every stage of `glpft`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(default=None, ge=1, description="optimizer steps (caps each stage in glpft); default: --epochs over the data")
    epochs: float = Field(default=2.0, gt=0, description="passes over the training examples when --max-steps is not given")
    batch_size: int = Field(default=4, ge=1, description="examples per device per step")
    grad_accum: int = Field(default=1, ge=1, description="gradient accumulation steps")
    learning_rate: float = Field(default=2e-4, gt=0, description="peak learning rate")
    lr_scheduler: Literal["constant", "linear", "cosine"] = Field(default="cosine", description="learning-rate schedule after warmup")
    warmup_steps: int = Field(default=0, ge=0, description="linear warmup steps")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay")
    max_length: int | None = Field(default=None, ge=8, description="longest training sequence in tokens (inputs are truncated from the left); default and upper bound: the smaller of 4096 and the model's position limit")
    compat: Literal["alpha-umi"] | None = Field(default=None, description="alpha-umi: the official recipe ('system: ' + input, target + literal '</s>')")
    prompt_format: Literal["alpha-umi", "chat"] = Field(default="alpha-umi", description="alpha-umi: the role prompts as raw text (the paper's format); chat: each example rendered through the base model's chat template (user message, assistant target; loss on the assistant part only). Recorded in run.json; predict and run use the format a run was trained with")
    tool_docs: Literal["full", "compact"] = Field(default="full", description="full: the tool documentation as α-UMi writes it (one JSON object per tool); compact: one line per tool and one per parameter (fewer tokens). Recorded in run.json; predict and run render prompts the same way")
    padding: Literal["packed", "dynamic", "max-length"] = Field(default="packed", description="packed: each batch as one padding-free row, position ids restarting per example (used when the model's attention keeps packed examples apart, else dynamic); dynamic: pad each batch to its longest example; max-length: pad every example to --max-length (the official recipe). Batches are grouped by length except with max-length")
    gradient_checkpointing: bool = Field(default=False, description="recompute activations in the backward pass (less memory for long sequences, ~30% more compute)")
    bf16: bool = Field(default=False, description="bfloat16 mixed precision (default: on a GPU that supports it; on CPU only when asked)")
    fp16: bool = Field(default=False, description="float16 mixed precision (needs a CUDA GPU)")
    attn_implementation: Literal["eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3"] | None = Field(default=None, description="attention kernel passed to transformers (default: its choice, sdpa for most models); flash_attention_* need CUDA and the flash-attn package")
    lora_r: int = Field(default=8, ge=1, description="LoRA rank")
    lora_alpha: int = Field(default=16, ge=1, description="LoRA alpha (scaling = alpha / r)")
    lora_dropout: float | None = Field(default=None, ge=0, lt=1, description="dropout on the LoRA input; default 0.05, or 0 on MoE models whose experts are fused parameters (peft adapts those only without dropout)")
    target_modules: tuple[str, ...] | None = Field(default=None, description="module names LoRA adapts; default: every linear layer but the output head (peft's all-linear) and the fused expert weights of MoE models")
    eval_fraction: float = Field(default=0.1, ge=0, lt=1, description="share of instructions held out for the eval loss (at least one when there are two or more)")
    max_eval_examples: int = Field(default=100, ge=0, description="evaluate at most N of the held-out examples (evenly spaced; 0: all of them); the held-out instructions stay out of training either way")
    eval_steps: int | None = Field(default=None, ge=1, description="evaluate every N steps (default: --save-steps); the eval loss is always computed at the end")
    save_steps: int = Field(default=50, ge=1, description="write a resumable checkpoint every N steps")
    save_total_limit: int = Field(default=3, ge=1, description="checkpoints kept")
    logging_steps: int = Field(default=1, ge=1, description="record the training loss every N steps")
    report_to: tuple[str, ...] | None = Field(default=None, description="where the Trainer also logs: any report_to value transformers knows (tensorboard, wandb, mlflow, trackio, all...); default none. Every run writes its loss curve as RUN/loss.png either way")
    seed: int = Field(default=0, description="seed of initialisation, data order and dropout")
    quiet: bool = Field(default=False, description="no progress output: no bar on a terminal, no progress lines otherwise")

    @model_validator(mode="after")
    def _one_precision(self) -> "TrainOptions":
        if self.bf16 and self.fp16:
            raise ValueError("--bf16 and --fp16 exclude each other; give one")
        if self.compat is not None and self.prompt_format == "chat":
            raise ValueError("--compat alpha-umi is the official raw-text recipe; it does not combine with --prompt-format chat")
        return self

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("give at least one module name")
        return value

    def training_options(self) -> "TrainOptions":
        """Only the shared training fields (what glpft passes on to each stage)."""
        return TrainOptions(**{name: getattr(self, name) for name in TrainOptions.model_fields})


class _RunPaths(TrainOptions):
    """Paths are made absolute on construction: run files record where things really were."""

    @field_validator("model", "corpus", "out", check_fields=False)
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()


class SFTConfig(_RunPaths):
    """`python -m umi_train.sft`: one LoRA adapter on one role corpus."""

    model: Path = Field(description="base model: a local Hugging Face model directory")
    corpus: Path = Field(description="corpus directory written by `umi-data build`")
    role: Literal[ROLE_CHOICES] = Field(description="backbone (global corpus), planner, caller, summarizer, or multi-task (the union of the three local corpora)")  # type: ignore[valid-type]
    split: Literal["A", "B", "all"] = Field(default="all", description="instruction split to train on")
    out: Path = Field(description="run directory to write (RUN/run.json is written last)")
    resume: bool = Field(default=False, description="continue an interrupted run from its last checkpoint")


class GLPFTConfig(_RunPaths):
    """`python -m umi_train.glpft`: one of the paper's training setups, all of its stages."""

    model: Path = Field(description="base model: a local Hugging Face model directory")
    corpus: Path = Field(description="corpus directory written by `umi-data build`")
    variant: Literal[tuple(VARIANTS)] = Field(description="which of the paper's setups (see umi_data.rendering.variants)")  # type: ignore[valid-type]
    out: Path = Field(description="run directory (stage1/, stage2/, glpft.json written last)")
    resume: bool = Field(default=False, description="continue interrupted stages from their last checkpoint")
    stage1_from: Path | None = Field(
        default=None, description="take stage 1 from this finished glpft run directory instead of training it again (its backbone "
                                  "must have been trained on the same base model, corpus, split and options; its adapter is copied; "
                                  "not read when --out already holds stage 1 complete)")


def _without_none(annotation: Any) -> Any:
    """`X | None` -> `X` (an optional flag is simply not given)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def _argument(parser: argparse.ArgumentParser, name: str, field: Any) -> None:
    flag = "--" + name.replace("_", "-")
    kind = _without_none(field.annotation)
    description = field.description.replace("%", "%%")  # argparse formats help with %
    if kind is bool:
        parser.add_argument(flag, action="store_true", help=description)
        return
    if (field.json_schema_extra or {}).get("positional"):
        parser.add_argument(name, metavar=name.upper(), help=description)
        return
    options: dict[str, Any] = {"help": description, "required": field.is_required(), "default": None if field.is_required() else field.default}
    if typing.get_origin(kind) is Literal:
        options["choices"] = [choice for choice in typing.get_args(kind) if choice is not None]
    elif typing.get_origin(kind) is tuple:
        options.update(nargs="+", metavar="NAME")
    elif kind in (int, float):
        options.update(type=kind, metavar="N" if kind is int else "X")
    elif kind is Path:
        options["metavar"] = "DIR"
    elif kind is str:
        options["metavar"] = "NAME"
    parser.add_argument(flag, **options)


def build_parser(config_cls: type[BaseModel], prog: str, description: str) -> argparse.ArgumentParser:
    """A parser in umi's CLI style (`umi_data.plumbing.cli.Parser`, which brings `--quiet`) with one flag
    per field of `config_cls`: the command's own fields first, then the shared training options."""
    parser = Parser(prog=prog, description=description)
    fields = sorted(config_cls.model_fields.items(), key=lambda item: item[0] in TrainOptions.model_fields)
    training = parser.add_argument_group("training options") if issubclass(config_cls, TrainOptions) else parser
    if issubclass(config_cls, TrainOptions):
        parser.add_argument("--config", type=Path, metavar="FILE", help=CONFIG_HELP + "; the run records the options it used (run.json)")
    for name, field in fields:
        if name != "quiet":  # the shared --quiet of every umi command
            _argument(training if name in TrainOptions.model_fields else parser, name, field)
    return parser


def flag_errors(exc: ValidationError) -> str:
    """A pydantic error as `--flag: what was expected`, one clause per problem."""
    lines = []
    for error in exc.errors():
        where = ", ".join("--" + str(part).replace("_", "-") for part in error["loc"][:1]) or "config"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)


def parse_config(config_cls: type[BaseModel], argv: list[str] | None, prog: str, description: str) -> Any:
    """Parse the command line into a validated `config_cls`; exit 2 with the flag named on error."""
    parser = build_parser(config_cls, prog, description)
    apply_config_file(parser, [name for name in config_cls.model_fields if name != "quiet"], argv)
    values = {name: value for name, value in vars(parser.parse_args(argv)).items() if name in config_cls.model_fields}
    try:
        return config_cls(**values)
    except ValidationError as exc:
        parser.error(flag_errors(exc))


def run_cli(prog: str, command: Any) -> int:
    """Call `command()`; a `UsageError`, an example that cannot be encoded as asked (target longer
    than --max-length, say) or a missing file becomes one line on stderr and exit 2."""
    from umi_data.plumbing.outdir import OutDirError
    from umi_train.encode import EncodingError

    return run_guarded(prog, command, (UsageError, EncodingError, OutDirError, FileNotFoundError))
