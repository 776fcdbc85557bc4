"""A DuckDB analysis of a corpus with a plot: tool calls per trajectory by outcome, and the
most called tools, through `umi_data.corpus.duck.connect` (the corpus views: trajectories, turns,
tool_calls, tools, examples, rejects), drawn with matplotlib into a PNG.

    .venv/bin/python examples/duckdb_plot.py CORPUS --out calls.png

CORPUS is any corpus directory (`umi-data build ...`, or examples/build_corpus.py). The
connection is sandboxed (no file system from SQL), so the query results come back as rows and
Python writes the picture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CALLS_PER_TRAJECTORY = """
    select t.outcome, count(c.name) as calls
    from trajectories t left join tool_calls c on c.trajectory_id = t.id and c.corpus = t.corpus
    group by t.id, t.outcome
"""
TOP_TOOLS = "select name, count(*) as calls from tool_calls group by name order by calls desc, name limit 10"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="a corpus directory")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    from umi_data.corpus.duck import connect

    connection = connect(args.corpus)
    per_outcome = connection.execute(
        f"select outcome, avg(calls) as mean_calls, count(*) as trajectories from ({CALLS_PER_TRAJECTORY}) group by outcome order by outcome"
    ).fetchall()
    top = connection.execute(TOP_TOOLS).fetchall()
    for outcome, mean_calls, trajectories in per_outcome:
        print(f"{outcome:<11} {trajectories:>5} trajectories, {mean_calls:.2f} tool calls each")

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar([row[0] for row in per_outcome], [row[1] for row in per_outcome])
    left.set_title("tool calls per trajectory, by outcome")
    right.barh([row[0] for row in reversed(top)], [row[1] for row in reversed(top)])
    right.set_title("most called tools")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80)
    print(f"plot -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
