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
import sys
from pathlib import Path
from typing import Any

from umi_data.synth.world import write_synthetic


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


def main(argv: list[str] | None = None) -> int:
    """Run `synth` on its own (`python -m umi_data.synth.cli`), before it is wired into `python -m umi_data`."""
    from umi_data.plumbing.cli import Parser, add_commands

    parser = Parser(prog="umi-data", quiet=False)
    add_parser(add_commands(parser))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
