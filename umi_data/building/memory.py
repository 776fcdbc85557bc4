"""Keeping a long data command's resident memory flat: which allocator Arrow uses, and handing
freed memory back to the system between phases.

Measured on the build benchmark's synthetic ToolBench inputs with one worker (peak RSS of the
process): Arrow's default mimalloc pool keeps freed pages resident and peaks at 266-312 MB,
jemalloc (which purges them after a second) at 224-255 MB with flatter growth; the system
allocator is lean while converting but fragments in the card phase. So the data commands use
jemalloc when this pyarrow has it, unless the user chose a pool with `ARROW_DEFAULT_MEMORY_POOL`.
"""

from __future__ import annotations

import os

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
LEAN_POOL = "jemalloc"


def use_lean_memory_pool() -> str:
    """Make `LEAN_POOL` Arrow's default pool in this process (left as it is when the user set
    `ARROW_DEFAULT_MEMORY_POOL` or this pyarrow lacks it); return the pool in use."""
    import pyarrow as pa

    if POOL_VARIABLE not in os.environ and LEAN_POOL in pa.supported_memory_backends():
        use_memory_pool(LEAN_POOL)
    return pa.default_memory_pool().backend_name


def use_memory_pool(backend: str) -> None:
    """Arrow's default pool by backend name (a worker process takes its parent's this way)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != backend:
        pa.set_memory_pool({"jemalloc": pa.jemalloc_memory_pool, "mimalloc": pa.mimalloc_memory_pool,
                            "system": pa.system_memory_pool}[backend]())


def release_memory() -> None:
    """Hand freed memory back to the system: Arrow's pool keeps freed buffers, and glibc keeps
    freed heap pages, unless asked (which makes a long build's peak RSS that of its buffers,
    plus the card's, never their sum)."""
    import ctypes
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


__all__ = ["LEAN_POOL", "POOL_VARIABLE", "release_memory", "use_lean_memory_pool", "use_memory_pool"]
