"""One policy for every directory umi writes, one lock, one atomic file writer (stdlib only, so
every command, `umi_agent.evaluate` included, can use it without the data stack).

An output directory (`--out`) may be new, empty, or one that the same command wrote before:
recognised by `.umi-lock`, the lock file that names the command and the top-level names it
owns, or, for directories written before locks existed, by the command's marker file. Anything
else is refused with one line. `force=True` writes beside foreign files, but never replaces one:
a name the command would write that already exists there is refused too.

While a command writes, it holds an advisory lock (`fcntl.flock`) on `.umi-lock`: a second
writer into the same directory fails at once with a one-line message instead of interleaving
files. `OutputClaim.sweep(keep)` deletes what the command owns there but did not write this
time (files of an older run, temporary files of a killed one), never anything else.

Files are written under a temporary name beside their final name and renamed into place (a
reader never sees half a file), with the usual `0666 & ~umask` mode, not `mkstemp`'s 0600.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from umi_data.plumbing.cli import program

LOCK_FILE = ".umi-lock"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: read once at import (os.umask can only be read by setting it)
UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK


class OutDirError(ValueError):
    """An output directory this command may not write into (a usage error: one line, exit 2)."""


class OutDirLocked(OutDirError):
    """Another process is writing into the same output directory right now."""


@dataclass(frozen=True)
class Output:
    """What one command writes into its output directory."""

    command: str  # e.g. "umi-data build": named in messages and in the lock file (compared as `cli.program` spells it, so a lock written as "python -m umi_data build" is the same command)
    markers: tuple[str, ...]  # files a complete run of this command leaves (an interrupted one lacks them); never proof of ownership
    owns: tuple[str, ...]  # top-level names (files or directories) the command writes
    #: For a command that records what it wrote (the lock's `files`, with hashes): reads the
    #: record an older umi left in its own marker (a corpus manifest's file hashes), None when
    #: the marker is not one. Such a command recognises a directory only by a record, never by
    #: a file name, and its sweep deletes only recorded files that still have their hash.
    legacy_record: Callable[[Path], dict[str, str] | None] | None = None

    @property
    def recorded(self) -> bool:
        return self.legacy_record is not None


# --- atomic files -------------------------------------------------------------------------------


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (`.NAME.XXXX.tmp`), renamed onto it when the block ends
    without error and removed when it fails. The file gets the mode of an ordinary new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A temporary directory beside `path`, moved onto it (replacing an older one) when the block
    succeeds; removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~UMASK)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.replace(path, old / path.name)  # a directory cannot be renamed over a non-empty one
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: the temporary names `atomic_path` and `atomic_dir` give (`mkstemp`/`mkdtemp`: 8 random characters)
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def is_temporary_of(entry: str, names: Iterable[str] | None = None) -> bool:
    """Whether `entry` is a temporary file or directory umi makes (`.NAME.XXXXXXXX.tmp`) of one
    of `names` (of any name when None). An editor's `.NAME.swp` or `.NAME.~1~` is not one."""
    match = TEMPORARY.fullmatch(entry)
    return match is not None and (names is None or match["name"] in set(names))


# --- the output-directory policy ----------------------------------------------------------------


