"""Corpus statistics with polars: counts, lengths per role, steps per trajectory, calls per tool.

Lengths are in characters, and in tokens when a `tokenizer.json` is given (read with the
`tokenizers` package only: the data side never imports transformers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson
import polars as pl

from umi_data.rendering.examples import EXAMPLE_ROLES, ROLE_PATHS, text_lengths

QUANTILES = (0.5, 0.9, 0.99)
#: The card's length frame: the role as an enum and int32 lengths, 9 bytes an example.
CARD_LENGTHS = {"role": pl.Enum(EXAMPLE_ROLES), "input_chars": pl.Int32, "target_chars": pl.Int32}


# Parquet is read with use_threads=False: decoding in Arrow's thread pool gives each thread its
# own allocator arena, which cost ~60 MB of peak memory for no gain on a few small columns.

#: Only these leaves of `turns` are read: the card's numbers never need the texts, so memory
#: stays proportional to the number of turns, not to the size of the corpus.
_TURN_LEAVES = ["id", "source", "outcome", "turns.list.element.role", "turns.list.element.next", "turns.list.element.name"]
BATCH_ROWS = 1024  # = half a Parquet row group: texts are decoded and dropped in small slices


@dataclass(frozen=True)
class TurnSummary:
    """What the card's statistics need from `trajectories.parquet`, gathered in one pass a batch
    at a time and kept as counts only, so memory does not grow with the corpus: trajectories per
    (`source`, `outcome`, `steps`) in `groups`, turns per role, calls per tool."""

    groups: pl.DataFrame
    turns_by_role: dict[str, int]
    calls_per_tool: pl.DataFrame

    @property
    def trajectories(self) -> int:
        return int(self.groups["trajectories"].sum())


class TurnCounter:
    """Gathers a `TurnSummary` from tables or batches of trajectory rows as they are read, or as
    the builder writes them (so the build's card need not read trajectories.parquet again)."""

    def __init__(self) -> None:
        self.groups: Counter[tuple[str, str, int]] = Counter()
        self.roles: Counter[str] = Counter()
        self.tools: Counter[str | None] = Counter()

    def add(self, rows: Any) -> tuple[Any, Any]:
        """Count a table or batch with `source`, `outcome` and `turns` (role, next, name at
        least); return its planner decisions and calls per row (numpy)."""
        import numpy as np

        turns = rows.column("turns")
        counted = [_count_turns(chunk, self.roles, self.tools) for chunk in getattr(turns, "chunks", [turns])]
        steps, calls = (np.concatenate([c[i] for c in counted]) if counted else np.zeros(0, np.int64) for i in (0, 1))
        self.groups.update(zip(rows.column("source").to_pylist(), rows.column("outcome").to_pylist(), steps.tolist()))
        return steps, calls

    def summary(self) -> TurnSummary:
        keys = sorted(self.groups)
        return TurnSummary(
            groups=pl.DataFrame([(*key, self.groups[key]) for key in keys], orient="row",
                                schema={"source": pl.String, "outcome": pl.String, "steps": pl.Int64, "trajectories": pl.Int64}),
            turns_by_role=dict(sorted(self.roles.items())),
            calls_per_tool=pl.DataFrame({"name": list(self.tools), "calls": list(self.tools.values())},
                                        schema={"name": pl.String, "calls": pl.Int64}).sort(["calls", "name"], descending=[True, False]),
        )


def turn_summary(directory: str | Path) -> TurnSummary:
    counter = TurnCounter()
    for _ in _turn_batches(directory, counter):
        pass
    return counter.summary()


def _turn_batches(directory: str | Path, counter: TurnCounter) -> Iterator[tuple[Any, Any, Any]]:
    """(batch of `id`, `source`, `outcome`, `turns`; planner decisions and calls per row as numpy
    arrays) for every batch of `trajectories.parquet`, counted into `counter` on the way."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(Path(directory) / "trajectories.parquet").iter_batches(BATCH_ROWS, columns=_TURN_LEAVES, use_threads=False):
        yield batch, *counter.add(batch)


def _count_turns(turns: Any, roles: Counter[str], tools: Counter[str | None]) -> tuple[Any, Any]:
    """Planner decisions and calls per row of one `turns` list array, counted over the flattened
    turns with numpy (no exploded copy of the batch: that cost ~100 MB of retained heap at 100k
    trajectories); adds the turns per role to `roles` and the calls per tool to `tools`."""
    import numpy as np
    import pyarrow.compute as pc

    parents = pc.list_parent_indices(turns).to_numpy()
    values = turns.flatten()
    role, next_, name = (pc.struct_field(values, field) for field in ("role", "next", "name"))  # a null turn's read as null
    decided = pc.fill_null(pc.and_(pc.equal(role, "planner"), pc.is_valid(next_)), False).to_numpy(zero_copy_only=False)
    called = pc.fill_null(pc.equal(role, "caller"), False).to_numpy(zero_copy_only=False)
    roles.update({str(r["values"]): r["counts"] for r in pc.value_counts(role.drop_null()).to_pylist()})
    tools.update({r["values"]: r["counts"] for r in pc.value_counts(pc.filter(name, called)).to_pylist()})
    return np.bincount(parents[decided], minlength=len(turns)), np.bincount(parents[called], minlength=len(turns))


def counts(directory: str | Path, summary: TurnSummary | None = None) -> dict[str, Any]:
    """Trajectories by source and outcome, rejects by reason, turns by role."""
    summary = summary or turn_summary(directory)
    return {
        "trajectories": summary.trajectories,
        "by_source": _count_dict(summary.groups, "source"),
        "by_outcome": _count_dict(summary.groups, "outcome"),
        "rejects_by_reason": _reject_reasons(Path(directory)),
        "turns_by_role": summary.turns_by_role,
    }


def _reject_reasons(directory: Path) -> dict[str, int]:
    """Reject counts by reason, reading rejects.jsonl a line at a time."""
    reasons: Counter[str] = Counter()
    path = directory / "rejects.jsonl"
    if path.is_file():
        with open(path, "rb") as handle:
            reasons.update(orjson.loads(line)["reason"] for line in handle if line.strip())
    return dict(sorted(reasons.items()))


def _count_dict(groups: pl.DataFrame, column: str) -> dict[str, int]:
    grouped = groups.group_by(column).agg(pl.col("trajectories").sum()).sort(column)
    return {str(key): int(n) for key, n in grouped.iter_rows()}


def steps_per_trajectory(directory: str | Path) -> pl.DataFrame:
    """`id`, `outcome`, `steps` (planner decisions) and `calls` per trajectory, sorted by id."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in ("id", "outcome", "steps", "calls")}
    for batch, steps, calls in _turn_batches(directory, TurnCounter()):
        columns["id"].append(batch.column("id"))
        columns["outcome"].append(batch.column("outcome"))
        columns["steps"].append(pa.array(steps, pa.int64()))
        columns["calls"].append(pa.array(calls, pa.int64()))
    schema = {"id": pl.String, "outcome": pl.String, "steps": pl.Int64, "calls": pl.Int64}
    return _frame(columns if columns["id"] else {}, schema).sort("id")


def calls_per_tool(directory: str | Path) -> pl.DataFrame:
    """`name`, `calls`, most called first (ties by name)."""
    return turn_summary(directory).calls_per_tool


def example_lengths(directory: str | Path, tokenizer: str | Path | None = None, *, with_split: bool = True) -> pl.DataFrame:
    """One row per example: `role`, `split`, `input_chars`, `target_chars` (and `input_tokens`,
    `target_tokens` with a tokenizer). Texts are read a batch at a time and dropped; lengths are
    gathered as Arrow arrays, never as Python lists. `with_split=False` (the card) leaves out
    the split and stores the role as an enum: a few bytes per example."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    loaded = _load_tokenizer(tokenizer) if tokenizer is not None else None
    columns: dict[str, list[Any]] = {}
    for role in EXAMPLE_ROLES:
        wanted = ["role", "split", "input", "target"] if with_split else ["input", "target"]
        for batch in pq.ParquetFile(Path(directory) / f"{ROLE_PATHS[role]}.parquet").iter_batches(BATCH_ROWS, columns=wanted, use_threads=False):
            lengths = {"role": pa.array([role] * batch.num_rows, pa.string())}
            if with_split:
                lengths["split"] = batch.column("split")
            lengths |= text_lengths(batch)
            if loaded is not None:
                lengths["input_tokens"] = pa.array(_token_counts(loaded, batch.column("input").to_pylist()), pa.int64())
                lengths["target_tokens"] = pa.array(_token_counts(loaded, batch.column("target").to_pylist()), pa.int64())
            for name, values in lengths.items():
                columns.setdefault(name, []).append(values)
    schema = {"role": pl.String, "split": pl.String, "input_chars": pl.Int64, "target_chars": pl.Int64}
    if loaded is not None:
        schema |= {"input_tokens": pl.Int64, "target_tokens": pl.Int64}
    if not with_split:
        schema = CARD_LENGTHS | {name: kind for name, kind in schema.items() if name.endswith("_tokens")}
    return _frame(columns, schema)


def card_lengths(chunks: dict[str, list[dict[str, Any]]]) -> pl.DataFrame:
    """The frame `example_lengths(directory, with_split=False)` reads, from the `text_lengths` of
    each role's tables in the order they were written (the builder measures them as it writes,
    so the card need not decompress every text again)."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    for role in EXAMPLE_ROLES:
        for lengths in chunks.get(role, []):
            rows = len(lengths["input_chars"])
            for name, values in ({"role": pa.array([role] * rows, pa.string())} | lengths).items():
                columns.setdefault(name, []).append(values)
    return _frame(columns, CARD_LENGTHS)


