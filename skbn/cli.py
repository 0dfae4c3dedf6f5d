"""The ``skbn`` command line: ``skbn scale``, ``skbn demo`` and ``skbn inspect``.

Run it as ``skbn ...`` (the console script installed with the package) or as
``python -m skbn ...``.  The core package never imports this module; the
command line's own dependencies (pyarrow to read and write CSV and Parquet,
tqdm for the progress bar, skops for ``--save``, ``--load`` and ``inspect``)
come with the ``cli`` extra, ``pip install "skbn[cli]"``, and are imported
only by the commands that use them.

``skbn scale INPUT OUTPUT`` streams a CSV or Parquet file twice, one chunk of
rows at a time: the first pass feeds each chunk to
:meth:`~skbn.BatchNormScaler.partial_fit` (one chunk is one mini-batch), the
second pass transforms each chunk and writes it.  Memory therefore depends on
the chunk size, never on the size of the file.  See ``docs/cli.md``.

Every error ends the run with one line on stderr, ``skbn: error: ...``, and a
nonzero exit status (2 for a bad command line, 1 otherwise); set the
environment variable ``SKBN_DEBUG=1`` to see the traceback of an unexpected
error instead.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from . import __version__
from ._scaler import BatchNormScaler

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "CLIError",
    "ScaleResult",
    "load_scaler",
    "main",
    "save_scaler",
    "scale_file",
]

#: Rows per chunk (one chunk is one mini-batch) when ``--chunksize`` is not given.
DEFAULT_CHUNKSIZE = 65536

#: Bytes of CSV text the pyarrow reader parses at a time.  The column types are
#: inferred from the first block, so it should hold a good many rows.
CSV_BLOCK_SIZE = 1 << 20

#: The only type a model file may hold beyond what skops trusts by default.
TRUSTED_TYPE = "skbn._scaler.BatchNormScaler"

_EXTRA_HINT = 'pip install "skbn[cli]"'
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_MAX_MESSAGE = 500


class CLIError(Exception):
    """An error the command line reports as one line, ``skbn: error: ...``.

    Parameters
    ----------
    message : str
        What went wrong and, where it helps, how to fix it.
    status : int, default=1
        The exit status: 2 for a bad command line, 1 otherwise.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: object) -> str:
    """``text`` on one line, whitespace collapsed, cut to a readable length."""
    line = " ".join(str(text).split())
    if len(line) > _MAX_MESSAGE:
        line = line[: _MAX_MESSAGE - 3] + "..."
    return line


