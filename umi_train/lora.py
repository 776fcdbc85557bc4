"""LoRA adapters: what to adapt (derived from the model, not a table), attaching, merging, digests.

Every linear layer of attention and MLP is adapted, the output head excepted (the QLoRA
finding: adapting all linear layers of the block matters more than the rank): peft's
`all-linear`. transformers 5 stores the experts of MoE models (Mixtral, Qwen3-MoE) as one
stacked 3-D parameter per projection, which no module target reaches; those are adapted
through peft's `target_parameters` where the installed peft has it, and peft adapts parameters
only without dropout, so `--lora-dropout` defaults to 0 on such models. What was adapted and
what was not is read back from the wrapped model (`lora_report`): one line, and run.json.
`--target-modules` replaces the default.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from umi_train.config import TrainOptions, UsageError

DEFAULT_DROPOUT = 0.05
_LAYER_PREFIX = re.compile(r"^(.*?\.)?\d+\.")  # `model.layers.3.` -> the path inside one block


def per_layer(name: str) -> str:
    """`model.layers.3.mlp.up_proj.weight` -> `mlp.up_proj.weight`: one name for every layer's copy."""
    return _LAYER_PREFIX.sub("", name, count=1)


def fused_expert_parameters(model: Any) -> tuple[str, ...]:
    """Per-layer names of 3-D weights (a stack of expert matrices), which module targets miss."""
    return tuple(sorted({per_layer(name) for name, parameter in model.named_parameters() if parameter.ndim == 3}))


def peft_adapts_parameters() -> bool:
    """Whether the installed peft has `target_parameters` (peft >= 0.17)."""
    from peft import LoraConfig

    return "target_parameters" in LoraConfig.__dataclass_fields__


@dataclass(frozen=True)
class Targets:
    """What peft is asked to adapt, and the dropout that allows it."""

    modules: str | list[str]
    parameters: tuple[str, ...]
    dropout: float
    left_out: tuple[str, ...]  # fused expert weights peft cannot adapt here, with the reason


def choose_targets(model: Any, options: TrainOptions) -> Targets:
    """`all-linear` (or `--target-modules`), plus the fused experts when peft can adapt them."""
    modules: str | list[str] = list(options.target_modules) if options.target_modules else "all-linear"
    fused = fused_expert_parameters(model) if not options.target_modules else ()
    dropout = DEFAULT_DROPOUT if options.lora_dropout is None else options.lora_dropout
    if not fused:
        return Targets(modules, (), dropout, ())
    if not peft_adapts_parameters():
        from importlib.metadata import version

        reason = f"peft {version('peft')} has no target_parameters; peft >= 0.17 adapts them"
        return Targets(modules, (), dropout, tuple(f"{name} ({reason})" for name in fused))
    if options.lora_dropout:
        raise UsageError(f"--lora-dropout {options.lora_dropout}: peft adapts the fused expert weights of {model.config.model_type} "
                         "only without dropout; pass --lora-dropout 0 (the default here), or --target-modules to leave the experts out")
    return Targets(modules, fused, 0.0, ())


@contextmanager
def _peft_deprecations_ignored() -> Iterator[None]:
    """peft 0.21 asks transformers 5 a deprecated question when wrapping a model, and on MoE
    models warns about rank patterns of its own v4-name conversion; nothing to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*(rank|alpha)_pattern keys did not match.*gate_up_proj", category=RuntimeWarning)
        yield


def attach_lora(model: Any, options: TrainOptions) -> Any:
    """`model` wrapped as a trainable `PeftModel` (base weights frozen); what it adapts is
    `lora_report(wrapped)`."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = choose_targets(model, options)
    extra = {"target_parameters": list(targets.parameters)} if targets.parameters else {}
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=targets.dropout,
        target_modules=targets.modules, fan_in_fan_out=any(isinstance(module, Conv1D) for module in model.modules()), **extra,
    )
    try:
        with _peft_deprecations_ignored():
            wrapped = get_peft_model(model, config)
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        raise UsageError(f"--target-modules: {exc}") from None
    wrapped.umi_left_out = targets.left_out
    return wrapped


def lora_report(model: Any) -> dict[str, Any]:
    """Which weights of a `PeftModel` carry LoRA and which do not, as per-layer names:
    `modules` (adapted layers), `parameters` (adapted raw parameters: fused experts, routers),
    `not_adapted` (every other weight matrix: embeddings, the output head, anything missed)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    def clean(name: str) -> str:
        return name.removeprefix("base_model.model.").replace(".base_layer", "")

    modules, parameters = set(), set()
    for name, module in model.named_modules():
        if isinstance(module, BaseTunerLayer):
            wrapped = getattr(module, "parameter_name", None)
            (parameters if wrapped else modules).add(clean(f"{name}.{wrapped}" if wrapped else name))
    not_adapted = set()
    for name, parameter in model.named_parameters():
        name = clean(name)
        if parameter.ndim >= 2 and ".lora_" not in name and name not in parameters and name.rpartition(".")[0] not in modules:
            not_adapted.add(per_layer(name))
    config = next(iter(model.peft_config.values()))
    return {"modules": sorted({per_layer(name) for name in modules}), "parameters": sorted({per_layer(name) for name in parameters}),
            "not_adapted": sorted(not_adapted), "left_out": list(getattr(model, "umi_left_out", ())),
            "r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout}


def describe(report: dict[str, Any]) -> str:
    """The report as one line."""
    parameters = f"; parameters {', '.join(report['parameters'])}" if report["parameters"] else ""
    left_out = f"; left out: {', '.join(report['left_out'])}" if report["left_out"] else ""
    return (f"LoRA r={report['r']} dropout={report['dropout']} on modules {', '.join(report['modules'])}{parameters}; "
            f"not adapted: {', '.join(report['not_adapted']) or 'nothing'}{left_out}")


def load_base(model_dir: Path, attn_implementation: str | None = None) -> Any:
    """A causal LM from a local directory, in the dtype it was saved in; an attention kernel
    transformers cannot use for it (flash-attn not installed, not supported) is a usage error."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto", attn_implementation=attn_implementation)
    except (ImportError, ValueError) as exc:
        if attn_implementation is None:
            raise
        raise UsageError(f"--attn-implementation {attn_implementation}: {str(exc).splitlines()[0]}") from None


def load_with_adapter(model_dir: Path, adapter_dir: Path) -> Any:
    """Base model + adapter, unmerged (the reference the merged model is checked against)."""
    from peft import PeftModel

    base = load_base(model_dir)
    with _peft_deprecations_ignored():
        return PeftModel.from_pretrained(base, adapter_dir)


def merged_model(model_dir: Path, adapter_dir: Path) -> Any:
    """Base model with the adapter folded into its weights: an ordinary model again."""
    return load_with_adapter(model_dir, adapter_dir).merge_and_unload()


def lora_tensors(model: Any) -> dict[str, Any]:
    """The LoRA entries of a `PeftModel`'s state dict, whole. Under FSDP2 each rank holds shards
    (DTensors), gathered here: a collective, so every rank calls it, in the same order."""
    return {name: tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
            for name, tensor in model.state_dict().items() if ".lora_" in name}


def adapter_state(model: Any, tensors: dict[str, Any] | None = None) -> dict[str, Any]:
    """The adapter's tensors as saved (`lora_tensors(model)` unless given)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, state_dict=lora_tensors(model) if tensors is None else tensors)
