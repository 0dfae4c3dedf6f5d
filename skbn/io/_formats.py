"""File formats: which format a path has, how to read it as record batches,
and how to write record batches to it.

Text formats (CSV, TSV, NDJSON) are read by :mod:`skbn.io._text`, a piece
at a time.  Parquet and Arrow IPC files are read and written with pyarrow,
one record batch at a time; text is written by polars (:meth:`Sink.write`,
:meth:`Sink.sink`) or comes encoded already (:meth:`Sink.write_encoded`,
large outputs written around the page cache by :mod:`skbn.io._direct`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence

from ._direct import DirectWriter
from ._errors import FileError, reading, require, writing

__all__ = ["ArrowSource", "Format", "Sink", "detect_format", "with_delimiter"]

#: Rows a text format's column types are inferred from.
INFER_ROWS = 10_000

#: Rows per record batch the readers aim at (the engine cuts its own chunks).
BATCH_ROWS = 1 << 16

KINDS = {
    "csv": ("csv", ","),
    "tsv": ("csv", "\t"),
    "parquet": ("parquet", None),
    "pq": ("parquet", None),
    "feather": ("ipc", None),
    "arrow": ("ipc", None),
    "ipc": ("ipc", None),
    "ndjson": ("ndjson", None),
    "jsonl": ("ndjson", None),
}
CODECS = {"gz": "gzip", "bz2": "bz2", "zst": "zstd", "lz4": "lz4", "br": "brotli"}
TEXT_KINDS = ("csv", "ndjson")
_NAMES = ", ".join(f".{name}" for name in KINDS)
_PURPOSE = "reading and writing files"


def pyarrow():
    """pyarrow with its IPC module, or a clear error (:func:`parquet` for Parquet)."""
    pa = require("pyarrow", "pyarrow", _PURPOSE)
    require("pyarrow.ipc", "pyarrow", _PURPOSE)
    return pa


def parquet():
    """``pyarrow.parquet``, imported only for a Parquet file (it takes ~0.1 s)."""
    pyarrow()
    return require("pyarrow.parquet", "pyarrow", _PURPOSE)


def polars():
    """polars, or a clear error."""
    return require("polars", "polars", "reading and writing text files (CSV, NDJSON)")


@dataclasses.dataclass(frozen=True)
class Format:
    """A file format: ``kind`` (csv, parquet, ipc, ndjson), its compression
    codec (text formats only) and, for CSV, the delimiter."""

    kind: str
    codec: str | None = None
    delimiter: str = ","

    @property
    def text(self) -> bool:
        return self.kind in TEXT_KINDS

    def describe(self) -> str:
        name = {"csv": "CSV", "parquet": "Parquet", "ipc": "Arrow IPC", "ndjson": "NDJSON"}
        return name[self.kind] + (f" ({self.codec})" if self.codec else "")


def parse_format(text: str, option: str) -> Format:
    """A format name as given to ``--input-format``/``--output-format``."""
    parts = text.lower().lstrip(".").split(".")
    codec = CODECS.get(parts[-1]) if len(parts) == 2 else None
    if parts[0] not in KINDS or len(parts) > 2 or (len(parts) == 2 and codec is None):
        raise FileError(
            f"{option}: unknown format {text!r}; use one of {', '.join(KINDS)} "
            f"(a text format may end in .{', .'.join(CODECS)})",
            status=2,
        )
    kind, delimiter = KINDS[parts[0]]
    return _checked(Format(kind, codec, delimiter or ","), option)


def _checked(fmt: Format, what: str) -> Format:
    if fmt.codec is not None and not fmt.text:
        raise FileError(
            f"{what}: a {fmt.describe()} file cannot be compressed as a whole; "
            "Parquet and Arrow files compress their own columns",
            status=2,
        )
    return fmt


def detect_format(path: str, given: str | None, role: str) -> Format:
    """The format of ``path``: ``given`` if set, else from the suffix."""
    option = "--input-format" if role == "INPUT" else "--output-format"
    if given is not None:
        fmt = parse_format(given, option)
    elif path == "-":
        fmt = Format("csv")
    else:
        name = os.path.basename(path).lower()
        parts = name.split(".")
        codec = CODECS.get(parts[-1]) if len(parts) > 2 else None
        suffix = parts[-2] if codec else parts[-1] if len(parts) > 1 else ""
        if suffix not in KINDS:
            raise FileError(
                f"cannot tell the format of {role} {path!r} from its suffix "
                f"({'.' + suffix if suffix else 'none'}): use {_NAMES} (text formats "
                f"optionally compressed: .gz, .bz2, .zst, .lz4, .br), or {option}",
                status=2,
            )
        kind, default = KINDS[suffix]
        fmt = _checked(Format(kind, codec, default or ","), f"{role} {path!r}")
    return fmt


def with_delimiter(fmt: Format, delimiter: str | None, role: str) -> Format:
    """``fmt`` with the ``--delimiter`` of the command line, for a CSV."""
    if delimiter is None or fmt.kind != "csv":
        if delimiter is not None and role == "INPUT":
            raise FileError(f"--delimiter applies to CSV, not {fmt.describe()}", status=2)
        return fmt
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise FileError(f"--delimiter must be one character, got {delimiter!r}", status=2)
    return dataclasses.replace(fmt, delimiter=delimiter)


# -- reading -------------------------------------------------------------------


class ArrowSource:
    """A Parquet or Arrow IPC file read as record batches, as often as asked.

    ``schema`` is the file's Arrow schema after the ``dtypes`` overrides
    (the batches are cast to it); :meth:`set_float` asks for more columns to
    be read as float64 (the columns to scale).
    """

    def __init__(self, path: str, fmt: Format, dtypes: dict, name: str) -> None:
        self.path, self.fmt, self.name = path, fmt, name
        self.dtypes = dict(dtypes)
        self.index_columns: set = set()
        self.size = os.path.getsize(path)
        with reading(name):
            schema = self._read_schema()
        for column in self.dtypes:
            if column not in schema.names:
                raise FileError(
                    f"--dtype: {name!r} has no column {column!r} "
                    f"(its columns: {', '.join(schema.names)})",
                    status=2,
                )
        self.schema = overridden(schema, self.dtypes)

    def _read_schema(self):
        pa = pyarrow()
        if self.fmt.kind == "parquet":
            with parquet().ParquetFile(self.path) as source:
                self.total_rows = source.metadata.num_rows
                schema = source.schema_arrow
            meta = schema.pandas_metadata or {}
            self.index_columns = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
            return schema
        with pa.OSFile(self.path, "rb") as stream:
            reader = _open_ipc(stream)
            self.total_rows = None
            return reader.schema

    def set_float(self, names: Sequence[str]) -> None:
        """Read the columns ``names`` as float64 from now on."""
        self.dtypes.update({name: pyarrow().float64() for name in names})
        self.schema = overridden(self.schema, self.dtypes)

    def batches(self) -> Iterator:
        """The record batches of the file, in order, as tables of ``schema``."""
        pa = pyarrow()
        with reading(self.name, self.schema.names):
            if self.fmt.kind == "parquet":
                with parquet().ParquetFile(self.path) as source:
                    for batch in source.iter_batches(batch_size=BATCH_ROWS):
                        yield as_schema(batch, self.schema)
            else:
                with pa.OSFile(self.path, "rb") as stream:
                    for batch in _ipc_batches(_open_ipc(stream)):
                        yield as_schema(batch, self.schema)


def _open_ipc(stream):
    """An Arrow IPC file or stream reader over ``stream``."""
    pa = pyarrow()
    try:
        return pa.ipc.open_file(stream)
    except pa.ArrowInvalid:
        stream.seek(0)
        return pa.ipc.open_stream(stream)


def _ipc_batches(reader) -> Iterator:
    if hasattr(reader, "num_record_batches"):  # the file format
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        yield from reader


def arrow_type(text: str):
    """The Arrow type of a ``--dtype`` TYPE: str, int, float or an Arrow name."""
    pa = pyarrow()
    aliases = {"str": pa.large_string(), "string": pa.large_string(), "text": pa.large_string()}
    aliases.update({"int": pa.int64(), "float": pa.float64()})
    if text.lower() in aliases:
        return aliases[text.lower()]
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        raise FileError(
            f"--dtype: unknown type {text!r}; use str, int, float or an Arrow type "
            "name such as float32, int64, string, bool, date32",
            status=2,
        ) from None


def empty_table(schema):
    """A table of ``schema`` with no rows (``Schema.empty_table`` imports pandas)."""
    pa = pyarrow()
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def overridden(schema, dtypes: dict):
    pa = pyarrow()
    fields = [f.with_type(dtypes[f.name]) if f.name in dtypes else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def as_schema(batch, schema):
    """``batch`` as a table of ``schema`` (types cast where they differ)."""
    pa = pyarrow()
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    if table.schema.equals(schema, check_metadata=False):
        return table
    return table.cast(schema)


# -- writing ---------------------------------------------------------------------

#: Bytes of encoded output after which the written part is handed to the disk
#: and released from the page cache, and the rest written around it (see
#: :meth:`Sink._release`).
RELEASE_BYTES = 64 << 20


class Sink:
    """Writes tables of one schema to ``path`` in the format ``fmt``: a table
    at a time (:meth:`write`), or a whole polars ``LazyFrame`` in polars'
    streaming engine (:meth:`sink`)."""

    def __init__(self, path: str, fmt: Format, schema, name: str, read_back: bool = False) -> None:
        self.path, self.fmt, self.schema, self.name = path, fmt, schema, name
        self._read_back = read_back  # the file is read again (copied to stdout)
        self._started = False
        self._stream = self._writer = None
        self._written = self._released = 0  # bytes written by write_encoded, and released
        self._direct: DirectWriter | None = None  # past the first release
        self._can_direct = True  # until DirectWriter.open says otherwise

    def _open(self) -> None:
        pa = pyarrow()
        fmt, path, schema = self.fmt, self.path, self.schema
        with writing(self.name):
            if fmt.text:
                polars()
                self._stream = pa.OSFile(path, "wb")
                if fmt.codec is not None:
                    self._stream = pa.CompressedOutputStream(self._stream, fmt.codec)
            elif fmt.kind == "parquet":
                floats = {f.name for f in schema if pa.types.is_floating(f.type)}
                self._writer = parquet().ParquetWriter(
                    path,
                    schema,
                    use_dictionary=[n for n in schema.names if n not in floats],
                    compression="snappy",
                )
            else:
                self._writer = pa.ipc.new_file(path, schema)

    def write(self, table, round_columns: Sequence[str] = (), digits: int | None = None) -> None:
        """Append ``table``; with ``digits``, ``round_columns`` are written with
        that many significant digits (text formats only)."""
        if self._stream is None and self._writer is None:
            self._open()
        if self._direct is not None:
            raise RuntimeError("Sink.write after write_encoded switched to direct writes")
        with writing(self.name):
            if not self.fmt.text:  # the declared types (a text input's are views)
                self._writer.write_table(as_schema(table, self.schema))
                return
            frame = polars().from_arrow(table)
            if digits is not None and round_columns:
                positions = [table.schema.get_field_index(name) for name in round_columns]
                # by position: a column name may look like a pattern to pl.col
                frame = frame.with_columns(polars().nth(positions).round_sig_figs(digits))
            self._write_text(frame)

    def write_encoded(self, data) -> None:
        """Append rows already encoded in this text format (after the header,
        which :meth:`write` of no rows writes first).

        Past the first :data:`RELEASE_BYTES` of an uncompressed file not read
        back, the rows are written around the page cache (see
        :meth:`_release`)."""
        if not self._started:
            self.write(empty_table(self.schema))
        with writing(self.name):
            if self._direct is not None:
                self._direct.write(data)
                return
            self._stream.write(data)
            self._written += len(data)
            if self._written - self._released >= RELEASE_BYTES:
                self._release()

    def _release(self) -> None:
        """Hand what was written so far to the disk and let the page cache
        drop it (``posix_fadvise(DONTNEED)``), then write the rest with
        ``O_DIRECT`` (:class:`~skbn.io._direct.DirectWriter`); where the system
        or the file system has no ``O_DIRECT``, do the same again every
        :data:`RELEASE_BYTES`.  An uncompressed file only.

        OUTPUT is written once and not read back (unless it goes to stdout:
        then nothing is done), so its pages are of no use in the page cache,
        and writing them there is most of the cost of writing.  On this
        machine, pass 2 of ``benchmarks/file_engine.py`` to CSV took 0.33 to
        0.4 s with direct writes and 0.5 to 0.6 s through the page cache
        (measured side by side); without the release, 395 MiB of CSV piled up
        dirty and took 1.0 s to write.
        """
        start, self._released = self._released, self._written
        if self.fmt.codec is not None or self._read_back:
            return
        advise = getattr(os, "posix_fadvise", None)
        if advise is not None:
            with contextlib.suppress(OSError, ValueError):
                advise(self._stream.fileno(), start, 0, os.POSIX_FADV_DONTNEED)
        if self._can_direct:
            self._direct = DirectWriter.open(self.path, self._stream.tell())
            self._can_direct = self._direct is not None

    @property
    def can_sink(self) -> bool:
        """Whether :meth:`sink` can write this format (not compressed text)."""
        return self.fmt.codec is None and self._stream is None and self._writer is None

    def sink(self, frame) -> None:
        """Write all of the polars ``LazyFrame`` ``frame`` (instead of
        :meth:`write`, before anything else), in polars' streaming engine.

        On a system with ``/dev/fd`` polars writes through a descriptor of
        the temporary file opened here: if the run is stopped meanwhile and
        the file is removed, polars cannot create it again.
        """
        fd = os.open(self.path, os.O_WRONLY)
        target = f"/dev/fd/{fd}" if os.path.isdir("/dev/fd") else self.path
        kind = self.fmt.kind
        try:
            with writing(self.name):
                if kind == "csv":
                    frame.sink_csv(target, separator=self.fmt.delimiter)
                elif kind == "ndjson":
                    frame.sink_ndjson(target)
                elif kind == "parquet":
                    # row groups of BATCH_ROWS, as the table-at-a-time writer makes
                    # them (polars' larger default holds more rows in memory)
                    frame.sink_parquet(target, compression="snappy", row_group_size=BATCH_ROWS)
                else:  # Arrow's older string types, which every pyarrow reads
                    frame.sink_ipc(target, compat_level=polars().CompatLevel.oldest())
        finally:
            os.close(fd)
        self._started = True

    def _write_text(self, frame) -> None:
        if self.fmt.kind == "csv":
            frame.write_csv(
                self._stream, include_header=not self._started, separator=self.fmt.delimiter
            )
        elif frame.height:
            frame.write_ndjson(self._stream)
        self._started = True

    def close(self) -> None:
        """Finish the file (a CSV with no rows still gets its header)."""
        if self._started and self._stream is None and self._writer is None:
            return  # written by sink
        if self._stream is None and self._writer is None:
            self._open()
        with writing(self.name):
            if self.fmt.text:
                if not self._started:
                    self.write(empty_table(self.schema))
                if self._direct is not None:
                    self._direct.close()
                self._stream.close()
            else:
                self._writer.close()

    def abort(self) -> None:
        """Release the file after a failure (it is removed by the caller)."""
        if self._direct is not None:
            with contextlib.suppress(Exception):  # the run has failed already
                self._direct.abort()
        self._can_direct = False
        try:
            if self._stream is not None:
                self._stream.close()
            elif self._writer is not None:
                self._writer.close()
        except Exception:  # noqa: BLE001 - the run has failed already
            pass


def check_writable(schema, fmt: Format, name: str) -> None:
    """Fail before any pass if ``fmt`` cannot hold a column's type."""
    pa = pyarrow()
    for field in schema:
        if fmt.kind == "csv" and pa.types.is_nested(field.type):
            raise FileError(
                f"cannot write {name!r}: column {field.name!r} of type {field.type} "
                f"cannot be written to CSV; choose another output format"
            )
