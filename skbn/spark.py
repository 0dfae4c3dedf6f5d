"""Fit and transform Spark DataFrames, and a Spark ML pipeline stage.

:class:`~skbn.BatchNormScaler` hands a ``pyspark.sql.DataFrame`` to this
module (through :mod:`skbn._collections`); pyspark is imported here and
nowhere else in skbn.

Which columns
-------------
Spark tables carry keys and labels beside the features, so the numeric columns
(Spark's ``NumericType``: byte, short, int, long, float, double, decimal) are
the features and every other column (strings, booleans, dates, vectors, ...)
is left out of the fit and passed through by ``transform`` unchanged.
``feature_names_in_`` are the numeric columns, in the DataFrame's order.  A
scaler fitted on ``df.select(...)`` transforms the whole table: columns not in
``feature_names_in_`` pass through.

Where the work happens
----------------------
``fit`` and ``partial_fit``
    One batch without weights: Spark SQL aggregates per chunk of rows, on
    the JVM, merged exactly on the driver (``_sql_moments``); the columns
    whose chunk means are not trusted (far from 0 against their spread, or
    +/-inf) go the Arrow way below, as does everything with ``batch_size``
    or weights.

    The Arrow way: the numeric columns are cast to double in Spark and streamed, as Arrow
    batches, through ``mapInArrow`` on the executors, where the in-memory
    function (:func:`skbn._stats.dense_moments`) turns blocks of rows into
    per-feature moments (weight, mean, biased variance); null and NaN are
    missing values.  Each partition merges its blocks exactly and sends back
    ``O(n_features)`` numbers per batch piece; the driver merges the
    partitions in order, with :func:`skbn._stats.merge_moments`.  Means
    travel with their rounding residual, so data far from 0 loses nothing to
    the offset, and the result equals the in-memory fit of the collected
    data to rounding.  With ``batch_size=k``,
    one extra (JVM-only) pass counts the rows of every partition, so that
    the rows are cut into consecutive ``k``-row batches in the DataFrame's
    order, partition by partition, exactly as in memory.

``transform`` and ``inverse_transform``
    Lazy: a ``select`` of column expressions, one per column, in the same
    order; no Spark job runs until an action.  Nulls stay null; +/-inf
    raises the in-memory ``ValueError`` message when the row is computed.

The Spark ML stage
------------------
:class:`BatchNormScalerSpark` (an ``Estimator``) and
:class:`BatchNormScalerSparkModel` scale a vector column, like Spark ML's
``StandardScaler``, with the same engine.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np

try:
    import pyarrow as pa
    from pyspark import keyword_only
    from pyspark.ml import Estimator, Model
    from pyspark.ml.param import Param, Params, TypeConverters
    from pyspark.ml.param.shared import HasInputCol, HasOutputCol
    from pyspark.ml.util import (
        DefaultParamsReadable,
        DefaultParamsReader,
        DefaultParamsWritable,
        DefaultParamsWriter,
        MLReadable,
        MLReader,
        MLWritable,
        MLWriter,
    )
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - only without pyspark installed
    raise ImportError(
        "Fitting or transforming Spark DataFrames with BatchNormScaler needs pyspark "
        'and pyarrow: install the extra with  pip install "skbn[spark]"'
    ) from exc

from . import _stats
from ._collections import Batches
from ._validation import InfiniteValueError, infinite_error

__all__ = [
    "BatchNormScalerSpark",
    "BatchNormScalerSparkModel",
    "batch_moments",
    "describe",
    "is_collection",
    "materialize_weights",
    "transform",
]


# -- recognising and describing DataFrames ------------------------------------


def is_collection(X: Any) -> bool:
    """Whether ``X`` is a Spark DataFrame (classic or Spark Connect)."""
    return isinstance(X, DataFrame)


def _quoted(name: str) -> str:
    """``name`` as a column reference, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"


def _col(name: str):
    return F.col(_quoted(name))


def _numeric_fields(schema: T.StructType) -> list:
    return [f for f in schema.fields if isinstance(f.dataType, T.NumericType)]


def _check_unique(names: list) -> None:
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise ValueError(
            f"The Spark DataFrame has more than one column named {repeated}: "
            "rename them (e.g. with withColumnRenamed or an alias after a join)."
        )


