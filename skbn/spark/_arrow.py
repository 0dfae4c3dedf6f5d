"""The Arrow way: per-partition moments on the executors, merged on the driver.

The feature columns, cast to double, stream as Arrow batches through
``mapInArrow``; on each executor :class:`_Blocks` gathers rows into blocks of
one batch piece each and computes their moments with
:func:`skbn._stats.dense_moments`.  Each partition sends back ``O(n_features)``
numbers per batch piece; :func:`_frame_moments` merges them in order on the
driver.  Also the engine of the Spark ML stage (vector mode: one
``array<double>`` column).
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import _stats
from .._collections import Batches, piece_bounds
from .._validation import InfiniteValueError

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
                for a, b, index in piece_bounds(start + rows, n, batch_size):
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
