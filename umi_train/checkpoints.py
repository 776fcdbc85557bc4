"""Which checkpoint a run resumes from, and whether a run directory's options still match.

A process killed while the Trainer writes a checkpoint (or a full disk) leaves a checkpoint
directory with a truncated file. Resuming from it would fail with a traceback deep inside
torch, or worse load garbage, so every checkpoint is verified before it is used: its
`trainer_state.json` parses, each `torch.save` file is a zip whose members all match their
CRC, and each safetensors file is as long as its header says. Damaged checkpoints are set
aside (renamed `damaged-checkpoint-N`, kept for inspection) and the newest good one is used.

Verifying reads the files but imports no torch.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

from umi_train.config import UsageError

#: options added after runs were recorded without them: a missing one reads as its default
ADDED_DEFAULTS: dict[str, Any] = {"prompt_format": "alpha-umi", "tool_docs": "full"}
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
REQUIRED = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def _json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return f"is not valid JSON ({str(exc).splitlines()[0]})"
    return None


def _zip_problem(path: Path) -> str | None:
    """`torch.save` writes a zip archive: a truncated one has no central directory, a corrupt
    one fails a member's CRC."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        return f"is not a complete torch file ({exc})"
    return f"fails its checksum in {bad}" if bad else None


def _safetensors_problem(path: Path) -> str | None:
    """8 bytes of header length, a JSON header with each tensor's byte range, then the data."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
        expected = 8 + length + end
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError) as exc:
        return f"has no readable safetensors header ({exc})"
    actual = path.stat().st_size
    return None if actual == expected else f"is truncated ({actual} of {expected} bytes)"


_CHECKS: dict[str, Callable[[Path], str | None]] = {
    ".json": _json_problem, ".pt": _zip_problem, ".pth": _zip_problem, ".bin": _zip_problem, ".safetensors": _safetensors_problem,
}


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when every file verifies."""
    missing = [name for name in REQUIRED if not (checkpoint / name).is_file()]
    if missing:
        return f"{missing[0]} is missing"
    files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    if not any(p.suffix in WEIGHT_SUFFIXES and p.name != "training_args.bin" for p in files):
        return "it holds no model weights"
    for path in files:
        check = _CHECKS.get(path.suffix)
        problem = check(path) if check else None
        if problem:
            return f"{path.name} {problem}"
    return None


def checkpoints_newest_first(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


class NoGoodCheckpoint(UsageError):
    """Every checkpoint of the run is damaged."""


def resumable_checkpoint(directory: Path, prog: str, set_aside: bool = True) -> Path | None:
    """The newest checkpoint under `directory` that verifies (None when there is none at all).
    Each damaged newer one is reported in one line and, with `set_aside`, renamed
    `damaged-checkpoint-N` so that the Trainer neither resumes from it nor counts it."""
    checkpoints = checkpoints_newest_first(directory)
    for checkpoint in checkpoints:
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        print(f"{prog}: {checkpoint.name} is damaged ({problem}); set aside as damaged-{checkpoint.name}", file=sys.stderr, flush=True)
        if set_aside:
            os.replace(checkpoint, checkpoint.with_name(f"damaged-{checkpoint.name}"))
    if checkpoints:
        raise NoGoodCheckpoint(f"{directory}: every checkpoint is damaged, none can be resumed from; remove them to start over")
    return None


def same_training(recorded: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether two recorded configs train the same thing. `out` is where, not what: a run
    directory that was moved or renamed still matches. A model or corpus path matches when it is
    the same, or the same relative to `out` (glpft's stage 2 trains on the merged model inside
    the run directory, which moves with it)."""
    keys = (recorded.keys() | current.keys()) - {"out"}
    for key in keys:
        a, b = recorded.get(key, ADDED_DEFAULTS.get(key)), current.get(key, ADDED_DEFAULTS.get(key))
        if a == b:
            continue
        if key in ("model", "corpus") and all(isinstance(v, str) for v in (a, b, recorded.get("out"), current.get("out"))):
            if os.path.relpath(a, recorded["out"]) == os.path.relpath(b, current["out"]):
                continue
        return False
    return True


__all__ = ["NoGoodCheckpoint", "checkpoint_problem", "checkpoints_newest_first", "resumable_checkpoint", "same_training"]