def _frame(columns: dict[str, list[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    import pyarrow as pa

    if not columns:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame({name: pl.Series(name, pa.chunked_array(chunks)).cast(schema[name]) for name, chunks in columns.items()})


def _load_tokenizer(path: str | Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def _token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]


def length_summary(lengths: pl.DataFrame) -> list[dict[str, Any]]:
    """Per role and measured column: count, mean, quantiles, max (rounded, for cards and JSON)."""
    measures = [c for c in lengths.columns if c.endswith(("_chars", "_tokens"))]
    rows = []
    for role in EXAMPLE_ROLES:
        part = lengths.filter(pl.col("role") == role)
        for measure in measures:
            column = part[measure]
            row: dict[str, Any] = {"role": role, "measure": measure, "examples": part.height}
            if part.height:
                row["mean"] = round(float(column.mean()), 1)
                row.update({f"p{int(q * 100)}": int(column.quantile(q, interpolation="nearest")) for q in QUANTILES})
                row["max"] = int(column.max())
            rows.append(row)
    return rows


def corpus_frames(directory: str | Path, tokenizer: str | Path | None = None) -> dict[str, pl.DataFrame]:
    """The numbers of `corpus_stats` as polars frames, for analysis: `by_source`, `by_outcome`
    (`trajectories`), `rejects_by_reason` (`rejects`), `turns_by_role` (`turns`), `lengths` (one
    row per example: `example_lengths`), `length_summary`, `steps` (`steps`, `trajectories`) and
    `calls_per_tool` (`name`, `calls`)."""
    directory = Path(directory)
    summary, lengths = turn_summary(directory), example_lengths(directory, tokenizer)
    numbers = counts(directory, summary)

    def frame(values: dict[str, int], key: str, count: str) -> pl.DataFrame:
        return pl.DataFrame({key: list(values), count: list(values.values())}, schema={key: pl.String, count: pl.Int64})

    return {
        "by_source": frame(numbers["by_source"], "source", "trajectories"),
        "by_outcome": frame(numbers["by_outcome"], "outcome", "trajectories"),
        "rejects_by_reason": frame(numbers["rejects_by_reason"], "reason", "rejects"),
        "turns_by_role": frame(numbers["turns_by_role"], "role", "turns"),
        "lengths": lengths,
        "length_summary": pl.DataFrame(length_summary(lengths)),
        "steps": summary.groups.group_by("steps").agg(pl.col("trajectories").sum()).sort("steps"),
        "calls_per_tool": summary.calls_per_tool,
    }


def corpus_stats(directory: str | Path, tokenizer: str | Path | None = None, *, summary: TurnSummary | None = None,
                 lengths: pl.DataFrame | None = None, frames: bool = False) -> dict[str, Any]:
    """Everything above as plain JSON-ready values (pass `summary` / `lengths` already computed
    to avoid a second pass); `frames=True`: as polars frames (`corpus_frames`)."""
    if frames:
        return corpus_frames(directory, tokenizer)
    directory = Path(directory)
    summary = summary or turn_summary(directory)
    lengths = lengths if lengths is not None else example_lengths(directory, tokenizer)
    steps = summary.groups.group_by("steps").agg(pl.col("trajectories").sum()).sort("steps")
    return {
        "counts": counts(directory, summary),
        "lengths": length_summary(lengths),
        "steps": [{"steps": int(n), "trajectories": int(k)} for n, k in steps.iter_rows()],
        "calls_per_tool": [{"name": n, "calls": int(c)} for n, c in summary.calls_per_tool.iter_rows()],
    }


__all__ = [
    "TurnCounter", "TurnSummary", "turn_summary", "calls_per_tool", "card_lengths", "corpus_frames", "corpus_stats", "counts", "example_lengths", "length_summary", "steps_per_trajectory",
]
