"""The order of training examples, fixed by the seed and the epoch alone, so that a resumed run
sees the examples an uninterrupted one sees.

The Trainer's length-grouped sampler draws each epoch's order from the global torch RNG when
the epoch's iterator starts. Resuming in the middle of a later epoch, the Trainer restores the
RNG state only after fast-forwarding past the batches already trained, so that epoch's order
was drawn from the freshly seeded process RNG instead of the state an uninterrupted run had
reached: a 5-step run of 5 examples in batches of 2 (3 batches per epoch) resumed from
checkpoint-4 trained its last step on other examples (checkpoints 1-3 resumed exactly, being
in the first epoch or at an epoch boundary). Here each epoch's order comes from a generator
seeded with (data seed, epoch), and the Trainer tells the sampler the epoch (`set_epoch`), as
it does for distributed samplers: the order no longer depends on what consumed the RNG before.
Imported only by the training code (it needs transformers).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import Sampler
from transformers import Trainer
from transformers.trainer_pt_utils import get_length_grouped_indices


class EpochSeededLengthSampler(Sampler[int]):
    """Length-grouped indices (mega-batches of similar lengths, the longest first, as the
    Trainer's own sampler groups them), shuffled by a generator seeded with (seed, epoch)."""

    def __init__(self, lengths: Sequence[int], group_size: int, seed: int) -> None:
        self.lengths, self.group_size, self.seed, self.epoch = list(lengths), group_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.group_size, generator=generator))


class UmiTrainer(Trainer):
    """The Trainer with an epoch-seeded length-grouped sampler (module docstring)."""

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or dataset is None:
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        group = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return EpochSeededLengthSampler(dataset[self.args.length_column_name], group, seed)


__all__ = ["EpochSeededLengthSampler", "UmiTrainer"]