def _require(module: str, package: str, purpose: str) -> Any:
    """Import ``module`` of the ``cli`` extra, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CLIError(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install the command line's extra: {_EXTRA_HINT}"
        ) from None


def _pyarrow() -> Any:
    _require("pyarrow", "pyarrow", "reading and writing CSV and Parquet")
    for name in ("pyarrow.compute", "pyarrow.csv", "pyarrow.parquet"):
        _require(name, "pyarrow", "reading and writing CSV and Parquet")
    return sys.modules["pyarrow"]


# -- model files ---------------------------------------------------------------


def load_scaler(path: str | os.PathLike) -> BatchNormScaler:
    """Load a fitted :class:`~skbn.BatchNormScaler` saved with skops.

    Only ``skbn._scaler.BatchNormScaler`` is trusted beyond the types skops
    trusts by default; a file holding any other type is refused unloaded.

    Parameters
    ----------
    path : str or path-like
        A file written by ``skbn scale --save`` or ``skops.io.dump``.

    Returns
    -------
    scaler : BatchNormScaler
        The fitted scaler.

    Raises
    ------
    CLIError
        If the file is missing, unreadable, holds an untrusted type, or holds
        anything but a fitted ``BatchNormScaler``.
    """
    sio = _require("skops.io", "skops", "loading a model file")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CLIError(f"model file {path!r} not found")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise CLIError(f"cannot read model file {path!r}: not a skops file ({exc})") from None
    others = sorted(set(untrusted) - {TRUSTED_TYPE})
    if others:
        raise CLIError(
            f"refusing to load model file {path!r}: it holds type(s) skbn does not "
            f"trust ({', '.join(others)}); only a skbn BatchNormScaler saved with "
            "'skbn scale --save' or skops.io.dump can be loaded"
        )
    try:
        obj = sio.load(path, trusted=[TRUSTED_TYPE])
    except Exception as exc:
        raise CLIError(f"cannot load model file {path!r}: {exc}") from None
    if not isinstance(obj, BatchNormScaler):
        raise CLIError(
            f"model file {path!r} holds a {type(obj).__module__}.{type(obj).__qualname__}, "
            "not a skbn BatchNormScaler"
        )
    if "n_batches_seen_" not in vars(obj):
        raise CLIError(f"model file {path!r} holds a BatchNormScaler that was never fitted")
    return obj


def save_scaler(scaler: BatchNormScaler, path: str | os.PathLike) -> None:
    """Write ``scaler`` to ``path`` with ``skops.io.dump``, atomically.

    Parameters
    ----------
    scaler : BatchNormScaler
        A fitted scaler.
    path : str or path-like
        Where to write it; an existing file is replaced only once the new
        one is complete.
    """
    sio = _require("skops.io", "skops", "saving a model file (--save)")
    with _AtomicFiles() as files:
        sio.dump(scaler, files.add(os.fspath(path)))


# -- writing without leaving half a file behind ----------------------------------


class _AtomicFiles:
    """Temporary files beside their targets, moved into place only on success.

    Every file is written to a temporary name in its target's directory; when
    the ``with`` block ends normally they are renamed over their targets with
    :func:`os.replace`, and when it raises they are removed.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, str]] = []

    def add(self, target: str) -> str:
        directory = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(directory):
            raise CLIError(f"cannot write {target!r}: directory {directory!r} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{os.path.basename(target)}.", suffix=".skbn-tmp", dir=directory
            )
        except OSError as exc:
            raise CLIError(f"cannot write {target!r}: {exc.strerror or exc}") from None
        os.close(fd)
        self._pending.append((tmp, target))
        return tmp

    def __enter__(self) -> _AtomicFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            mask = os.umask(0)
            os.umask(mask)
            try:
                for tmp, target in self._pending:
                    os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 -> the usual mode
                    os.replace(tmp, target)
            except OSError as exc:
                self._cleanup()
                raise CLIError(f"cannot write {target!r}: {exc.strerror or exc}") from None
        else:
            self._cleanup()

    def _cleanup(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        self._pending.clear()


# -- reading and writing tables ------------------------------------------------------


def _format_of(path: str, role: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    try:
        return _FORMATS[suffix]
    except KeyError:
        raise CLIError(
            f"cannot tell the format of {role} {path!r} from its suffix "
            f"({suffix or 'none'}): use .csv, .parquet or .pq",
            status=2,
        ) from None


class _Progress:
    """A tqdm bar on stderr, or nothing."""

    def __init__(self, enabled: bool, desc: str, total: int | None, unit: str) -> None:
        self._bar = None
        if enabled:
            tqdm = _require("tqdm", "tqdm", "the progress bar (turn it off with --no-progress)")
            self._bar = tqdm.tqdm(
                total=total,
                desc=desc,
                unit=unit,
                unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def update(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _Source:
    """A CSV or Parquet file read as a stream of record batches, any number of times."""

    def __init__(self, path: str, fmt: str, chunksize: int) -> None:
        self.path = path
        self.fmt = fmt
        self.chunksize = chunksize
        self.column_types: dict | None = None
        self.index_columns: set[str] = set()
        self.schema = None
        pa = _pyarrow()
        with self._reading():
            if fmt == "csv":
                reader, stream = self._open_csv()
                self.schema = reader.schema
                stream.close()
                self.total, self.unit = os.path.getsize(path), "B"
            else:
                parquet = pa.parquet.ParquetFile(path)
                self.schema = parquet.schema_arrow
                self.total, self.unit = parquet.metadata.num_rows, "rows"
                pandas_meta = self.schema.pandas_metadata or {}
                self.index_columns = {
                    c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)
                }
                parquet.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        pa = sys.modules["pyarrow"]
        try:
            yield
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise CLIError(f"cannot read {self.path!r}: {self._explain(exc)}") from None

    def _explain(self, exc: BaseException) -> str:
        message = str(exc)
        found = re.match(r"In CSV column #(\d+): (.*)", message, re.DOTALL)
        names = [] if self.schema is None else self.schema.names
        if found and int(found.group(1)) < len(names):
            name = names[int(found.group(1))]
            message = f"column {name!r}: {found.group(2)}"
            if "conversion error" in message:
                message += (
                    " (a CSV column's type is inferred from the start of the file; "
                    "a later value does not fit it)"
                )
        elif isinstance(exc, OSError) and exc.strerror:
            message = exc.strerror
        return message

    def _open_csv(self):
        pa = sys.modules["pyarrow"]
        stream = pa.OSFile(self.path, "rb")
        try:
            reader = pa.csv.open_csv(
                stream,
                read_options=pa.csv.ReadOptions(block_size=CSV_BLOCK_SIZE, use_threads=True),
                convert_options=pa.csv.ConvertOptions(column_types=self.column_types or {}),
            )
        except BaseException:
            stream.close()
            raise
        return reader, stream

    def _batches(self, progress: _Progress) -> Iterator:
        pa = sys.modules["pyarrow"]
        if self.fmt == "csv":
            reader, stream = self._open_csv()
            with contextlib.closing(stream):
                done = 0
                for batch in reader:
                    position = stream.tell()
                    progress.update(position - done)
                    done = position
                    yield batch
                progress.update(self.total - done)
        else:
            with contextlib.closing(pa.parquet.ParquetFile(self.path)) as parquet:
                for batch in parquet.iter_batches(batch_size=self.chunksize):
                    progress.update(batch.num_rows)
                    yield batch

    def chunks(self, progress: _Progress) -> Iterator:
        """Tables of exactly ``chunksize`` rows (the last one may be shorter)."""
        pa = sys.modules["pyarrow"]
        batches = self._batches(progress)
        pending: list = []
        n_pending = 0
        while True:
            with self._reading():
                batch = next(batches, None)
            if batch is None:
                break
            if batch.num_rows == 0:
                continue
            pending.append(batch)
            n_pending += batch.num_rows
            while n_pending >= self.chunksize:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, self.chunksize)
                rest = table.slice(self.chunksize)
                pending, n_pending = rest.to_batches(), rest.num_rows
        if n_pending:
            yield pa.Table.from_batches(pending)


class _Sink:
    """A CSV or Parquet writer for one schema, to a path or a file object."""

    def __init__(self, path, fmt: str, schema) -> None:
        pa = sys.modules["pyarrow"]
        if fmt == "csv":
            self._writer = pa.csv.CSVWriter(path, schema)
        else:
            self._writer = pa.parquet.ParquetWriter(path, schema)

    def write(self, table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


@contextlib.contextmanager
def _writing(target: str) -> Iterator[None]:
    pa = sys.modules["pyarrow"]
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CLIError(f"cannot write {target!r}: {message}") from None


def _check_writable(schema, fmt: str, target: str) -> None:
    """Fail now, before any pass, if the output format cannot hold a column's type."""
    pa = sys.modules["pyarrow"]

    def probe(schema) -> None:
        sink = _Sink(io.BytesIO(), fmt, schema)
        sink.write(schema.empty_table())
        sink.close()

    try:
        probe(schema)
    except (pa.ArrowException, OSError) as exc:
        for field in schema:
            try:
                probe(pa.schema([field]))
            except (pa.ArrowException, OSError):
                raise CLIError(
                    f"cannot write {target!r}: column {field.name!r} of type {field.type} "
                    f"cannot be written to {fmt.upper() if fmt == 'csv' else 'Parquet'}; "
                    "choose another output format"
                ) from None
        raise CLIError(f"cannot write {target!r}: {exc}") from None


# -- skbn scale ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScaleResult:
    """What :func:`scale_file` did.

    Attributes
    ----------
    columns : tuple of str
        The scaled columns, in the scaler's feature order.
    n_rows : int
        Rows written to the output.
    n_batches : int
        Chunks fed to ``partial_fit`` (0 with a loaded scaler).
    scaler : BatchNormScaler
        The fitted (or loaded) scaler, with ``feature_names_in_`` set.
    seconds : float
        Wall time of the run.
    """

    columns: tuple[str, ...]
    n_rows: int
    n_batches: int
    scaler: BatchNormScaler
    seconds: float


def _is_numeric(pa_type) -> bool:
    types = sys.modules["pyarrow"].types
    return types.is_integer(pa_type) or types.is_floating(pa_type) or types.is_decimal(pa_type)


def _describe_columns(schema) -> str:
    return ", ".join(f"{field.name} ({field.type})" for field in schema)


def _choose_columns(source: _Source, columns: Sequence[str] | None) -> list[str]:
    schema = source.schema
    names = schema.names
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise CLIError(f"{source.path!r} has duplicate column names: {', '.join(dupes)}")
    numeric = {field.name for field in schema if _is_numeric(field.type)}
    if columns is None:
        chosen = [n for n in names if n in numeric and n not in source.index_columns]
        if not chosen:
            raise CLIError(
                f"{source.path!r} has no numeric column to scale "
                f"(its columns: {_describe_columns(schema) or 'none'})"
            )
        return chosen
    for name in columns:
        if name not in names:
            raise CLIError(
                f"--columns: {source.path!r} has no column {name!r} "
                f"(its columns: {', '.join(names)})",
                status=2,
            )
        if name not in numeric:
            raise CLIError(
                f"--columns: column {name!r} is {schema.field(name).type}, not numeric; "
                "only integer, floating-point and decimal columns can be scaled",
                status=2,
            )
    return list(columns)


def _matrix(table, features: Sequence[str]) -> tuple[np.ndarray, list]:
    """The chosen columns as a float64 matrix (nulls -> NaN) and their null masks."""
    pa = sys.modules["pyarrow"]
    X = np.empty((table.num_rows, len(features)), dtype=np.float64)
    nulls = []
    for j, name in enumerate(features):
        column = table.column(name)
        if column.type != pa.float64():
            column = pa.compute.cast(column, pa.float64(), safe=False)
        X[:, j] = column.to_numpy()
        nulls.append(pa.compute.is_null(column).to_numpy() if column.null_count else None)
    return X, nulls


def _value_error(exc: ValueError, X: np.ndarray, features: Sequence[str], first_row: int) -> str:
    """A ValueError of the scaler, in terms of the file's columns and rows."""
    with np.errstate(invalid="ignore"):
        inf = np.isinf(X)
    bad = np.flatnonzero(inf.any(axis=0))
    if bad.size:
        j = int(bad[0])
        row = first_row + int(np.flatnonzero(inf[:, j])[0]) + 1
        return (
            f"column {features[j]!r} holds an infinite value (data row {row}); skbn scale "
            "accepts missing values (left missing) but not +/-inf: replace them first"
        )
    return str(exc)


def _check_paths(input: str, output: str, save: str | None, load: str | None) -> None:
    if not os.path.exists(input):
        raise CLIError(f"input file {input!r} not found")
    if not os.path.isfile(input):
        raise CLIError(f"input {input!r} is not a file")
    named = {"INPUT": input, "OUTPUT": output}
    if save is not None:
        named["--save"] = save
    if load is not None:
        named["--load"] = load
    real = {role: os.path.realpath(path) for role, path in named.items()}
    roles = list(real)
    for i, first in enumerate(roles):
        for second in roles[i + 1 :]:
            if {first, second} == {"INPUT", "--load"}:
                continue
            if real[first] == real[second]:
                raise CLIError(
                    f"{first} and {second} are the same file ({named[first]!r}); "
                    "skbn never overwrites its input",
                    status=2,
                )
    if load is not None and not os.path.isfile(load):
        raise CLIError(f"model file {load!r} not found")
    for role in ("OUTPUT", "--save"):
        if role not in named:
            continue
        target = named[role]
        if os.path.isdir(target):
            raise CLIError(f"{role} {target!r} is a directory")
        directory = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(directory):
            raise CLIError(f"cannot write {target!r}: directory {directory!r} does not exist")


def scale_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    scaler: BatchNormScaler | None = None,
    columns: Sequence[str] | None = None,
    save: str | os.PathLike | None = None,
    load: str | os.PathLike | None = None,
    progress: bool = False,
) -> ScaleResult:
    """Scale the numeric columns of a CSV or Parquet file, streaming it in chunks.

    The first pass feeds each chunk of ``chunksize`` rows to
    ``scaler.partial_fit`` (one chunk, one mini-batch); the second pass
    transforms each chunk and writes it.  With ``load`` there is no first
    pass.  Other columns pass through unchanged, in their places.  The output
    (and ``save``) appear only when the run succeeds.

    Parameters
    ----------
    input, output : str or path-like
        Files ending in ``.csv``, ``.parquet`` or ``.pq``; the formats may
        differ.  ``output`` must not be ``input``.
    chunksize : int, default=DEFAULT_CHUNKSIZE
        Rows per chunk.
    scaler : BatchNormScaler, default=None
        An unfitted scaler with the wanted parameters (default:
        ``BatchNormScaler()``); it is fitted in place.  Not with ``load``.
    columns : sequence of str, default=None
        The columns to scale; default: every numeric column.
    save : str or path-like, default=None
        Write the fitted scaler here with skops.
    load : str or path-like, default=None
        Use the scaler saved in this skops file instead of fitting one; its
        feature names must be the chosen columns.
    progress : bool, default=False
        Show a progress bar on stderr.

    Returns
    -------
    result : ScaleResult
        The scaled columns, the row and batch counts and the scaler.

    Raises
    ------
    CLIError
        With a one-line message, for every problem with the files or options.
    """
    start = time.perf_counter()
    input, output = os.fspath(input), os.fspath(output)
    save = None if save is None else os.fspath(save)
    load = None if load is None else os.fspath(load)
    if chunksize < 1:
        raise CLIError(f"chunksize must be at least 1, got {chunksize}", status=2)
    if load is not None and scaler is not None:
        raise CLIError("pass either a scaler to fit or a model file to load, not both", status=2)
    in_fmt, out_fmt = _format_of(input, "INPUT"), _format_of(output, "OUTPUT")
    _check_paths(input, output, save, load)
    pa = _pyarrow()
    if save is not None:
        _require("skops.io", "skops", "saving a model file (--save)")
    loaded = load_scaler(load) if load is not None else None
    source = _Source(input, in_fmt, chunksize)
    features = _choose_columns(source, columns)
    if loaded is not None:
        features = _match_loaded(loaded, features, load, explicit=columns is not None)
    chosen = set(features)
    source.column_types = {
        field.name: pa.float64() if field.name in chosen else field.type for field in source.schema
    }
    out_schema = pa.schema(
        [
            pa.field(f.name, pa.float64(), metadata=f.metadata) if f.name in chosen else f
            for f in source.schema
        ],
        metadata=source.schema.metadata,
    )

    _check_writable(out_schema, out_fmt, output)

    n_batches = 0
    if loaded is None:
        fitted = BatchNormScaler() if scaler is None else scaler
        bar = _Progress(progress, "pass 1/2: fit", source.total, source.unit)
        seen = 0
        try:
            for table in source.chunks(bar):
                X, _ = _matrix(table, features)
                try:
                    fitted.partial_fit(X)
                except ValueError as exc:
                    raise CLIError(_value_error(exc, X, features, seen)) from None
                seen += table.num_rows
                n_batches += 1
        finally:
            bar.close()
        if n_batches == 0:
            raise CLIError(f"{input!r} has no data rows to learn from")
        fitted.feature_names_in_ = np.asarray(features, dtype=object)
    else:
        fitted = loaded

    # Transform positional arrays: the names were checked above.
    work = BatchNormScaler.__new__(BatchNormScaler)
    work.__dict__.update(fitted.__dict__)
    work.__dict__.pop("feature_names_in_", None)

    n_rows = 0
    with _AtomicFiles() as files:
        tmp = files.add(output)
        with _writing(output):
            sink = _Sink(tmp, out_fmt, out_schema)
        desc = "pass 2/2: transform" if loaded is None else "transform"
        bar = _Progress(progress, desc, source.total, source.unit)
        closed = False
        try:
            for table in source.chunks(bar):
                X, nulls = _matrix(table, features)
                try:
                    Y = work.transform(X)
                except ValueError as exc:
                    raise CLIError(_value_error(exc, X, features, n_rows)) from None
                arrays = []
                for name in out_schema.names:
                    if name in chosen:
                        j = features.index(name)
                        arrays.append(pa.array(Y[:, j], mask=nulls[j]))
                    else:
                        arrays.append(table.column(name))
                with _writing(output):
                    sink.write(pa.Table.from_arrays(arrays, schema=out_schema))
                n_rows += table.num_rows
            with _writing(output):
                closed = True
                sink.close()
        finally:
            bar.close()
            if not closed:  # a failed run: release the file before it is removed
                with contextlib.suppress(Exception):
                    sink.close()
        if save is not None:
            sio = sys.modules["skops.io"]
            try:
                sio.dump(fitted, files.add(save))
            except CLIError:
                raise
            except Exception as exc:
                raise CLIError(f"cannot write model file {save!r}: {exc}") from None
    return ScaleResult(
        columns=tuple(features),
        n_rows=n_rows,
        n_batches=n_batches,
        scaler=fitted,
        seconds=time.perf_counter() - start,
    )


def _match_loaded(
    loaded: BatchNormScaler, features: list[str], path: str, *, explicit: bool
) -> list[str]:
    """The chosen columns in the loaded scaler's feature order, or a clear error."""
    names = getattr(loaded, "feature_names_in_", None)
    option = "--columns" if explicit else "the numeric columns"
    if names is None:
        if loaded.n_features_in_ != len(features):
            raise CLIError(
                f"the scaler in {path!r} was fitted on {loaded.n_features_in_} unnamed "
                f"features, but {option} of the input are {len(features)}: "
                f"{', '.join(features)}"
            )
        return features
    names = [str(name) for name in names]
    if set(names) != set(features) or len(names) != len(features):
        missing = [n for n in names if n not in features]
        extra = [n for n in features if n not in names]
        detail = []
        if missing:
            detail.append(f"not chosen from the input: {', '.join(missing)}")
        if extra:
            detail.append(f"chosen but unknown to the scaler: {', '.join(extra)}")
        raise CLIError(
            f"the scaler in {path!r} was fitted on columns {', '.join(names)}, which do "
            f"not match {option} of the input ({'; '.join(detail)}); name the scaler's "
            "columns with --columns"
        )
    return names


def _momentum(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1) or 'none', got {text!r}")
    return value


def _epsilon(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _column_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError(f"must be column names separated by commas, got {text!r}")
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise argparse.ArgumentTypeError(f"names a column twice: {', '.join(dupes)}")
    return names


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _cmd_scale(args: argparse.Namespace) -> int:
    # The scaler's parameters given on the command line (the others keep
    # BatchNormScaler's defaults), in the order of the options.
    given = {
        "momentum": args.momentum is not _UNSET,
        "epsilon": args.epsilon is not None,
        "unbiased": args.unbiased,
        "init": args.init is not None,
    }
    params: dict[str, Any] = {name: getattr(args, name) for name, on in given.items() if on}
    scaler = None
    if args.load is not None:
        if params:
            raise CLIError(
                f"{', '.join('--' + name for name in params)} cannot be combined with "
                "--load: the loaded scaler keeps the parameters it was fitted with",
                status=2,
            )
    else:
        scaler = BatchNormScaler(**params)
    progress = not args.no_progress and _stderr_is_terminal()
    result = scale_file(
        args.input,
        args.output,
        chunksize=args.chunksize,
        scaler=scaler,
        columns=args.columns,
        save=args.save,
        load=args.load,
        progress=progress,
    )
    if progress:
        how = (
            f"fitted on {result.n_batches} batches"
            if args.load is None
            else f"with the scaler from {args.load}"
        )
        print(
            f"skbn: scaled {len(result.columns)} column(s) of {result.n_rows:,} rows "
            f"({how}) into {args.output} in {result.seconds:.1f} s",
            file=sys.stderr,
        )
    return 0


# -- skbn inspect ---------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.10g}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    return repr(value) if isinstance(value, str) else str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(map(str, row)) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def _cmd_inspect(args: argparse.Namespace) -> int:
    scaler = load_scaler(args.model)
    params = scaler.get_params()
    out = [f"{args.model}: skbn BatchNormScaler", "", "Parameters"]
    out += [f"  {name:<10} {_fmt(value)}" for name, value in params.items()]
    seen = scaler.n_samples_seen_
    per_feature = isinstance(seen, np.ndarray)
    total = "per feature, see below" if per_feature else _fmt(seen)
    out += [
        "",
        "Fitted",
        f"  features   {scaler.n_features_in_}",
        f"  batches    {scaler.n_batches_seen_}",
        f"  samples    {total}",
        "",
        "Per-feature statistics",
    ]
    names = scaler.get_feature_names_out()
    stats = [
        np.asarray(scaler.moving_mean_, dtype=float),
        np.asarray(scaler.moving_var_, dtype=float),
        np.asarray(scaler.gamma_, dtype=float),
        np.asarray(scaler.beta_, dtype=float),
    ]
    header = ["feature", "moving_mean", "moving_var", "gamma", "beta"]
    if per_feature:
        header.append("samples")
        stats.append(np.asarray(seen))
    rows = [
        [str(name)] + [_fmt(column[j].item()) for column in stats] for j, name in enumerate(names)
    ]
    out += ["  " + line for line in _table(header, rows)]
    print("\n".join(out))
    return 0


# -- skbn demo ----------------------------------------------------------------------------


def _max_rel_diff(estimate: np.ndarray, exact: np.ndarray) -> float:
    nonzero = exact != 0
    if not nonzero.any():
        return float(np.max(np.abs(estimate)))
    return float(np.max(np.abs(estimate[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))


def _cmd_demo(args: argparse.Namespace) -> int:
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    loader: Callable = getattr(datasets, f"load_{args.dataset}")
    X, y = loader(return_X_y=True)
    chunk = args.chunksize
    n_train = (int(0.75 * len(X)) // chunk) * chunk
    if n_train == 0:
        raise CLIError(
            f"--chunksize {chunk} is larger than the {args.dataset} training set "
            f"({int(0.75 * len(X))} rows)",
            status=2,
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=n_train, random_state=0, stratify=y
    )
    n_chunks = n_train // chunk
    print(
        f"skbn demo: scikit-learn's {args.dataset} data set, {X.shape[1]} features.\n"
        f"{n_train} training rows are streamed through BatchNormScaler.partial_fit "
        f"as {n_chunks} mini-batches of {chunk} rows\n(as chunks of a CSV file or "
        f"blocks of a database cursor would be); {len(X_test)} rows are kept for testing.\n"
    )

    def stream(scaler: BatchNormScaler) -> BatchNormScaler:
        for start in range(0, n_train, chunk):
            scaler.partial_fit(X_train[start : start + chunk])
        return scaler

    exact = StandardScaler().fit(X_train)
    exact_var1 = X_train.var(axis=0, ddof=1)
    average = stream(BatchNormScaler(momentum=None, unbiased=True))
    moving = stream(BatchNormScaler())
    print(
        "Learned: BatchNormScaler(momentum=None, unbiased=True) saw "
        f"{average.n_batches_seen_} batches and {average.n_samples_seen_} samples;\n"
        "its moving mean is the average of the batch means and its moving variance the\n"
        "average of the (Bessel-corrected) batch variances.  BatchNormScaler() (momentum=0.99)\n"
        "is an exponential moving average that favours recent batches.\n"
    )
    shown = np.sort(np.argsort(exact.var_, kind="stable")[-5:])
    header = [
        "feature",
        "mean (exact)",
        "momentum=None",
        "momentum=0.99",
        "var ddof=1 (exact)",
        "momentum=None",
        "momentum=0.99",
    ]
    rows = [
        [
            f"x{j}",
            f"{exact.mean_[j]:.5f}",
            f"{average.moving_mean_[j]:.5f}",
            f"{moving.moving_mean_[j]:.5f}",
            f"{exact_var1[j]:.4f}",
            f"{average.moving_var_[j]:.4f}",
            f"{moving.moving_var_[j]:.4f}",
        ]
        for j in shown
    ]
    print("The 5 features with the largest variance, next to StandardScaler's exact statistics:")
    print("\n".join("  " + line for line in _table(header, rows)))
    print(
        f"\nLargest relative difference over all {X.shape[1]} features, momentum=None:\n"
        f"  mean      {_max_rel_diff(average.moving_mean_, exact.mean_):.1e}"
        "   (equal batches: the exact mean, to rounding)\n"
        f"  variance  {_max_rel_diff(average.moving_var_, exact_var1):.1e}"
        "   (an estimate: the spread between batch means is left out)\n"
    )

    candidates = {
        "StandardScaler()": StandardScaler(),
        f"BatchNormScaler(momentum=None, unbiased=True, batch_size={chunk})": BatchNormScaler(
            momentum=None, unbiased=True, batch_size=chunk
        ),
        f"BatchNormScaler(batch_size={chunk})": BatchNormScaler(batch_size=chunk),
    }
    print("Pipeline([scaler, LogisticRegression]) accuracy on the test rows:")
    width = max(map(len, candidates))
    for label, scaler in candidates.items():
        model = Pipeline([("scale", scaler), ("clf", LogisticRegression(max_iter=5000))])
        model.fit(X_train, y_train)
        print(f"  {label:<{width}}  {model.score(X_test, y_test):.4f}")
    return 0


# -- the parser -----------------------------------------------------------------------------


class _UnsetType:
    def __repr__(self) -> str:
        return "the scaler's default"


_UNSET: Any = _UnsetType()


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``skbn: error: ...``."""

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')", status=2)


_SCALE_DESCRIPTION = """\
Scale the numeric columns of INPUT into OUTPUT with a BatchNormScaler.  The
first pass feeds each chunk of rows to partial_fit (one chunk, one
mini-batch); the second transforms each chunk and writes it.  Other columns
pass through unchanged and missing values stay missing.  The formats follow
the suffixes (.csv, .parquet, .pq) and may differ.
"""

_SCALE_EPILOG = """\
examples:
  skbn scale data.csv scaled.parquet
  skbn scale data.parquet scaled.csv --momentum none --unbiased --save scaler.skops
  skbn scale new.csv new_scaled.csv --load scaler.skops
  skbn scale data.csv scaled.csv --columns age,income --chunksize 10000

--momentum none weighs every chunk equally (the plain average of the chunk
statistics); the default 0.99 is an exponential moving average that favours
later chunks.  Memory depends on --chunksize and the number of columns, not on
the length of the file (about 300 MiB at the default for ten columns).  OUTPUT
appears only when the run succeeds.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skbn`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _Parser(
        prog="skbn",
        description=(
            "Batch normalization's moving mean and variance as a scikit-learn "
            "transformer, from the command line."
        ),
        epilog="Run 'skbn COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"skbn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    scale = commands.add_parser(
        "scale",
        help="scale the numeric columns of a CSV or Parquet file, streaming it in chunks",
        description=_SCALE_DESCRIPTION,
        epilog=_SCALE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scale.add_argument("input", metavar="INPUT", help="file to read (.csv, .parquet, .pq)")
    scale.add_argument("output", metavar="OUTPUT", help="file to write (.csv, .parquet, .pq)")
    scale.add_argument(
        "--chunksize",
        type=_positive_int,
        default=DEFAULT_CHUNKSIZE,
        metavar="ROWS",
        help=f"rows per chunk, i.e. per mini-batch (default: {DEFAULT_CHUNKSIZE})",
    )
    scale.add_argument(
        "--momentum",
        type=_momentum,
        default=_UNSET,
        metavar="M|none",
        help="weight of the old estimate, in [0, 1), or 'none' for the plain average "
        "of the chunk statistics (default: 0.99)",
    )
    scale.add_argument(
        "--epsilon",
        type=_epsilon,
        default=None,
        metavar="E",
        help="added to the variance, >= 0 (default: 0.001)",
    )
    scale.add_argument(
        "--unbiased",
        action="store_true",
        help="Bessel-correct each chunk's variance, m/(m-1), as PyTorch does",
    )
    scale.add_argument(
        "--init",
        choices=["debiased", "keras"],
        default=None,
        help="how the moving statistics start (default: debiased)",
    )
    scale.add_argument(
        "--columns",
        type=_column_list,
        default=None,
        metavar="A,B,...",
        help="the numeric columns to scale (default: every numeric column)",
    )
    scale.add_argument(
        "--save", metavar="MODEL.skops", help="write the fitted scaler to this skops file"
    )
    scale.add_argument(
        "--load",
        metavar="MODEL.skops",
        help="transform with this saved scaler instead of fitting one",
    )
    scale.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only when stderr is a terminal)",
    )
    scale.set_defaults(func=_cmd_scale)

    demo = commands.add_parser(
        "demo",
        help="stream a data set shipped with scikit-learn through the scaler and report",
        description=(
            "Stream a data set shipped with scikit-learn through BatchNormScaler.partial_fit "
            "in chunks, compare what it learned with StandardScaler's exact statistics, and "
            "compare their accuracy in a Pipeline with LogisticRegression. Needs no download."
        ),
    )
    demo.add_argument(
        "--dataset",
        choices=["digits", "breast_cancer", "wine", "iris"],
        default="digits",
        help="the data set (default: digits)",
    )
    demo.add_argument(
        "--chunksize",
        type=_positive_int,
        default=64,
        metavar="ROWS",
        help="rows per mini-batch (default: 64)",
    )
    demo.set_defaults(func=_cmd_demo)

    inspect = commands.add_parser(
        "inspect",
        help="print a saved scaler's parameters and per-feature statistics",
        description=(
            "Print the parameters of a scaler saved with 'skbn scale --save' (or "
            "skops.io.dump) and, per feature, its moving mean and variance, gamma and beta."
        ),
    )
    inspect.add_argument("model", metavar="MODEL.skops", help="the skops file")
    inspect.set_defaults(func=_cmd_inspect)
    return parser


def _error(message: str) -> None:
    print(f"skbn: error: {_one_line(message)}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skbn`` command line.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after the program name; default: ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when the command failed, 2 for a bad command line.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except CLIError as exc:
        _error(str(exc))
        return exc.status
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # e.g. `skbn inspect m.skops | head`
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("SKBN_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (set SKBN_DEBUG=1 to see the traceback)")
        return 1
