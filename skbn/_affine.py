"""The per-feature affine map of ``transform`` and its inverse, block by block."""

from __future__ import annotations

import math

import numpy as np

from ._blocks import map_blocks, row_blocks, threads_for
from ._validation import InfiniteValueError, infinite_columns

try:
    from ._kernels import affine_map as _affine_map
except ImportError:  # installed without a C compiler: NumPy does the same work
    _affine_map = None

__all__ = [
    "affine",
    "compiled_plain_affine",
    "divisor",
    "guarded",
    "plain_affine",
    "plain_coefficients",
    "scale_columns_sparse",
    "tiled",
    "transform_coefficients",
]


def guarded(averages, epsilon: float, xp=np):
    """Where the divisor ``sqrt(moving_var + epsilon)`` is replaced by 1.

    As ``StandardScaler`` guards constant features: where
    ``v = moving_var + epsilon`` is 0, or no larger than the rounding error
    of a zero variance, ``v <= n eps v + (n mu eps)^2`` (``n`` the samples
    behind the statistic, ``mu`` the mean, ``eps`` float64's machine
    epsilon; scikit-learn's ``_is_constant_feature``).  The variance itself
    is never changed.
    """
    v = averages.var + epsilon
    n = averages.weight
    eps = float(np.finfo(np.float64).eps)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = n * eps * v + (n * averages.mean * eps) ** 2
    # an infinite variance is no rounding error of 0: its divisor stays inf
    return (v == 0) | ((v <= bound) & xp.isfinite(v))


def transform_coefficients(averages, epsilon: float, gamma, xp=np):
    """The multiplier ``gamma / sqrt(moving_var + epsilon)`` of each feature.

    ``averages`` holds the moving statistics (``mean``, ``var``) and the
    weight seen per feature (``weight``); the divisor is 1 where
    :func:`guarded` says so.  ``gamma=None`` (``scale`` off) stands for 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skbn._stats import Moments
    >>> averages = Moments(np.array([2.0, 2.0]), np.array([1.0, 5.0]), np.array([4.0, 0.0]))
    >>> transform_coefficients(averages, 0.0, np.array([2.0, 3.0])).tolist()
    [1.0, 3.0]
    """
    return (1.0 if gamma is None else gamma) / divisor(averages, epsilon, xp)


def divisor(averages, epsilon: float, xp=np):
    """``sqrt(moving_var + epsilon)``, 1 where :func:`guarded` (``scale_``)."""
    mask = guarded(averages, epsilon, xp)
    root = xp.sqrt(averages.var + epsilon)
    return xp.where(mask, xp.ones_like(root), root)


#: Bytes of one row block of the affine map.  Any partition gives the same
#: bits (the map is elementwise); 1 MiB keeps the per-block Python overhead
#: small and a block with its tiled coefficients in cache.
AFFINE_BLOCK_BYTES = 1 << 20


