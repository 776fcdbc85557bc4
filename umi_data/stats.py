"""Corpus statistics with polars: counts, lengths per role, steps per trajectory, calls per tool.

Lengths are in characters, and in tokens when a `tokenizer.json` is given (read with the
`tokenizers` package only: the data side never imports transformers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from umi_data.examples import EXAMPLE_ROLES, ROLE_PATHS, text_lengths

QUANTILES = (0.5, 0.9, 0.99)


# Parquet is read with use_threads=False: decoding in Arrow's thread pool gives each thread its
# own allocator arena, which cost ~60 MB of peak memory for no gain on a few small columns.

#: Only these leaves of `turns` are read: the card's numbers never need the texts, so memory
#: stays proportional to the number of turns, not to the size of the corpus.
_TURN_LEAVES = ["id", "source", "outcome", "turns.list.element.role", "turns.list.element.next", "turns.list.element.name"]
BATCH_ROWS = 1024  # = half a Parquet row group: texts are decoded and dropped in small slices


@dataclass(frozen=True)
class TurnSummary:
    """What the statistics need from `trajectories.parquet`, gathered in one pass a batch at a
    time: per trajectory (`id`, `source`, `outcome`, `steps`, `calls`), turns per role, calls
    per tool."""

    trajectories: pl.DataFrame
    turns_by_role: dict[str, int]
    calls_per_tool: pl.DataFrame


def turn_summary(directory: str | Path) -> TurnSummary:
    import pyarrow.parquet as pq

    per_trajectory, roles, tools = [], [], []
    for batch in pq.ParquetFile(Path(directory) / "trajectories.parquet").iter_batches(BATCH_ROWS, columns=_TURN_LEAVES, use_threads=False):
        frame = pl.from_arrow(batch)
        turns = (
            frame.select("id", "turns").explode("turns").filter(pl.col("turns").is_not_null())
            .select("id", pl.col("turns").struct.field("role"), pl.col("turns").struct.field("next"),
                    pl.col("turns").struct.field("name"))
        )
        steps = turns.group_by("id").agg(
            steps=((pl.col("role") == "planner") & pl.col("next").is_not_null()).sum().cast(pl.Int64),
            calls=(pl.col("role") == "caller").sum().cast(pl.Int64),
        )
        per_trajectory.append(frame.select("id", "source", "outcome").join(steps, on="id", how="left").fill_null(0))
        roles.append(turns.group_by("role").len())
        tools.append(turns.filter(pl.col("role") == "caller").group_by("name").agg(calls=pl.len().cast(pl.Int64)))
    schema = {"id": pl.String, "source": pl.String, "outcome": pl.String, "steps": pl.Int64, "calls": pl.Int64}
    trajectories = pl.concat(per_trajectory) if per_trajectory else pl.DataFrame(schema=schema)
    role_counts = pl.concat(roles).group_by("role").agg(pl.col("len").sum()) if roles else pl.DataFrame({"role": [], "len": []})
    tool_calls = (pl.concat(tools).group_by("name").agg(pl.col("calls").sum()) if tools
                  else pl.DataFrame(schema={"name": pl.String, "calls": pl.Int64}))
    return TurnSummary(
        trajectories=trajectories.sort("id"),
        turns_by_role={str(r): int(n) for r, n in role_counts.sort("role").iter_rows()},
        calls_per_tool=tool_calls.sort(["calls", "name"], descending=[True, False]),
    )


def counts(directory: str | Path, summary: TurnSummary | None = None) -> dict[str, Any]:
    """Trajectories by source and outcome, rejects by reason, turns by role."""
    summary = summary or turn_summary(directory)
    return {
        "trajectories": summary.trajectories.height,
        "by_source": _count_dict(summary.trajectories, "source"),
        "by_outcome": _count_dict(summary.trajectories, "outcome"),
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


def _count_dict(frame: pl.DataFrame, column: str) -> dict[str, int]:
    grouped = frame.group_by(column).len().sort(column)
    return {str(key): int(n) for key, n in grouped.iter_rows()}


def steps_per_trajectory(directory: str | Path) -> pl.DataFrame:
    """`id`, `outcome`, `steps` (planner decisions) and `calls` per trajectory."""
    return turn_summary(directory).trajectories.select("id", "outcome", "steps", "calls")


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
        schema = {name: (pl.Enum(EXAMPLE_ROLES) if name == "role" else kind) for name, kind in schema.items() if name != "split"}
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
    return _frame(columns, {"role": pl.Enum(EXAMPLE_ROLES), "input_chars": pl.Int64, "target_chars": pl.Int64})


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


def corpus_stats(directory: str | Path, tokenizer: str | Path | None = None, *, summary: TurnSummary | None = None,
                 lengths: pl.DataFrame | None = None) -> dict[str, Any]:
    """Everything above as plain JSON-ready values (pass `summary` / `lengths` already computed
    to avoid a second pass)."""
    directory = Path(directory)
    summary = summary or turn_summary(directory)
    lengths = lengths if lengths is not None else example_lengths(directory, tokenizer)
    steps = summary.trajectories.group_by("steps").len().sort("steps")
    return {
        "counts": counts(directory, summary),
        "lengths": length_summary(lengths),
        "steps": [{"steps": int(n), "trajectories": int(k)} for n, k in steps.iter_rows()],
        "calls_per_tool": [{"name": n, "calls": int(c)} for n, c in summary.calls_per_tool.iter_rows()],
    }


__all__ = [
    "TurnSummary", "turn_summary", "calls_per_tool", "card_lengths", "corpus_stats", "counts", "example_lengths", "length_summary", "steps_per_trajectory",
]
