"""Blocks of rows, the threads that work on them, and BLAS held to one thread.

The infrastructure of the kernels (:mod:`skbn._stats`, :mod:`skbn._affine`):
a partition of rows that depends on the shape only, one thread pool per
process with a static schedule, and a process-wide BLAS thread limit shared
by overlapping calls.  Results never depend on the number of threads.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "aligned_empty",
    "map_blocks",
    "row_blocks",
    "rows_per_block",
    "single_threaded_blas",
    "threads_for",
]

#: Bytes of one block of the affine map and of the batch-splitting helpers
#: (counted as float64 whatever the dtype).
BLOCK_BYTES = 1 << 21


def rows_per_block(n_features: int, block_bytes: int = BLOCK_BYTES) -> int:
    """The rows of a full block: ``block_bytes`` of float64 rows, at least 1."""
    return max(1, block_bytes // (8 * max(n_features, 1)))


def row_blocks(n_rows: int, n_features: int, block_bytes: int = BLOCK_BYTES) -> list:
    """Partition ``range(n_rows)`` into consecutive slices of about ``block_bytes``.

    The partition depends on the shape only (float64 itemsize is assumed for
    every input dtype), never on ``n_jobs`` or on the memory layout.

    Examples
    --------
    >>> row_blocks(5, 1, block_bytes=16)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    rows = rows_per_block(n_features, block_bytes)
    return [slice(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows)]


_MIN_BLOCKS_PER_THREAD = 4
_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    """One pool for the process, made on first use (starting threads on every
    call costs more than a small batch takes); a forked child makes its own."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, 2))
            _pool_pid = os.getpid()
        return _pool


def threads_for(n_blocks: int, n_jobs: int | None) -> int:
    """How many threads :func:`map_blocks` uses for ``n_blocks`` blocks.

    Threads pay off only with several blocks each: between its NumPy calls a
    thread needs the GIL, and waiting for it costs more than a small batch.
    """
    most = n_blocks // _MIN_BLOCKS_PER_THREAD
    if most < 2 or n_jobs == 1:
        return 1
    if n_jobs is None and "joblib" not in sys.modules:
        # None means one job unless a joblib.parallel_config is active, and
        # none can be before joblib is imported (importing it costs 50 ms of
        # the command line's start-up)
        return 1
    from joblib import effective_n_jobs

    return min(effective_n_jobs(n_jobs), most)


def map_blocks(func, blocks: list, n_jobs: int | None) -> list:
    """``[func(b) for b in blocks]``, spread over threads, results in order.

    Threads (from one pool per process) are used only when ``n_jobs`` allows
    two or more and each gets at least ``_MIN_BLOCKS_PER_THREAD`` blocks;
    each takes one contiguous run of blocks (a static schedule: one task per
    thread, so the pool costs nothing per block).  ``func`` sees the same
    blocks however many threads run it, so the results do not depend on
    ``n_jobs``.
    """
    n_threads = threads_for(len(blocks), n_jobs)
    if n_threads <= 1:
        return [func(block) for block in blocks]
    bounds = np.linspace(0, len(blocks), n_threads + 1).astype(int)
    runs = [blocks[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    results = _thread_pool().map(lambda run: [func(block) for block in run], runs)
    return [r for run in results for r in run]


def aligned_empty(n: int, align: int = 64) -> np.ndarray:
    """An uninitialised float64 vector whose data starts on an ``align``-byte
    boundary, so BLAS kernels take the same path (and round the same way) on
    every buffer."""
    raw = np.empty(n + align // 8, dtype=np.float64)
    offset = (-raw.ctypes.data % align) // 8
    return raw[offset : offset + n]


_blas_controller = None


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def single_threaded_blas():
    """BLAS on one thread, whatever ``n_jobs`` is: a multithreaded BLAS sums
    in another order, and the results must not depend on the thread count.

    The limit is process-wide, so overlapping calls (a threaded grid search)
    share it: the first to enter sets it, the last to leave restores it.
    OpenBLAS may ignore a limit set from a thread other than the main one
    once the main thread has set one; the sums are then still correct, but
    their last bits may vary with the BLAS thread count.
    """
    global _blas_controller, _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController()
            _blas_limiter = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