def _record(path: Path) -> dict[str, Any] | None:
    """The lock file's record of who wrote `path`, None when absent or unreadable."""
    try:
        value = json.loads((path / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("command"), str) else None


def previous_owns(path: Path, output: Output, force: bool = False, owns: Iterable[str] = ()) -> set[str]:
    """The names an earlier run of `output.command` owns in `path` (empty for a new or empty
    directory); `OutDirError` when the policy refuses `path`. `owns`: names this run writes
    besides `output.owns`."""
    if path.is_symlink() and not path.exists():
        raise OutDirError(f"{path}: a symbolic link that leads nowhere (dangling); remove it or choose another --out")
    if not path.exists():
        return set()
    if not path.is_dir():
        raise OutDirError(f"{path}: exists and is not a directory; choose another --out")
    linked = sorted(name for name in {*output.owns, *owns} if (path / name).is_symlink())
    if linked:
        raise OutDirError(f"{path}: {linked[0]} is a symbolic link; umi writes only into directories it made, never through a link; choose another --out")
    record = _record(path)
    if record is not None:
        if program(record["command"]) != program(output.command):
            raise OutDirError(f"{path}: written by `{record['command']}`, not `{output.command}`; choose another --out")
        return {str(name) for name in record.get("owns", [])}
    if not [entry for entry in os.listdir(path) if entry != LOCK_FILE]:
        return set()
    if output.legacy_record is not None and output.legacy_record(path) is not None:
        return set(output.owns)  # an older umi's record of what it wrote (a corpus manifest's file hashes)
    # A marker file's name alone proves nothing (a user's tasks.jsonl or run.json): without umi's
    # lock or record the directory is not umi's, and nothing in it is swept.
    if not force:
        raise OutDirError(
            f"{path}: exists, is not empty and was not written by `{output.command}` (umi has no record of it); "
            "choose a new or empty --out (or --force to write beside its files)"
        )
    clash = sorted(name for name in {*output.owns, *owns} if (path / name).exists())
    if clash:
        raise OutDirError(f"{path}: --force never replaces files umi did not write, and {clash[0]} is there; choose another --out")
    return set()


def check_out_file(path: Path, command: str, is_ours: Callable[[Any], bool]) -> None:
    """The same policy for a single-file output (`--out FILE`): new, or a JSON file this command
    wrote before (`is_ours` of its parsed value, None when it is not JSON); anything else, a
    user's README.md or a corpus manifest, is refused rather than overwritten."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_file():
        raise OutDirError(f"{path}: exists and is not a file; choose another file name")
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        value = None
    if not is_ours(value):
        raise OutDirError(f"{path}: exists and was not written by `{command}`; choose another file name")


def previous_files(path: Path, output: Output) -> dict[str, str]:
    """The files (relative path: sha256) that umi recorded writing into `path` for a recorded
    output: the lock's record, else the older umi's record in its marker; empty when none."""
    record = _record(path)
    files = record.get("files") if record is not None else None
    if isinstance(files, dict):
        return {str(k): v for k, v in files.items() if isinstance(v, str)}
    legacy = output.legacy_record(path) if output.legacy_record is not None and path.is_dir() else None
    return legacy or {}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class OutputClaim:
    """A locked output directory: `sweep` removes owned leftovers, `owns` is what this run writes."""

    path: Path
    output: Output
    owns: set[str]
    previous: set[str]
    _fd: int = field(repr=False, default=-1)
    #: recorded outputs: what umi wrote here before (relative path: sha256), and this run
    written_before: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    #: what the sweep left because umi has no record of writing it (relative paths)
    kept: list[str] = field(default_factory=list)

    def sweep(self, keep: Iterable[str] = (), hashes: dict[str, str] | None = None) -> list[str]:
        """Delete what an earlier run left under the names this command owns (now or then) that
        is not in `keep` (relative paths; a kept directory keeps everything under it), and
        umi's temporary files of those names. A recorded output deletes only files its record
        lists with their hash unchanged: the others stay, and are returned (relative paths).
        The record then lists `keep` (with `hashes`, else hashed here)."""
        kept = {Path(k).as_posix() for k in keep}
        owned = self.owns | self.previous
        foreign: list[str] = []
        for entry in sorted(os.listdir(self.path)):
            target = self.path / entry
            if is_temporary_of(entry, owned):
                _remove(target)
            elif entry in owned:
                self._sweep_tree(target, Path(entry), kept, foreign)
        if self.output.recorded:
            self.files, self.written_before = self._kept_files(kept, hashes or {}), {}
        self._write_record(self.owns)
        return foreign

    def record(self, relative: str) -> None:
        """Add a file written after the sweep (the marker, written last) to the record."""
        self.files[relative] = sha256_of(self.path / relative)
        self._write_record(self.owns)

    def _removable(self, target: Path, relative: str) -> bool:
        if not self.output.recorded or is_temporary_of(target.name):
            return True
        recorded = self.written_before.get(relative)
        return recorded is not None and target.is_file() and not target.is_symlink() and sha256_of(target) == recorded

    def _sweep_tree(self, target: Path, relative: Path, kept: set[str], foreign: list[str]) -> None:
        name = relative.as_posix()
        if name in kept:
            return
        if target.is_dir() and not target.is_symlink():
            for child in sorted(os.listdir(target)):
                self._sweep_tree(target / child, relative / child, kept, foreign)
            if not os.listdir(target) and not any(k.startswith(name + "/") for k in kept):
                target.rmdir()
        elif self._removable(target, name):
            target.unlink(missing_ok=True)
        else:
            foreign.append(name)

    def _kept_files(self, kept: set[str], hashes: dict[str, str]) -> dict[str, str]:
        files = {}
        for name in sorted(kept):
            target = self.path / name
            paths = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
            for path in paths:
                relative = path.relative_to(self.path).as_posix()
                if path.is_file() and not path.is_symlink():
                    files[relative] = hashes.get(relative) or sha256_of(path)
        return files

    def _write_record(self, owns: set[str]) -> None:
        record: dict[str, Any] = {"command": self.output.command, "owns": sorted(owns)}
        if self.output.recorded:
            record["files"] = dict(sorted({**self.written_before, **self.files}.items()))
        data = json.dumps(record, indent=2).encode() + b"\n"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


def _remove(target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def _lock(path: Path, command: str) -> int:
    """An exclusive, non-blocking flock on `path/.umi-lock` (created with the usual mode)."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            holder = (_record(path) or {}).get("command", "another umi command")
            raise OutDirLocked(f"{path}: `{holder}` is writing there right now (locked); wait for it to finish or choose another --out") from None
        raise
    return fd


def report_interrupted(path: Path, output: Output, previous: set[str]) -> None:
    """Say so when `path` holds what a run of this command left unfinished (Ctrl-C, a kill): its
    names are there but none of its completion markers. This run replaces them (the sweep)."""
    left = sorted(name for name in previous if (path / name).exists() or any(is_temporary_of(e, [name]) for e in os.listdir(path)))
    if left and not any((path / marker).exists() for marker in output.markers):
        print(f"{program(output.command)}: note: {path} holds the partial output of an interrupted run ({', '.join(left)}); "
              "this run replaces it", file=sys.stderr, flush=True)


@contextmanager
def claim_out_dir(path: Path, output: Output, force: bool = False, extra_owns: Iterable[str] = ()) -> Iterator[OutputClaim]:
    """Check `path` against the policy, create it, and hold its lock for the block.

    The lock file records the union of what the earlier run and this one own, so a run killed
    half-way leaves a directory the next run recognises and cleans up."""
    path, owns = Path(path), set(output.owns) | set(extra_owns)
    previous_owns(path, output, force, owns)  # refuse before creating anything
    first_new = _first_missing(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = _lock(path, output.command)
    try:
        previous = previous_owns(path, output, force, owns)  # again, now that no one else can write
        report_interrupted(path, output, previous)
        claim = OutputClaim(path, output, owns, previous, fd, previous_files(path, output) if output.recorded else {})
        claim._write_record(claim.owns | previous)
        yield claim
    except BaseException:
        if first_new is not None:  # a failed run into a new directory leaves no lock and no empty folder behind
            _remove_empty(path, first_new)
        raise
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of `path` (itself included) that does not exist yet."""
    missing = None
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            break
        missing = candidate
    return missing


def _remove_empty(path: Path, first_new: Path) -> None:
    """Empty folders under `path`, then the lock if it is all that is left, then `path` and its
    new parents up to `first_new` while they are empty."""
    for root, _, _ in sorted(os.walk(path), key=lambda item: -len(item[0])):
        if Path(root) != path and not os.listdir(root):
            os.rmdir(root)
    if os.listdir(path) == [LOCK_FILE]:
        (path / LOCK_FILE).unlink()
    for directory in [path, *path.parents]:
        if os.listdir(directory):
            break
        directory.rmdir()
        if directory == first_new:
            break

__all__ = [
    "FILE_MODE", "LOCK_FILE", "OutDirError", "OutDirLocked", "Output", "OutputClaim",
    "atomic_dir", "atomic_open", "atomic_path", "check_out_file", "claim_out_dir", "is_temporary_of", "previous_files", "previous_owns",
]