def affine(
    X: np.ndarray,
    out: np.ndarray,
    shift: np.ndarray | None,
    factor: np.ndarray,
    offset: np.ndarray | None,
    *,
    inverse: bool = False,
    check_finite: bool = True,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Write ``(X - shift) * factor + offset`` into ``out``, one block at a time.

    With ``inverse=True`` it writes ``(X - offset) / factor + shift`` instead.
    ``None`` leaves a term out.  The coefficients are cast to ``out.dtype``,
    so float32 data is mapped in float32.  ``out`` may be ``X`` itself.

    Each block is read once into cache and written once: a C-contiguous
    block is processed as one flat vector against tiled coefficients, an
    F-contiguous array as its C-contiguous transpose with column
    coefficients.  With ``check_finite``, a block holding +/-inf raises
    :class:`~skbn._validation.InfiniteValueError` before it is written.

    Where ``X - shift`` could overflow (a shift of at least ``2**969``, half an
    ulp of the largest float64), the map is written ``X * factor - shift * factor``, which is
    finite wherever the result is.
    """
    if not inverse and shift is not None and out.dtype == np.float64:
        with np.errstate(invalid="ignore"):
            # below half an ulp of the float64 maximum, x - shift cannot overflow
            wide = np.abs(np.asarray(shift, dtype=np.float64)).max(initial=0.0) >= 2.0**969
        if wide:
            return _wide_affine(X, out, shift, factor, offset, check_finite)
    dtype = _map_dtype(out.dtype, factor)
    coefs = [None if c is None else np.asarray(c, dtype=dtype) for c in (shift, factor, offset)]
    if inverse:
        coefs = [coefs[2], coefs[1], coefs[0]]
    if _compiled(X, out, dtype):
        return _compiled_affine(X, out, coefs, inverse, check_finite, n_jobs)
    op = np.divide if inverse else np.multiply
    transposed = not X.flags.c_contiguous and X.flags.f_contiguous and out.flags.f_contiguous
    if transposed:  # columns are contiguous: work on rows of the transpose
        X, out = X.T, out.T
        coefs = [None if c is None else c[:, None] for c in coefs]
        flat = False
    else:
        flat = X.flags.c_contiguous and out.flags.c_contiguous and X.dtype == dtype == out.dtype
    n_rows, n_cols = X.shape
    blocks = row_blocks(n_rows, n_cols, AFFINE_BLOCK_BYTES)
    rows = blocks[0].stop - blocks[0].start
    flat = flat and len(blocks) > 1  # one block: plain broadcasting is as fast
    if flat:
        coefs = [None if c is None else np.tile(c, rows) for c in coefs]

    serial = threads_for(len(blocks), n_jobs) == 1

    def one(block):
        xb, ob = X[block], out[block]
        first, mid, last = coefs
        if transposed:  # a block of features: their own coefficients
            first, mid, last = (None if c is None else c[block] for c in coefs)
        if out.dtype != dtype:  # float32 data whose factors need float64
            ob = np.empty(xb.shape, dtype=dtype)
        if flat:
            size = xb.size
            xb, ob = xb.reshape(-1), ob.reshape(-1)
            first, mid, last = (None if c is None else c[:size] for c in coefs)
        if check_finite:
            _refuse_infinite(xb, X, block, transposed, serial)
        if first is None:
            op(xb, mid, out=ob)
        else:
            np.subtract(xb, first, out=ob)
            op(ob, mid, out=ob)
        if last is not None:
            np.add(ob, last, out=ob)
        if out.dtype != dtype:
            out[block] = ob

    map_blocks(one, blocks, n_jobs)
    return out.T if transposed else out


def _compiled(X, out, dtype) -> bool:
    """Whether the compiled map applies: C-contiguous, aligned float64 in and out."""
    return (
        _affine_map is not None
        and dtype == np.float64
        and X.dtype == out.dtype == np.float64
        and X.flags.c_contiguous
        and out.flags.c_contiguous
        and X.flags.aligned
        and out.flags.aligned
    )


def _compiled_affine(X, out, coefs, inverse: bool, check_finite: bool, n_jobs) -> np.ndarray:
    """:func:`affine` by :mod:`skbn._kernels`, one pass over each block: the
    same operations in the same order, so the same bits.  ``coefs`` is
    ``(first, factor, last)``: ``(x - first) * factor + last``, or
    ``(x - first) / factor + last`` with ``inverse``."""
    # aligned too: an unpickled array may not be
    first, mid, last = (None if c is None else np.require(c, np.float64, "CA") for c in coefs)
    blocks = row_blocks(X.shape[0], X.shape[1], AFFINE_BLOCK_BYTES)

    def one(block):
        if _affine_map(X[block], out[block], first, mid, last, inverse, check_finite):
            raise InfiniteValueError(infinite_columns(X[block]))

    map_blocks(one, blocks, n_jobs)
    return out


def _map_dtype(dtype: np.dtype, factor) -> np.dtype:
    """The dtype the map runs in: ``dtype``, but float64 for float32 data
    whose factors do not fit float32 (a variance below ~1e-77)."""
    if dtype == np.float32:
        with np.errstate(over="ignore"):
            if not np.isfinite(np.asarray(factor, dtype=np.float32)).all():
                return np.dtype(np.float64)
    return dtype


def _refuse_infinite(xb, X, block: slice, transposed: bool, serial: bool) -> None:
    """Raise :class:`~skbn._validation.InfiniteValueError` if the block ``xb``
    (rows ``block`` of ``X``, or of its transpose) holds +/-inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        # x . x is finite when no value is inf, NaN or beyond 1e154 (then the
        # exact test below decides); on a flat block it is the cheapest pass,
        # but BLAS's own threads must not compete with ours.
        probe = np.dot(xb, xb) if xb.ndim == 1 and serial else xb.sum()
        finite = np.isfinite(probe)
    if not finite and np.isinf(xb).any():
        if transposed:
            rows_inf = np.isinf(X[block]).any(axis=1)
            raise InfiniteValueError(block.start + np.flatnonzero(rows_inf))
        raise InfiniteValueError(infinite_columns(X[block]))


def plain_coefficients(shift, factor, offset) -> bool:
    """Whether :func:`plain_affine` may apply these coefficients: float64
    NumPy arrays (or None) and no shift whose difference could overflow."""
    arrays = [c for c in (shift, factor, offset) if c is not None]
    if not all(type(c) is np.ndarray and c.dtype == np.float64 for c in arrays):
        return False
    with np.errstate(invalid="ignore"):
        return shift is None or not np.abs(shift).max(initial=0.0) >= 2.0**969


def plain_affine(X: np.ndarray, shift, factor, offset, *, inverse: bool = False) -> np.ndarray:
    """:func:`affine` of a small C-contiguous float64 ``X`` into a new array,
    with the fewest NumPy calls (the small-batch path); the same bits.

    The coefficients must pass :func:`plain_coefficients` and be tiled to
    the rows of ``X`` (``np.tile(c, n_rows)``, see :func:`tiled`): flat
    vector operations cost a third of broadcasting along rows of a few
    features.  Raises :class:`~skbn._validation.InfiniteValueError` if ``X``
    holds +/-inf.
    """
    if inverse:
        shift, offset = offset, shift
    op = np.divide if inverse else np.multiply
    flat = X.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        # x . x is finite when no value is inf, NaN or beyond 1e154
        finite = math.isfinite(np.dot(flat, flat))
    if not finite and np.isinf(flat).any():
        raise InfiniteValueError(infinite_columns(X))
    if shift is None:
        out = op(flat, factor)
    else:
        out = np.subtract(flat, shift)
        op(out, factor, out=out)
    if offset is not None:
        out += offset
    return out.reshape(X.shape)


def compiled_plain_affine(X: np.ndarray, shift, factor, offset, *, inverse: bool = False):
    """:func:`plain_affine` by :mod:`skbn._kernels`, with the coefficients
    themselves (not tiled): a new array, the same bits.  None without the
    compiled kernels."""
    if _affine_map is None:
        return None
    if inverse:
        shift, offset = offset, shift
    out = np.empty_like(X)
    try:
        infinite = _affine_map(X, out, shift, factor, offset, inverse, True)
    except (TypeError, ValueError, BufferError):
        return None  # coefficients the kernel does not read (unaligned, strided): NumPy's path
    if infinite:
        raise InfiniteValueError(infinite_columns(X))
    return out


def tiled(coefficients: tuple, n_rows: int) -> tuple:
    """Each coefficient (or None) repeated for ``n_rows`` rows, read-only."""
    tiles = []
    for c in coefficients:
        if c is not None:
            c = np.tile(c, n_rows)
            c.flags.writeable = False
        tiles.append(c)
    return tuple(tiles)


def _wide_affine(X, out, shift, factor, offset, check_finite: bool) -> np.ndarray:
    """``(X - shift) * factor + offset`` for a shift near the float64 limit,
    where the difference can overflow though the result does not."""
    if check_finite:
        columns = np.flatnonzero(np.isinf(X).any(axis=0))
        if columns.size:
            raise InfiniteValueError(columns)
    with np.errstate(over="ignore", invalid="ignore"):
        y = (X - shift) * factor
        lost = np.isinf(y) & np.isfinite(X)
        if lost.any():
            y = np.where(lost, X * factor - np.asarray(shift) * factor, y)
    if offset is not None:
        y += offset
    out[...] = y
    return out


def scale_columns_sparse(X, factor: np.ndarray):
    """Multiply each column of a CSR/CSC matrix by ``factor`` in place."""
    factor = factor.astype(X.dtype)
    if X.format == "csr":
        X.data *= factor[X.indices]
    else:
        X.data *= np.repeat(factor, np.diff(X.indptr))
    return X
