"""`umi-data synth --heldout WORLD --n N --seed S --out DIR` (and, for a pool written already,
`python -m umi_data.synth.heldout --train TRAIN/tasks.jsonl --pool POOL --n N --out DIR`):
held-out tasks that no training task shares an instruction with.

Two synthetic worlds of different seeds draw their tasks independently, so an instruction of
one may (rarely) also be an instruction of the other, word for word; evaluating on it would
measure recall, not generalisation. This keeps the first N tasks of POOL (a `synth` output)
whose instruction is not a training instruction, copies their answer files, and writes
DIR/tasks.jsonl last (the mark of a complete output, as for `synth`). Too few left is exit 2.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import orjson

from umi_data.synth.world import SYNTH_OUTPUT, TASKS_FILE, write_synthetic

EXIT_USAGE = 2


class HeldoutError(ValueError):
    """Missing inputs, or fewer disjoint tasks than asked for (a usage error)."""


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise HeldoutError(f"{path}: no such task file (write one with `umi-data synth`)")
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def disjoint_tasks(train: list[dict], pool: list[dict], n: int) -> tuple[list[dict], int]:
    """The first `n` pool tasks whose instruction is not a training instruction, and how many
    pool tasks were passed over for sharing one."""
    seen = {row["instruction"] for row in train}
    kept, dropped = [], 0
    for row in pool:
        if len(kept) == n:
            break
        if row["instruction"] in seen:
            dropped += 1
        else:
            kept.append(row)
    if len(kept) < n:
        raise HeldoutError(f"only {len(kept)} pool tasks are disjoint from training, {n} asked for; synthesize a larger pool")
    return kept, dropped


def write_heldout(train: Path, pool: Path, n: int, out: Path) -> tuple[int, int]:
    """Write DIR (module docstring); (tasks kept, tasks dropped as training duplicates)."""
    from umi_data.plumbing.write import atomic_open

    kept, dropped = disjoint_tasks(read_rows(train), read_rows(pool / TASKS_FILE), n)
    (out / TASKS_FILE).unlink(missing_ok=True)
    for row in kept:
        target = out / row["answer_file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pool / row["answer_file"], target)
    with atomic_open(out / TASKS_FILE) as handle:
        handle.write(b"".join(orjson.dumps(row) + b"\n" for row in kept))
    return len(kept), dropped


def write_heldout_world(world: Path, out: Path, n: int, seed: int, force: bool = False) -> tuple[int, int]:
    """`synth --heldout WORLD`: draw tasks of `seed` (as many as WORLD has, plus twice `n` and 16, so that even
    the world's own seed leaves `n` new ones) into a temporary pool, and write the first `n`
    whose instruction WORLD does not have into `out`, under `synth`'s output policy and lock."""
    import tempfile

    from umi_data.plumbing.outdir import claim_out_dir

    world_tasks = world / TASKS_FILE if world.is_dir() else world
    train = read_rows(world_tasks)
    with tempfile.TemporaryDirectory(prefix="umi-heldout-") as pool, claim_out_dir(out, SYNTH_OUTPUT, force) as claim:
        write_synthetic(Path(pool), len(train) + 2 * n + 16, seed)
        try:
            kept, dropped = write_heldout(world_tasks, Path(pool), n, out)
        except (KeyError, orjson.JSONDecodeError) as exc:
            raise HeldoutError(f"{world_tasks}: not a synth tasks.jsonl ({exc})") from None
        claim.sweep([row["answer_file"] for row in read_rows(out / TASKS_FILE)] + [TASKS_FILE])  # an earlier run's other files go
    return kept, dropped


def main(argv: list[str] | None = None) -> int:
    from umi_data.plumbing.cli import Parser, interrupted

    parser = Parser(prog="umi_data.synth.heldout", description="Held-out tasks drawn from a pool written already: the first N whose instruction no training task has.\n\n" + __doc__.split("\n\n")[1])
    parser.add_argument("--train", type=Path, required=True, metavar="FILE", help="the training world's tasks.jsonl")
    parser.add_argument("--pool", type=Path, required=True, metavar="DIR", help="a `synth` output directory to draw held-out tasks from")
    parser.add_argument("--n", type=int, required=True, metavar="N", help="held-out tasks to keep")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory (answer/ and tasks.jsonl)")
    args = parser.parse_args(argv)
    try:
        kept, dropped = write_heldout(args.train, args.pool, args.n, args.out)
    except KeyboardInterrupt:
        return interrupted(parser.prog)
    except (HeldoutError, FileNotFoundError, KeyError, orjson.JSONDecodeError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"heldout: {kept} tasks disjoint from training ({dropped} pool tasks dropped: instruction seen in training) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
