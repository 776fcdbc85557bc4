"""Joining parts, in input order, into the files of a corpus directory.

Parts (`umi_data.building.parts`) arrive already serialised, so `CorpusWriter` only copies bytes, cuts
Parquet row groups and hashes what it writes. It cuts row groups of `ROW_GROUP_ROWS` rows
whatever the parts' sizes, so the files are byte-identical however the input was divided: one
process, `--workers N`, or shards joined by `merge` (`umi_data.building.shards`), which writes through the
same class. The one state that crosses parts, compat mode's stale backbone input
(`render.STALE_INPUT`), is resolved here when parts are joined.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from umi_data.core import Reject
from umi_data.corpus.layout import ALPHA_UMI_DIR, INPUTS, REJECTS, TRAJECTORIES
from umi_data.rendering.examples import EXAMPLE_ROLES, EXAMPLE_SCHEMA, ROLE_PATHS, append_lengths, text_lengths
from umi_data.corpus.stats import TurnCounter
from umi_data.building.parts import MAX_REJECTS_KEPT, BuildStats, Part
from umi_data.rendering.render import STALE_INPUT
from umi_data.corpus.rows import TRAJECTORY_SCHEMA
from umi_data.plumbing.write import PARQUET_OPTIONS, HashingWriter, JsonArrayWriter, atomic_open, atomic_path, file_entry

ROW_GROUP_ROWS = 2048


class TableWriter:
    """Appends Arrow tables to a Parquet file in row groups of exactly `ROW_GROUP_ROWS` rows
    (the last shorter), so the bytes do not depend on how the rows arrived."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema, **PARQUET_OPTIONS)
        self._pending: list[pa.Table] = []
        self._rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        while self._rows >= ROW_GROUP_ROWS:
            joined = pa.concat_tables(self._pending)
            self._write_group(joined.slice(0, ROW_GROUP_ROWS))
            rest = joined.slice(ROW_GROUP_ROWS)
            self._pending, self._rows = [rest], rest.num_rows

    def _write_group(self, table: pa.Table) -> None:
        if table.num_rows:
            # One contiguous chunk per column: pages then fall where they fall in a one-piece build.
            self._writer.write_table(table.combine_chunks())
            self.rows += table.num_rows

    def close(self) -> None:
        if self._rows:
            self._write_group(pa.concat_tables(self._pending))
        self._pending, self._rows = [], 0
        self._writer.close()


