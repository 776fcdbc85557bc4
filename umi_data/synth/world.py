"""The synthetic world on disk: `write_synthetic` writes what `umi-data synth` promises (its
files, their staging and order are described in `umi_data.synth.cli`, whose docstring is the
command's help)."""

from __future__ import annotations

import os
import shutil
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


__all__ = ["ANSWER_DIR", "SYNTH_OUTPUT", "TASKS_FILE", "SynthStats", "write_synthetic"]
