"""Text input (CSV, TSV, NDJSON): a byte stream parsed by polars a piece at a time.

The stream (a file, a decompressing stream, or stdin) is read in pieces of
about :data:`PIECE_BYTES`, each cut after the last line break that is not
inside a quoted field; polars parses each piece on all cores, two pieces at
a time (:data:`PARSE_AHEAD`).  Memory is a few pieces, whatever the length
of the file, and stdin or a compressed file needs no temporary copy.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

from ._errors import FileError, reading
from ._formats import INFER_ROWS, Format, as_schema, empty_table, overridden, polars, pyarrow

__all__ = ["PARSE_AHEAD", "PIECE_BYTES", "TextSource"]

#: Bytes of text parsed at a time.
PIECE_BYTES = 8 << 20

#: Pieces parsed at once, each by polars on every core: while one piece's
#: columns are built on one core, the next is parsed on the other.  Pass 1 of
#: ``benchmarks/file_engine.py`` takes 0.54 to 0.6 s instead of 0.7 to 0.77 s
#: on this machine's two cores (measured side by side).
PARSE_AHEAD = 2

_QUOTE = ord('"')

#: Bytes of text whose quotes are counted at a time (:func:`_count_quotes`).
_COUNT_BLOCK = 256 << 10


def _views(pl):
    """polars' newest Arrow layout where pyarrow reads its view types (pyarrow
    16 and later), else None."""
    major = int(pyarrow().__version__.split(".")[0])
    return pl.CompatLevel.newest() if major >= 16 else None


def _cut(data: bytearray, end: int, quoted: bool) -> int:
    """The end of the last complete line of ``data[:end]`` (0: none).

    With ``quoted``, a line break after an odd number of quote characters is
    inside a quoted field and is not an end of line (``data`` starts outside
    quotes; an escaped quote is two quotes, which keeps the parity).
    """
    cut = data.rfind(b"\n", 0, end) + 1
    if not quoted or not cut:
        return cut
    first = data.find(b'"', 0, cut)  # memchr: most files have no quote at all
    if first < 0:
        return cut
    odd = _count_quotes(data, first, cut) % 2
    while odd and cut:
        previous = data.rfind(b"\n", 0, cut - 1) + 1
        odd = (odd + data.count(b'"', previous, cut)) % 2
        cut = previous
    return cut


def _count_quotes(data: bytearray, start: int, stop: int) -> int:
    """The quote characters in ``data[start:stop]``, counted by NumPy a block
    at a time into one small mask (a mask of a whole piece, new each time,
    cost a page fault every 4 KiB)."""
    values = np.frombuffer(data, np.uint8, count=stop)
    mask = np.empty(min(_COUNT_BLOCK, stop - start), bool)
    count = 0
    for begin in range(start, stop, _COUNT_BLOCK):
        block = values[begin : begin + _COUNT_BLOCK]
        np.equal(block, _QUOTE, out=mask[: len(block)])
        count += int(np.count_nonzero(mask[: len(block)]))
    return count


class _Parse(threading.Thread):
    """``parse(*args)`` in a thread of its own, started at once; :meth:`result`
    waits for it.  Not a daemon: Python's shutdown waits for a parse (a few
    milliseconds) instead of meeting it inside polars.  It never reads the
    stream, so it never blocks on a pipe."""

    def __init__(self, parse, *args) -> None:
        super().__init__(name="skbn-parse", daemon=False)  # not inherited from its starter
        self._work = (parse, args)
        self._value = self._error = None
        self.start()

    def run(self) -> None:
        parse, args = self._work
        try:
            self._value = parse(*args)
        except BaseException as exc:  # noqa: BLE001 - raised by result()
            self._error = exc
        finally:
            self._work = None

    def result(self):
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


class TextSource:
    """A CSV or NDJSON stream read once, as Arrow tables of one schema.

    The column types are inferred from the first :data:`INFER_ROWS` rows
    (at most the first piece), then ``dtypes`` override them.
    """

    def __init__(self, path: str, fmt: Format, dtypes: dict, name: str) -> None:
        self.fmt, self.name = fmt, name
        self.dtypes = dict(dtypes)
        self.index_columns: set = set()
        self.total_rows = None
        self.size = os.path.getsize(path) if path != "-" and fmt.codec is None else None
        self._stream = self._open(path)
        self._carry = b""
        self._buffer = bytearray()
        self._head = self._piece()
        if not self._head.strip():
            self.close()
            raise FileError(f"cannot read {name!r}: it is empty (not even a header line)")
        with reading(name):
            self.schema = overridden(self._infer(), self.dtypes)
        for column in self.dtypes:
            if column not in self.schema.names:
                raise FileError(
                    f"--dtype: {name!r} has no column {column!r} "
                    f"(its columns: {', '.join(self.schema.names)})",
                    status=2,
                )

    def _open(self, path: str):
        pa = pyarrow()
        with reading(self.name):
            if path == "-":
                stream = pa.PythonFile(sys.stdin.buffer, mode="r")
            else:
                stream = pa.OSFile(path, "rb")
            if self.fmt.codec is not None:
                stream = pa.CompressedInputStream(stream, self.fmt.codec)
        return stream

    def _piece(self) -> bytes:
        """The next run of whole lines, about PIECE_BYTES long (b"" at the end).

        The text is read into one reused buffer, after the incomplete line
        the previous piece left: a new buffer per piece would cost a page
        fault per 4 KiB.
        """
        quoted = self.fmt.kind == "csv"
        while True:
            carry = len(self._carry)
            if len(self._buffer) < carry + PIECE_BYTES:
                self._buffer = bytearray(carry + PIECE_BYTES)
            view = memoryview(self._buffer)
            view[:carry] = self._carry
            end = carry + self._fill(view[carry : carry + PIECE_BYTES])
            if end == carry:  # the end of the stream
                self._carry = b""
                return bytes(view[:end])
            cut = _cut(self._buffer, end, quoted)
            if cut:
                self._carry = bytes(view[cut:end])
                return bytes(view[:cut])
            self._carry = bytes(view[:end])

    def _fill(self, view: memoryview) -> int:
        """Read into ``view`` until it is full or the stream ends; the bytes read."""
        done = 0
        with reading(self.name):
            while done < len(view):
                n = self._stream.readinto(view[done:])
                if not n:
                    break
                done += n
        return done

    def _parse(self, data: bytes, header: bool, schema=None, n_rows=None):
        pl = polars()
        if self.fmt.kind == "ndjson":
            return pl.read_ndjson(data, schema=schema, infer_schema_length=INFER_ROWS)
        return pl.read_csv(
            data,
            has_header=header,
            separator=self.fmt.delimiter,
            schema=schema,
            n_rows=n_rows,
            infer_schema_length=INFER_ROWS,
        )

    def _infer(self):
        # Only the header and the first INFER_ROWS lines are parsed: some
        # polars releases read past n_rows and would fail on a later row.
        head, end = self._head, -1
        for _ in range(INFER_ROWS + 1):
            end = head.find(b"\n", end + 1)
            if end < 0:
                break
        if end >= 0:
            head = head[: _cut(head, end + 1, self.fmt.kind == "csv") or len(head)]
        frame = self._parse(head, True, n_rows=INFER_ROWS)
        return frame.head(0).to_arrow().schema

    def set_float(self, names: Sequence[str]) -> None:
        """Read the columns ``names`` as float64."""
        self.dtypes.update({name: pyarrow().float64() for name in names})
        self.schema = overridden(self.schema, self.dtypes)

    def batches(self) -> Iterator:
        """The rows as Arrow tables, one per piece (the stream is read once).

        Text columns come as Arrow's view types (``string_view``) where
        pyarrow has them (16 and later): polars' own layout, handed over
        without a copy, which the pass-1 cache keeps and polars reads back
        without a copy either.  :meth:`Cache.tables` gives them the declared
        :attr:`schema` again where a writer needs it.
        """
        pl = polars()
        schema = pl.from_arrow(empty_table(self.schema)).schema
        views = _views(pl)
        read_schema = self.schema
        if views:
            read_schema = pl.DataFrame(schema=schema).to_arrow(compat_level=views).schema

        def parse(data: bytes, header: bool):
            with reading(self.name, self.schema.names):
                frame = self._parse(data, header, schema)
                if views:
                    return as_schema(frame.to_arrow(compat_level=views), read_schema)
                return as_schema(frame.rechunk().to_arrow(), self.schema)

        pending: deque = deque()
        data, header = self._head, True
        self._head = b""
        try:
            while data:
                pending.append(_Parse(parse, data, header))
                if len(pending) >= PARSE_AHEAD:
                    yield pending.popleft().result()
                data, header = self._piece(), False
            while pending:
                yield pending.popleft().result()
        finally:
            self.close()

    def close(self) -> None:
        self._stream.close()
