"""Throughput and peak memory of `python -m umi_data build` (all four role corpora and the card)
on synthetic trajectories, beside the floor of reading and writing the same bytes.

    python benchmarks/build_throughput.py [--sizes 20000 100000] [--work DIR]

For each size it synthesizes N ToolBench answer files (`python -m umi_data synth`, not timed),
then runs, each in its own process so that peak RSS is that command's alone:
- build: `python -m umi_data build toolbench DIR/answer --out CORPUS --no-progress`;
- floor: read every file, `orjson` parse, `orjson` write into one output file (no validation,
  no conversion, no rendering: what any tool must at least do with the same bytes);
- load-all: read and parse every file into one in-memory list (what a non-streaming builder holds).
The last lines are `peak_rss_mb: N` (build, largest size) and `ratio_to_floor: X.XX` (build time
over floor time, largest size).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import sys, orjson
from pathlib import Path
with open(sys.argv[2], "wb") as out:
    for path in sorted(Path(sys.argv[1]).rglob("*.json")):
        out.write(orjson.dumps(orjson.loads(path.read_bytes())) + b"\\n")
"""
LOAD_ALL = """
import sys, orjson
from pathlib import Path
records = [orjson.loads(path.read_bytes()) for path in sorted(Path(sys.argv[1]).rglob("*.json"))]
print(len(records))
"""


def measured(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def bench(size: int, work: Path) -> dict[str, float]:
    world = work / f"synth-{size}"
    if not (world / "tasks.jsonl").is_file():
        subprocess.run([sys.executable, "-m", "umi_data", "synth", "--n", str(size), "--seed", "0", "--out", str(world)],
                       check=True, stdout=subprocess.DEVNULL)
    answer = world / "answer"
    input_mb = sum(p.stat().st_size for p in answer.rglob("*.json")) / 2**20
    shutil.rmtree(work / f"corpus-{size}", ignore_errors=True)
    build_s, build_mb = measured([sys.executable, "-m", "umi_data", "build", "toolbench", str(answer),
                                  "--out", str(work / f"corpus-{size}"), "--no-progress"])
    floor_s, floor_mb = measured([sys.executable, "-c", FLOOR, str(answer), str(work / f"floor-{size}.jsonl")])
    load_s, load_mb = measured([sys.executable, "-c", LOAD_ALL, str(answer)])
    return {"size": size, "input_mb": input_mb, "build_s": build_s, "build_mb": build_mb, "floor_s": floor_s,
            "floor_mb": floor_mb, "load_all_mb": load_mb, "load_all_s": load_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one, removed after)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="umi-build-bench-"))
    try:
        results = [bench(size, work) for size in args.sizes]
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'trajectories':>12} {'input MB':>9} {'build s':>8} {'traj/s':>8} {'build RSS MB':>12} "
          f"{'floor s':>8} {'floor traj/s':>12} {'load-all RSS MB':>15} {'ratio to floor':>14}")
    for r in results:
        print(f"{r['size']:>12} {r['input_mb']:>9.0f} {r['build_s']:>8.1f} {r['size'] / r['build_s']:>8.0f} {r['build_mb']:>12.0f} "
              f"{r['floor_s']:>8.1f} {r['size'] / r['floor_s']:>12.0f} {r['load_all_mb']:>15.0f} {r['build_s'] / r['floor_s']:>14.2f}")
    last = results[-1]
    print(f"build peak RSS is {last['build_mb'] / last['load_all_mb']:.2f}x that of loading the input at once "
          f"({last['build_mb']:.0f} MB vs {last['load_all_mb']:.0f} MB)")
    print(f"peak_rss_mb: {last['build_mb']:.0f}")
    print(f"ratio_to_floor: {last['build_s'] / last['floor_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