class CorpusWriter:
    """Writes parts, in order, into the files of a corpus directory (a context manager: the
    files are moved into place only when the block succeeds).

    `stale` is the backbone input carried into the first part (compat mode): None at the start
    of a corpus, `STALE_INPUT` at the start of a shard whose predecessors are unknown."""

    def __init__(self, out: Path, stale: str | None = None) -> None:
        self.out = out
        self.stats = BuildStats()
        self.splits: dict[str, Counter[str]] = {role: Counter() for role in EXAMPLE_ROLES}
        self.first_rejects: list[Reject] = []
        self.stale, self.fresh_input, self.stale_rows = stale, None, 0
        self.inputs, self.input_bytes, self._inputs_hash = 0, 0, hashlib.sha256()
        self._stack = ExitStack()
        self._arrays: dict[str, JsonArrayWriter] = {}
        self._written: dict[str, HashingWriter] = {}
        #: `text_lengths` of every examples table written, per role (8 bytes an example): the
        #: card's length statistics without decompressing every text again.
        self.lengths: dict[str, list[dict[str, pa.Array]]] = {role: [] for role in EXAMPLE_ROLES}
        #: the card's counts of trajectories, turns and calls, taken as trajectories are written
        self.turns = TurnCounter()

    def __enter__(self) -> "CorpusWriter":
        self._trajectories = self._table_writer(self.out / TRAJECTORIES, TRAJECTORY_SCHEMA)
        self._rejects = self._open(REJECTS)
        self._inputs = self._open(INPUTS)
        self._parquet = {r: self._table_writer(self.out / f"{ROLE_PATHS[r]}.parquet", EXAMPLE_SCHEMA) for r in EXAMPLE_ROLES}
        self._jsonl = {r: self._open(f"{ROLE_PATHS[r]}.jsonl") for r in EXAMPLE_ROLES}
        return self

    def _open(self, relative: str) -> HashingWriter:
        """A JSON/JSONL file of the corpus, hashed as it is written (`file_entry`)."""
        handle = HashingWriter(self._stack.enter_context(atomic_open(self.out / relative)))
        self._written[relative] = handle
        return handle

    def file_entry(self, relative: str, **extra: Any) -> dict[str, Any]:
        """The manifest entry of a corpus file (call after the writer closed): hashed as written
        for the JSON and JSONL files (most of the bytes), read again for the Parquet ones."""
        handle = self._written.get(relative)
        return handle.entry(**extra) if handle is not None else file_entry(self.out / relative, **extra)

    def _table_writer(self, path: Path, schema: pa.Schema) -> TableWriter:
        writer = TableWriter(self._stack.enter_context(atomic_path(path)), schema)
        self._stack.callback(writer.close)
        return writer

    def __exit__(self, *exc: Any) -> None:
        for array in self._arrays.values():
            array.close()
        self._stack.__exit__(*exc)

    @property
    def combined_input_hash(self) -> str:
        """sha256 over the `file\\0sha256\\n` lines of every input, in order."""
        return self._inputs_hash.hexdigest()

    def add(self, part: Part) -> None:
        """Append one part (from `convert_part`)."""
        self.add_counts(part.stats, part.splits, part.first_rejects)
        self.add_inputs(part.inputs)
        self.write_rejects(part.rejects)
        if part.trajectories is not None:
            self.write_trajectories(part.trajectories)
        value = self.resolve(part.stale_rows, part.fresh_input, part.last_input)
        for role in EXAMPLE_ROLES:
            fix = part.stale_rows if role == "backbone" else 0
            self.write_examples(role, [part.examples[role]], part.example_lines[role], fix, value)
        for name, elements in part.official.items():
            self.write_official(name, elements, part.stale_rows if name == "train_backbone" else 0, value)

    def add_counts(self, stats: BuildStats, splits: dict[str, Counter[str]], rejects: list[Reject]) -> None:
        self.stats.merge(stats)
        for role, counts in splits.items():
            self.splits[role].update(counts)
        self.first_rejects.extend(rejects[: MAX_REJECTS_KEPT - len(self.first_rejects)])

    def add_inputs(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            entry = orjson.loads(line)
            self.inputs += 1
            self.input_bytes += entry["bytes"]
            self._inputs_hash.update(f"{entry['file']}\0{entry['sha256']}\n".encode())
            self._inputs.write(line)

    def write_rejects(self, blocks: Iterable[bytes]) -> None:
        self._rejects.writelines(blocks)

    def write_trajectories(self, table: pa.Table) -> None:
        self._trajectories.write(table)
        self.turns.add(table)

    def resolve(self, stale_rows: int, fresh_input: str | None, last_input: str | None) -> str | None:
        """The input of a part's `stale_rows` leading backbone examples, and the state after it."""
        value = self.stale if self.stale is not None else fresh_input
        if stale_rows and value == STALE_INPUT:  # still unknown: left for the merge to resolve
            self.stale_rows += stale_rows
            self.fresh_input = self.fresh_input or fresh_input
        if last_input is not None:
            self.stale = last_input
        elif stale_rows:
            self.stale = value
        return value

    def write_examples(self, role: str, tables: Iterable[pa.Table], lines: Iterable[bytes], fix: int, value: str | None) -> None:
        lines = _fixed_lines(lines, fix, value)
        for table in tables:
            if fix and value != STALE_INPUT:
                head = min(fix, table.num_rows)
                inputs = pa.concat_arrays([pa.array([value] * head, pa.string()), table.column("input").slice(head).combine_chunks()])
                table = table.set_column(table.schema.get_field_index("input"), table.schema.field("input"), inputs)
                fix -= head
            self._parquet[role].write(table)
            append_lengths(self.lengths[role], text_lengths(table))
        self._jsonl[role].writelines(lines)

    def write_official(self, name: str, elements: Iterable[bytes], fix: int, value: str | None) -> None:
        if name not in self._arrays:
            self._arrays[name] = JsonArrayWriter(self._open(f"{ALPHA_UMI_DIR}/{name}.json"))
        array = self._arrays[name]
        for element in _fixed_lines(elements, fix, value):
            array.write_raw(element)

    def official_rows(self) -> dict[str, int]:
        return {name: array.rows for name, array in sorted(self._arrays.items())}


def _fixed_lines(lines: Iterable[bytes], fix: int, value: str | None) -> Iterator[bytes]:
    """`lines` (JSON objects), the first `fix` with their `input` replaced by `value`."""
    if not fix or value == STALE_INPUT:
        yield from lines
        return
    for line in lines:
        if fix:
            record = orjson.loads(line)
            record["input"] = value
            line = orjson.dumps(record) + (b"\n" if line.endswith(b"\n") else b"")
            fix -= 1
        yield line



__all__ = ["CorpusWriter", "ROW_GROUP_ROWS", "TableWriter"]
