"""The query sandbox's views (corpus files handed to DuckDB as Arrow datasets, DuckDB's own file
system off) beside the same views over DuckDB's native `read_parquet` / `read_json` (what the
sandbox did before issue 27, and what `allowed_directories` needs), on one corpus directory.

    python benchmarks/query_views.py CORPUS [--repeat R]

Each round runs every query once on each side, interleaved (arrow, native, arrow, ...), each
on a fresh connection (opening it is timed too); the figure is the median of the rounds. The
last line is `ratio: X.XX`, the arrow side's total over the native side's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import duckdb

from umi_data.corpus.files import REJECT_FIELDS, corpus_files
from umi_data.corpus.duck import connect, view_sql
from umi_data.rendering.examples import ROLE_PATHS

QUERIES = {
    "count": "select count(*) from trajectories",
    "tool_calls": "select name, count(*) from tool_calls group by 1 order by 2 desc limit 10",
    "examples": "select role, count(*), avg(length(input)) from examples group by 1",
    "turns": "select role, count(*) from turns group by 1",
    "rejects": "select reason, count(*) from rejects group by 1",
}


def native(directory: Path) -> duckdb.DuckDBPyConnection:
    """The same views, each table a view over DuckDB's own reader of the file."""
    files = corpus_files(directory)
    db = duckdb.connect()
    for kind in files.datasets:
        if kind == "rejects":
            columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in REJECT_FIELDS) + "}"
            source = f"read_json('{files.directory / 'rejects.jsonl'}', format = 'newline_delimited', columns = {columns})"
        elif kind == "examples":
            source = "read_parquet([" + ", ".join(f"'{files.directory / path}.parquet'" for path in ROLE_PATHS.values()) + "])"
        else:
            source = f"read_parquet('{files.directory / 'trajectories.parquet'}')"
        db.execute(f"create view {files.table(kind)} as select * from {source}")
    for name, sql in view_sql([files]).items():
        db.execute(f"create view {name} as {sql}")
    return db


def timed(open_db, sql: str) -> float:
    start = time.perf_counter()
    db = open_db()
    db.sql(sql).fetchall()
    db.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sides = {"arrow": lambda: connect(args.corpus), "native": lambda: native(args.corpus)}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for query, sql in QUERIES.items():
            for side, open_db in sides.items():
                times.setdefault((query, side), []).append(timed(open_db, sql))
    print(f"{'query':<12} {'arrow s':>9} {'native s':>9}")
    totals = {side: 0.0 for side in sides}
    for query in QUERIES:
        medians = {side: statistics.median(times[(query, side)]) for side in sides}
        for side in sides:
            totals[side] += medians[side]
        print(f"{query:<12} {medians['arrow']:>9.3f} {medians['native']:>9.3f}")
    print(f"{'total':<12} {totals['arrow']:>9.3f} {totals['native']:>9.3f}")
    print(f"ratio: {totals['arrow'] / totals['native']:.2f}")


if __name__ == "__main__":
    main()
