"""Live-episode throughput: the local backend against an OpenAI-compatible server, at concurrency
1 and 4, on the same tasks.

The run's role models play the same synthetic tasks four ways: in this process (the local
backend) one episode at a time and 4 at once, and through `transformers serve` (started here on
a free localhost port, serving the merged role models of `python -m umi_train.serve`) one at a
time and 4 at once. The four are interleaved round by round so that load from other processes
falls on all alike; each figure is the median over rounds. Every configuration must produce the
same episodes (checked). Printed: episodes/s and model calls/s per configuration, then
`ratio: X.XX` (server at concurrency 4 over local sequential).

    python benchmarks/agent_throughput.py                         # tiny α-UMi run, 16 synthetic tasks
    python benchmarks/agent_throughput.py --run RUN --tasks tasks.jsonl --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a umi_train.glpft run (default: a tiny α-UMi run trained here)")
    parser.add_argument("--tasks", type=Path, help="tasks.jsonl (default: synthetic tasks written here)")
    parser.add_argument("--task-count", type=int, default=16, help="synthetic tasks when --tasks is not given (default 16)")
    parser.add_argument("--server", help="an already running transformers serve base URL (default: start one here)")
    parser.add_argument("--continuous-batching", action="store_true",
                        help="start transformers serve with --continuous-batching (batches concurrent requests)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; figures are medians (default 2)")
    parser.add_argument("--max-steps", type=int, default=4, help="planner decisions per episode (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="tokens per model call (default 32)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads of this process and of the server (default: 1, stable timings on a shared "
                             "machine, where two busy-waiting OpenMP threads slow a tiny model ~10x; 0: torch's default)")
    return parser.parse_args(argv)


def timed_play(agent: Any, tasks: list[dict[str, Any]], concurrency: int) -> tuple[float, list[Any]]:
    from umi_agent.run import play

    start = time.perf_counter()
    episodes = play(agent, tasks, concurrency=concurrency)
    return time.perf_counter() - start, episodes


def measure(agents: dict[str, tuple[Any, int]], tasks: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, float]]:
    """Seconds per configuration and round (interleaved); the episodes of all must agree."""
    seconds: dict[str, list[float]] = {name: [] for name in agents}
    reference: list[dict[str, Any]] | None = None
    calls = 0
    for _ in range(rounds):
        for name, (agent, concurrency) in agents.items():
            elapsed, episodes = timed_play(agent, tasks, concurrency)
            seconds[name].append(elapsed)
            traces = [e.trajectory.model_dump() for e in episodes]
            reference = reference if reference is not None else traces
            if traces != reference:
                raise SystemExit(f"{name}: its episodes differ from the first configuration's")
            calls = sum(len(times) for e in episodes for times in e.latency.values())
    return {name: {"seconds": statistics.median(s), "episodes/s": len(tasks) / statistics.median(s),
                   "calls/s": calls / statistics.median(s)} for name, s in seconds.items()}


def default_inputs(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    from umi_data.synth.world import write_synthetic
    from umi_train.testing import tiny_glpft_runs

    run = args.run or tiny_glpft_runs(work / "runs", ("reuse",))["reuse"]
    if args.tasks is None:
        write_synthetic(work / "tasks", args.task_count, seed=2)
    return run, args.tasks or work / "tasks" / "tasks.jsonl"


def main(argv: list[str] | None = None) -> int:
    from contextlib import nullcontext

    from umi_agent.backends import PromptFormat, role_models
    from umi_agent.run import agent_of, read_tasks
    from umi_agent.served import Server, ServedModel
    from umi_train.serve import prepare
    from umi_train.testing import transformers_server

    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="umi-agent-bench-") as scratch:
        work = Path(scratch)
        run, tasks_file = default_inputs(work, args)
        tasks = read_tasks(tasks_file)
        serving = prepare(run, work / "serve")
        local = role_models(run, max_new_tokens=args.max_new_tokens)
        server_context = nullcontext(args.server) if args.server else transformers_server(
            work / "server.log", threads=args.threads or None, extra=("--continuous-batching",) if args.continuous_batching else ())
        with server_context as url:
            server = Server(url)
            served = {role: ServedModel(server, path, role, format=PromptFormat(local[role].tokenizer, local[role].compat),
                                        max_new_tokens=args.max_new_tokens) for role, path in serving["merged"].items()}
            local_agent, served_agent = agent_of(local, args.max_steps), agent_of(served, args.max_steps)
            timed_play(served_agent, tasks[:1], 1)  # the server loads its models on the first request
            results = measure({"local, concurrency 1": (local_agent, 1), "local, concurrency 4": (local_agent, 4),
                               "server, concurrency 1": (served_agent, 1), "server, concurrency 4": (served_agent, 4)},
                              tasks, args.rounds)
    print(f"run: {run}; {len(tasks)} tasks, max {args.max_steps} steps, {args.max_new_tokens} new tokens per call, "
          f"{args.rounds} interleaved rounds (medians); identical episodes in every configuration")
    print(f"{'configuration':<24}{'seconds':>9}{'episodes/s':>12}{'calls/s':>10}")
    for name, row in results.items():
        print(f"{name:<24}{row['seconds']:>9.2f}{row['episodes/s']:>12.3f}{row['calls/s']:>10.2f}")
    print(f"ratio: {results['server, concurrency 4']['episodes/s'] / results['local, concurrency 1']['episodes/s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
