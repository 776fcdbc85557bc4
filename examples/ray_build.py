"""Build a very large corpus on a Ray cluster: one `build --shard I/N` task per shard, then one
`merge`. The corpus is byte-identical to `python -m umi_data build` over the same inputs.

    pip install 'umi[ray]'
    python examples/ray_build.py toolbench data/answer --out corpus --shards 64 [--compat alpha-umi]
    python examples/ray_build.py ... --address auto      # an existing cluster instead of a local Ray

Without --address it starts a local Ray itself (`ray.init(num_cpus=...)`). On a cluster, the
inputs, the shard directory (--work) and --out must be on storage every node sees. Each task
converts its shard with one process (`workers=1`): Ray is the parallelism. The same two steps
run under anything that can run N commands (a Slurm array, Spark, a shell loop):
`python -m umi_data build SOURCE PATH... --shard I/N --out WORK/shard-I` for I in 0..N-1, then
`python -m umi_data merge WORK/shard-* --out CORPUS`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def build_shard(config: dict[str, Any], index: int, count: int, directory: str) -> str:
    """One Ray task: shard `index` of `count` into `directory`."""
    from umi_data.building.build import BuildConfig, build_corpus

    build_corpus(BuildConfig(**config), Path(directory), progress=False, workers=1, shard=(index, count))
    return directory


def ray_build(config: dict[str, Any], out: Path, shards: int, work: Path, address: str | None = None,
              num_cpus: int | None = None) -> str:
    """Map the shards over Ray tasks, merge them into `out`; returns the summary line."""
    import ray

    from umi_data.building.build import summary_line
    from umi_data.building.shards import merge_shards

    ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(build_shard)
        pending = [task.remote(config, index, shards, str(work / f"shard-{index}")) for index in range(shards)]
        directories = ray.get(pending)
    finally:
        ray.shutdown()
    return summary_line(merge_shards(directories, out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--shards", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=None, help="where the shard directories go (default: a temporary directory)")
    parser.add_argument("--address", default=None, help="a running Ray cluster (default: start a local Ray)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--compat", choices=["alpha-umi"], default=None)
    parser.add_argument("--exclude-test-ids", nargs="+", default=[])
    args = parser.parse_args(argv)
    config = {"source": args.source, "inputs": args.inputs, "compat": args.compat, "exclude_test_ids": args.exclude_test_ids}
    with tempfile.TemporaryDirectory(prefix="umi-ray-shards-") as scratch:
        print(ray_build(config, args.out, args.shards, args.work or Path(scratch), args.address, args.num_cpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
