"""``batch_moments`` and ``materialize_weights``: the fit's entry points.

One batch without weights is aggregated by Spark SQL on the JVM
(:func:`_sql_moments`), the columns whose chunk means are not trusted going
the Arrow way (:mod:`skbn.spark._arrow`), as does everything with
``batch_size`` or a weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .. import _stats
from .._collections import Batches
from .._validation import InfiniteValueError
from ._arrow import _check_present, _frame_moments
from ._schema import _col, _feature_fields

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
