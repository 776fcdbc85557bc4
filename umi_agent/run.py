"""Live evaluation: `python -m umi_agent.run --run RUN [--run RUN2 ...] --tasks DIR/tasks.jsonl --out OUT`.

A served agent plays too (or instead): `--server URL --model planner=P --model caller=C
--model summarizer=S` (or one `--model NAME`, the Single-LLM backbone), `--concurrency N`
episodes at once, written under `OUT/served/` (see `umi_agent.served`).

Each run (a `umi_train.glpft` directory) plays every task of a synthetic `tasks.jsonl` against the
synthetic world's real tools: a Single-LLM run (`--variant single`) as the one-model baseline,
any other variant as the α-UMi planner / caller / summarizer. Per run it writes
`OUT/<name>/episodes.json` (the traces, `Trajectory` documents), `OUT/<name>/corpus/` (the traces
built as a corpus directory: query them with `python -m umi_data query`), and `OUT/metrics.json`
for all runs; it prints the runs side by side.

Episode metrics: answered correctly (the final answer holds every expected fact), answered,
gave up, unfinished, hallucinated calls, invalid arguments, steps per episode, and latency per
role (milliseconds per model call).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import orjson

from umi_agent.backends import RunNotFoundError, ordered_map
from umi_agent.loop import DEFAULT_MAX_STEPS, Episode, MultiAgent, SingleAgent, run_episode
from umi_agent.served import SERVED_NAME, ServerError, add_server_arguments, server_requested, served_models
from umi_agent.tools import OBSERVATION_CHARS, synthetic_registry
from umi_data.cli import Parser, Progress, fail

PROG = "python -m umi_agent.run"
AgentFactory = Callable[[], MultiAgent | SingleAgent]


class LiveRunError(ValueError):
    """A usage error: a missing or unreadable task file or run directory."""


def read_tasks(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LiveRunError(f"{path}: no such task file (write one with `python -m umi_data synth --out DIR`)")
    tasks = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                task = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LiveRunError(f"{path}:{number}: not JSON ({exc})") from None
            missing = [k for k in ("id", "instruction", "tools", "expected_facts", "expected_outcome") if k not in task]
            if missing:
                raise LiveRunError(f"{path}:{number}: a task needs {', '.join(missing)}")
            tasks.append(task)
    return tasks[:limit] if limit is not None else tasks


def play(agent: MultiAgent | SingleAgent, tasks: Iterable[dict[str, Any]], observation_chars: int = OBSERVATION_CHARS,
         concurrency: int = 1, progress: Progress | None = None) -> list[Episode]:
    """One episode per task, in task order; `concurrency` episodes at once (against a server:
    each episode is deterministic, so the episodes are those of a sequential run)."""

    def episode(task: dict[str, Any]) -> Episode:
        registry = synthetic_registry(task["tools"], observation_chars)
        return run_episode(agent, task["instruction"], registry, episode_id=task["id"], meta={"task_id": task["id"]})

    return ordered_map(progress.wrap(episode) if progress else episode, tasks, concurrency)


def episode_metrics(tasks: Sequence[dict[str, Any]], episodes: Sequence[Episode]) -> dict[str, Any]:
    """What the paper's real-time evaluation looks at, over a list of episodes."""
    from umi_data.synth import answer_is_correct

    outcomes = [e.trajectory.outcome for e in episodes]
    correct = [
        e.trajectory.outcome == "answer" and answer_is_correct(task, e.trajectory.turns[-1].answer)
        for task, e in zip(tasks, episodes)
    ]
    n = max(len(episodes), 1)
    latency: dict[str, list[float]] = {}
    for episode in episodes:
        for role, seconds in episode.latency.items():
            latency.setdefault(role, []).extend(seconds)
    return {
        "episodes": len(episodes),
        "answered_correctly": sum(correct) / n,
        "answered": outcomes.count("answer") / n,
        "gave_up": outcomes.count("give_up") / n,
        "unfinished": outcomes.count("unfinished") / n,
        "hallucinated_calls": sum(e.hallucinated_calls for e in episodes),
        "invalid_arguments": sum(e.invalid_arguments for e in episodes),
        "calls": sum(t.role == "caller" for e in episodes for t in e.trajectory.turns),
        "mean_steps": statistics.fmean(e.steps for e in episodes) if episodes else 0.0,
        "latency_ms": {role: round(1000 * statistics.fmean(s), 2) for role, s in sorted(latency.items())},
    }


