"""The corpus directory: its layout constants, the check that one is complete, and the reading
side for users of HF datasets (`load_corpus(DIR, role)`). The files are written by
`umi_data.building.writer.CorpusWriter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS

ALPHA_UMI_DIR = "alpha_umi"
TRAJECTORIES = "trajectories.parquet"
REJECTS = "rejects.jsonl"
INPUTS = "inputs.jsonl"
#: Written last by `build`: a directory with a manifest is a complete corpus.
MANIFEST = "manifest.json"


class CorpusNotFoundError(ValueError):
    """A path that is not a complete corpus directory (a usage error)."""


def require_corpus(directory: str | Path) -> Path:
    """`directory` as a Path, if it holds a complete corpus (its manifest); else a clear error."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise CorpusNotFoundError(
            f"{directory}: not a complete corpus directory (no {MANIFEST}); build one with `umi-data build`"
        )
    return directory


#: `load_corpus(..., split=...)`: the share of instructions in validation and in test by default.
HELD_OUT_SHARES = (0.05, 0.05)
SPLITS = ("train", "validation", "test")


def load_corpus(directory: str | Path, role: str, split: str | None = None, *,
                held_out: tuple[float, float] = HELD_OUT_SHARES, seed: int = 0) -> Any:
    """One role corpus (or `"trajectories"`) of a corpus directory as a `datasets.Dataset`.

    With `split="all"`, a `datasets.DatasetDict` of `train`, `validation` and `test`, split by
    instruction (every example of one instruction in one split, so nothing held out was seen in
    training): `held_out` are the shares of instructions in validation and test, assigned by a
    seeded hash of `instruction_id`, stable across rebuilds and roles (the same instruction is in
    the same split in the planner, caller and summarizer corpora). `split="train"` (or
    `"validation"`, `"test"`) returns that split alone."""
    import datasets

    directory = Path(directory)
    if role == "trajectories":
        path = directory / "trajectories.parquet"
    elif role in ROLE_PATHS:
        path = directory / f"{ROLE_PATHS[role]}.parquet"
    else:
        raise ValueError(f"unknown role {role!r}; choose one of: trajectories, {', '.join(EXAMPLE_ROLES)}")
    if split is not None and split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}, all")
    validation, test = held_out
    if not (0 <= validation and 0 <= test and validation + test < 1):
        raise ValueError(f"held_out shares must be >= 0 and leave some training data, got {held_out}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; is {directory} a corpus directory built by `umi-data build`?")
    whole = datasets.Dataset.from_parquet(str(path))
    if split is None:
        return whole
    names = [instruction_split(i, validation, test, seed) for i in whole["instruction_id"]]
    parts = datasets.DatasetDict({name: whole.select([i for i, n in enumerate(names) if n == name]) for name in SPLITS})
    return parts if split == "all" else parts[split]


def instruction_split(instruction_id: str, validation: float, test: float, seed: int = 0) -> str:
    """`train`, `validation` or `test` for one instruction: a seeded hash of its id, uniform in [0, 1)."""
    import hashlib

    digest = hashlib.sha256(f"umi-split\x00{seed}\x00{instruction_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if point < test else "validation" if point < test + validation else "train"