def _feature_fields(schema: T.StructType, feature_names=None) -> list:
    """The fields of the features: the numeric columns, or the fitted ones."""
    if feature_names is None:
        fields = _numeric_fields(schema)
        if not fields:
            described = ", ".join(f"{f.name}: {f.dataType.simpleString()}" for f in schema.fields)
            raise ValueError(
                "The Spark DataFrame has no numeric column "
                f"({described or 'no columns at all'}): BatchNormScaler fits the numeric "
                "columns (byte, short, int, long, float, double, decimal) and passes the "
                "others through. Cast the features to a number first, e.g. "
                "df.withColumn('x', df['x'].cast('double'))."
            )
        _check_unique([f.name for f in fields])
        return fields
    by_name: dict = {}
    for field in schema.fields:
        by_name.setdefault(field.name, []).append(field)
    names = [str(n) for n in feature_names]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(
            f"Column(s) {missing}, fitted as features, are missing from the Spark "
            f"DataFrame (it has {list(by_name)}): transform needs every column in "
            "feature_names_in_."
        )
    _check_unique([n for n in names for _ in by_name[n]])
    fields = [by_name[n][0] for n in names]
    wrong = [f for f in fields if not isinstance(f.dataType, T.NumericType)]
    if wrong:
        raise TypeError(
            "Column(s) "
            + ", ".join(f"{f.name!r} ({f.dataType.simpleString()})" for f in wrong)
            + " were fitted as numeric features but are not numeric in this Spark "
            "DataFrame: cast them back to a number, e.g. df['x'].cast('double')."
        )
    return fields


def _dtype(fields: list) -> np.dtype:
    """float32 when every feature is a Spark float, else float64 (as in memory)."""
    if all(isinstance(f.dataType, T.FloatType) for f in fields):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def describe(X: Any, feature_names=None) -> Any:
    """An empty pandas frame standing for the features of ``X`` (schema only).

    Parameters
    ----------
    X : pyspark.sql.DataFrame
        The data; nothing of it is computed.
    feature_names : sequence of str or None
        The fitted names (``transform``): the stand-in holds those columns,
        which must be present and numeric in ``X``.  None: the numeric
        columns of ``X`` (``fit``).
    """
    import pandas as pd

    if not is_collection(X):
        raise TypeError(
            "BatchNormScaler takes a Spark DataFrame as X; got a pyspark "
            f"{type(X).__name__}. Pass the DataFrame itself, e.g. df.select(...)."
        )
    fields = _feature_fields(X.schema, feature_names)
    dtype = _dtype(fields)
    return pd.DataFrame({f.name: np.empty(0, dtype=dtype) for f in fields})


# -- per-partition moments, on the executors ----------------------------------

#: Rows gathered from Arrow batches before their moments are computed (the
#: in-memory path reads 4096-row blocks; fewer, larger calls cost less).
_GATHER_ROWS = 1 << 16

_RESULT_FIELDS = (
    "partition", "rows", "piece", "size_error", "infinite",
    "any_weight", "weight", "mean", "residual", "var",
)  # fmt: skip
_RESULT_SCHEMA = (
    "partition long, rows long, piece long, size_error long, infinite array<long>, "
    "any_weight boolean, weight array<double>, mean array<double>, "
    "residual array<double>, var array<double>"
)


def _carried(m: _stats.Moments) -> _stats.Moments:
    """``m`` with its mean's rounding residual (0 where none was computed)."""
    return m if m.residual is not None else m._replace(residual=np.zeros_like(m.mean))


