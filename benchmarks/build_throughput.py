"""Throughput and peak memory of `python -m umi_data build` (all four role corpora and the card)
on synthetic trajectories, beside the floor of reading and writing the same bytes.

    python benchmarks/build_throughput.py [--sizes 20000 100000] [--workers N] [--repeat R] [--work DIR]

For each size it synthesizes N ToolBench answer files (`python -m umi_data synth`, not timed),
then runs, one after the other and each in its own process tree:
- build: `python -m umi_data build toolbench DIR/answer --out CORPUS --no-progress --workers W`,
  with W = 1 and W = the default (the machine's cores, or --workers);
- floor: read every file, `orjson` parse, `orjson` write into one output file (no validation,
  no conversion, no rendering: what any tool must at least do with the same bytes);
- load-all: read and parse every file into one in-memory list (what a non-streaming builder holds).
Peak RSS is the largest sum of the resident sets of the command and all its child processes
(workers included), sampled every 50 ms, and never less than the command's own ru_maxrss.
With `--repeat R` the builds and the floor run R rounds, interleaved (w1, default, floor, then
again), and each figure is the median of its rounds (peak RSS: the largest): on a shared machine
one round's wall time can be off by half. CPU s is user+sys of the whole process tree.
The last lines are `peak_rss_mb: N` and `ratio_to_floor: X.XX`: the build with default workers
on the largest size (peak RSS of its process tree; build time over floor time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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


PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total / 2**20


def measured(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MB of the whole process tree, user+sys CPU seconds of the tree)
    of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    # ru_maxrss is in KiB on Linux; wait4's times include the descendants the command waited for
    return elapsed, max(peak[0], usage.ru_maxrss / 1024), usage.ru_utime + usage.ru_stime


def bench(size: int, work: Path, workers: int, repeat: int = 1) -> dict[str, float]:
    world = work / f"synth-{size}"
    if not (world / "tasks.jsonl").is_file():
        subprocess.run([sys.executable, "-m", "umi_data", "synth", "--n", str(size), "--seed", "0", "--out", str(world)],
                       check=True, stdout=subprocess.DEVNULL)
    answer = world / "answer"
    input_mb = sum(p.stat().st_size for p in answer.rglob("*.json")) / 2**20
    runs: dict[str, list[tuple[float, float, float]]] = {"w1": [], "wN": [], "floor": []}
    for _ in range(repeat):
        for label, count in (("w1", 1), ("wN", workers)):
            shutil.rmtree(work / f"corpus-{size}", ignore_errors=True)
            runs[label].append(measured(
                [sys.executable, "-m", "umi_data", "build", "toolbench", str(answer), "--out", str(work / f"corpus-{size}"),
                 "--no-progress", "--workers", str(count)]))
        runs["floor"].append(measured([sys.executable, "-c", FLOOR, str(answer), str(work / f"floor-{size}.jsonl")]))
    result: dict[str, float] = {"size": size, "input_mb": input_mb}
    for label, values in runs.items():
        result[f"{label}_s"] = statistics.median(v[0] for v in values)
        result[f"{label}_mb"] = max(v[1] for v in values)
        result[f"{label}_cpu"] = statistics.median(v[2] for v in values)
    result["load_all_s"], result["load_all_mb"], _ = measured([sys.executable, "-c", LOAD_ALL, str(answer)])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the default-workers run (default: the machine's cores)")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds of the builds and the floor; medians reported (default 1)")
    parser.add_argument("--work", type=Path, default=None, help="working directory, synthetic inputs kept (default: a temporary one, removed after)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="umi-build-bench-"))
    try:
        results = [bench(size, work, args.workers, max(args.repeat, 1)) for size in args.sizes]
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'trajectories':>12} {'input MB':>9} {'workers':>7} {'build s':>8} {'CPU s':>7} {'traj/s':>8} {'tree RSS MB':>11} "
          f"{'floor s':>8} {'ratio to floor':>14} {'load-all RSS MB':>15}")
    for r in results:
        for label, count in (("w1", 1), ("wN", args.workers)):
            print(f"{r['size']:>12} {r['input_mb']:>9.0f} {count:>7} {r[label + '_s']:>8.1f} {r[label + '_cpu']:>7.1f} {r['size'] / r[label + '_s']:>8.0f} "
                  f"{r[label + '_mb']:>11.0f} {r['floor_s']:>8.1f} {r[label + '_s'] / r['floor_s']:>14.2f} {r['load_all_mb']:>15.0f}")
    first, last = results[0], results[-1]
    for label, count in (("w1", 1), ("wN", args.workers)):
        print(f"RSS ratio {last['size']}/{first['size']} with {count} worker(s): {last[label + '_mb'] / first[label + '_mb']:.2f}")
    print(f"peak_rss_mb: {last['wN_mb']:.0f}")
    print(f"ratio_to_floor: {last['wN_s'] / last['floor_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
