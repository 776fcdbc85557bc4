"""Process-group helpers so one code path runs under plain `python -m` and under `torchrun`.

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