def _piece_cuts(start: int, n_rows: int, batch_size: int | None) -> list:
    """Local row bounds of the batch pieces of ``n_rows`` rows that start at
    global row ``start``, each with its batch index."""
    if batch_size is None:
        return [(0, n_rows, 0)]
    first = (-start) % batch_size or batch_size
    cuts = [0, *range(first, n_rows, batch_size), n_rows]
    return [
        (a, b, (start + a) // batch_size)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
        if b > a
    ]


def _batch_values(batch, n_features: int, vector_size: int | None):
    """One Arrow batch as float64 values (null = NaN): a list of columns, or a
    ``(rows, vector_size)`` array in vector mode; and the number of vectors of
    the wrong size."""
    if vector_size is None:
        return [batch.column(j).to_numpy(zero_copy_only=False) for j in range(n_features)], 0
    arrays = batch.column(0)
    out = np.full((batch.num_rows, vector_size), np.nan)
    valid = ~np.asarray(arrays.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    sizes = np.asarray(arrays.value_lengths().fill_null(vector_size).to_numpy())
    wrong = int(np.count_nonzero(sizes != vector_size))
    if wrong:
        return out, wrong
    values = arrays.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    out[valid] = values.reshape(-1, vector_size)
    return out, 0


class _Blocks:
    """One partition's rows, gathered from Arrow batches into blocks of one
    batch piece each; the moments of every block, by batch index."""

    def __init__(self, n_features: int, weight: float | None):
        budget = (1 << 21) // max(n_features, 1)  # 16 MiB of float64 at most
        self.capacity = max(_stats.BLOCK_ROWS, min(_GATHER_ROWS, budget))
        self.buffer = np.empty((self.capacity, n_features), order="F")
        self.filled = 0
        self.index = None
        self.weight = weight
        self.pieces: dict = {}  # batch index -> list of Moments
        self.infinite = np.zeros(n_features, dtype=bool)

    def add(self, values, a: int, b: int, index: int) -> None:
        """Rows ``a:b`` of ``values`` (columns or an array), of batch ``index``."""
        if self.filled and index != self.index:
            self.flush()
        self.index = index
        while a < b:
            m = min(b - a, self.capacity - self.filled)
            block = self.buffer[self.filled : self.filled + m]
            if isinstance(values, np.ndarray):
                block[:] = values[a : a + m]
            else:
                for j, column in enumerate(values):
                    block[:, j] = column[a : a + m]
            self.filled += m
            a += m
            if self.filled == self.capacity:
                self.flush()

    def flush(self) -> None:
        if not self.filled:
            return
        x = self.buffer[: self.filled]
        self.filled = 0
        w = None if self.weight is None else np.full(x.shape[0], self.weight)
        try:
            m = _stats.dense_moments(x, w, n_jobs=1)
        except InfiniteValueError:
            self.infinite |= np.isinf(x).any(axis=0)
            return
        self.pieces.setdefault(self.index, []).append(_carried(m))


def _partition_task(
    *,
    n_features: int,
    offsets: dict | None,
    batch_size: int | None,
    weight: float | None,
    vector_size: int | None,
):
    """The ``mapInArrow`` function: moments of one partition's batch pieces."""

    def run(batches):
        from pyspark import TaskContext

        partition = TaskContext.get().partitionId()
        start = 0 if offsets is None else offsets.get(partition, 0)
        blocks = _Blocks(n_features, weight)
        size_error = 0
        rows = 0
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            values, wrong = _batch_values(batch, n_features, vector_size)
            size_error += wrong
            if not wrong:
                for a, b, index in _piece_cuts(start + rows, n, batch_size):
                    blocks.add(values, a, b, index)
            rows += n
        blocks.flush()
        merged = {k: _stats.reduce_moments(v) for k, v in blocks.pieces.items()}
        out: dict = {name: [] for name in _RESULT_FIELDS}
        for index, stats in sorted(merged.items()) or [(-1, None)]:
            out["partition"].append(partition)
            out["rows"].append(rows)
            out["piece"].append(index)
            out["size_error"].append(size_error)
            out["infinite"].append(np.flatnonzero(blocks.infinite).tolist())
            out["any_weight"].append(weight is None or (weight > 0 and rows > 0))
            for key in ("weight", "mean", "residual", "var"):
                out[key].append(None if stats is None else getattr(stats, key).tolist())
        yield pa.RecordBatch.from_pydict(out)

    return run


def _row_counts(frame: DataFrame) -> dict:
    """The number of rows of every non-empty partition of ``frame``, in
    partition order (a JVM-only count, one pass over the data)."""
    counts = frame.select(F.spark_partition_id().alias("p")).groupBy("p").count().collect()
    return dict(sorted((int(r["p"]), int(r["count"])) for r in counts))


def _offsets(counts: dict) -> dict:
    """The global index of the first row of every partition."""
    offsets, total = {}, 0
    for partition, count in counts.items():
        offsets[partition] = total
        total += count
    return offsets


def _scalar_weight(sample_weight: Any) -> float | None:
    """``sample_weight`` for a Spark DataFrame: None or one number for every row."""
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight) and not isinstance(sample_weight, (str, bytes)):
        w = float(sample_weight)
        if not np.isfinite(w) or w < 0:
            raise ValueError(
                f"sample_weight={sample_weight!r}: a frequency weight must be a finite "
                "number >= 0."
            )
        return w
    raise TypeError(
        "sample_weight for a Spark DataFrame may be None or one number for every row; "
        f"got a {type(sample_weight).__name__}. Per-row weights are not supported "
        "on Spark: repeat rows instead, or fit in memory."
    )


def _frame_moments(
    frame: DataFrame,
    labels: list,
    *,
    weight: float | None,
    batch_size: int | None,
    vector_size: int | None = None,
) -> Batches:
    """The engine: moments of each batch of ``frame`` (double columns, or one
    array<double> column in vector mode), computed on the executors."""
    n_features = len(labels) if vector_size is None else vector_size
    counts = None if batch_size is None else _row_counts(frame)
    offsets = None if counts is None else _offsets(counts)
    task = _partition_task(
        n_features=n_features,
        offsets=offsets,
        batch_size=batch_size,
        weight=weight,
        vector_size=vector_size,
    )
    with warnings.catch_warnings():  # pyspark's notice about new pandas releases
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        results = frame.mapInArrow(task, _RESULT_SCHEMA).collect()
    results.sort(key=lambda r: (r["partition"], r["piece"]))
    wrong = sum({r["partition"]: r["size_error"] for r in results}.values())
    if wrong:
        raise ValueError(
            f"Column {labels[0]!r} holds {wrong} vector(s) whose size is not "
            f"{vector_size}, the number of features: every vector must have the same size."
        )
    infinite = sorted({j for r in results for j in r["infinite"]})
    if infinite:
        raise InfiniteValueError(infinite)
    rows = {r["partition"]: r["rows"] for r in results}
    if counts is not None:
        if {p: n for p, n in rows.items() if n} != counts:
            raise ValueError(
                "The rows of this Spark DataFrame changed between two passes over "
                "it (its partitions are not deterministic), so batch_size cannot "
                "cut them in order: cache or checkpoint it first (df.cache())."
            )
    n_rows = int(sum(rows.values()))
    any_weight = any(r["any_weight"] for r in results)
    grouped: dict = {}
    for r in results:
        if r["piece"] >= 0:
            fields = (
                np.asarray(r[k], dtype=np.float64) for k in ("weight", "mean", "var", "residual")
            )
            grouped.setdefault(r["piece"], []).append(_stats.Moments(*fields))
    moments = [_stats.reduce_moments(grouped[index]) for index in sorted(grouped)]
    if moments and weight != 0:
        _check_present(np.sum([m.weight for m in moments], axis=0), labels, vector_size)
    return Batches(moments, any_weight, n_rows)


def _check_present(total: np.ndarray, labels: list, vector_size: int | None = None) -> None:
    """Refuse the columns that hold no value at all."""
    empty = [labels[j] if vector_size is None else j for j in np.flatnonzero(total == 0)]
    if empty:
        raise ValueError(
            f"Column(s) {empty} hold no value (every row is null or NaN): there is "
            "nothing to learn for them. Drop them, or fit on df.select(...) of the "
            "columns that hold values."
        )


#: Rows of one chunk of the SQL path (per partition, in order).
_CHUNK_SHIFT = 16

#: The SQL path's moments are trusted where ``mean^2 <= 2^12 var`` (the
#: chunk means, plain sums divided by counts, then cost the variance a few
#: hundred eps at most); elsewhere the column goes through the Arrow path.
_TRUSTED_OFFSET2 = float(2**12)


def _sql_moments(X: Any, fields: list) -> Batches:
    """All of ``X`` as one batch, from Spark SQL aggregates where they are exact
    enough, the Arrow path for the other columns.

    Every chunk of ``2^16`` consecutive rows of a partition gives, per column,
    the count, sum and ``var_pop`` (Welford's centred update) of its present
    values, all on the JVM; the driver turns them into moments and merges
    them in order with :func:`skbn._stats.merge_moments`.  A chunk mean is a
    sum divided by a count, so it is trusted only where the column's offset
    is small against its spread (``mean^2 <= 2^12 var``); columns that fail
    that in some chunk, are constant in one (so that they keep their exact
    value and variance 0), hold NaN or +/-inf, or overflow are computed by
    the Arrow path.
    """
    k = len(fields)
    chunk = F.shiftright(F.monotonically_increasing_id(), _CHUNK_SHIFT).alias("_chunk")
    # (NaN makes a chunk's sum NaN: such columns go the Arrow way, where NaN
    # is a missing value; turning NaN into null here made the query 2x slower)
    frame = X.select(
        chunk, *[_col(f.name).cast("double").alias(f"_{j}") for j, f in enumerate(fields)]
    )
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for j in range(k):
        c = F.col(f"_{j}")
        # (a few more per column and Spark stops compiling the aggregation)
        aggregates += [F.count(c), F.sum(c), F.var_pop(c)]
    rows = sorted(frame.groupBy("_chunk").agg(*aggregates).collect(), key=lambda r: r[0])
    n_rows = int(sum(r[1] for r in rows))
    if n_rows == 0:
        return Batches([], True, 0)
    stats = np.array([[np.nan if v is None else float(v) for v in r[2:]] for r in rows])
    count, total, var = (stats[:, i::3] for i in range(3))
    present = count > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean = total / count
        trusted = ~present | (
            np.isfinite(mean)
            & np.isfinite(var)
            & ((var > 0) | (count == 1))  # (a constant chunk keeps its exact value)
            & (mean * mean <= _TRUSTED_OFFSET2 * var)
        )
    trusted = trusted.all(axis=0)
    mean = np.where(present, mean, 0.0)
    var = np.where(present, var, 0.0)
    parts = [_stats.Moments(count[i], mean[i], var[i], np.zeros(k)) for i in range(len(rows))]
    merged = _stats.reduce_moments(parts)
    weight, mean, var, residual = (a.copy() for a in merged)
    if not trusted.all():
        redo = np.flatnonzero(~trusted)
        names = [fields[j].name for j in redo]
        frame = X.select(*[_col(n).cast("double").alias(f"_{i}") for i, n in enumerate(names)])
        try:
            exact = _frame_moments(frame, names, weight=None, batch_size=None).moments[0]
        except InfiniteValueError as exc:
            raise InfiniteValueError(redo[exc.columns]) from None
        weight[redo], mean[redo], var[redo] = exact.weight, exact.mean, exact.var
        residual[redo] = 0.0 if exact.residual is None else exact.residual
    _check_present(weight, [f.name for f in fields])
    return Batches([_stats.Moments(weight, mean, var, residual)], True, n_rows)


def batch_moments(
    X: Any, sample_weight: Any, *, dtype: np.dtype, batch_size: int | None
) -> Batches:
    """The moments of each batch of ``X``'s numeric columns, in order.

    All of ``X`` is one batch when ``batch_size`` is None, else its
    consecutive ``batch_size``-row slices in the DataFrame's order.  Raises
    :class:`~skbn._validation.InfiniteValueError` naming every column that
    holds +/-inf, and ``ValueError`` for a column without any value.
    """
    fields = _feature_fields(X.schema)
    weight = _scalar_weight(sample_weight)
    if batch_size is None and weight is None:
        return _sql_moments(X, fields)
    frame = X.select(*[_col(f.name).cast("double").alias(f"_{j}") for j, f in enumerate(fields)])
    return _frame_moments(frame, [f.name for f in fields], weight=weight, batch_size=batch_size)


def materialize_weights(sample_weight: Any) -> np.ndarray:
    """A Spark DataFrame of one numeric column as weights for an in-memory ``X``."""
    if isinstance(sample_weight, DataFrame):
        fields = sample_weight.schema.fields
        if len(fields) == 1 and isinstance(fields[0].dataType, T.NumericType):
            column = sample_weight.select(_col(fields[0].name).cast("double"))
            return np.array([r[0] for r in column.collect()], dtype=np.float64)
        raise ValueError(
            "sample_weight as a Spark DataFrame must have exactly one numeric column; "
            f"it has {[f.name for f in fields]}."
        )
    raise TypeError(
        "sample_weight as a pyspark object must be a Spark DataFrame of one numeric "
        f"column; got a {type(sample_weight).__name__}."
    )


# -- transform: column expressions ---------------------------------------------


def _literal(value: float, spark_type: str):
    return F.lit(float(value)).cast(spark_type)


def _affine_column(c, j: int, coefficients: tuple, inverse: bool, spark_type: str):
    """``(x - shift) * factor + offset`` (or its inverse) of one column."""
    shift, factor, offset = (
        None if a is None else _literal(a[j], spark_type) for a in coefficients
    )
    if inverse:
        shift, offset = offset, shift
    out = c if shift is None else c - shift
    out = out / factor if inverse else out * factor
    return out if offset is None else out + offset


def _expression_type(dtype: np.dtype, factor: np.ndarray) -> tuple:
    """The Spark type the map is computed in, and the type of the result."""
    if np.dtype(dtype) != np.float32:
        return "double", "double"
    with np.errstate(over="ignore"):
        fits = np.isfinite(np.asarray(factor, dtype=np.float32)).all()
    return ("float" if fits else "double"), "float"


def transform(
    X: Any,
    coefficients: tuple,
    *,
    dtype: np.dtype,
    inverse: bool = False,
    feature_names: Any = None,
    materialize: bool = False,
) -> Any:
    """Lazy affine map (``transform`` or ``inverse_transform``) of a Spark DataFrame.

    Returns a DataFrame with the columns of ``X`` in the same order: the
    features mapped (double, or float when all features are float), the
    other columns as they are.  No Spark job runs.  Computing a row that
    holds +/-inf in a feature fails with the in-memory message.  With
    ``materialize`` (``set_output`` asked for an in-memory container), the
    mapped features are collected as a pandas DataFrame.
    """
    fields = _feature_fields(X.schema, feature_names)
    shift, factor, offset = (
        None if c is None else np.array(c, dtype=np.float64) for c in coefficients
    )
    work, result = _expression_type(dtype, factor)
    index = {f.name: j for j, f in enumerate(fields)}
    names = [f.name for f in fields]
    columns = []
    for field in X.schema.fields:
        j = index.get(field.name)
        if j is None:
            columns.append(_col(field.name))
            continue
        c = _col(field.name).cast(work)
        mapped = _affine_column(c, j, (shift, factor, offset), inverse, work).cast(result)
        message = str(infinite_error([j], names))
        guarded = F.when(F.abs(c) == F.lit(float("inf")), F.raise_error(F.lit(message)))
        columns.append(guarded.otherwise(mapped).alias(field.name))
    out = X.select(*columns)
    if materialize:
        return out.select(*[_col(n) for n in names]).toPandas()
    return out


# -- the Spark ML stage ----------------------------------------------------------


def _to_momentum(value: Any) -> Any:
    if value is None or value == "pooled":
        return value
    return TypeConverters.toFloat(value)


def _to_float_or_list(value: Any) -> Any:
    if TypeConverters._is_numeric(value):
        return float(value)
    return TypeConverters.toListFloat(value)


def _to_optional_int(value: Any) -> Any:
    return None if value is None else TypeConverters.toInt(value)


#: Spark ML param name -> BatchNormScaler parameter.
_PARAM_NAMES = {
    "withMean": "with_mean",
    "withStd": "with_std",
    "epsilon": "epsilon",
    "momentum": "momentum",
    "unbiased": "unbiased",
    "init": "init",
    "center": "center",
    "scale": "scale",
    "gamma": "gamma",
    "beta": "beta",
    "batchSize": "batch_size",
}


def _scaler_defaults() -> dict:
    from ._scaler import BatchNormScaler

    defaults = BatchNormScaler().get_params()
    return {name: defaults[key] for name, key in _PARAM_NAMES.items()}


class _BatchNormScalerParams(HasInputCol, HasOutputCol):
    """The parameters of :class:`~skbn.BatchNormScaler` as Spark ML params
    (camelCase), with its defaults."""

    withMean = Param(
        Params._dummy(), "withMean", "subtract the moving mean",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    withStd = Param(
        Params._dummy(), "withStd", "divide by sqrt(moving variance + epsilon)",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    epsilon = Param(
        Params._dummy(), "epsilon", "added to the moving variance (>= 0)",
        typeConverter=TypeConverters.toFloat,
    )  # fmt: skip
    momentum = Param(
        Params._dummy(), "momentum",
        "weight of the old estimate in [0, 1), None (average of the batch "
        "statistics) or 'pooled' (exact statistics of all rows)",
        typeConverter=_to_momentum,
    )  # fmt: skip
    unbiased = Param(
        Params._dummy(), "unbiased", "multiply each batch variance by m / (m - 1)",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    init = Param(
        Params._dummy(), "init", "how the moving statistics start: 'debiased' or 'keras'",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    center = Param(Params._dummy(), "center", "add beta", typeConverter=TypeConverters.toBoolean)
    scale = Param(
        Params._dummy(), "scale", "multiply by gamma", typeConverter=TypeConverters.toBoolean
    )
    gamma = Param(
        Params._dummy(), "gamma", "starting gamma: a number or one per feature",
        typeConverter=_to_float_or_list,
    )  # fmt: skip
    beta = Param(
        Params._dummy(), "beta", "starting beta: a number or one per feature",
        typeConverter=_to_float_or_list,
    )  # fmt: skip
    batchSize = Param(
        Params._dummy(), "batchSize",
        "fit in consecutive batches of this many rows (None: one batch)",
        typeConverter=_to_optional_int,
    )  # fmt: skip

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(**_scaler_defaults())

    def getWithMean(self) -> bool:
        """Gets the value of withMean or its default value."""
        return self.getOrDefault(self.withMean)

    def getWithStd(self) -> bool:
        """Gets the value of withStd or its default value."""
        return self.getOrDefault(self.withStd)

    def getEpsilon(self) -> float:
        """Gets the value of epsilon or its default value."""
        return self.getOrDefault(self.epsilon)

    def getMomentum(self) -> Any:
        """Gets the value of momentum or its default value."""
        return self.getOrDefault(self.momentum)

    def getUnbiased(self) -> bool:
        """Gets the value of unbiased or its default value."""
        return self.getOrDefault(self.unbiased)

    def getInit(self) -> str:
        """Gets the value of init or its default value."""
        return self.getOrDefault(self.init)

    def getCenter(self) -> bool:
        """Gets the value of center or its default value."""
        return self.getOrDefault(self.center)

    def getScale(self) -> bool:
        """Gets the value of scale or its default value."""
        return self.getOrDefault(self.scale)

    def getGamma(self) -> Any:
        """Gets the value of gamma or its default value."""
        return self.getOrDefault(self.gamma)

    def getBeta(self) -> Any:
        """Gets the value of beta or its default value."""
        return self.getOrDefault(self.beta)

    def getBatchSize(self) -> Any:
        """Gets the value of batchSize or its default value."""
        return self.getOrDefault(self.batchSize)

    def _scaler_params(self) -> dict:
        """The BatchNormScaler parameters these params stand for."""
        return {key: self.getOrDefault(name) for name, key in _PARAM_NAMES.items()}

    def _vector_size_hint(self, dataset: DataFrame) -> int | None:
        """The size of the input vectors recorded in the column's ML metadata."""
        attrs = dataset.schema[self.getInputCol()].metadata.get("ml_attr", {})
        size = attrs.get("num_attrs")
        return None if size is None else int(size)

    def _input_array(self, dataset: DataFrame):
        """The input column as array<double>, refused unless it holds vectors."""
        from pyspark.ml.functions import vector_to_array
        from pyspark.ml.linalg import VectorUDT

        name = self.getInputCol()
        if name not in dataset.columns:
            raise ValueError(
                f"Input column {name!r} is not in the DataFrame (columns: {dataset.columns})."
            )
        data_type = dataset.schema[name].dataType
        if isinstance(data_type, VectorUDT):  # (vector_to_array refuses null)
            return F.when(_col(name).isNotNull(), vector_to_array(_col(name), "float64"))
        if isinstance(data_type, T.ArrayType) and isinstance(data_type.elementType, T.NumericType):
            return _col(name).cast("array<double>")
        raise TypeError(
            f"Input column {name!r} must hold vectors (pyspark.ml.linalg.Vector) or "
            f"arrays of numbers; it is {data_type.simpleString()}. Assemble the "
            "features first, e.g. with VectorAssembler."
        )


class _SetterMixin:
    def setInputCol(self, value: str):
        """Sets the value of :py:attr:`inputCol`."""
        return self._set(inputCol=value)

    def setOutputCol(self, value: str):
        """Sets the value of :py:attr:`outputCol`."""
        return self._set(outputCol=value)

    def setWithMean(self, value: bool):
        """Sets the value of :py:attr:`withMean`."""
        return self._set(withMean=value)

    def setWithStd(self, value: bool):
        """Sets the value of :py:attr:`withStd`."""
        return self._set(withStd=value)

    def setEpsilon(self, value: float):
        """Sets the value of :py:attr:`epsilon`."""
        return self._set(epsilon=value)

    def setCenter(self, value: bool):
        """Sets the value of :py:attr:`center`."""
        return self._set(center=value)

    def setScale(self, value: bool):
        """Sets the value of :py:attr:`scale`."""
        return self._set(scale=value)


class BatchNormScalerSpark(
    _SetterMixin,
    Estimator,
    _BatchNormScalerParams,
    DefaultParamsReadable,
    DefaultParamsWritable,
):
    """:class:`~skbn.BatchNormScaler` as a Spark ML ``Estimator`` on a vector column.

    Behaves like Spark ML's ``StandardScaler`` (``inputCol``/``outputCol``,
    vectors in, dense vectors out) with the moving statistics of
    ``BatchNormScaler``, whose parameters are its params in camelCase, with
    its defaults (``withMean=True``, ``epsilon=1e-3``, ``momentum=0.99``,
    ...).  Dense and sparse vectors may be mixed; a null vector is missing
    and stays null.  ``fit`` runs on the executors (the engine of
    ``BatchNormScaler.fit`` on a Spark DataFrame) and returns a
    :class:`BatchNormScalerSparkModel`.

    Example (``spark`` a SparkSession)::

        from pyspark.ml.linalg import Vectors
        df = spark.createDataFrame([(Vectors.dense([0.0]),), (Vectors.dense([2.0]),)], ["a"])
        model = BatchNormScalerSpark(inputCol="a", outputCol="scaled", epsilon=0.0).fit(df)
        model.mean, model.variance            # (DenseVector([1.0]), DenseVector([1.0]))
        model.transform(df).collect()[1].scaled  # DenseVector([1.0])
    """

    _input_kwargs: dict

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str | None = None,
        outputCol: str | None = None,
        withMean: bool = True,
        withStd: bool = True,
        epsilon: float = 1e-3,
        momentum: Any = 0.99,
        unbiased: bool = False,
        init: str = "debiased",
        center: bool = True,
        scale: bool = True,
        gamma: Any = 1.0,
        beta: Any = 0.0,
        batchSize: int | None = None,
    ):
        super().__init__()
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, **params: Any) -> BatchNormScalerSpark:
        """Sets the params given (the names of the constructor's arguments)."""
        unknown = sorted(set(params) - {p.name for p in self.params})
        if unknown:
            raise TypeError(f"setParams() got unexpected keyword argument(s) {unknown}")
        return self._set(**params)

    def setMomentum(self, value: Any) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`momentum`."""
        return self._set(momentum=value)

    def setUnbiased(self, value: bool) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`unbiased`."""
        return self._set(unbiased=value)

    def setInit(self, value: str) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`init`."""
        return self._set(init=value)

    def setGamma(self, value: Any) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`gamma`."""
        return self._set(gamma=value)

    def setBeta(self, value: Any) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`beta`."""
        return self._set(beta=value)

    def setBatchSize(self, value: int | None) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`batchSize`."""
        return self._set(batchSize=value)

    def _fit(self, dataset: DataFrame) -> BatchNormScalerSparkModel:
        from ._scaler import BatchNormScaler

        scaler = BatchNormScaler(**self._scaler_params())
        scaler._check_params()  # bad values refused before any Spark job
        name = self.getInputCol()
        values = self._input_array(dataset)
        size = self._vector_size_hint(dataset)
        if size is None:
            first = dataset.select(F.size(values)).where(values.isNotNull()).first()
            if first is None:
                raise ValueError(
                    f"Input column {name!r} holds no vector (the DataFrame is empty or "
                    "every vector is null): there is nothing to fit."
                )
            size = int(first[0])
        if size < 1:
            raise ValueError(f"The vectors of column {name!r} are empty (size 0).")
        batches = _frame_moments(
            dataset.select(values.alias("v")),
            [name],
            weight=None,
            batch_size=scaler.batch_size,
            vector_size=size,
        )
        if batches.n_rows == 0 or not batches.moments:
            raise ValueError(
                f"Found 0 sample(s) in column {name!r} while a minimum of 1 is "
                "required: there is nothing to fit."
            )
        scaler._fit_moments(batches.moments, n_features=size)
        model = BatchNormScalerSparkModel()
        model._resetUid(self.uid)
        model._scaler = scaler
        return self._copyValues(model)


class BatchNormScalerSparkModel(
    _SetterMixin, Model, _BatchNormScalerParams, MLReadable, MLWritable
):
    """The fitted :class:`BatchNormScalerSpark`: scales ``inputCol`` into ``outputCol``.

    ``transform`` is lazy (column expressions, no Spark job); null vectors
    stay null, a vector of the wrong size fails (at once when the column's
    metadata gives its size, else when the row is computed).  ``withMean``,
    ``withStd``, ``epsilon``, ``center`` and ``scale`` may be changed on the
    model; they apply to later transforms.  Saved and loaded with its fitted
    statistics (``save``/``load``, also inside a ``Pipeline``).
    """

    def __init__(self):
        super().__init__()
        self._scaler = None

    @property
    def scaler(self):
        """The fitted :class:`~skbn.BatchNormScaler` (its own parameters)."""
        return self._scaler

    def _fitted(self):
        if self._scaler is None:
            raise ValueError("This BatchNormScalerSparkModel holds no fitted scaler.")
        current = copy.copy(self._scaler)
        keys = ("with_mean", "with_std", "epsilon", "center", "scale")
        params = self._scaler_params()
        return current.set_params(**{k: params[k] for k in keys})

    @property
    def mean(self):
        """The moving mean, as a DenseVector."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._fitted().moving_mean_)

    @property
    def variance(self):
        """The moving variance, as a DenseVector."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._fitted().moving_var_)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from pyspark.ml.functions import array_to_vector

        scaler = self._fitted()
        name = self.getInputCol()
        values = self._input_array(dataset)
        n = scaler.n_features_in_
        size = self._vector_size_hint(dataset)
        if size is not None and size != n:
            raise ValueError(
                f"Column {name!r} holds vectors of size {size}, but the model was fitted "
                f"on {n} features."
            )
        shift, factor, offset = scaler._coefficients()
        coefficients = [
            None if c is None else F.array(*[F.lit(float(v)) for v in c])
            for c in (shift, factor, offset)
        ]
        infinite = str(infinite_error([0], None, type(scaler).__name__)).replace(
            "feature(s) [0]", f"column {name!r}"
        )

        def one(x, i):
            s, f, o = (None if c is None else c[i] for c in coefficients)
            y = x if s is None else x - s
            y = y * f
            y = y if o is None else y + o
            return F.when(
                F.abs(x) == F.lit(float("inf")), F.raise_error(F.lit(infinite))
            ).otherwise(y)

        wrong = (
            f"Column {name!r} holds a vector whose size is not {n}, the number of "
            "features the model was fitted on."
        )
        mapped = (
            F.when(values.isNull(), F.lit(None))
            .when(F.size(values) != n, F.raise_error(F.lit(wrong)))
            .otherwise(F.transform(values, one))
        )
        vector = F.when(values.isNull(), F.lit(None)).otherwise(array_to_vector(mapped))
        return dataset.withColumn(self.getOutputCol(), vector)

    def write(self) -> MLWriter:
        """A writer that saves the params and the fitted statistics."""
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        """A reader that loads a saved model."""
        return _ModelReader(cls)


# -- saving the model: DefaultParams metadata with the fitted statistics -------


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
        return np.array(value["ndarray"], dtype=np.dtype(value["dtype"]))
    return value


class _ModelWriter(MLWriter):
    def __init__(self, instance: BatchNormScalerSparkModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        state = self.instance._scaler.__getstate__()
        extra = {"skbnScaler": {k: _to_json(v) for k, v in state.items()}}
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extra)


class _ModelReader(MLReader):
    def __init__(self, cls: type):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> BatchNormScalerSparkModel:
        from ._scaler import BatchNormScaler

        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        scaler = BatchNormScaler.__new__(BatchNormScaler)
        scaler.__setstate__({k: _from_json(v) for k, v in metadata["skbnScaler"].items()})
        instance._scaler = scaler
        return instance
