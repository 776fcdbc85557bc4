"""The corpus directory: its layout constants, the check that one is complete, and the reading
side for users of HF datasets (`load_corpus(DIR, role)`). The files are written by
`umi_data.corpus_writer.CorpusWriter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umi_data.examples import EXAMPLE_ROLES, ROLE_PATHS

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


def load_corpus(directory: str | Path, role: str) -> Any:
    """One role corpus (or `"trajectories"`) of a corpus directory as a `datasets.Dataset`."""
    import datasets

    directory = Path(directory)
    if role == "trajectories":
        path = directory / "trajectories.parquet"
    elif role in ROLE_PATHS:
        path = directory / f"{ROLE_PATHS[role]}.parquet"
    else:
        raise ValueError(f"unknown role {role!r}; choose one of: trajectories, {', '.join(EXAMPLE_ROLES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; is {directory} a corpus directory built by `umi-data build`?")
    return datasets.Dataset.from_parquet(str(path))
