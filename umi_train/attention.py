"""Attention over a packed row at the cost of its examples alone.

A packed batch is one row of several examples. transformers 5 keeps them apart with a
block-diagonal causal mask built from the position ids, but sdpa and eager still compute the
whole row's (tokens x tokens) scores and mask most of them away: for long examples the packed
row then costs more than the padded batch it replaces. Flash-attention's varlen kernels skip
the masked blocks on CUDA; here, on any device, `umi_packed_<base>` runs the model's own
attention function (sdpa or eager) once per example, on that example's queries, keys, values
and block of the mask (sliding windows and soft-capping included, since the base function and
its mask are unchanged), so a packed row costs the sum of its examples. Without a packed mask
(generation, padded batches) it is the base function unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

PREFIX = "umi_packed_"
BASES = ("sdpa", "eager")


def example_spans(mask: Any, length: int) -> list[tuple[int, int]] | None:
    """(start, end) of each example of a packed row, read off its block-diagonal mask: an
    example starts where a token may not see the one before it. None when there is nothing to
    split (no mask, several rows, a cache, a single example)."""
    if mask is None or mask.dim() != 4 or mask.shape[0] != 1 or mask.shape[-1] != length or mask.shape[-2] != length or length < 2:
        return None
    import torch

    previous = torch.diagonal(mask[0, 0], offset=-1)  # may token i see token i - 1?
    blocked = ~previous if previous.dtype == torch.bool else previous < 0
    starts = [0, *(blocked.nonzero().flatten() + 1).tolist()]
    if len(starts) == 1:
        return None
    return list(zip(starts, [*starts[1:], length]))


def _plainly_causal(block: Any) -> bool:
    """Whether one example's block of a boolean mask is exactly causal (no sliding window cut)."""
    import torch

    size = block.shape[-1]
    return block.dtype == torch.bool and bool(torch.equal(block[0, 0], torch.ones(size, size, dtype=torch.bool, device=block.device).tril()))


def _base_function(module: Any, base: str) -> Any:
    """The attention function the model would use for `base`: sdpa's is shared, but every
    modeling file has its own `eager_attention_forward` (soft-capping, sinks...)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if base == "eager":
        return getattr(sys.modules[type(module).__module__], "eager_attention_forward")
    return ALL_ATTENTION_FUNCTIONS[base]


def packed_attention(base: str) -> Any:
    def forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> tuple[Any, None]:
        import torch

        inner = _base_function(module, base)
        spans = example_spans(attention_mask, query.shape[2]) if key.shape[2] == query.shape[2] else None
        if spans is None:
            return inner(module, query, key, value, attention_mask, **kwargs)
        bias = kwargs.pop("position_bias", None)
        outputs = []
        for start, end in spans:
            part = {"position_bias": bias[..., start:end, start:end]} if bias is not None else {}
            block = attention_mask[:, :, start:end, start:end]
            if base == "sdpa" and bias is None and _plainly_causal(block):
                block = None  # sdpa's is_causal path: its fast kernels, no mask read
            output, _ = inner(module, query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], block, **kwargs, **part)
            outputs.append(output)
        return torch.cat(outputs, dim=1), None  # attention functions return (batch, tokens, heads, dim)

    return forward


def register() -> None:
    """Make `umi_packed_sdpa` and `umi_packed_eager` known to transformers (idempotent)."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    for base in BASES:
        if PREFIX + base not in ALL_ATTENTION_FUNCTIONS:
            ALL_ATTENTION_FUNCTIONS.register(PREFIX + base, packed_attention(base))
            ALL_MASK_ATTENTION_FUNCTIONS.register(PREFIX + base, ALL_MASK_ATTENTION_FUNCTIONS[base])


def use_packed_attention(model: Any) -> str | None:
    """Switch `model` from sdpa or eager to its per-example packed variant; the name it now
    uses, or None when it cannot switch (another implementation, or a model that does not take
    its attention function from transformers' registry)."""
    base = model.config._attn_implementation
    if base not in BASES:
        return None
    register()
    try:
        model.set_attn_implementation(PREFIX + base)
    except (ValueError, NotImplementedError):
        return None
    return PREFIX + base if model.config._attn_implementation == PREFIX + base else None


def restore_attention(model: Any, name: str) -> None:
    """Back to the base implementation (`umi_packed_sdpa` -> `sdpa`)."""
    model.set_attn_implementation(name.removeprefix(PREFIX))


def enable_packing(model: Any) -> bool:
    """Prepare `model` for packed batches: per-example attention where it can switch, then
    check that packed examples really stay apart; where they do not, the model is left as it
    was and False says to pad instead."""
    from umi_train.collate import keeps_packed_examples_apart

    switched = use_packed_attention(model)
    if keeps_packed_examples_apart(model):
        return True
    if switched:
        restore_attention(model, switched)
    return False
