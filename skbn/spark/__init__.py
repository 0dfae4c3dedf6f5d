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

The pieces
----------
``_schema``
    Which columns are the features; :func:`describe`, :func:`is_collection`.
``_fit``
    :func:`batch_moments` (the SQL aggregates, or the Arrow way) and
    :func:`materialize_weights`.
``_arrow``
    The Arrow way: per-partition moments on the executors, merged on the
    driver.
``_transform``
    :func:`transform`: the lazy column expressions.
``_params``, ``_ml``
    The Spark ML stage: its params, the ``Estimator`` and the ``Model``
    (saved and loaded with its fitted statistics).
"""

try:
    import pyarrow  # noqa: F401
    import pyspark.ml  # noqa: F401
    import pyspark.sql  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without pyspark installed
    raise ImportError(
        "Fitting or transforming Spark DataFrames with BatchNormScaler needs pyspark "
        'and pyarrow: install the extra with  pip install "skbn[spark]"'
    ) from exc

from ._fit import batch_moments, materialize_weights
from ._ml import BatchNormScalerSpark, BatchNormScalerSparkModel
from ._schema import describe, is_collection
from ._transform import transform

__all__ = [
    "BatchNormScalerSpark",
    "BatchNormScalerSparkModel",
    "batch_moments",
    "describe",
    "is_collection",
    "materialize_weights",
    "transform",
]

# The public names keep the module path they always had: saved stages and
# pipelines record ``skbn.spark.BatchNormScalerSpark`` (DefaultParams
# metadata), and the reference documents them here.
for _public in (
    BatchNormScalerSpark,
    BatchNormScalerSparkModel,
    batch_moments,
    describe,
    is_collection,
    materialize_weights,
    transform,
):
    _public.__module__ = __name__
del _public
