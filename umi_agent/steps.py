"""A pipeline of documented command lines, run one after another and shown as they run.

`make demo` (`umi_agent.demo`) is a list of `Step`s; any other pipeline (a reproduction of the
paper's table, say) is another list given to the same `run_steps`. For each step:

- the command line is printed, then its output (stdout and stderr) line by line *as it is
  written*: a step that trains for an hour shows its progress lines, it does not look hung
  (tqdm bars, which need a terminal, are turned off: `TQDM_DISABLE=1`);
- it is timed, and `timing_table` lists every step's duration at the end;
- a step whose `done` file exists is skipped (each umi command writes such a file last: a
  corpus's manifest.json, a run's glpft.json, a metrics file), so an interrupted pipeline
  continues where it stopped;
- a failing command stops the pipeline with its exit code and title (`StepFailed`).

Imports only the standard library.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO


@dataclass(frozen=True)
class Step:
    """One command line of a pipeline; `done` is the file the command writes last (None: the
    step always runs, e.g. a query that writes nothing)."""

    title: str
    command: tuple[str, ...]
    done: Path | None = None


@dataclass(frozen=True)
class StepResult:
    step: Step
    seconds: float
    skipped: bool


class StepFailed(RuntimeError):
    """A step's command exited non-zero; its own output (already streamed) says why."""


def command_line(command: Sequence[str]) -> str:
    """The command as a user would type it: `PYTHON -m umi_data synth ...` shown as the console
    script beside that Python (`.venv/bin/umi-data synth ...`), which runs the same code."""
    from umi_data.plumbing.cli import program

    if len(command) > 2 and command[1] == "-m" and program(command[2]) != command[2] and not program(command[2]).startswith("python"):
        script, *words = program(command[2]).split(" ")
        beside = Path(command[0]).parent / script
        if beside.exists():
            shown = os.path.relpath(beside) if beside.is_absolute() and not os.path.relpath(beside).startswith("..") else str(beside)
            command = [shown, *words, *command[3:]]
    return " ".join(shlex.quote(part) for part in command)


def _stream(command: Sequence[str], out: TextIO) -> int:
    """Run `command`, copying its stdout and stderr to `out` line by line as they come."""
    # A Python child writes each line at once, not at exit; tqdm bars (carriage returns meant for
    # a terminal) are off, the commands print progress lines instead.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env) as process:
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            out.flush()
        return process.wait()


def run_step(step: Step, out: TextIO = sys.stdout) -> StepResult:
    """Print the step's title and command line, then run it (or skip it when `done` exists)."""
    print(f"\n== {step.title}\n$ {command_line(step.command)}", file=out, flush=True)
    if step.done is not None and step.done.exists():
        print(f"   (skipped: {step.done} exists from an earlier run)", file=out, flush=True)
        return StepResult(step, 0.0, skipped=True)
    start = time.perf_counter()
    code = _stream(step.command, out)
    seconds = time.perf_counter() - start
    if code != 0:
        raise StepFailed(f"step failed after {seconds:.0f} s ({step.title.strip()}): exit {code}")
    print(f"   ({seconds:.0f} s)", file=out, flush=True)
    return StepResult(step, seconds, skipped=False)


def run_steps(steps: Sequence[Step], out: TextIO = sys.stdout) -> list[StepResult]:
    """Run `steps` in order; stops at the first failure (`StepFailed`)."""
    return [run_step(step, out) for step in steps]


def timing_table(results: Sequence[StepResult]) -> str:
    """One line per step with its duration (or `skipped`), and the total."""
    width = max(len(result.step.title.strip()) for result in results)
    lines = [f"  {r.step.title.strip():<{width}}  {'skipped' if r.skipped else f'{r.seconds:6.0f} s'}" for r in results]
    lines.append(f"  {'total':<{width}}  {sum(r.seconds for r in results):6.0f} s")
    return "\n".join(lines)


__all__ = ["Step", "StepFailed", "StepResult", "command_line", "run_step", "run_steps", "timing_table"]
