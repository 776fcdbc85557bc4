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


def _trajectories(directory: str | Path) -> pl.DataFrame:
    return pl.read_parquet(Path(directory) / "trajectories.parquet", columns=["id", "source", "outcome", "turns"])


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
    `target_tokens` with a tokenizer)."""
    frames = []
    for role in EXAMPLE_ROLES:
        frame = pl.read_parquet(Path(directory) / f"{ROLE_PATHS[role]}.parquet", columns=["role", "split", "input", "target"])
        frames.append(frame)
    examples = pl.concat(frames)
    lengths = examples.with_columns(
        input_chars=pl.col("input").str.len_chars(), target_chars=pl.col("target").str.len_chars()
    )
    if tokenizer is not None:
        lengths = lengths.with_columns(
            input_tokens=pl.Series(_token_counts(tokenizer, examples["input"].to_list()), dtype=pl.Int64),
            target_tokens=pl.Series(_token_counts(tokenizer, examples["target"].to_list()), dtype=pl.Int64),
        )
    return lengths.drop("input", "target")


def _token_counts(tokenizer: str | Path, texts: list[str]) -> list[int]:
    from tokenizers import Tokenizer

    loaded = Tokenizer.from_file(str(tokenizer))
    return [len(encoding.ids) for encoding in loaded.encode_batch(texts, add_special_tokens=False)]


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
