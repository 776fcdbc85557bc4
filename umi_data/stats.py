"""Corpus statistics with polars: counts, lengths per role, steps per trajectory, calls per tool.

Lengths are in characters, and in tokens when a `tokenizer.json` is given (read with the
`tokenizers` package only: the data side never imports transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from umi_data.examples import EXAMPLE_ROLES, ROLE_PATHS

QUANTILES = (0.5, 0.9, 0.99)


#: Only these leaves of `turns` are read: the card's numbers never need the texts, so memory
#: stays proportional to the number of turns, not to the size of the corpus.
_TURN_LEAVES = ["id", "source", "outcome", "turns.list.element.role", "turns.list.element.next", "turns.list.element.name"]
BATCH_ROWS = 8192


def _trajectories(directory: str | Path) -> pl.DataFrame:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(Path(directory) / "trajectories.parquet").read(columns=_TURN_LEAVES)
    return pl.from_arrow(table)


def _turns(trajectories: pl.DataFrame) -> pl.DataFrame:
    return (
        trajectories.select("id", "source", "outcome", "turns")
        .explode("turns")
        .filter(pl.col("turns").is_not_null())
        .with_columns(
            pl.col("turns").struct.field("role").alias("role"),
            pl.col("turns").struct.field("name").alias("name"),
            pl.col("turns").struct.field("next").alias("next"),
        )
        .drop("turns")
    )


def counts(directory: str | Path) -> dict[str, Any]:
    """Trajectories by source and outcome, rejects by reason, turns by role."""
    trajectories = _trajectories(directory)
    turns = _turns(trajectories)
    rejects = _rejects(Path(directory))
    return {
        "trajectories": trajectories.height,
        "by_source": _count_dict(trajectories, "source"),
        "by_outcome": _count_dict(trajectories, "outcome"),
        "rejects_by_reason": _count_dict(rejects, "reason") if rejects.height else {},
        "turns_by_role": _count_dict(turns, "role"),
    }


def _rejects(directory: Path) -> pl.DataFrame:
    path = directory / "rejects.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.is_file() else []
    return pl.DataFrame(rows, schema={"source_file": pl.String, "locator": pl.String, "reason": pl.String, "detail": pl.String})


def _count_dict(frame: pl.DataFrame, column: str) -> dict[str, int]:
    grouped = frame.group_by(column).len().sort(column)
    return {str(key): int(n) for key, n in grouped.iter_rows()}


def steps_per_trajectory(directory: str | Path) -> pl.DataFrame:
    """`id`, `outcome`, `steps` (planner decisions) and `calls` per trajectory."""
    turns = _turns(_trajectories(directory))
    return (
        turns.group_by("id", "outcome")
        .agg(
            steps=(pl.col("role") == "planner").and_(pl.col("next").is_not_null()).sum(),
            calls=(pl.col("role") == "caller").sum(),
        )
        .sort("id")
    )


def calls_per_tool(directory: str | Path) -> pl.DataFrame:
    """`name`, `calls`, most called first (ties by name)."""
    turns = _turns(_trajectories(directory))
    return (
        turns.filter(pl.col("role") == "caller").group_by("name").agg(calls=pl.len())
        .sort(["calls", "name"], descending=[True, False])
    )


def example_lengths(directory: str | Path, tokenizer: str | Path | None = None) -> pl.DataFrame:
    """One row per example: `role`, `split`, `input_chars`, `target_chars` (and `input_tokens`,
    `target_tokens` with a tokenizer). Texts are read a batch at a time and dropped."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    loaded = _load_tokenizer(tokenizer) if tokenizer is not None else None
    frames = []
    for role in EXAMPLE_ROLES:
        columns = ["role", "split", "input", "target"]
        for batch in pq.ParquetFile(Path(directory) / f"{ROLE_PATHS[role]}.parquet").iter_batches(BATCH_ROWS, columns=columns):
            lengths = {
                "role": batch.column("role").to_pylist(), "split": batch.column("split").to_pylist(),
                "input_chars": pc.utf8_length(batch.column("input")).to_pylist(),
                "target_chars": pc.utf8_length(batch.column("target")).to_pylist(),
            }
            if loaded is not None:
                lengths["input_tokens"] = _token_counts(loaded, batch.column("input").to_pylist())
                lengths["target_tokens"] = _token_counts(loaded, batch.column("target").to_pylist())
            frames.append(pl.DataFrame(lengths, schema_overrides={k: pl.Int64 for k in lengths if k.endswith(("_chars", "_tokens"))}))
    if not frames:
        schema = {"role": pl.String, "split": pl.String, "input_chars": pl.Int64, "target_chars": pl.Int64}
        if loaded is not None:
            schema |= {"input_tokens": pl.Int64, "target_tokens": pl.Int64}
        return pl.DataFrame(schema=schema)
    return pl.concat(frames)


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


def corpus_stats(directory: str | Path, tokenizer: str | Path | None = None) -> dict[str, Any]:
    """Everything above as plain JSON-ready values."""
    directory = Path(directory)
    steps = steps_per_trajectory(directory)
    return {
        "counts": counts(directory),
        "lengths": length_summary(example_lengths(directory, tokenizer)),
        "steps": [{"steps": int(n), "trajectories": int(k)} for n, k in steps.group_by("steps").len().sort("steps").iter_rows()],
        "calls_per_tool": [{"name": n, "calls": int(c)} for n, c in calls_per_tool(directory).iter_rows()],
    }


__all__ = [
    "calls_per_tool", "corpus_stats", "counts", "example_lengths", "length_summary", "steps_per_trajectory",
]
