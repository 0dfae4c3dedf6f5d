"""Fit and transform dask arrays and DataFrames (see docs/dask.md).

:class:`~skbn.BatchNormScaler` hands a dask collection to this module; dask is
imported here and nowhere else.

Where the work happens
----------------------
``fit`` and ``partial_fit``
    Every block (a chunk of a dask array, a partition of a dask DataFrame) is
    turned into per-feature moments (weight, mean, biased variance) *on the
    workers*, by the same function the in-memory path uses
    (:func:`skbn._stats.dense_moments`), fused with the task that produces the
    block (reading, generating), so the block never leaves its worker.  The
    same pass finds the columns holding +/-inf and checks the weights.  Only
    the moments, ``O(n_features)`` numbers per block and batch piece, reach
    the client, which merges them exactly with the pairwise update of Chan,
    Golub and LeVeque, in block order (means far from 0 are carried with
    their rounding residual, see :func:`_mean_residual`), and applies them
    with ``BatchNormScaler._apply_moments``.  Everything is computed before
    the first statistic changes, and the estimator's state is restored if
    anything raises.

    * ``partial_fit(X)`` and ``fit(X)`` with ``batch_size=None``: all of ``X``
      is one batch.
    * ``fit(X)`` with ``batch_size=k``: the batches are the consecutive k-row
      slices of ``X``, exactly as in memory, whatever the block structure.
      Each block computes the moments of the pieces of the slices it holds; a
      slice that crosses block boundaries is merged from its pieces.  This
      needs the number of rows of every block: unknown chunk sizes (and
      DataFrame partition lengths) are computed first, which is one extra
      pass over the data.

``transform`` and ``inverse_transform``
    Lazy: they return a dask collection of the same kind (an array with the
    same chunks, a DataFrame with the same columns and index) whose blocks are
    mapped by the in-memory kernel (:func:`skbn._affine.affine`) when, and
    only when, the result is computed.  The coefficients are copied when the
    method is called, so fitting further does not change a result already
    returned.  +/-inf raises the in-memory ``ValueError`` when the block that
    holds it is computed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - only without dask installed
    raise ImportError(
        "Fitting or transforming dask collections with BatchNormScaler needs dask: "
        'install the extra with  pip install "skbn[dask]"'
    ) from exc

from . import _stats
from ._affine import affine
from ._collections import Batches, float64_coefficients, piece_bounds
from ._validation import InfiniteValueError, check_sample_weight, infinite_error

__all__ = ["batch_moments", "describe", "is_collection", "materialize_weights", "transform"]


# -- recognising and validating collections ------------------------------------


def _is_frame(X: Any) -> bool:
    """A dask DataFrame (not a Series), recognised without importing pandas."""
    if not type(X).__module__.startswith("dask.dataframe"):
        return False
    import dask.dataframe as dd

    return isinstance(X, dd.DataFrame)


def _is_series(X: Any) -> bool:
    """A dask Series."""
    if not type(X).__module__.startswith("dask.dataframe"):
        return False
    import dask.dataframe as dd

    return isinstance(X, dd.Series)


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype X is read in: float32 stays float32, other numbers become float64."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return np.dtype(np.float32)
    if dtype.kind in "biufO":  # object: converted on the workers, as numpy would
        return np.dtype(np.float64)
    if dtype.kind == "c":
        raise ValueError(
            "Complex data not supported: BatchNormScaler needs real numbers. Take "
            "the real part, the modulus or both as separate features."
        )
    raise ValueError(
        f"Cannot scale a dask array of dtype {dtype}: BatchNormScaler needs numeric "
        "data. Convert it with X.astype(np.float64), or encode non-numeric features "
        "first (e.g. with OneHotEncoder)."
    )


def _frame_dtype(meta: Any) -> np.dtype:
    """The dtype of a DataFrame's values, from its (empty) pandas meta."""
    import pandas as pd

    bad = [
        col
        for col, dt in meta.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))
    ]
    if bad:
        raise ValueError(
            f"dask DataFrame column(s) {[str(c) for c in bad]} are not numeric "
            f"(dtypes {[str(meta.dtypes[c]) for c in bad]}): BatchNormScaler needs "
            "numeric data. Convert or encode them first (e.g. with OneHotEncoder)."
        )
    if any(pd.api.types.is_complex_dtype(dt) for dt in meta.dtypes):
        return _float_dtype(np.dtype(np.complex128))  # raises
    if len(meta.dtypes) and all(str(dt).lower() == "float32" for dt in meta.dtypes):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def is_collection(X: Any) -> bool:
    """Whether ``X`` is a dask collection this module maps (not only weights)."""
    return isinstance(X, da.Array) or _is_frame(X) or _is_series(X)


