"""The two passes of :func:`scale_file`: fit (moments of each chunk) and transform."""

from __future__ import annotations

import dataclasses
import glob
import os
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .._affine import transform_coefficients
from .._blocks import single_threaded_blas
from .._stats import (
    InfiniteValueError,
    Moments,
    block_moments,
    compiled_moments,
    dense_moments,
    reduce_moments,
)
from ._atomic import STDOUT, Workspace
from ._columns import (
    affine_map,
    choose_columns,
    column_values,
    infinite_error,
    match_loaded,
    replace_values,
    scaler_map,
)
from ._csvout import can_format, write_rows
from ._errors import FileError, require
from ._formats import (
    ArrowSource,
    Format,
    Sink,
    check_writable,
    detect_format,
    empty_table,
    polars,
    pyarrow,
)
from ._model import dump_scaler, load_scaler
from ._stream import Cache, Progress, exact_chunks, in_thread, prefetch
from ._text import TextSource

__all__ = ["DEFAULT_CHUNKSIZE", "ScaleResult", "fit_file", "scale_file"]

#: Rows per chunk (one chunk is one mini-batch) when ``chunksize`` is not given.
DEFAULT_CHUNKSIZE = 65536

#: A text input up to this size keeps its parsed batches in memory between the
#: passes; a larger one writes them to Arrow IPC files (one per batch) in the
#: temporary directory.  Either way pass 2 does not parse the text again.
MEMORY_CACHE_BYTES = 64 << 20

