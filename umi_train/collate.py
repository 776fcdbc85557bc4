"""Batching encoded examples: dynamic padding (umi's default) or padding to a fixed length.

The official α-UMi trainer pads every example to `model_max_length` (4096): most of each batch
is then padding, and attention over padding still costs compute. umi pads a batch only to its
longest example and, through the Trainer's length-grouped sampler (`length` column), puts
examples of similar length together so that little padding remains. Both are one collator:
`max_length=None` pads to the longest, an integer pads to that length (the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from umi_train.encode import IGNORE_INDEX


@dataclass(frozen=True)
class PaddingCollator:
    """Right-pads `input_ids` (with `pad_token_id`) and `labels` (with -100) and adds the
    attention mask; other keys of the examples (ids, lengths) are dropped."""

    pad_token_id: int
    max_length: int | None = None
    pad_to_multiple_of: int | None = None

    def target_length(self, longest: int) -> int:
        if self.max_length is not None:
            if longest > self.max_length:
                raise ValueError(f"an example of {longest} tokens is longer than the padding length {self.max_length}")
            return self.max_length
        if self.pad_to_multiple_of:
            return -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        return longest

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        length = self.target_length(max(len(example["input_ids"]) for example in examples))
        input_ids = torch.full((len(examples), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
        for row, example in enumerate(examples):
            size = len(example["input_ids"])
            input_ids[row, :size] = torch.as_tensor(example["input_ids"])
            labels[row, :size] = torch.as_tensor(example["labels"])
            attention_mask[row, :size] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad token, else EOS (the pad positions are masked out anyway)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return candidate
    return 0


def make_collator(tokenizer: Any, padding: str, max_length: int) -> PaddingCollator:
    """The collator of a `--padding` choice: `dynamic` or `max-length`."""
    if padding == "dynamic":
        return PaddingCollator(pad_token_id(tokenizer))
    if padding == "max-length":
        return PaddingCollator(pad_token_id(tokenizer), max_length=max_length)
    raise ValueError(f"unknown padding {padding!r}; expected dynamic or max-length")

