"""CSV and TSV output formatted by the compiled writer, record batches in threads.

:func:`skbn.io._csvwrite.format_rows` writes the rows of a record batch,
the scaled columns mapped on the way, in the text polars' CSV writer gives
(the same bytes): the shortest round-trip text of each float (Zmij), and
text quoted where needed.  It runs without the GIL, so the batches are
formatted on every core while a thread of their own writes them in order
(:class:`_Writer`), and the caller hands out the next batches meanwhile.
Where the extension is not built, or a column has a type it does not format
(float32, dates, decimals, ...), or the output is rounded
(``--float-precision``), the engine writes with polars instead.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ._formats import pyarrow

try:
    from . import _csvwrite
except ImportError:  # built without a C compiler
    _csvwrite = None

__all__ = ["can_format", "write_rows"]

#: Batches formatted ahead, per formatting thread.
_AHEAD = 2

#: More batches waiting for the writing thread while a write waits for the
#: disk (8 buffers in all on two cores, about 30 MiB on the benchmark file).
_QUEUED = 4


def _kind(arrow_type) -> str | None:
    """The writer's kind for a column of ``arrow_type`` (None: not written here)."""
    types = pyarrow().types
    if types.is_float64(arrow_type):
        return "f"
    if types.is_boolean(arrow_type):
        return "b"
    if types.is_uint64(arrow_type):
        return "u"
    if types.is_integer(arrow_type):
        return "i"
    if types.is_string(arrow_type) or types.is_large_string(arrow_type):
        return "s"
    return "v" if str(arrow_type) == "string_view" else None


def can_format(schema, delimiter: str) -> bool:
    """Whether the compiled writer writes every column of ``schema``, split by ``delimiter``."""
    return (
        _csvwrite is not None
        and len(delimiter) == 1
        and ord(delimiter) < 128
        and delimiter not in '"\r\n'
        and all(_kind(field.type) is not None for field in schema)
    )


def _columns(batch, coefficients: dict) -> tuple:
    """The column descriptions of ``format_rows`` for ``batch``."""
    pa = pyarrow()
    specs = []
    for field, array in zip(batch.schema, batch.columns, strict=True):
        kind = _kind(field.type)
        if kind == "i" and not pa.types.is_int64(field.type):
            array = array.cast(pa.int64())  # the same digits
        elif kind == "s" and not pa.types.is_large_string(field.type):
            array = array.cast(pa.large_string())
        buffers = array.buffers()
        validity = buffers[0] if array.null_count else None
        if kind == "s":
            specs.append((kind, buffers[1], buffers[2], validity, array.offset))
        elif kind == "v":  # polars' own layout (see TextSource.batches)
            specs.append((kind, buffers[1], tuple(buffers[2:]), validity, array.offset))
        elif kind == "f":
            terms = coefficients.get(field.name, (None, None, None))
            specs.append((kind, buffers[1], validity, array.offset, *terms))
        else:
            specs.append((kind, buffers[1], validity, array.offset))
    return tuple(specs)


def _coefficients(features: Sequence[str], coefficients: tuple) -> dict:
    """Column name -> ``(shift, factor, offset)`` floats (None: term left out)."""
    shift, factor, offset = coefficients
    return {
        name: tuple(
            None if terms is None else float(terms[j]) for terms in (shift, factor, offset)
        )
        for j, name in enumerate(features)
    }


class _Writer(threading.Thread):
    """Writes formatted batches in order, in a thread of its own, so that the
    caller goes on handing batches to the formatting threads while a write
    waits for the disk.  Each batch is formatted into a buffer of its own,
    reused once written (:meth:`spare`): a new buffer per batch costs page
    faults, which threads take in turn.

    Not :func:`~skbn.io._stream.prefetch` of submitted batches, with the
    writes in the caller: the formatting threads would then be started by
    prefetch's daemon thread and be daemons too, which Python's shutdown
    does not wait for (see :class:`~skbn.io._text._Parse`)."""

    def __init__(self, write, bar, n_buffers: int) -> None:
        super().__init__(name="skbn-csv-write", daemon=False)
        self._write, self._bar = write, bar
        self._state = threading.Condition()
        self._spare = [bytearray() for _ in range(n_buffers)]
        self._pending: deque = deque()
        self._error: BaseException | None = None
        self._closing = self._stopped = False
        self.rows = 0
        self.start()

    def spare(self) -> bytearray:
        """A buffer to format the next batch into (waits for one to be written)."""
        with self._state:
            self._state.wait_for(lambda: self._spare or self._error is not None)
            self._raise()
            return self._spare.pop()

    def put(self, future, buffer: bytearray, rows: int) -> None:
        """Write ``buffer`` (``future``'s length of it) after the batches put before."""
        with self._state:
            self._pending.append((future, buffer, rows))
            self._state.notify_all()

    def finish(self) -> int:
        """Wait for every batch to be written; the rows written."""
        with self._state:
            self._closing = True
            self._state.notify_all()
        self.join()
        self._raise()
        return self.rows

    def stop(self) -> None:
        """Write nothing more; return when the write under way (if any) is done.

        A second interruption (Ctrl-C again) waits for that write too, then is
        raised: the caller closes the file next, which must not happen under
        a write.
        """
        interrupted = None
        while True:
            try:
                with self._state:
                    self._stopped = True
                    self._state.notify_all()
                self.join()
                break
            except BaseException as exc:  # noqa: BLE001 - raised once the writer is done
                interrupted = exc
        if interrupted is not None:
            raise interrupted

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def run(self) -> None:
        while True:
            with self._state:
                self._state.wait_for(lambda: self._pending or self._closing or self._stopped)
                if self._stopped or not self._pending:
                    return
                future, buffer, rows = self._pending.popleft()
            try:
                length = future.result()  # before the view: the worker may still resize buffer
                if self._stopped:
                    return
                with memoryview(buffer) as view:
                    self._write(view[:length])
                self.rows += rows
                self._bar.update(rows)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                with self._state:
                    self._error = exc
                    self._state.notify_all()
                return
            with self._state:
                self._spare.append(buffer)
                self._state.notify_all()


def write_rows(tables: Iterable, write, delimiter: str, features, coefficients: tuple, bar) -> int:
    """Format the rows of ``tables`` (their ``features`` mapped by the affine
    ``coefficients``) and pass them, in order, to ``write`` (called in a
    thread of its own); the rows written.

    Call only where :func:`can_format` holds for the tables' schema.
    """
    terms = _coefficients(features, coefficients)
    separator = ord(delimiter)
    workers = max(1, min(os.cpu_count() or 1, 8))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="skbn-csv")
    writer = _Writer(write, bar, _AHEAD * workers + _QUEUED)
    try:
        for table in tables:
            for batch in table.to_batches():
                buffer = writer.spare()
                specs = _columns(batch, terms)
                job = (_csvwrite.format_rows, specs, batch.num_rows, separator, buffer)
                writer.put(pool.submit(*job), buffer, batch.num_rows)
        return writer.finish()
    finally:
        writer.stop()
        pool.shutdown(wait=False, cancel_futures=True)
