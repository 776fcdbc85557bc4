"""Atomic, deterministic file writing for corpus directories.

Every file is written under a temporary name in its final directory and renamed into place
(`umi_data.plumbing.outdir.atomic_path`), so a reader never sees half a file; the manifest is written last, so a directory with a
manifest is complete. Nothing written depends on the time or the machine: the same records
give the same bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, Any, Iterable

import orjson

from umi_data.plumbing.outdir import atomic_open, atomic_path, sha256_of  # noqa: F401  (the one atomic writer, re-exported)

PARQUET_OPTIONS = {"compression": "zstd", "write_statistics": True}


def write_json(path: Path, value: Any) -> None:
    """Pretty, key-order-preserving JSON with a final newline."""
    with atomic_open(path) as handle:
        handle.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


sha256_file = sha256_of  # one streaming sha256 of a file, shared with the output-directory records


def file_entry(path: Path, **extra: Any) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}


class HashingWriter:
    """A binary handle that hashes and counts what goes through it: the manifest entry of a file
    of gigabytes without reading it again after the build (`entry`, like `file_entry`)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.sha256, self.bytes = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.bytes += len(data)
        self.handle.write(data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line)

    def entry(self, **extra: Any) -> dict[str, Any]:
        return {"sha256": self.sha256.hexdigest(), "bytes": self.bytes, **extra}


class JsonlWriter:
    """Appends one JSON object per line to an open binary handle."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.rows = 0

    def write(self, value: Any) -> None:
        self.handle.write(orjson.dumps(value) + b"\n")
        self.rows += 1


class JsonArrayWriter:
    """Streams a JSON array (one element per line) so large official files need no buffering."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.rows = handle, 0
        handle.write(b"[")

    def write(self, value: Any) -> None:
        self.write_raw(orjson.dumps(value))

    def write_raw(self, element: bytes) -> None:
        """Append one element already serialised (one line of compact JSON)."""
        self.handle.write((b",\n" if self.rows else b"\n") + element)
        self.rows += 1

    def close(self) -> None:
        self.handle.write(b"\n]\n" if self.rows else b"]\n")
