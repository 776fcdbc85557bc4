"""LoRA adapters: which modules to adapt for an architecture, attaching, merging, digests.

Attention and MLP projections are adapted (the QLoRA finding: adapting all linear layers of
the block matters more than the rank). The names differ per architecture, so they come from a
table keyed by `config.model_type`; `--target-modules` overrides it for anything else.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from umi_train.config import TrainOptions, UsageError

_LLAMA_LIKE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    **{name: _LLAMA_LIKE for name in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "olmo2")},
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "opt": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
}
#: architectures whose linear layers store weights transposed (GPT-2's Conv1D)
FAN_IN_FAN_OUT = frozenset({"gpt2"})


def target_modules_for(model_type: str, override: Sequence[str] | None) -> tuple[str, ...]:
    """The module names to adapt: the override, else the architecture's entry in the table."""
    if override:
        return tuple(override)
    if model_type not in TARGET_MODULES:
        raise UsageError(
            f"no default LoRA target modules for model type {model_type!r} (known: {', '.join(sorted(TARGET_MODULES))}); "
            "pass --target-modules"
        )
    return TARGET_MODULES[model_type]


@contextmanager
def _peft_deprecations_ignored() -> Iterator[None]:
    """peft 0.21 asks transformers 5 a deprecated question when wrapping a model; nothing to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def attach_lora(model: Any, options: TrainOptions) -> Any:
    """`model` wrapped as a trainable `PeftModel` (base weights frozen)."""
    from peft import LoraConfig, TaskType, get_peft_model

    model_type = model.config.model_type
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
        target_modules=list(target_modules_for(model_type, options.target_modules)),
        fan_in_fan_out=model_type in FAN_IN_FAN_OUT,
    )
    try:
        with _peft_deprecations_ignored():
            return get_peft_model(model, config)
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        raise UsageError(f"--target-modules: {exc}") from None


def load_base(model_dir: Path) -> Any:
    """A causal LM from a local directory, in the dtype it was saved in."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")


def load_with_adapter(model_dir: Path, adapter_dir: Path) -> Any:
    """Base model + adapter, unmerged (the reference the merged model is checked against)."""
    from peft import PeftModel

    base = load_base(model_dir)
    with _peft_deprecations_ignored():
        return PeftModel.from_pretrained(base, adapter_dir)


def merged_model(model_dir: Path, adapter_dir: Path) -> Any:
    """Base model with the adapter folded into its weights: an ordinary model again."""
    return load_with_adapter(model_dir, adapter_dir).merge_and_unload()


def adapter_state(model: Any) -> dict[str, Any]:
    """The adapter's trainable tensors of a `PeftModel`."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)