def write_episodes(out: Path, episodes: Sequence[Episode]) -> Path:
    """`out/episodes.json` and the corpus directory `out/corpus` built from it."""
    from umi_data.build import BuildConfig, build_corpus
    from umi_data.write import atomic_open

    path = out / "episodes.json"
    with atomic_open(path) as handle:
        handle.write(orjson.dumps([e.trajectory.model_dump(mode="json") for e in episodes], option=orjson.OPT_INDENT_2))
    build_corpus(BuildConfig(source="agent-run", inputs=[str(path)]), out / "corpus", progress=False)
    return out / "corpus"


def agent_from_run(run: Path, max_steps: int, max_new_tokens: int) -> MultiAgent | SingleAgent:
    """The agent a GLPFT run trained: the Single-LLM baseline for `single`, α-UMi otherwise."""
    from umi_agent.backends import role_models

    return agent_of(role_models(run, max_new_tokens=max_new_tokens), max_steps)


def agent_of(models: dict[str, Any], max_steps: int) -> MultiAgent | SingleAgent:
    """SingleAgent on a `backbone` model, else MultiAgent on the planner, caller and summarizer."""
    if "backbone" in models:
        return SingleAgent(models["backbone"], max_steps=max_steps)
    return MultiAgent(models["planner"], models["caller"], models["summarizer"], max_steps=max_steps)


def side_by_side(metrics: dict[str, dict[str, Any]]) -> str:
    rows = [("answered correctly", "answered_correctly", "{:.1%}"), ("answered", "answered", "{:.1%}"),
            ("gave up", "gave_up", "{:.1%}"), ("unfinished", "unfinished", "{:.1%}"),
            ("hallucinated calls", "hallucinated_calls", "{}"), ("invalid arguments", "invalid_arguments", "{}"),
            ("steps per episode", "mean_steps", "{:.2f}")]
    names = list(metrics)
    table = [["", *names]] + [[label, *(fmt.format(metrics[n][key]) for n in names)] for label, key, fmt in rows]
    roles = sorted({r for m in metrics.values() for r in m["latency_ms"]})
    table += [[f"latency {role} (ms)", *(str(metrics[n]["latency_ms"].get(role, "-")) for n in names)] for role in roles]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", default=[], type=Path, metavar="RUN",
                        help="a umi_train.glpft run directory; repeat to compare runs (e.g. α-UMi and the Single-LLM baseline)")
    parser.add_argument("--tasks", required=True, type=Path, metavar="FILE", help="tasks.jsonl written by `python -m umi_data synth`")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="play only the first N tasks")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, metavar="N", help="planner decisions per episode")
    parser.add_argument("--max-new-tokens", type=int, default=128, metavar="N", help="tokens a model may write per call")
    add_server_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        tasks = read_tasks(args.tasks, args.limit)
        agents: list[tuple[str, str, Callable[[], MultiAgent | SingleAgent], int]] = [
            (run.name, str(run), lambda run=run: agent_from_run(run, args.max_steps, args.max_new_tokens), 1) for run in args.run]
        if server_requested(args):  # checked with one request per model before any episode
            served = agent_of(served_models(args, args.max_new_tokens), args.max_steps)
            agents.append((SERVED_NAME, args.server, lambda: served, args.concurrency))
        if not agents:
            raise LiveRunError("give a run directory (--run RUN) or a served model (--server URL --model ...)")
        metrics = {}
        for name, where, make_agent, concurrency in agents:
            progress = Progress(len(tasks), f"episodes of {name}", prog=PROG, quiet=args.quiet)
            episodes = play(make_agent(), tasks, concurrency=concurrency, progress=progress)
            corpus = write_episodes(args.out / name, episodes)
            metrics[name] = {"run": where, "corpus": str(corpus), **episode_metrics(tasks, episodes)}
    except (LiveRunError, RunNotFoundError, ServerError, FileNotFoundError) as exc:
        return fail(PROG, exc)
    from umi_data.write import write_json

    write_json(args.out / "metrics.json", metrics)
    print(side_by_side(metrics))
    print(f"episodes and corpora under {args.out}; metrics in {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["episode_metrics", "agent_from_run", "agent_of", "main", "play", "read_tasks", "side_by_side", "write_episodes"]
