"""`python -m umi_data synth --n N --seed S --out DIR`: write a synthetic ToolBench-format dataset.

DIR/answer/G1_answer/<id>_synthetic.json   one ToolBench answer file per task
DIR/tasks.jsonl                              one task per line (sorted keys), in id order

The answer files are written into a hidden staging directory inside DIR and moved into place
as one directory, so `answer/G1_answer` never mixes files of two runs; tasks.jsonl lands last
and marks the output complete (it is removed first when a run starts). The same --n and
--seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from umi_data.plumbing.outdir import Output
from umi_data.synth.answer_file import GROUP_DIR, answer_file_bytes, answer_file_name, generate, task_row

TASKS_FILE = "tasks.jsonl"
ANSWER_DIR = "answer"
SYNTH_OUTPUT = Output(command="umi-data synth", markers=(TASKS_FILE,), owns=(ANSWER_DIR, TASKS_FILE))


@dataclass
class SynthStats:
    """What a run wrote: outcomes, calls per task, tool errors, speed."""

    tasks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    calls_per_task: Counter[int] = field(default_factory=Counter)
    error_observations: int = 0
    retries_after_error: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.tasks / self.seconds if self.seconds else 0.0
        calls = ", ".join(f"{k}: {v}" for k, v in sorted(self.calls_per_task.items()))
        return (
            f"{self.tasks} tasks ({self.outcomes['answer']} answered, {self.outcomes['give_up']} given up); "
            f"tool calls per task {{{calls}}}; {self.error_observations} error observations, "
            f"{self.retries_after_error} followed by another tool; {self.bytes_written / 1e6:.1f} MB "
            f"in {self.seconds:.1f} s ({rate:,.0f} trajectories/s)"
        )


def add_parser(subparsers: Any) -> None:
    """Add the `synth` subcommand to the `python -m umi_data` parser."""
    from umi_data.plumbing.cli import add_command

    parser = add_command(subparsers, "synth", "write synthetic ToolBench-format trajectories from umi's deterministic tool world",
                         "Write a synthetic ToolBench-format dataset: tasks solved by a scripted agent against umi's "
                         "deterministic tool world (errors, retries and give-ups included).\n\n" + __doc__.split("\n\n", 1)[1])
    parser.add_argument("--n", type=_positive_int, required=True, metavar="N", help="number of tasks (and answer files) to write")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the task generator; the same --n and --seed give byte-identical files")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output directory: DIR/answer/G1_answer/*.json (read them with `build toolbench DIR/answer`) "
                             "and DIR/tasks.jsonl")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --out that synth did not write, beside its files (never replacing one)")
    parser.add_argument("--heldout", type=Path, default=None, metavar="DIR",
                        help="held-out tasks for the world DIR (an earlier synth --out): the first --n tasks of --seed whose "
                             "instruction no task of DIR has, for evaluating a model trained on DIR")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    if args.heldout is not None:
        from umi_data.synth.heldout import HeldoutError, write_heldout_world

        try:
            kept, dropped = write_heldout_world(args.heldout, args.out, args.n, args.seed, force=args.force)
        except HeldoutError as exc:
            from umi_data.plumbing.cli import fail

            return fail("umi-data synth", exc)
        print(f"synth: {kept} held-out tasks sharing no instruction with {args.heldout} "
              f"({dropped} drawn tasks skipped: their instruction is one of the world's) -> {args.out}")
        return 0
    stats = write_synthetic(args.out, args.n, args.seed, force=args.force)
    print(f"synth: {stats.summary()} -> {args.out}")
    return 0


def write_synthetic(out: Path, n: int, seed: int, force: bool = False) -> SynthStats:
    """Generate `n` tasks of `seed` and write them under `out` (see the module docstring)."""
    from umi_data.plumbing.outdir import atomic_open, claim_out_dir

    with claim_out_dir(out, SYNTH_OUTPUT, force) as claim:
        (out / TASKS_FILE).unlink(missing_ok=True)  # incomplete until the new tasks.jsonl lands
        stats, started = SynthStats(), time.perf_counter()
        staging = Path(tempfile.mkdtemp(prefix=f".{ANSWER_DIR}.", suffix=".tmp", dir=out))
        try:
            with atomic_open(out / TASKS_FILE) as tasks_handle:
                _write_answer_files(staging / GROUP_DIR, n, seed, tasks_handle, stats)
                _replace_dir(staging / GROUP_DIR, out / ANSWER_DIR / GROUP_DIR, staging / "previous")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        claim.sweep([f"{ANSWER_DIR}/{GROUP_DIR}", TASKS_FILE])  # and the staging directories of killed runs
    stats.seconds = time.perf_counter() - started
    return stats


def _write_answer_files(directory: Path, n: int, seed: int, tasks_handle: Any, stats: SynthStats) -> None:
    directory.mkdir()
    for item in generate(n, seed):
        data = answer_file_bytes(item.record)
        with open(directory / answer_file_name(item.task), "wb") as handle:
            handle.write(data)
        # Key order as built (not sorted): tool parameters keep the order the model is shown.
        tasks_handle.write(orjson.dumps(task_row(item.task)) + b"\n")
        _count(stats, item, len(data))


def _count(stats: SynthStats, item: Any, size: int) -> None:
    steps = item.episode.steps
    stats.tasks += 1
    stats.bytes_written += size
    stats.outcomes[item.episode.outcome] += 1
    stats.kinds[item.task.kind] += 1
    stats.calls_per_task[len(steps)] += 1
    for step, following in zip(steps, steps[1:] + (None,)):
        if not step.result.ok:
            stats.error_observations += 1
            stats.retries_after_error += following is not None and following.name != step.name


def _replace_dir(new: Path, target: Path, trash: Path) -> None:
    """Move `new` onto `target`; an existing `target` is moved aside first (a directory cannot be
    renamed over a non-empty one) and deleted with the staging directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.replace(target, trash)
    os.replace(new, target)


def main(argv: list[str] | None = None) -> int:
    """Run `synth` on its own (`python -m umi_data.synth.cli`), before it is wired into `python -m umi_data`."""
    from umi_data.plumbing.cli import Parser, add_commands

    parser = Parser(prog="umi-data", quiet=False)
    add_parser(add_commands(parser))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
