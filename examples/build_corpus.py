"""Build a corpus from Python and read it back: a synthetic tool world, `build_corpus`, then
`load_corpus` (a `datasets.Dataset` per role) and `read_trajectories` (typed records).

    .venv/bin/python examples/build_corpus.py --out example-out/ [--n 40]

The same as `umi-data synth` + `umi-data build toolbench`, with the objects in your hands. The
output directory is yours: it is replaced on a rerun (the corpus inside it is umi's).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from umi_data import load_corpus, read_trajectories
from umi_data.building.build import BuildConfig, build_corpus
from umi_data.synth.world import write_synthetic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for world/ and corpus/")
    parser.add_argument("--n", type=int, default=40, help="synthetic tasks")
    args = parser.parse_args(argv)

    stats = write_synthetic(args.out / "world", n=args.n, seed=0, force=True)
    print(f"world: {stats.tasks} tasks -> {args.out / 'world'}")
    config = BuildConfig(source="toolbench", inputs=[str(args.out / "world" / "answer")])
    result = build_corpus(config, args.out / "corpus", progress=False, workers=1, force=True)
    counts = result.manifest["counts"]
    print(f"corpus: {counts['accepted']} trajectories, {counts['rejected']} rejects -> {result.out}")

    planner = load_corpus(args.out / "corpus", "planner")  # a datasets.Dataset
    print(f"planner corpus: {planner.num_rows} examples; columns {', '.join(planner.column_names)}")
    first = next(iter(read_trajectories(str(args.out / "corpus" / "trajectories.parquet"))))
    print(f"first trajectory: {first.id} ({first.outcome}, {len(first.turns)} turns): {first.instruction[:60]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
