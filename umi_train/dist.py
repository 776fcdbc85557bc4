"""Process-group and device helpers so one code path runs under plain `python -m` and under
`torchrun` / `accelerate launch`, on CPU or GPU.

Only rank 0 writes run files; the other ranks wait at barriers so that every rank sees the
same completed stages. Rank and world size come from the environment torchrun and
`accelerate launch` set, so they are known before torch is imported.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def use_cpu() -> bool:
    """Train on CPU when no GPU is visible; transformers must be told, or under torchrun on CPU
    every process silently trains alone."""
    import torch

    return not torch.cuda.is_available()


def init_process_group() -> None:
    """Join the process group now (gloo on CPU) when launched with several processes, the way
    the Trainer would, so barriers work before the first Trainer exists."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState(cpu=use_cpu())


def _initialized() -> bool:
    import torch.distributed as distributed

    return distributed.is_available() and distributed.is_initialized()


def barrier() -> None:
    if world_size() > 1 and _initialized():
        import torch.distributed as distributed

        distributed.barrier()


def gather(value: Any) -> list[Any]:
    """`value` from every rank, in rank order (a one-element list without a process group)."""
    if world_size() > 1 and _initialized():
        import torch.distributed as distributed

        values: list[Any] = [None] * distributed.get_world_size()
        distributed.all_gather_object(values, value)
        return values
    return [value]


def precision(bf16: bool, fp16: bool) -> dict[str, bool]:
    """The Trainer's `bf16`/`fp16`: as asked where this machine can do it (a usage error where it
    cannot); by default bf16 on a GPU that supports it, full precision otherwise."""
    import torch

    from umi_train.config import UsageError

    cuda = torch.cuda.is_available()
    if fp16 and not cuda:
        raise UsageError("--fp16: float16 mixed precision needs a CUDA GPU (on CPU use --bf16, or neither)")
    if bf16 and cuda and not torch.cuda.is_bf16_supported():
        raise UsageError("--bf16: this GPU has no bfloat16 support; use --fp16")
    if bf16 or fp16:
        return {"bf16": bf16, "fp16": fp16}
    return {"bf16": cuda and torch.cuda.is_bf16_supported(), "fp16": False}


def check_attention(implementation: str | None) -> None:
    """Refuse, in one line, an attention kernel this machine cannot run before any model is loaded."""
    import torch

    from umi_train.config import UsageError

    if implementation and implementation.startswith("flash_attention") and not torch.cuda.is_available():
        raise UsageError(f"--attn-implementation {implementation}: flash-attention needs a CUDA GPU (and the flash-attn package); use sdpa or eager here")
