"""`python -m umi_agent.run --toolbench-queries FILE --cache DIR | --service-url URL ...`: play ToolBench queries.

Each agent (`--run RUN` or a served model) plays every playable query of a query file
(StableToolBench `solvable_queries/test_instruction/G1_instruction.json`, ToolBench
`data/instruction/G1_query.json`) with CoT (default) or DFSDT (`--search dfsdt`), its tool calls
sent to a `/virtual` backend. Per agent it writes

    OUT/<name>/episodes.json                      the chosen chains, `Trajectory` documents
    OUT/<name>/corpus/                            those built as a corpus directory
    OUT/<name>/answer/<group>/<qid>_<method>.json ToolBench answer files (method CoT@1 or DFS_woFilter_w2)

where `<group>` is the query file's stem: StableToolBench's `convert_to_answer_format.py
--answer_dir OUT/<name>/answer/<group> --method <method>` reads them, and so does
`python -m umi_data build --source toolbench`. `OUT/metrics.json` has the episode numbers and the
replay cache's hits, misses (per api) and hit rate; `OUT/query_rejects.jsonl` every query that
could not be played and why. Tool calls go to `--cache DIR` in process or `--service-url URL`.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any, Callable, Sequence

from umi_agent.dfsdt import SEARCHES, DfsdtConfig, Played, play_cot, play_dfsdt
from umi_agent.toolbench import Backend, QueryFileError, QueryReject, ToolBenchRegistry, ToolBenchTask, read_queries
from umi_agent.served import positive_int
from umi_agent.toolbench_backend import RUN_ON_MISS, CountingBackend, backend_from_args
from umi_agent.toolbench_http import DEFAULT_TIMEOUT

QUERY_REJECTS = "query_rejects.jsonl"
ANSWER_DIR = "answer"


def add_toolbench_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ToolBench queries (instead of --tasks)")
    group.add_argument("--toolbench-queries", type=Path, metavar="FILE",
                       help="a ToolBench / StableToolBench query file (a JSON list of {query, query_id, api_list})")
    group.add_argument("--cache", type=Path, metavar="DIR",
                       help="answer tool calls in process from this cache (`python -m umi_data tool-cache`, or StableToolBench's "
                            "tool_response_cache/); instead of --service-url")
    group.add_argument("--on-miss", choices=RUN_ON_MISS, default="error",
                       help="with --cache: a miss is an error the model sees, or the nearest recorded input's response (default: %(default)s)")
    group.add_argument("--service-url", metavar="URL", help="the /virtual tool server, e.g. http://127.0.0.1:8080/virtual")
    group.add_argument("--tools-dir", type=Path, metavar="DIR",
                       help="ToolBench's toolenv/tools, to build functions from the tool documents as ToolBench does "
                            "(default: the documentation in the query file's api_list)")
    group.add_argument("--search", choices=SEARCHES, default="cot", help="cot: one path; dfsdt: ToolBench's DFSDT tree")
    group.add_argument("--tree-width", type=positive_int, default=DfsdtConfig.width, metavar="N", help="DFSDT children per node")
    group.add_argument("--max-queries", type=positive_int, default=DfsdtConfig.max_queries, metavar="N", help="DFSDT model decisions per query")
    group.add_argument("--max-depth", type=positive_int, default=DfsdtConfig.max_depth, metavar="N", help="DFSDT tree nodes per path")
    group.add_argument("--toolbench-key", metavar="NAME", help="sent as toolbench_key (a local server ignores it)")
    group.add_argument("--tool-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="X", help="seconds per tool request")


def play_task(agent: Any, task: ToolBenchTask, backend: Backend, search: str, config: DfsdtConfig,
              observation_chars: int = 1024, toolbench_key: str = "", group: str | None = None) -> Played:
    """One query played by `agent` with the chosen search."""
    registry = ToolBenchRegistry(task, backend, observation_chars, toolbench_key)
    meta = {"task_id": task.query_id, "query_id": task.query_id, "group": group}
    episode_id = f"{group}/{task.query_id}" if group else task.query_id
    if search == "dfsdt":
        return play_dfsdt(agent, task, registry, episode_id, config, meta)
    return play_cot(agent, task, registry, episode_id, meta)


def toolbench_metrics(played: Sequence[Played], backend: CountingBackend) -> dict[str, Any]:
    """What needs no judge: answered / gave-up shares (as ToolBench's answer files say), model
    decisions, tool requests per query and the replay cache's hit rate."""
    n = max(len(played), 1)
    outcomes = [p.episode.trajectory.outcome for p in played]
    return {
        "episodes": len(played),
        "answered": outcomes.count("answer") / n,
        "gave_up": outcomes.count("give_up") / n,
        "unfinished": outcomes.count("unfinished") / n,
        "valid_answer_files": sum(p.answer["answer_generation"]["valid_data"] for p in played),
        "mean_decisions": statistics.fmean(p.episode.steps for p in played) if played else 0.0,
        "requests_per_query": backend.requests / n,
        **backend.metrics(),
    }


def with_provenance(played: Played, episode_id: str, search: str, counts: dict[str, int] | None) -> dict[str, Any]:
    """The answer file with umi's top-level keys: `umi` (who wrote it: version, episode, method,
    search, outcome; what makes umi's builder read an unfinished run back) and `tool_cache`
    `{hits, misses}` (what `python -m umi_agent.passrate` reports as the hit rate; absent when the
    server does not mark its misses). ToolBench's and StableToolBench's readers ignore both."""
    from umi_data import __version__

    answer = dict(played.answer)
    answer["umi"] = {"version": __version__, "episode_id": episode_id, "method": played.method, "search": search,
                     "outcome": played.episode.trajectory.outcome, **played.answer.get("umi", {})}
    if counts is not None:
        answer["tool_cache"] = counts
    return answer


def play_into(agent: Any, tasks: Sequence[ToolBenchTask], out: Path, args: argparse.Namespace, backend: Backend,
              concurrency: int, on_done: Callable[[], None] | None = None, misses_known: bool = True) -> dict[str, Any]:
    """Play every task into `out`: episodes, corpus and answer files; the metrics."""
    from umi_agent.backends import ordered_map
    from umi_agent.run import EpisodeLog, write_corpus
    from umi_data.plumbing.write import write_json

    group = args.toolbench_queries.stem
    config = DfsdtConfig(width=args.tree_width, max_queries=args.max_queries, max_depth=args.max_depth)
    counting = CountingBackend(backend, misses_known)
    answers = out / ANSWER_DIR / group
    answers.mkdir(parents=True, exist_ok=True)
    with EpisodeLog(out / "episodes.json") as log:
        def one(numbered: tuple[int, ToolBenchTask]) -> Played:
            index, task = numbered
            counts = counting.child()
            played = play_task(agent, task, counts, args.search, config, toolbench_key=args.toolbench_key or "", group=group)
            answer = with_provenance(played, f"{group}/{task.query_id}", args.search, counts.tool_cache())
            write_json(answers / f"{task.query_id}_{played.method}.json", answer)
            log.add(index, played.episode)
            if on_done is not None:
                on_done()
            return played

        played = ordered_map(one, enumerate(tasks), concurrency)
    return {"corpus": str(write_corpus(out)), "answers": str(answers), **toolbench_metrics(played, counting)}


def write_rejects(path: Path, rejects: Sequence[QueryReject]) -> None:
    import orjson

    from umi_data.plumbing.outdir import atomic_open

    with atomic_open(path) as handle:
        for reject in rejects:
            handle.write(orjson.dumps(reject._asdict()) + b"\n")


def run_toolbench(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every agent in turn over the query file into the locked --out; metrics by agent."""
    from umi_agent.run import PROG, RUN_OUTPUT, METRICS, live_agents
    from umi_data.plumbing.cli import Progress
    from umi_data.plumbing.outdir import claim_out_dir
    from umi_data.plumbing.write import write_json

    if args.tasks is not None:
        raise QueryFileError("--tasks (synthetic tasks) and --toolbench-queries: give one of them")
    tasks, rejects = read_queries(args.toolbench_queries, args.tools_dir)
    if args.limit is not None:
        tasks = tasks[: args.limit]
    backend, misses_known = backend_from_args(args)
    agents = live_agents(args)
    print(f"{PROG}: {len(tasks)} playable queries, {len(rejects)} rejected ({args.search})", flush=True)
    metrics: dict[str, dict[str, Any]] = {}
    with claim_out_dir(args.out, RUN_OUTPUT, args.force, extra_owns=[QUERY_REJECTS, *(name for name, *_ in agents)]) as claim:
        claim.sweep()
        write_rejects(args.out / QUERY_REJECTS, rejects)
        for name, where, make_agent, concurrency in agents:
            progress = Progress(len(tasks), f"queries of {name}", prog=PROG, quiet=args.quiet)
            played = play_into(make_agent(), tasks, args.out / name, args, backend, concurrency, progress.done, misses_known)
            metrics[name] = {"run": where, "search": args.search, "rejected_queries": len(rejects), **played}
            write_json(args.out / METRICS, metrics)
    return metrics


def _cell(metrics: dict[str, Any], key: str, fmt: str) -> str:
    """A table cell; a hit rate without a number says why (a foreign server, or no lookups)."""
    if metrics[key] is not None:
        return fmt.format(metrics[key])
    return "unknown" if isinstance(metrics.get("tool_cache"), str) else "no lookups"


def side_by_side(metrics: dict[str, dict[str, Any]]) -> str:
    rows = [("answered", "answered", "{:.1%}"), ("gave up", "gave_up", "{:.1%}"), ("unfinished", "unfinished", "{:.1%}"),
            ("decisions per query", "mean_decisions", "{:.2f}"), ("tool requests per query", "requests_per_query", "{:.2f}"),
            ("tool errors", "tool_errors", "{}"), ("cache hit rate", "cache_hit_rate", "{:.1%}")]
    names = list(metrics)
    table = [["", *names]] + [[label, *(_cell(metrics[n], key, fmt) for n in names)] for label, key, fmt in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


__all__ = ["ANSWER_DIR", "CountingBackend", "QUERY_REJECTS", "add_toolbench_arguments", "backend_from_args", "play_into",
           "play_task", "run_toolbench", "side_by_side", "toolbench_metrics", "with_provenance"]
