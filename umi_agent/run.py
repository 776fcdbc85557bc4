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
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import orjson

from umi_agent.backends import RunNotFoundError, ordered_map
from umi_agent.jsonio import scrub_text
from umi_agent.loop import DEFAULT_MAX_STEPS, Episode, MultiAgent, SingleAgent, run_episode
from umi_agent.served import SERVED_NAME, ServerError, add_server_arguments, server_requested, served_models
from umi_agent.tools import OBSERVATION_CHARS, synthetic_registry
from umi_agent.toolbench_run import add_toolbench_arguments
from umi_data.plumbing.cli import Parser, Progress, fail
from umi_data.plumbing.outdir import Output

PROG = "umi-agent run"
EPISODES, METRICS = "episodes.json", "metrics.json"
#: --out holds metrics.json and one directory per agent (its name; owned per invocation)
RUN_OUTPUT = Output(command=PROG, markers=(METRICS,), owns=(METRICS,))
AgentFactory = Callable[[], MultiAgent | SingleAgent]


class LiveRunError(ValueError):
    """A usage error: a missing or unreadable task file or run directory."""


def read_tasks(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LiveRunError(f"{path}: no such task file (write one with `umi-data synth --out DIR`, held-out tasks with "
                           "`umi-data synth --heldout WORLD --out DIR`)")
    tasks = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                task = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LiveRunError(f"{path}:{number}: not JSON ({exc}); expected a tasks.jsonl written by `umi-data synth`") from None
            missing = [k for k in ("id", "instruction", "tools", "expected_facts", "expected_outcome") if k not in task]
            if missing:
                raise LiveRunError(f"{path}:{number}: a task needs {', '.join(missing)}; expected a tasks.jsonl written by `umi-data synth` "
                                   "(held-out tasks: `umi-data synth --heldout WORLD`)")
            tasks.append(task)
    return tasks[:limit] if limit is not None else tasks


def play(agent: MultiAgent | SingleAgent, tasks: Iterable[dict[str, Any]], observation_chars: int = OBSERVATION_CHARS,
         concurrency: int = 1, on_episode: Callable[[int, Episode], None] | None = None, batch: int = 1) -> list[Episode]:
    """One episode per task, in task order; `concurrency` episodes at once (against a server:
    each episode is deterministic, so the episodes are those of a sequential run), or `batch`
    episodes at once whose waiting model calls are generated together (`umi_agent.batching`:
    one left-padded batch per role for a local model). `on_episode` gets (task index, episode)
    as soon as each finishes."""

    def episode(player: MultiAgent | SingleAgent, index: int, task: dict[str, Any]) -> Episode:
        registry = synthetic_registry(task["tools"], observation_chars)
        done = run_episode(player, task["instruction"], registry, episode_id=task["id"], meta={"task_id": task["id"]})
        if on_episode is not None:
            on_episode(index, done)
        return done

    tasks = list(tasks)
    if batch > 1:
        from umi_agent.batching import play_batched

        return play_batched(agent, tasks, episode, batch)
    return ordered_map(lambda numbered: episode(agent, *numbered), enumerate(tasks), concurrency)


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


class EpisodeLog:
    """`episodes.json`, a JSON array of `Trajectory` documents written one episode at a time: each
    is appended and flushed as soon as it and the episodes before it (in task order) have finished,
    so a run that stops keeps what it played and the file does not depend on `--concurrency`. A
    run killed outright leaves the array unclosed; the agent-run source still reads its complete
    episodes (umi_data/sources/agent_run.py). What a model wrote never stops the writer: lone
    surrogates become U+FFFD (`scrub_text`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.count = path, 0
        self._pending: dict[int, Episode] = {}
        self._lock = threading.Lock()
        self._handle = open(path, "wb")
        self._handle.write(b"[")

    def add(self, index: int, episode: Episode) -> None:
        """Episode number `index` has finished (thread-safe)."""
        with self._lock:
            self._pending[index] = episode
            while self.count in self._pending:
                document = scrub_text(self._pending.pop(self.count).trajectory.model_dump(mode="json"))
                self._handle.write((b",\n" if self.count else b"\n") + orjson.dumps(document))
                self._handle.flush()
                self.count += 1

    def close(self) -> None:
        self._handle.write(b"\n]\n" if self.count else b"]\n")
        self._handle.close()

    def __enter__(self) -> "EpisodeLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()  # also when the run stops: what was played stays a valid array


def write_episodes(out: Path, episodes: Iterable[Episode]) -> Path:
    """`out/episodes.json` and the corpus directory `out/corpus` built from it."""
    with EpisodeLog(out / EPISODES) as log:
        for index, episode in enumerate(episodes):
            log.add(index, episode)
    return write_corpus(out)


def write_corpus(out: Path) -> Path:
    """The corpus directory `out/corpus` built from `out/episodes.json`."""
    from umi_data.building.build import BuildConfig, build_corpus

    build_corpus(BuildConfig(source="agent-run", inputs=[str(out / EPISODES)]), out / "corpus", progress=False)
    return out / "corpus"


def play_into(agent: MultiAgent | SingleAgent, tasks: Sequence[dict[str, Any]], out: Path, concurrency: int = 1,
              progress: Progress | None = None, batch: int = 1) -> dict[str, Any]:
    """Play every task, logging the episodes under `out` as they finish; the corpus and metrics."""
    with EpisodeLog(out / EPISODES) as log:
        def finished(index: int, episode: Episode) -> None:
            log.add(index, episode)
            if progress is not None:
                progress.done()

        episodes = play(agent, tasks, concurrency=concurrency, on_episode=finished, batch=batch)
    return {"corpus": str(write_corpus(out)), **episode_metrics(tasks, episodes)}


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
    parser.add_argument("--tasks", type=Path, metavar="FILE", help="tasks.jsonl written by `umi-data synth`")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="play only the first N tasks")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS, metavar="N", help="planner decisions per episode")
    parser.add_argument("--max-new-tokens", type=int, default=128, metavar="N", help="tokens a model may write per call")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N",
                        help="local runs: play N episodes at once and generate their waiting model calls together "
                             "(one left-padded batch per role; greedy, so the same episodes as one at a time, faster)")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out that this command did not write, beside its files")
    add_server_arguments(parser)
    add_toolbench_arguments(parser)
    return parser


def live_agents(args: argparse.Namespace) -> list[tuple[str, str, Callable[[], MultiAgent | SingleAgent], int]]:
    """(name, where from, agent factory, concurrency) per agent to play; served models are checked
    with one request each here, before any episode and before --out is touched."""
    agents: list[tuple[str, str, Callable[[], MultiAgent | SingleAgent], int]] = [
        (run.name, str(run), lambda run=run: agent_from_run(run, args.max_steps, args.max_new_tokens), 1) for run in args.run]
    if server_requested(args):
        served = agent_of(served_models(args, args.max_new_tokens), args.max_steps)
        agents.append((SERVED_NAME, args.server, lambda: served, args.concurrency))
    if not agents:
        raise LiveRunError("give a run directory (--run RUN) or a served model (--server URL --model ...)")
    names = [name for name, *_ in agents]
    if len(set(names)) != len(names):
        raise LiveRunError(f"two agents have the same name ({', '.join(names)}); their episodes would share OUT/<name>")
    return agents


def run_all(args: argparse.Namespace, tasks: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every agent in turn into the locked --out (an earlier live run there is replaced as a whole);
    metrics.json is rewritten after each, so a later failure keeps the earlier agents' numbers."""
    from umi_data.plumbing.outdir import claim_out_dir
    from umi_data.plumbing.write import write_json

    agents = live_agents(args)
    metrics: dict[str, dict[str, Any]] = {}
    with claim_out_dir(args.out, RUN_OUTPUT, args.force, extra_owns=[name for name, *_ in agents]) as claim:
        claim.sweep()
        for name, where, make_agent, concurrency in agents:
            progress = Progress(len(tasks), f"episodes of {name}", prog=PROG, quiet=args.quiet)
            batch = getattr(args, "batch_size", 1) if where != args.server else 1
            metrics[name] = {"run": where, **play_into(make_agent(), tasks, args.out / name, concurrency, progress, batch)}
            write_json(args.out / METRICS, metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    from umi_data.plumbing.outdir import OutDirError

    args = _parser().parse_args(argv)
    if args.toolbench_queries is not None:
        return toolbench_main(args)
    try:
        if args.tasks is None:
            raise LiveRunError("give --tasks FILE (a synthetic tasks.jsonl) or --toolbench-queries FILE")
        metrics = run_all(args, read_tasks(args.tasks, args.limit))
    except (LiveRunError, RunNotFoundError, ServerError, FileNotFoundError, OutDirError) as exc:
        return fail(PROG, exc)
    print(side_by_side(metrics))
    print(f"episodes and corpora under {args.out}; metrics in {args.out / 'metrics.json'}")
    return 0


def toolbench_main(args: argparse.Namespace) -> int:
    """`--toolbench-queries`: ToolBench queries against a cache or a tool server (`umi_agent.toolbench_run`)."""
    from umi_agent import toolbench_run
    from umi_agent.toolbench import QueryFileError
    from umi_agent.toolbench_http import ToolServerError
    from umi_data.plumbing.outdir import OutDirError
    from umi_data.toolcache.store import CacheError

    try:
        metrics = toolbench_run.run_toolbench(args)
    except (LiveRunError, RunNotFoundError, ServerError, QueryFileError, ToolServerError, CacheError, OutDirError) as exc:
        return fail(PROG, exc)
    print(toolbench_run.side_by_side(metrics))
    print(f"episodes, corpora and answer files under {args.out}; metrics in {args.out / METRICS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "EpisodeLog", "episode_metrics", "agent_from_run", "agent_of", "live_agents", "main", "play", "play_into", "read_tasks",
    "run_all", "side_by_side", "write_corpus", "write_episodes",
]