def describe(X: Any, feature_names: Any = None) -> Any:
    """An empty in-memory stand-in for ``X``, from metadata only.

    The estimator validates it as it validates in-memory data (feature names,
    width, dtype); nothing is computed.  A DataFrame gives its (empty pandas)
    meta, an array ``np.empty((0, n_features))`` of its dtype.
    """
    if _is_frame(X):
        return X._meta.astype(_frame_dtype(X._meta))
    if _is_series(X):
        raise ValueError(
            "Expected a 2D dask collection, got a dask Series: pass a DataFrame, "
            "e.g. X.to_frame() for a single feature."
        )
    if not isinstance(X, da.Array):
        raise TypeError(
            f"BatchNormScaler accepts dask Arrays and DataFrames; got a {type(X).__name__}. "
            "Convert it to one of those (e.g. a dask Bag with .to_dataframe())."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D dask array, got a {X.ndim}D one of shape {X.shape} "
            "instead. Reshape it with X.reshape(-1, 1) if it holds a single "
            "feature, or X.reshape(1, -1) if it holds a single sample."
        )
    meta = getattr(X, "_meta", None)
    if meta is not None and not isinstance(meta, np.ndarray):
        kind = "sparse" if "sparse" in type(meta).__module__ else type(meta).__name__
        raise TypeError(
            f"dask arrays of {kind} blocks ({type(meta).__module__}."
            f"{type(meta).__name__}) are not supported by BatchNormScaler: only "
            "dense NumPy blocks are. Densify the blocks, e.g. with "
            "X.map_blocks(lambda b: b.toarray()), or compute the array and pass "
            "the in-memory sparse matrix."
        )
    n_features = X.shape[1]
    if np.isnan(n_features):
        raise ValueError(
            "The number of columns of this dask array is unknown; call "
            "X.compute_chunk_sizes() first."
        )
    if n_features == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
            "required by BatchNormScaler."
        )
    n_rows = X.shape[0]
    if isinstance(n_rows, (int, np.integer)) and n_rows == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
            "required by BatchNormScaler."
        )
    return np.empty((0, n_features), dtype=_float_dtype(X.dtype))


# -- X and sample_weight as aligned dask arrays ------------------------------------


def _as_array(X: Any, dtype: np.dtype, lengths: list | None = None) -> da.Array:
    """``X`` as a 2-D dask array of ``dtype``-convertible blocks.

    A DataFrame becomes an array with one block per partition (columns cast
    to ``dtype`` first, so nullable pandas dtypes give NaN for missing values),
    with known chunk sizes when ``lengths`` is given.
    """
    if _is_frame(X):
        return X.astype(dtype).to_dask_array(lengths=lengths)
    return X


def _known(chunks: tuple) -> bool:
    """Whether every size in ``chunks`` is known (dask writes NaN otherwise)."""
    return not any(np.isnan(c) for c in chunks)


def _with_row_counts(X: Any, Xa: da.Array, dtype: np.dtype) -> da.Array:
    """``Xa`` with the number of rows of every block known: computed where
    unknown (``len`` of each block, ``O(n_blocks)`` integers to the client;
    it reads the data once)."""
    if _known(Xa.chunks[0]):
        return Xa
    if _is_frame(X):
        lengths = [int(n) for n in X.map_partitions(len).compute()]
        return _as_array(X, dtype, lengths)
    return Xa.copy().compute_chunk_sizes()  # (a copy: the user's array is left alone)


