"""CSV and TSV output formatted by the compiled writer, record batches in threads.

:func:`skbn.io._csvwrite.format_rows` writes the rows of a record batch,
the scaled columns mapped on the way, in the text polars' CSV writer gives
(the same bytes): the shortest round-trip text of each float (Ryu), and
text quoted where needed.  It runs without the GIL, so the batches are
formatted on every core while this thread writes them in order.  Where the
extension is not built, or a column has a type it does not format (float32,
dates, decimals, ...), or the output is rounded (``--float-precision``),
the engine writes with polars instead.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ._formats import pyarrow

try:
    from . import _csvwrite
except ImportError:  # built without a C compiler
    _csvwrite = None

__all__ = ["can_format", "write_rows"]

#: Batches formatted ahead of the one being written, per thread.
_AHEAD = 2


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


def write_rows(tables: Iterable, write, delimiter: str, features, coefficients: tuple, bar) -> int:
    """Format the rows of ``tables`` (their ``features`` mapped by the affine
    ``coefficients``) and pass them, in order, to ``write``; the rows written.

    Call only where :func:`can_format` holds for the tables' schema.
    """
    terms = _coefficients(features, coefficients)
    separator = ord(delimiter)
    workers = max(1, min(os.cpu_count() or 1, 8))
    # Each batch is formatted into a buffer of its own, reused once written:
    # a new buffer per batch costs page faults, which threads take in turn.
    spare = [bytearray() for _ in range((_AHEAD + 1) * workers)]
    pending: deque = deque()
    n_rows = 0
    pool = ThreadPoolExecutor(workers, thread_name_prefix="skbn-csv")

    def drain(limit: int) -> None:
        nonlocal n_rows
        while len(pending) > limit:
            future, buffer, rows = pending.popleft()
            length = future.result()  # before the view: the worker may still resize buffer
            with memoryview(buffer) as view:
                write(view[:length])
            spare.append(buffer)
            n_rows += rows
            bar.update(rows)

    try:
        for table in tables:
            for batch in table.to_batches():
                buffer = spare.pop()
                specs = _columns(batch, terms)
                job = (_csvwrite.format_rows, specs, batch.num_rows, separator, buffer)
                pending.append((pool.submit(*job), buffer, batch.num_rows))
                drain(_AHEAD * workers)
        drain(0)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return n_rows
