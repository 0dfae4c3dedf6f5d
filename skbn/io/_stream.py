"""Streaming helpers of the file engine: progress bars, the pass-1 cache,
exact chunks, and a reader thread."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Iterable, Iterator

from ._atomic import Workspace
from ._errors import reading, require, writing
from ._formats import BATCH_ROWS, pyarrow

__all__ = [
    "Cache",
    "Progress",
    "exact_chunks",
    "forget_abandoned",
    "in_thread",
    "prefetch",
]


class Progress:
    """A tqdm bar of rows on stderr, or nothing."""

    def __init__(self, enabled: bool, desc: str, total: int | None) -> None:
        self._bar = None
        if enabled:
            tqdm = require("tqdm", "tqdm", "the progress bar (turn it off with --no-progress)")
            self._bar = tqdm.tqdm(
                total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
                dynamic_ncols=True, leave=True,
            )  # fmt: skip

    def update(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Cache:
    """The tables of pass 1, kept for pass 2: in memory, or on disk as one
    Arrow IPC file per table in the temporary directory.

    One file per table (not one file for all) lets polars read the cache in
    its streaming engine file after file: its IPC scan maps a file into
    memory, so one large file would put the whole cache in the process's
    resident memory.
    """

    def __init__(self, work: Workspace | None) -> None:
        self._work = work
        self._tables: list = []
        #: The Arrow IPC files of the cache, in order (empty: in memory).
        self.paths: list[str] = []

    def add(self, table) -> None:
        if self._work is None:
            self._tables.append(table)
            return
        pa = pyarrow()
        path = self._work.scratch("cache")
        with writing(f"the pass-1 cache in {os.path.dirname(path)}"):
            with pa.OSFile(path, "wb") as stream:
                # the table's own types (text as views, see TextSource.batches)
                writer = pa.ipc.new_file(stream, table.schema)
                writer.write_table(table)
                writer.close()
        self.paths.append(path)

    def tables(self, group: bool = True, release: bool = False) -> Iterator:
        """The cached tables in order (of the types they were read with); with
        ``group``, joined into tables of at least ``BATCH_ROWS`` rows (less
        work per table downstream).

        With ``release`` the cache is read once: each table is let go once
        handed over, each file removed once mapped (its pages live as long
        as the batches read from it), so the memory they held goes to the
        output as pass 2 writes it.
        """
        if self._work is None:
            if not release:
                yield from self._tables
                return
            while self._tables:
                yield self._tables.pop(0)
            return
        pa = pyarrow()
        batches, rows = [], 0
        for path in self.paths:
            # mapped: the batches point into the page cache (no copy, no new pages)
            with reading(f"the pass-1 cache {path}"):
                stream = pa.memory_map(path)
                reader = pa.ipc.open_file(stream)
            if release:
                with contextlib.suppress(OSError):
                    os.remove(path)
            with stream:
                for i in range(reader.num_record_batches):
                    with reading(f"the pass-1 cache {path}"):
                        batches.append(reader.get_batch(i))
                    rows += batches[-1].num_rows
                    if rows >= BATCH_ROWS or not group:
                        yield pa.Table.from_batches(batches)
                        batches, rows = [], 0
        if batches:
            yield pa.Table.from_batches(batches)


def exact_chunks(tables: Iterable, rows: int) -> Iterator:
    """The rows of ``tables`` cut into tables of exactly ``rows`` (the last may be short)."""
    pa = pyarrow()
    pending, n_pending = [], 0
    for table in tables:
        if table.num_rows == 0:
            continue
        pending.append(table)
        n_pending += table.num_rows
        while n_pending >= rows:
            joined = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
            yield joined.slice(0, rows)
            rest = joined.slice(rows)
            pending, n_pending = ([rest] if rest.num_rows else []), rest.num_rows
    if n_pending:
        yield pa.concat_tables(pending) if len(pending) > 1 else pending[0]


_DONE = object()


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """The items of ``items``, produced up to ``depth`` ahead in a thread.

    The producer's exception is raised here; leaving the loop early stops
    the producer at its next item.  Parsing (polars) and NumPy release the
    GIL, so reading the next batch overlaps the work on this one.
    """
    box: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((_DONE, exc))

    thread = threading.Thread(target=produce, daemon=True, name=PREFETCH_THREAD)
    thread.start()
    try:
        while True:
            item, exc = box.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)  # it may be blocked reading a pipe: see the CLI


#: The name of :func:`prefetch`'s threads.
PREFETCH_THREAD = "skbn-prefetch"


def in_thread(function, *args) -> None:
    """``function(*args)`` in a worker thread, waited for in short steps so
    that a signal's exception reaches this (main) thread at once, even while
    the worker is inside polars for minutes.  The worker counts for
    :func:`reader_blocked`; its exception is raised here."""
    failure: list = []

    def work() -> None:
        try:
            function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=work, daemon=True, name=PREFETCH_THREAD)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.05)
    except BaseException:
        # A join interrupted by a signal can leave is_alive() False while the
        # worker still runs inside polars: remember it for reader_blocked.
        _ABANDONED.append(thread.name)
        raise
    if failure:
        raise failure[0]


#: Workers that :func:`in_thread` left running when a signal stopped it
#: (since the last :func:`forget_abandoned`).
_ABANDONED: list = []


def forget_abandoned() -> None:
    """Start a new run: workers abandoned by an earlier one no longer count
    for :func:`reader_blocked`."""
    _ABANDONED.clear()


def reader_blocked() -> bool:
    """Whether a :func:`prefetch` thread is still running (blocked reading).

    Python's shutdown must not meet such a thread inside pyarrow or polars
    (it would abort the process), so the command line ends with ``os._exit``
    then, once its files are cleaned up and its message printed.
    """
    if _ABANDONED:
        return True
    return any(t.name == PREFETCH_THREAD and t.is_alive() for t in threading.enumerate())
