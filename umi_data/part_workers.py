"""Running `convert_part` over a build's tasks, in this process or in worker processes, and
bringing the parts back in input order.

This is the build's transport, kept apart from what a part is (`umi_data.parts`) and how parts
are written (`umi_data.corpus_writer`): a worker's part comes back through a spool file, not the
pool's result pipe, and its Arrow tables travel as IPC streams, not column by column. A part is
megabytes, which the result pipe would carry 64 KB at a time (a wake-up of each side per 64 KB,
and the reading done by the pool's thread beside the writer's); an IPC stream is about 5x cheaper
to pickle than a table's columns one by one.
"""

from __future__ import annotations

import copyreg
import os
import pickle
import tempfile
from collections import deque
from itertools import islice
from typing import Any, Iterable, Iterator

import pyarrow as pa

from umi_data.memory import use_memory_pool
from umi_data.sources import register_source, registered_sources
from umi_data.parts import Part, PartTask, convert_part


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

    # disable=None: a bar on a terminal, nothing when stderr is a pipe or a file.
    bar = tqdm(desc="reading", unit="file", disable=None if progress is None else not progress, leave=False)
    with bar:
        for part in _converted(tasks, workers):
            bar.update(len(part.inputs))
            yield part


def _converted(tasks: Iterable[PartTask], workers: int) -> Iterator[Part]:
    if workers <= 1:
        yield from map(convert_part, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent has Arrow's and polars' thread pools running.
    with tempfile.TemporaryDirectory(prefix="umi-parts-") as spool, \
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                initargs=(pa.default_memory_pool().backend_name, registered_sources())) as pool:
        in_flight: deque[Any] = deque()
        for task in tasks:
            in_flight.append(pool.submit(_convert_to_file, task, spool))
            if len(in_flight) >= 2 * workers:
                yield _load_part(in_flight.popleft().result())
        while in_flight:
            yield _load_part(in_flight.popleft().result())


def _start_worker(backend: str, registered: list[tuple[Any, str, Any]]) -> None:
    """A worker uses the parent's allocator and knows the parent's registered sources (a
    spawned process starts from a fresh import of umi_data)."""
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