def _weight_array(
    sample_weight: Any, X: Any, Xa: da.Array, dtype: np.dtype
) -> tuple[da.Array | float | None, da.Array]:
    """``sample_weight`` as a 1-d dask array whose blocks line up with the row
    blocks of ``Xa`` (or a float, or None), and ``Xa`` (with its row counts
    if they had to be computed to line the two up)."""
    if sample_weight is None:
        return None, Xa
    if np.isscalar(sample_weight) and not isinstance(sample_weight, (str, bytes)):
        w = check_sample_weight(sample_weight, 1)  # the in-memory checks and errors
        return float(w[0]), Xa
    if _is_series(sample_weight):
        sample_weight = sample_weight.to_dask_array()
    if not is_collection(sample_weight):
        # In memory: checked here as in memory, then cut into X's row blocks.
        Xa = _with_row_counts(X, Xa, dtype)
        w = check_sample_weight(sample_weight, Xa.shape[0])
        return da.from_array(w, chunks=(Xa.chunks[0],)), Xa
    if not isinstance(sample_weight, da.Array):
        raise TypeError(
            "sample_weight must be a 1-d array of non-negative numbers (a NumPy or dask "
            f"array, or a dask Series); got a {type(sample_weight).__name__}."
        )
    if sample_weight.ndim != 1:
        raise ValueError(
            f"sample_weight has shape {sample_weight.shape}: pass a 1-d array, one "
            "weight per row of X."
        )
    w_rows, x_rows = sample_weight.chunks[0], Xa.chunks[0]
    if len(w_rows) == len(x_rows) and not (_known(w_rows) and _known(x_rows)):
        # The same number of blocks, sizes unknown on one side or both: lined
        # up block by block (each block checks its length on the worker).
        return _with_row_chunks(sample_weight, x_rows), Xa
    Xa = _with_row_counts(X, Xa, dtype)
    if not _known(w_rows):
        sample_weight = sample_weight.copy().compute_chunk_sizes()
    n_rows = Xa.shape[0]
    if sample_weight.shape[0] != n_rows:
        raise ValueError(
            f"sample_weight has shape {sample_weight.shape}, but X has {n_rows} samples: "
            f"pass a 1-d array of shape ({n_rows},), one weight per row of X."
        )
    if sample_weight.chunks[0] != Xa.chunks[0]:
        sample_weight = sample_weight.rechunk((Xa.chunks[0],))
    return sample_weight, Xa


def _with_row_chunks(x: da.Array, rows: tuple) -> da.Array:
    """The same array, its row chunk sizes taken to be ``rows`` (known or not),
    so that it lines up block by block with an array of those chunks; the
    blocks check the actual sizes when computed."""
    return da.Array(x.dask, x.name, (tuple(rows), *x.chunks[1:]), meta=x._meta)


# -- per-block moments, on the workers ------------------------------------------


class _BlockMoments(NamedTuple):
    """What one block sends back: a few numbers per feature and batch piece."""

    n_rows: int
    any_weight: bool  # some weight > 0 (True without weights)
    infinite: np.ndarray  # the (global) indices of the columns holding +/-inf
    # (4, n_pieces, n_columns): weight, mean, mean residual, var of each piece
    stats: np.ndarray


#: A mean is carried with its rounding residual where ``mean^2 > 2^20 var``:
#: there, rounding it to float64 (an error of ``|mean| eps / 2``) would cost
#: the merged variance more than about ``2^10 eps`` of its relative accuracy.
_LARGE_OFFSET2 = float(2**20)


