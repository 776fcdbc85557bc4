"""Writing the role corpora of a corpus directory: `global/backbone` and
`local/{planner,caller,summarizer}` as Parquet (+ JSONL), and with `compat="alpha-umi"` the
official files under `alpha_umi/`, all streamed as trajectories arrive.

Also the reading side for users of HF datasets: `load_corpus(DIR, role)`.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa

from umi_data.core import Trajectory
from umi_data.render import RenderFn
from umi_data.examples import EXAMPLE_ROLES, EXAMPLE_SCHEMA, ROLE_PATHS, RoleExample, assign_split, example_id
from umi_data.write import JsonArrayWriter, JsonlWriter, ParquetBatchWriter, atomic_open, atomic_path, file_entry

ALPHA_UMI_DIR = "alpha_umi"
#: Written last by `build`: a directory with a manifest is a complete corpus.
MANIFEST = "manifest.json"


class CorpusNotFoundError(ValueError):
    """A path that is not a complete corpus directory (a usage error)."""


def require_corpus(directory: str | Path) -> Path:
    """`directory` as a Path, if it holds a complete corpus (its manifest); else a clear error."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise CorpusNotFoundError(
            f"{directory}: not a complete corpus directory (no {MANIFEST}); build one with `python -m umi_data build`"
        )
    return directory


def _examples_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EXAMPLE_SCHEMA)


class RoleCorpusWriter:
    """Renders each trajectory into role examples and writes them, counting per role and split.

    Use as a context manager: files are moved into place only when the block succeeds."""

    def __init__(self, out: Path, render: RenderFn, split_seed: int, split_ratio: float) -> None:
        self.out, self.render = out, render
        self.split_seed, self.split_ratio = split_seed, split_ratio
        self.counts: dict[str, Counter[str]] = {role: Counter() for role in EXAMPLE_ROLES}
        self._stack = ExitStack()
        self._parquet: dict[str, ParquetBatchWriter] = {}
        self._jsonl: dict[str, JsonlWriter] = {}
        self._arrays: dict[str, JsonArrayWriter] = {}

    def __enter__(self) -> "RoleCorpusWriter":
        for role in EXAMPLE_ROLES:
            base = self.out / ROLE_PATHS[role]
            tmp = self._stack.enter_context(atomic_path(base.with_suffix(".parquet")))
            self._parquet[role] = ParquetBatchWriter(tmp, EXAMPLE_SCHEMA, _examples_table)
            self._stack.callback(self._parquet[role].close)
            self._jsonl[role] = JsonlWriter(self._stack.enter_context(atomic_open(base.with_suffix(".jsonl"))))
        return self

    def __exit__(self, *exc: Any) -> None:
        for array in self._arrays.values():
            array.close()
        self._stack.__exit__(*exc)

    def add(self, trajectory: Trajectory) -> None:
        split = assign_split(trajectory.instruction_id, self.split_seed, self.split_ratio)
        steps: Counter[str] = Counter()
        examples, official = self.render(trajectory)
        for role, input_text, target in examples:
            row = RoleExample(
                example_id=example_id(trajectory.id, role, steps[role]), trajectory_id=trajectory.id,
                instruction_id=trajectory.instruction_id, role=role, step=steps[role],
                input=input_text, target=target, split=split, source=trajectory.source,
            ).model_dump()
            steps[role] += 1
            self.counts[role][split] += 1
            self._parquet[role].write(row)
            self._jsonl[role].write(row)
        for name, records in official.items():
            writer = self._array(name)
            for record in records:
                writer.write(record)

    def _array(self, name: str) -> JsonArrayWriter:
        if name not in self._arrays:
            handle = self._stack.enter_context(atomic_open(self.out / ALPHA_UMI_DIR / f"{name}.json"))
            self._arrays[name] = JsonArrayWriter(handle)
        return self._arrays[name]

    def manifest_counts(self) -> dict[str, Any]:
        return {
            role: {"total": sum(c.values()), "A": c["A"], "B": c["B"]} for role, c in self.counts.items()
        }

    def file_entries(self) -> dict[str, Any]:
        entries = {}
        for role in EXAMPLE_ROLES:
            total = sum(self.counts[role].values())
            for suffix in (".parquet", ".jsonl"):
                name = ROLE_PATHS[role] + suffix
                entries[name] = file_entry(self.out / name, rows=total)
        for name, array in sorted(self._arrays.items()):
            entries[f"{ALPHA_UMI_DIR}/{name}.json"] = file_entry(self.out / ALPHA_UMI_DIR / f"{name}.json", rows=array.rows)
        return entries


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
        raise FileNotFoundError(f"{path}: not found; is {directory} a corpus directory built by `python -m umi_data build`?")
    return datasets.Dataset.from_parquet(str(path))
