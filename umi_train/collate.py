"""Batching encoded examples: packed without padding (umi's default), dynamic padding, or
padding to a fixed length.

The official α-UMi trainer pads every example to `model_max_length` (4096): most of each batch
is then padding, and attention over padding still costs compute. Padding each batch only to
its longest example, with the Trainer's length-grouped sampler (`length` column) putting
examples of similar length together, still leaves about a fifth of the positions as padding.
Packing leaves none: the batch's examples are laid end to end in one row, with position ids
that restart at 0 for each example, and no attention mask; transformers then builds a
block-diagonal causal mask from the position ids (and flash-attention uses them as sequence
boundaries), so no example attends to another and each example's loss is what it is alone;
`umi_train.attention` computes sdpa/eager attention per example, so the row costs the sum of
its examples. Whether the loaded model really keeps packed examples apart is checked, not
assumed (`keeps_packed_examples_apart`): where it does not, batches are padded instead.
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


@dataclass(frozen=True)
class PackingCollator:
    """The batch's examples in one row: `input_ids`, `labels` and `position_ids` of shape
    (1, total tokens). Each example's first label is -100, so the last token of one example is
    never trained to predict the first of the next (alone, nothing predicts it either)."""

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        input_ids, labels, positions = [], [], []
        for example in examples:
            size = len(example["input_ids"])
            input_ids += example["input_ids"]
            labels += [IGNORE_INDEX, *example["labels"][1:]]
            positions += range(size)
        as_row = {"dtype": torch.long}
        return {"input_ids": torch.tensor([input_ids], **as_row), "labels": torch.tensor([labels], **as_row),
                "position_ids": torch.tensor([positions], **as_row)}


def keeps_packed_examples_apart(model: Any, lengths: tuple[int, ...] = (7, 5, 9)) -> bool:
    """Whether `model`, with the attention implementation it was loaded with, gives each of a few
    packed examples the logits it gets alone: a block-diagonal mask built from the position ids
    (sdpa, eager, flex on transformers 5) or varlen flash-attention does; an implementation that
    ignores the position ids lets later examples attend to earlier ones and fails."""
    import torch

    generator = torch.Generator().manual_seed(0)
    examples = [torch.randint(0, model.config.vocab_size, (size,), generator=generator).tolist() for size in lengths]
    batch = PackingCollator()([{"input_ids": ids, "labels": ids} for ids in examples])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device), use_cache=False).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits[0] for ids in examples])
    model.train(was_training)
    scale = alone.abs().max().clamp(min=1.0)
    tolerance = 1e-4 if alone.dtype == torch.float32 else 2e-2
    return bool(((packed.float() - alone.float()).abs().max() / scale).item() <= tolerance)


def make_collator(tokenizer: Any, padding: str, max_length: int) -> PaddingCollator | PackingCollator:
    """The collator of a `--padding` choice: `packed`, `dynamic` or `max-length` (the caller has
    checked that the model keeps packed examples apart)."""
    if padding == "packed":
        return PackingCollator()
    if padding == "dynamic":
        return PaddingCollator(pad_token_id(tokenizer))
    if padding == "max-length":
        return PaddingCollator(pad_token_id(tokenizer), max_length=max_length)
    raise ValueError(f"unknown padding {padding!r}; expected packed, dynamic or max-length")