MOMENTUM_MODES = ("pooled", None)


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
        Chunks of the fitting pass (0 with a loaded scaler).
    mean, var : ndarray of shape (n_columns,)
        The statistics applied: the file's mean and variance with the
        default pooled statistics, else the scaler's ``moving_mean_`` and
        ``moving_var_``.
    scaler : BatchNormScaler or None
        The fitted or loaded scaler; None on the pooled path without ``save``
        (which never builds one, so it does not import scikit-learn).
    seconds : float
        Wall time of the run.
    """

    columns: tuple
    n_rows: int
    n_batches: int
    mean: np.ndarray
    var: np.ndarray
    scaler: object
    seconds: float


class _Counter:
    rows = 0
    chunks = 0


def _chunk_moments(source, features, rows, cache, bar, counter) -> Iterator[Moments]:
    """Pass 1: the moments of each chunk of ``rows`` rows, caching what was read."""

    def read() -> Iterator:
        for table in prefetch(source.batches(), depth=1):  # parse the next meanwhile
            if cache is not None:
                cache.add(table)
            bar.update(table.num_rows)
            yield table

    for chunk in exact_chunks(read(), rows):
        columns = [column_values(chunk.column(name)) for name in features]
        try:
            moments = _chunk_moments_of(columns)
        except InfiniteValueError as exc:
            j = int(exc.columns[0])
            row = int(np.flatnonzero(np.isinf(columns[j]))[0])
            raise infinite_error(features[j], counter.rows + row) from None
        counter.rows += chunk.num_rows
        counter.chunks += 1
        yield moments


def _chunk_moments_of(columns: list) -> Moments:
    """The moments of a chunk, given as its float64 columns (missing values
    as NaN; each read in place from the Arrow buffers where it can be).

    With the compiled kernels, one call of :func:`~skbn._stats.block_moments`
    per column (the corrected two-pass moments over the values present,
    exact to about one rounding whatever the chunk's length): no copy into a
    matrix, and no row blocks, where :func:`~skbn._stats.dense_moments` would
    recompute a column with missing values block by block (0.2 s of CPU time
    per 1.5 million rows of the benchmark's file, against 0.02 s).  Without
    them, :func:`~skbn._stats.dense_moments` of the columns' matrix.
    """
    if not compiled_moments():
        X = np.empty((len(columns), len(columns[0])))
        for j, values in enumerate(columns):
            X[j] = values
        return dense_moments(X.T)
    parts = []
    for j, values in enumerate(columns):
        try:
            parts.append(block_moments(values.reshape(-1, 1)))
        except InfiniteValueError:
            raise InfiniteValueError([j]) from None
    return Moments(*(np.concatenate(values) for values in zip(*parts, strict=True)))


def _pooled_map(total: Moments, epsilon: float, unbiased: bool) -> tuple:
    """The column mapper of the pooled statistics, and ``(mean, var)``."""
    var = total.var
    if unbiased:
        m = total.weight
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(m > 1, var * (m / (m - 1)), np.nan)
    stats = Moments(total.weight, total.mean, var)
    factor = transform_coefficients(stats, epsilon, None)
    return affine_map((total.mean, factor, None)), (total.mean, var)


def _scaler_stats(scaler) -> tuple:
    return tuple(
        np.asarray(getattr(scaler, n), dtype=float) for n in ("moving_mean_", "moving_var_")
    )


def _new_scaler(momentum, epsilon, unbiased, init):
    from .._scaler import BatchNormScaler

    params = {"momentum": momentum}
    if epsilon is not None:
        params["epsilon"] = epsilon
    if unbiased:
        params["unbiased"] = True
    if init is not None:
        params["init"] = init
    return BatchNormScaler(**params)


def _fit_scaler(scaler, moments: Iterable, features: list[str]):
    if not hasattr(scaler, "_fit_moments"):
        raise FileError(
            "this skbn core has no BatchNormScaler._fit_moments; streaming modes and "
            "--save need it"
        )
    return scaler._fit_moments(
        moments, n_features=len(features), feature_names=np.asarray(features, dtype=object)
    )


def _mapped(tables, features, mapper, check) -> Iterator:
    n_rows = 0
    for table in tables:
        yield replace_values(table, features, mapper, check, n_rows)
        n_rows += table.num_rows


def _transform_pass(tables, sink, features, mapper, options, bar) -> int:
    """Pass 2: map the scaled columns of each table and write it; the rows written."""
    check, digits = options
    n_rows = 0
    mapped = _mapped(tables, features, mapper, check)
    # Read and map the next table in a thread while this one is written: on
    # an idle 2-core machine 15-25% less wall time (measured), the same CPU.
    for out in prefetch(mapped, depth=1):
        sink.write(out, round_columns=features, digits=digits)
        n_rows += out.num_rows
        bar.update(out.num_rows)
    return n_rows


#: Rows per frame handed to polars in pass 2 (fewer rows in flight, less memory).
_SINK_ROWS = 16384


def _release(version: str) -> tuple:
    """``"1.32.0"`` -> ``(1, 32)``."""
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _sink_pass(cache, sink, schema, features, mapper, digits) -> bool:
    """Pass 2 in polars' streaming engine, when it can run there: pass 1 kept
    a cache, the map is the pooled affine map, and the output is not
    compressed text.  Returns whether it ran.

    polars reads the cache files itself, one after another (one large file
    would be mapped into memory whole), or, for a cache in memory, takes the
    tables from Python a few thousand rows at a time; it maps the columns
    with the same operations in the same order as
    :func:`~skbn.io._columns.affine_map` (so the same bits) and writes the
    output on every core.  Pass 1 has already refused infinite values.
    Against mapping and writing one table at a time this halves pass 2 on
    this machine (``benchmarks/file_engine.py``).
    """
    coefficients = getattr(mapper, "coefficients", None)
    if coefficients is None or cache is None or not sink.can_sink:
        return False
    pl = polars()
    if _release(pl.__version__) < (1, 32):  # the oldest release tested (the cli extra's floor)
        return False
    shift, factor, offset = coefficients
    if shift is not None and np.any(np.signbit(shift) & (shift == 0)):
        return False  # polars simplifies x - (-0.0) to x, which is not IEEE's +0.0 for x = -0.0
    frame_schema = pl.from_arrow(empty_table(schema)).schema
    if not sink.fmt.text and not _same_types(pl, frame_schema, schema):
        return False  # polars would write other Arrow types (date64, string, ...)
    from polars.io.plugins import register_io_source

    def tables(with_columns, predicate, n_rows, batch_size):
        for table in cache.tables(group=False):
            frame = pl.from_arrow(table)
            frame = frame if with_columns is None else frame.select(with_columns)
            for start in range(0, frame.height, _SINK_ROWS):
                yield frame.slice(start, _SINK_ROWS)

    if cache.paths:  # files on disk: polars reads them itself, one after another
        # escaped: polars expands glob patterns, and TMPDIR may hold [, * or ?
        source = pl.scan_ipc([glob.escape(path) for path in cache.paths])
    else:  # the tables in memory (a small input)
        source = register_io_source(tables, schema=frame_schema)

    columns = []
    for j, name in enumerate(features):
        x = pl.nth(schema.get_field_index(name))  # by position: a name may look like a pattern
        y = x if shift is None else x - float(shift[j])
        y = y * float(factor[j])
        y = y if offset is None else y + float(offset[j])
        # --float-precision is for text outputs only
        columns.append(y if digits is None or not sink.fmt.text else y.round_sig_figs(digits))
    in_thread(sink.sink, source.with_columns(columns))
    return True


def _compiled_csv(sink, schema, mapper, digits) -> tuple | None:
    """The coefficients of the pooled affine map where pass 2 runs in the
    compiled CSV writer (:mod:`skbn.io._csvout`), else None.

    It runs for a CSV or TSV output (compressed or not) of that map, not
    rounded, every column of a type it writes: record batches are mapped
    and formatted in threads, on every core, and written in order, the same
    bytes as polars' writer in about half its time on this machine's two
    cores (``benchmarks/file_engine.py``).
    """
    coefficients = getattr(mapper, "coefficients", None)
    if coefficients is None or digits is not None or sink.fmt.kind != "csv":
        return None
    return coefficients if can_format(schema, sink.fmt.delimiter) else None


def _same_types(pl, frame_schema, schema) -> bool:
    """Whether polars writes ``schema``'s Arrow types back unchanged."""
    written = pl.DataFrame(schema=frame_schema).to_arrow(compat_level=pl.CompatLevel.oldest())
    return written.schema.equals(schema, check_metadata=False)


# -- the public functions ----------------------------------------------------------


def _path(value) -> str | None:
    return None if value is None else os.fspath(value)


def _check_paths(input: str, output: str | None, save: str | None, load: str | None) -> None:
    if input != STDOUT and not os.path.exists(input):
        raise FileError(f"input file {input!r} not found")
    if input != STDOUT and not os.path.isfile(input):
        raise FileError(f"input {input!r} is not a file")
    named = {"INPUT": input, "OUTPUT": output, "--save": save, "--load": load}
    real = {r: os.path.realpath(p) for r, p in named.items() if p is not None and p != STDOUT}
    roles = list(real)
    for i, first in enumerate(roles):
        for second in roles[i + 1 :]:
            if {first, second} != {"INPUT", "--load"} and real[first] == real[second]:
                raise FileError(
                    f"{first} and {second} are the same file ({named[first]!r}); "
                    "skbn never overwrites its input",
                    status=2,
                )
    if load is not None and not os.path.isfile(load):
        raise FileError(f"model file {load!r} not found")
    for role in ("OUTPUT", "--save"):
        target = named[role]
        if target is not None and target != STDOUT and os.path.isdir(target):
            raise FileError(f"{role} {target!r} is a directory")


def _parse_dtypes(dtypes) -> dict:
    from ._formats import arrow_type

    pa = pyarrow()
    return {
        name: kind if isinstance(kind, pa.DataType) else arrow_type(str(kind))
        for name, kind in (dtypes or {}).items()
    }


def _open_source(input: str, fmt: Format, dtypes) -> tuple:
    """The source of ``input`` and whether its pass-1 cache fits in memory."""
    name = "stdin" if input == STDOUT else input
    kind = TextSource if fmt.text else ArrowSource
    source = kind(input, fmt, _parse_dtypes(dtypes), name)
    return source, source.size is not None and source.size <= MEMORY_CACHE_BYTES


def _check_options(chunksize, momentum, epsilon, float_precision) -> None:
    if not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
        raise FileError(f"chunksize must be a whole number >= 1, got {chunksize!r}", status=2)
    if momentum not in MOMENTUM_MODES and not (
        isinstance(momentum, (int, float)) and 0 <= momentum < 1
    ):
        raise FileError(f"momentum must be 'pooled', None or in [0, 1), got {momentum!r}", 2)
    if epsilon is not None and not (np.isfinite(epsilon) and epsilon >= 0):
        raise FileError(f"epsilon must be a finite number >= 0, got {epsilon!r}", status=2)
    if float_precision is not None and not 1 <= float_precision <= 17:
        raise FileError(f"float_precision must be in 1..17, got {float_precision!r}", 2)


@dataclasses.dataclass
class _Run:
    """The choices of one run, checked."""

    input: str
    fmt: Format
    chunksize: int
    columns: Sequence[str] | None
    exclude: Sequence[str] | None
    dtypes: dict | None
    progress: bool

    def open(self, work: Workspace, loaded=None, load: str | None = None) -> tuple:
        source, small = _open_source(self.input, self.fmt, self.dtypes)
        columns = self.columns
        names = getattr(loaded, "feature_names_in_", None)
        if columns is None and self.exclude is None and names is not None:
            columns = [str(name) for name in names]  # a loaded scaler's own columns
        features = choose_columns(
            source.schema, source.name, columns, self.exclude, source.index_columns
        )
        if loaded is not None:
            explicit = self.columns is not None
            features = match_loaded(loaded, features, load, explicit=explicit)
        source.set_float(features)
        return source, features, small

    def fit(self, source, features, cache, fit) -> _Counter:
        """Run pass 1; ``fit`` consumes the chunk moments."""
        bar = Progress(self.progress, "pass 1/2: fit", source.total_rows)
        counter = _Counter()
        try:
            # One BLAS thread for the whole pass, not a limit set and lifted
            # per chunk (NumPy's moments, without the compiled kernels):
            # OpenBLAS's threads spin after each lift, taking a core from the
            # parser (6% of the run's CPU time, measured with those moments).
            with single_threaded_blas():
                fit(_chunk_moments(source, features, self.chunksize, cache, bar, counter))
        finally:
            bar.close()
        if counter.rows == 0:
            raise FileError(f"{source.name!r} has no data rows to learn from")
        return counter


def fit_file(
    input,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    momentum="pooled",
    epsilon: float | None = None,
    unbiased: bool = False,
    init: str | None = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    dtypes: dict | None = None,
    input_format: str | None = None,
    delimiter: str | None = None,
    progress: bool = False,
):
    """Fit a :class:`~skbn.BatchNormScaler` on the numeric columns of a file.

    The file is streamed once, in chunks of ``chunksize`` rows; each chunk's
    moments are computed by the core's kernels and applied as one
    mini-batch (:meth:`~skbn.BatchNormScaler.partial_fit` semantics), so
    memory does not grow with the file.

    Parameters
    ----------
    input : str or path-like
        The file (see :func:`scale_file` for the formats), or ``"-"`` for stdin.
    chunksize : int, default=DEFAULT_CHUNKSIZE
        Rows per chunk, i.e. per mini-batch, exactly.
    momentum : "pooled", None or float in [0, 1), default="pooled"
        ``"pooled"``: the exact statistics of the whole file; ``None`` or a
        float: each chunk is one mini-batch with that momentum.
    epsilon : float, default=None
        Added to the variance; default 0 when pooled, else the scaler's.
    unbiased : bool, default=False
        Bessel's correction.
    init : {"debiased", "keras"}, default=None
        How a moving average starts.
    columns, exclude : sequence of str, default=None
        Fit only ``columns`` (default: every numeric column), not ``exclude``.
    dtypes : dict of str to str or pyarrow.DataType, default=None
        Column types that override inference.
    input_format : str, default=None
        The format, instead of the suffix.
    delimiter : str, default=None
        The CSV field delimiter.
    progress : bool, default=False
        A progress bar on stderr.

    Returns
    -------
    scaler : BatchNormScaler
        Fitted, with the scaled columns as ``feature_names_in_``.

    Raises
    ------
    FileError
        With a one-line message, for every problem with the file or options.
    """
    _check_options(chunksize, momentum, epsilon, None)
    input = os.fspath(input)
    _check_paths(input, None, None, None)
    fmt = detect_format(input, input_format, "INPUT")
    fmt = _with_delimiter(fmt, delimiter, "INPUT")
    run = _Run(input, fmt, chunksize, columns, exclude, dtypes, progress)
    if momentum == "pooled" and epsilon is None:
        epsilon = 0.0
    scaler = _new_scaler(momentum, epsilon, unbiased, init)
    with Workspace() as work:
        source, features, _ = run.open(work)
        run.fit(source, features, None, lambda moments: _fit_scaler(scaler, moments, features))
    return scaler


def _with_delimiter(fmt: Format, delimiter, role: str) -> Format:
    from ._formats import with_delimiter

    return with_delimiter(fmt, delimiter, role)


def scale_file(
    input,
    output,
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    momentum="pooled",
    epsilon: float | None = None,
    unbiased: bool = False,
    init: str | None = None,
    scaler=None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    dtypes: dict | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    delimiter: str | None = None,
    float_precision: int | None = None,
    save=None,
    load=None,
    inverse: bool = False,
    progress: bool = False,
) -> ScaleResult:
    """Scale the numeric columns of a file into another, streaming both.

    Pass 1 reads ``input`` in chunks of ``chunksize`` rows and computes each
    chunk's per-column moments with the core's kernels; pass 2 maps each
    batch's scaled columns and writes it.  A text input is parsed once: pass
    1 keeps the parsed batches (in memory when the file is small, else in
    Arrow IPC files in the temporary directory) and pass 2 reads them back.
    Other columns pass through unchanged, in their places; missing values
    stay missing.  ``output`` (and ``save``) appear, by one atomic rename,
    only when the run succeeds.

    Parameters
    ----------
    input, output : str or path-like
        Files whose suffix names the format (``.csv``, ``.tsv``, ``.parquet``,
        ``.pq``, ``.feather``, ``.arrow``, ``.ipc``, ``.ndjson``, ``.jsonl``;
        a text format may end in ``.gz``, ``.bz2``, ``.zst``, ``.lz4`` or
        ``.br``), or ``"-"`` for stdin/stdout (CSV unless a format is given).
    chunksize : int, default=DEFAULT_CHUNKSIZE
        Rows per chunk, i.e. per mini-batch, exactly, whatever the reader's
        block size.
    momentum : "pooled", None or float in [0, 1), default="pooled"
        ``"pooled"``: the exact mean and variance of the whole file (what
        ``StandardScaler`` gives on the loaded file).  ``None`` or a float:
        each chunk is one mini-batch of a :class:`~skbn.BatchNormScaler`
        with that momentum.
    epsilon : float, default=None
        Added to the variance; default 0 when pooled (exactly
        ``StandardScaler``), else the scaler's default.
    unbiased : bool, default=False
        Bessel's correction (of the whole file when pooled, of each chunk
        otherwise).
    init : {"debiased", "keras"}, default=None
        How the moving statistics start (float momentum only).
    scaler : BatchNormScaler, default=None
        An unfitted scaler to fit instead of one made from the parameters
        above.
    columns, exclude : sequence of str, default=None
        Scale only ``columns`` (default: every numeric column); pass
        ``exclude`` through unchanged.
    dtypes : dict of str to str or pyarrow.DataType, default=None
        Column types that override inference: ``"str"``, ``"int"``,
        ``"float"`` or an Arrow type name such as ``"float32"``.
    input_format, output_format : str, default=None
        Formats that override the suffixes, e.g. ``"csv"``, ``"tsv.gz"``.
    delimiter : str, default=None
        The CSV field delimiter (both sides, where CSV).
    float_precision : int, default=None
        Significant digits of the scaled columns in a text output (default:
        the shortest text that reads back to the same float64).
    save : str or path-like, default=None
        Write the fitted scaler here with skops.
    load : str or path-like, default=None
        Transform with the scaler saved in this skops file (no pass 1).
    inverse : bool, default=False
        With ``load``: undo the scaling (``inverse_transform``).
    progress : bool, default=False
        A progress bar on stderr for each pass.

    Returns
    -------
    result : ScaleResult

    Raises
    ------
    FileError
        With a one-line message, for every problem with the files or options;
        nothing is written then.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> source, target = os.path.join(folder, "in.csv"), os.path.join(folder, "out.csv")
    >>> with open(source, "w") as f:
    ...     _ = f.write("id,x,name\\n1,1.0,a\\n2,3.0,b\\n")
    >>> scale_file(source, target, exclude=["id"]).columns
    ('x',)
    >>> print(open(target).read(), end="")
    id,x,name
    1,-1.0,a
    2,1.0,b
    """
    start = time.perf_counter()
    _check_options(chunksize, momentum, epsilon, float_precision)
    input, output, save, load = map(_path, (input, output, save, load))
    if inverse and load is None:
        raise FileError("--inverse needs --load MODEL: the scaler to undo", status=2)
    if load is not None and scaler is not None:
        raise FileError("pass either a scaler to fit or a model file to load, not both", 2)
    fmts = [
        detect_format(input, input_format, "INPUT"),
        detect_format(output, output_format, "OUTPUT"),
    ]
    fmts = [
        _with_delimiter(f, delimiter, r) for f, r in zip(fmts, ("INPUT", "OUTPUT"), strict=True)
    ]
    _check_paths(input, output, save, load)
    if save is not None:
        require("skops.io", "skops", "saving a model file (--save)")
    if momentum == "pooled" and epsilon is None and scaler is None:
        epsilon = 0.0
    run = _Run(input, fmts[0], chunksize, columns, exclude, dtypes, progress)
    loaded = load_scaler(load) if load is not None else None
    if loaded is None and (scaler is not None or save is not None or momentum != "pooled"):
        scaler = scaler if scaler is not None else _new_scaler(momentum, epsilon, unbiased, init)
    with Workspace() as work:
        source, features, small = run.open(work, loaded, load)
        out_name = "stdout" if output == STDOUT else output
        check_writable(source.schema, fmts[1], out_name)
        sink = Sink(work.output(output), fmts[1], source.schema, out_name, output == STDOUT)
        try:
            pooled = (epsilon, unbiased, inverse)
            fitted = _scale(run, source, (features, small), work, (loaded, scaler), pooled)
            mapper, stats, (n_batches, total), tables, cache = fitted
            lazy = (cache, sink, source.schema, features, mapper, float_precision)
            compiled = _compiled_csv(sink, source.schema, mapper, float_precision)
            if compiled is None and not progress and _sink_pass(*lazy):
                n_rows = total
            else:
                options = (loaded is not None, float_precision)
                bar = Progress(progress, "transform" if loaded else "pass 2/2: transform", total)
                try:
                    if compiled is not None:
                        if cache is not None:  # read once: let each part go once written
                            tables = cache.tables(release=True)
                        write = (sink.write_encoded, sink.fmt.delimiter)
                        n_rows = write_rows(tables, *write, features, compiled, bar)
                    else:
                        n_rows = _transform_pass(tables, sink, features, mapper, options, bar)
                finally:
                    bar.close()
            sink.close()
        except BaseException:
            sink.abort()
            raise
        if save is not None:
            dump_scaler(scaler, save, work)
    return ScaleResult(
        tuple(features), n_rows, n_batches, *stats, loaded or scaler,
        time.perf_counter() - start,
    )  # fmt: skip


def _scale(run: _Run, source, chosen, work, scalers, pooled) -> tuple:
    """Pass 1 (unless a scaler was loaded).

    Returns the column mapper of pass 2, ``(mean, var)``, the number of
    chunks fitted, the tables pass 2 reads and the pass-1 cache (or None).
    """
    (features, small), (loaded, scaler) = chosen, scalers
    epsilon, unbiased, inverse = pooled
    if loaded is not None:
        counts = (0, source.total_rows)
        return scaler_map(loaded, inverse), _scaler_stats(loaded), counts, source.batches(), None
    cache = Cache(None if small else work) if source.fmt.text else None
    if scaler is None:
        parts: list = []
        counter = run.fit(source, features, cache, parts.extend)
        mapper, stats = _pooled_map(reduce_moments(parts), epsilon, unbiased)
    else:
        counter = run.fit(source, features, cache, lambda m: _fit_scaler(scaler, m, features))
        mapper, stats = scaler_map(scaler, False), _scaler_stats(scaler)
    tables = source.batches() if cache is None else cache.tables()
    return mapper, stats, (counter.chunks, counter.rows), tables, cache