def _mean_residual(x: np.ndarray, w: np.ndarray | None, m: _stats.Moments) -> np.ndarray:
    """``sum w (x - mean) / weight``: what rounding lost of each large mean.

    The in-memory path rounds a batch's mean once; here every block's mean
    is rounded, and a merge subtracts them.  For data far from 0 relative to
    its spread (``1e9 + N(0, 1)``) those roundings would dominate the merged
    variance, so such columns also send the residual, computed in a second
    pass over those columns only (``x - mean`` is exact there, the values
    being within a factor 2 of the mean), and the client merges the means as
    ``mean + residual`` around a common shift.  Elsewhere it is 0.
    """
    residual = np.zeros(m.mean.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        large = (m.weight > 0) & (m.mean * m.mean > _LARGE_OFFSET2 * m.var)
    if not large.any():
        return residual
    columns = np.flatnonzero(large)
    d = x[:, columns].astype(np.float64) - m.mean[columns]
    d[np.isnan(d)] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        lost = (d.sum(axis=0) if w is None else w @ d) / m.weight[columns]
    residual[columns] = np.where(np.isfinite(lost), lost, 0.0)
    return residual


def _merge_pieces(parts: list) -> _stats.Moments:
    """Merge, in order, the ``(weight, mean, residual, var)`` rows of ``parts``.

    Every mean is first taken relative to a common shift ``K`` (the first
    piece's mean), as ``(mean - K) + residual``: ``mean - K`` is exact for
    nearby means, so the small shifted means keep the residuals and the
    exact pairwise merge (:func:`skbn._stats.merge_moments`) loses nothing to
    the offset.  Where shifting overflows, the plain means are merged.
    """
    weight, mean, residual, var = np.stack(parts, axis=1)  # each (n_parts, n_features)
    present = weight > 0
    first = np.argmax(present, axis=0)
    cols = np.arange(weight.shape[1])
    # Always around the first piece's mean: even when no piece left a
    # residual, the differences of nearby means are exact, the means not.
    shift = np.where(present.any(axis=0), mean[first, cols], 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = (mean - shift) + residual
    wide = ~np.isfinite(np.where(present, shifted, 0.0)).all(axis=0)
    shift[wide] = 0.0  # shifting overflowed: merge the plain means there
    shifted[:, wide] = mean[:, wide]
    shifted[~present] = 0.0
    total = _stats.reduce_moments(
        [_stats.Moments(weight[k], shifted[k], var[k]) for k in range(len(parts))]
    )
    return total._replace(mean=np.where(total.weight > 0, shift + total.mean, 0.0))


def _moments_block(
    block: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    scalar_weight: float | None,
    batch_size: int | None,
    value_dtype: np.dtype,
    block_info: dict | None = None,
) -> _BlockMoments:
    """Moments of the batch pieces of one block (``map_blocks``, on a worker).

    Runs fused with whatever produces the block (reading, generating), so the
    block never leaves the worker.  Raises the in-memory path's errors for
    NaN, infinite or negative weights; reports the columns holding +/-inf
    (the client raises the in-memory error for all of them).
    """
    (row_start, _), (col_start, _) = block_info[0]["array-location"]
    index = block_info[0]["chunk-location"][0]
    x = np.asarray(block, dtype=value_dtype)
    n_rows = x.shape[0]
    if weight is not None:
        weight = np.asarray(weight)
        if weight.shape[0] != n_rows:
            raise ValueError(
                f"sample_weight's block {index} has {weight.shape[0]} rows, but X's "
                f"block {index} has {n_rows}: give sample_weight the same row chunks "
                "(or partitions) as X, or known chunk sizes so it can be rechunked."
            )
        w = check_sample_weight(weight.reshape(-1), n_rows)
    elif scalar_weight is not None:
        w = np.full(n_rows, scalar_weight)
    else:
        w = None
    # (row_start is NaN for unknown chunk sizes, which only batch_size=None allows)
    start = 0 if batch_size is None else int(row_start)
    pieces = piece_bounds(start, n_rows, batch_size)
    stats = np.zeros((4, len(pieces), x.shape[1]))
    any_weight = True if w is None else bool(w.any())
    try:
        for k, (a, b, _) in enumerate(pieces):
            if b == a:  # an empty block: no weight, nothing to learn
                continue
            wp = None if w is None else w[a:b]
            m = _stats.dense_moments(x[a:b], wp, n_jobs=1)
            stats[:, k] = m.weight, m.mean, _mean_residual(x[a:b], wp, m), m.var
    except InfiniteValueError:
        infinite = col_start + np.flatnonzero(np.isinf(x).any(axis=0))
        return _BlockMoments(n_rows, any_weight, infinite, stats[:, :0])
    return _BlockMoments(n_rows, any_weight, np.zeros(0, dtype=np.intp), stats)


def batch_moments(
    X: Any, sample_weight: Any, *, dtype: np.dtype, batch_size: int | None
) -> Batches:
    """The moments of each batch of ``X``, computed on the workers, in order.

    All of ``X`` is one batch when ``batch_size`` is None, else its
    consecutive ``batch_size``-row slices, exactly as in memory, whatever
    the block structure.  Raises :class:`~skbn._validation.InfiniteValueError`
    naming every column that holds +/-inf.
    """
    Xa = _as_array(X, dtype)
    if batch_size is not None:
        Xa = _with_row_counts(X, Xa, dtype)
    weight, Xa = _weight_array(sample_weight, X, Xa, dtype)
    arrays = [Xa] if not isinstance(weight, da.Array) else [Xa, weight[:, None]]
    moments = da.map_blocks(
        _moments_block,
        *arrays,
        scalar_weight=weight if isinstance(weight, float) else None,
        batch_size=batch_size,
        value_dtype=dtype,
        meta=np.empty((0, 0), dtype=object),
    )
    (results,) = dask.compute(moments.to_delayed().tolist())  # results[i][j]

    infinite = np.concatenate([part.infinite for row in results for part in row])
    if infinite.size:
        raise InfiniteValueError(np.unique(infinite))
    n_rows = sum(row[0].n_rows for row in results)
    any_weight = any(row[0].any_weight for row in results)
    # The pieces in row order, the column chunks of a row block side by side,
    # each with the batch it belongs to.
    grouped: dict = {}
    offset = 0
    for i, row in enumerate(results):
        if batch_size is not None and row[0].n_rows != Xa.chunks[0][i]:
            raise ValueError(
                f"Block {i} of X has {row[0].n_rows} rows, but its chunk sizes say "
                f"{Xa.chunks[0][i]}: fix the chunk sizes (X.compute_chunk_sizes())."
            )
        stats = np.concatenate([part.stats for part in row], axis=2)
        starts = [batch for _, _, batch in piece_bounds(offset, row[0].n_rows, batch_size)]
        offset += row[0].n_rows
        for k, batch in enumerate(starts):
            grouped.setdefault(batch, []).append(stats[:, k])
    if n_rows == 0:
        return Batches([], any_weight, 0)
    moments = [_merge_pieces(grouped[b]) for b in sorted(grouped)]
    return Batches(moments, any_weight, n_rows)


# -- the estimator's entry points -------------------------------------------------


def materialize_weights(sample_weight: Any) -> np.ndarray:
    """A dask ``sample_weight`` for an in-memory ``X``: computed (``O(n_samples)``)."""
    if _is_series(sample_weight) or isinstance(sample_weight, da.Array):
        return np.asarray(sample_weight.compute())
    raise TypeError(
        "sample_weight must be a 1-d array of non-negative numbers (a NumPy or dask "
        f"array, or a dask Series); got a {type(sample_weight).__name__}."
    )


class _AffineParams(NamedTuple):
    """Everything a block of ``transform`` needs, shipped once to each worker."""

    shift: np.ndarray | None
    factor: np.ndarray
    offset: np.ndarray | None
    inverse: bool
    dtype: np.dtype
    feature_names: Any  # for the +/-inf error message


def _affine_values(
    values: np.ndarray, params: _AffineParams, start: int, stop: int, *, in_place: bool
) -> np.ndarray:
    """The in-memory affine map of one block's columns ``start:stop``."""
    out = values if in_place else np.empty_like(values)
    if values.shape[0] == 0:
        return out
    shift, factor, offset = (
        None if c is None else c[start:stop] for c in (params.shift, params.factor, params.offset)
    )
    try:
        return affine(
            values, out, shift, factor, offset,
            inverse=params.inverse, check_finite=True, n_jobs=1,
        )  # fmt: skip
    except InfiniteValueError as exc:
        raise infinite_error(start + exc.columns, params.feature_names) from None


def _affine_block(block: np.ndarray, params: _AffineParams, block_info: Any = None) -> np.ndarray:
    """``map_blocks`` function: the affine map of one array block."""
    start, stop = block_info[0]["array-location"][1]
    values = np.ascontiguousarray(block, dtype=params.dtype)
    fresh = not np.may_share_memory(values, block)
    return _affine_values(values, params, start, stop, in_place=fresh)


def _affine_partition(part: Any, params: _AffineParams) -> Any:
    """``map_partitions`` function: the affine map of one pandas partition."""
    values = part.to_numpy(dtype=params.dtype, na_value=np.nan, copy=True)
    values = np.ascontiguousarray(values)
    out = _affine_values(values, params, 0, values.shape[1], in_place=True)
    return type(part)(out, index=part.index, columns=part.columns)


def transform(
    X: Any,
    coefficients: tuple,
    *,
    dtype: np.dtype,
    inverse: bool = False,
    feature_names: Any = None,
    materialize: bool = False,
) -> Any:
    """Lazy affine map (``transform`` or ``inverse_transform``) of a dask collection.

    Parameters
    ----------
    X : dask Array or DataFrame of shape (n_samples, n_features)
        Data to map; nothing of it is computed here.
    coefficients : tuple
        ``(shift, factor, offset)`` of the map (``None`` leaves a term out),
        copied now: fitting further does not change the result.
    dtype : numpy dtype
        The float dtype the values are read and written in.
    inverse : bool, default=False
        Apply the inverse map.
    feature_names : array-like or None
        For the +/-inf error message.
    materialize : bool, default=False
        Compute the result (``set_output`` asked for an in-memory container).

    Returns
    -------
    X_out : dask Array or DataFrame
        A dask array with the chunks of ``X``, or a dask DataFrame with the
        columns and index of ``X``.  Computing it raises the in-memory
        ``ValueError`` for +/-inf.
    """
    shift, factor, offset = float64_coefficients(coefficients)
    params = _AffineParams(
        shift,
        factor,
        offset,
        bool(inverse),
        np.dtype(dtype),
        None if feature_names is None else list(feature_names),
    )
    shared = dask.delayed(params, pure=True)  # one copy, not one per block
    if _is_frame(X):
        import pandas as pd

        meta = pd.DataFrame(
            np.empty((0, X._meta.shape[1]), dtype=dtype),
            index=X._meta.index,
            columns=X._meta.columns,
        )
        out = X.map_partitions(_affine_partition, shared, meta=meta)
    else:
        out = X.map_blocks(_affine_block, shared, dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
    return out.compute() if materialize else out
