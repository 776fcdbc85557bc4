"""Running `convert_part` over a build's tasks, in this process or in worker processes, and
bringing the parts back in input order.

This is the build's transport, kept apart from what a part is (`umi_data.building.parts`) and how parts
are written (`umi_data.building.writer`): a worker's part comes back through a spool file, not the
pool's result pipe, and its Arrow tables travel as IPC streams, not column by column. A part is
megabytes, which the result pipe would carry 64 KB at a time (a wake-up of each side per 64 KB,
and the reading done by the pool's thread beside the writer's); an IPC stream is about 5x cheaper
to pickle than a table's columns one by one.
"""

from __future__ import annotations

import copyreg
import os
import pickle
import sys
import tempfile
import time
from collections import deque
from itertools import islice
from typing import Any, Iterable, Iterator

import pyarrow as pa

from umi_data.building.memory import use_memory_pool
from umi_data.sources import register_source, registered_sources
from umi_data.building.parts import Part, PartTask, convert_part


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of `size` consecutive items (the last shorter), read lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def run_parts(tasks: Iterable[PartTask], workers: int, progress: bool | None = None) -> Iterator[Part]:
    """`convert_part` of each task, in order: in this process for one worker, else in a pool of
    `workers` processes with at most two tasks per worker in flight (memory stays flat however
    many files there are)."""
    from tqdm import tqdm

    # disable=None: a bar on a terminal; in a pipe or a file, progress lines instead.
    bar = tqdm(desc="reading", unit="file", disable=None if progress is None else not progress, leave=False)
    lines = ProgressLines() if progress is None and not sys.stderr.isatty() else None
    with bar:
        for part in _converted(tasks, workers):
            bar.update(len(part.inputs))
            if lines is not None:
                lines.update(len(part.inputs))
            yield part


class ProgressLines:
    """`umi-data build: 1,280 files read (12 s)` at most every `SECONDS`: what a piped build
    (a log file, `make demo`) shows while it reads, where a bar would print nothing."""

    SECONDS = 10.0

    def __init__(self, prog: str = "umi-data build") -> None:
        self.prog, self.files, self.start = prog, 0, time.perf_counter()
        self.last = self.start

    def update(self, files: int) -> None:
        self.files += files
        now = time.perf_counter()
        if now - self.last >= self.SECONDS:
            self.last = now
            print(f"{self.prog}: {self.files:,} files read ({now - self.start:.0f} s)", flush=True)


def _converted(tasks: Iterable[PartTask], workers: int) -> Iterator[Part]:
    if workers <= 1:
        yield from map(convert_part, tasks)
        return
    import itertools
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    tasks = iter(tasks)
    first = next(tasks, None)
    if first is None:
        return
    tasks = itertools.chain([first], tasks)
    # Workers get only the registered source this build reads: another one registered in this
    # process (by a test, a notebook) may not be importable in a fresh process at all.
    needed = [entry for entry in registered_sources() if entry[0].name == first.source]
    # spawn, not fork: the parent has Arrow's and polars' thread pools running.
    with tempfile.TemporaryDirectory(prefix="umi-parts-") as spool, \
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                initargs=(pa.default_memory_pool().backend_name, needed)) as pool:
        in_flight: deque[Any] = deque()
        try:
            for task in tasks:
                in_flight.append(pool.submit(_convert_to_file, task, spool))
                if len(in_flight) >= 2 * workers:
                    yield _load_part(in_flight.popleft().result())
            while in_flight:
                yield _load_part(in_flight.popleft().result())
        except BaseException:  # Ctrl-C or an error: the parts not started are not waited for
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _start_worker(backend: str, registered: list[tuple[Any, str, Any]]) -> None:
    """A worker ignores Ctrl-C, which a terminal sends to the whole process group: the parent
    alone stops the build (one line, `umi_data.plumbing.cli.interrupted`), not one traceback per worker.
    It uses the parent's allocator and knows the parent's registered sources (a spawned process
    starts from a fresh import of umi_data)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    use_memory_pool(backend)
    for source, description, schema in registered:
        register_source(source, description, schema)


def _convert_to_file(task: PartTask, spool: str) -> str:
    """`convert_part` in a worker, the part pickled into a file under `spool` (its path is the
    result that crosses the pipe)."""
    part = convert_part(task)
    descriptor, path = tempfile.mkstemp(dir=spool, suffix=".part")
    with os.fdopen(descriptor, "wb") as handle:
        pickler = pickle.Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = {**copyreg.dispatch_table, pa.Table: _table_as_ipc}
        pickler.dump(part)
    return path


def _load_part(path: str) -> Part:
    with open(path, "rb") as handle:
        part = pickle.load(handle)
    os.unlink(path)
    return part


def _table_as_ipc(table: pa.Table) -> tuple[Any, tuple[bytes]]:
    """Pickles a table as one Arrow IPC stream (a reducer for the spool file's pickler)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return _table_from_ipc, (sink.getvalue().to_pybytes(),)


def _table_from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


__all__ = ["batched", "run_parts"]
