"""Per-feature moments of a batch (weight, mean, biased variance), as pure functions.

Everything here works on NumPy arrays and returns new arrays; nothing is
mutated in place, so the estimator can compute a whole update before it
commits any of it (a batch that fails leaves the fitted state untouched).

The batch moments of one mini-batch ``B`` are, per feature ``j`` and over the
rows whose value is not NaN, with frequency weights ``w``::

    m_j  = sum_i w_i
    mu_j = sum_i w_i x_ij / m_j
    s2_j = sum_i w_i (x_ij - mu_j)^2 / m_j

They are computed block by block with the corrected two-pass algorithm and
merged with the pairwise update of Chan, Golub and LeVeque (1983); no
``E[x^2] - E[x]^2`` shortcut is used anywhere.  How the moving statistics
then follow these moments is :mod:`skbn._averaging`'s business.

Guarantees (tested against exact rational arithmetic):

* a column whose present values are all equal gets exactly that value as its
  mean and exactly 0 as its variance, at every finite magnitude;
* finite data never give an inf or NaN mean (the mean lies between the
  column's smallest and largest value); the variance is inf only where the
  exact variance exceeds the float64 range;
* otherwise the variance is the exact variance of the values to within a few
  rounding errors, never set to 0 because it is small;
* a column's moments depend on its own values (and the weights) only: the
  row blocks have a fixed number of rows, whatever the width of ``X``.

The moments of an unweighted block come from the compiled
:mod:`skbn._kernels` (the same formulas in one call instead of a dozen, with
the two-pass correction computed exactly, so that the block's mean is exact
to about one rounding whatever its spread, and a column with missing values
summed over the values present, where NumPy needs its careful path); where
skbn was installed without it, from NumPy and BLAS (``w @ X``), to a few
roundings.  Either way every path that reads a block uses the same one, so
results never depend on the path (``fit`` or ``partial_fit``, small or large,
any memory layout).

This module imports NumPy only (``threadpoolctl`` and ``joblib`` lazily), so
the file engine can use it without scikit-learn.
"""

from __future__ import annotations

import functools
import threading
from typing import NamedTuple

import numpy as np

from ._blocks import (
    BLOCK_BYTES,
    aligned_empty,
    map_blocks,
    row_blocks,
    rows_per_block,
    single_threaded_blas,
)
from ._validation import InfiniteValueError, infinite_columns

try:
    from . import _kernels
except ImportError:  # installed without a C compiler: NumPy does the same work
    _kernels = None

__all__ = [
    "InfiniteValueError",
    "Moments",
    "block_moments",
    "compiled_moments",
    "dense_moments",
    "merge_moments",
    "reduce_moments",
    "raise_if_infinite",
    "row_blocks",
    "rows_per_block",
    "BLOCK_BYTES",
    "unbiased_variance",
]


#: Rows of one block of :func:`dense_moments`, whatever the number of
#: features: the order in which a column's values are summed never depends
#: on the other columns (nor on ``n_jobs``).  Wide data is read in panels of
#: ``PANEL_COLUMNS`` columns, so a block stays in cache.
BLOCK_ROWS = 4096
PANEL_COLUMNS = 128

_EPS = np.finfo(np.float64).eps


def raise_if_infinite(X: np.ndarray, columns: np.ndarray | None = None) -> None:
    """Raise :class:`InfiniteValueError` if ``X`` (or its ``columns``) holds +/-inf."""
    if columns is None or X.shape[0] <= BLOCK_ROWS:
        idx = infinite_columns(X if columns is None else X[:, columns])
    else:  # block by block: no copy of the columns of a large X
        found = np.zeros(len(columns), dtype=bool)
        for r in range(0, X.shape[0], BLOCK_ROWS):
            found |= np.isinf(X[r : r + BLOCK_ROWS, columns]).any(axis=0)
        idx = np.flatnonzero(found)
    if idx.size:
        raise InfiniteValueError(idx if columns is None else np.asarray(columns)[idx])


class Moments(NamedTuple):
    """Per-feature weight, mean and biased variance of a set of rows.

    Attributes
    ----------
    weight : ndarray of shape (n_features,)
        Sum of the weights of the non-NaN values, ``m_j``.
    mean : ndarray of shape (n_features,)
        Weighted mean ``mu_j`` (0 where ``m_j == 0``).
    var : ndarray of shape (n_features,)
        Weighted biased variance ``s2_j`` (0 where ``m_j == 0``).
    residual : ndarray of shape (n_features,) or None
        What rounding ``mean`` to float64 lost (``mean + residual`` is the mean
        to about ``eps^2``), where known; None stands for 0.  Merges use it,
        so that pooling batches far from 0 loses nothing to the offset.
    """

    weight: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    residual: np.ndarray | None = None


def _two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


# -- exactness helpers -----------------------------------------------------------


def _suspect(moments: Moments, n: float) -> np.ndarray:
    """Columns whose variance is within rounding of 0 (or not finite): they
    may be constant columns whose computed variance is rounding dust.

    The bound ``s2 <= n eps s2 + (n mu eps)^2`` is scikit-learn's
    ``_is_constant_feature`` with ``n`` the rows of the batch; it only decides
    which columns are looked at again, never the result.
    """
    var, mean = moments.var, moments.mean
    k = n * _EPS
    with np.errstate(over="ignore", invalid="ignore"):
        bound = k * var + (k * mean) ** 2
        return (moments.weight > 0) & ~(var > bound)


def _pin_constants(X, sample_weight, moments: Moments, columns: np.ndarray) -> Moments:
    """Exact moments for the ``columns`` of ``X`` whose present values (of
    positive weight) are all equal: the value itself and a variance of 0.

    Elsewhere the mean is clamped to the column's range, where the exact mean
    lies (a rounded weighted sum near the float64 limit could leave it).
    """
    if columns.size == 0:
        return moments
    xs = np.asarray(X[:, columns], dtype=np.float64)
    present = ~np.isnan(xs)
    if sample_weight is not None:
        present &= (sample_weight > 0)[:, None]
    lo = np.where(present, xs, np.inf).min(axis=0)
    hi = np.where(present, xs, -np.inf).max(axis=0)
    return _pinned(moments, columns, lo, hi)


def _pinned(moments: Moments, columns, lo, hi) -> Moments:
    """``moments`` with the ``columns`` whose range is ``[lo, hi]`` made exact."""
    mean, var = moments.mean.copy(), moments.var.copy()
    has = lo <= hi
    constant = has & (lo == hi)
    with np.errstate(invalid="ignore"):
        clamped = np.clip(mean[columns], np.where(has, lo, -np.inf), np.where(has, hi, np.inf))
    mean[columns] = np.where(constant, lo, clamped)
    var[columns] = np.where(constant, 0.0, var[columns])
    residual = moments.residual
    if residual is not None:
        residual = residual.copy()
        residual[columns] = np.where(
            constant | (clamped != moments.mean[columns]), 0.0, residual[columns]
        )
    return Moments(moments.weight, mean, var, residual)


def _weight_scale(sample_weight: np.ndarray | None) -> tuple:
    """Weights times the power of two that brings the largest into [0.5, 1).

    Exact (the moments do not change), and no weight underflows when
    multiplied with the data.  Returns ``(weights, exponent, wide)``; ``wide``
    is True when the weights span so many decades that scaling would
    flush the smallest to 0: those batches take the careful path, which
    scales each column by its own largest weight.
    """
    if sample_weight is None or sample_weight.size == 0:
        return sample_weight, 0, False
    largest = float(sample_weight.max())
    if largest == 0:
        return sample_weight, 0, False
    positive = sample_weight[sample_weight > 0]
    if largest / float(positive.min()) > 2.0**600:
        return sample_weight, 0, True  # the careful path scales per column
    exponent = int(np.frexp(largest)[1])
    if exponent == 0:
        return sample_weight, 0, False
    return np.ldexp(sample_weight, -exponent), exponent, False


def _careful_moments(X: np.ndarray, w: np.ndarray | None) -> Moments:
    """Moments that neither overflow, underflow a weight, nor mind NaN.

    Each value is multiplied by its proportion ``p_i = w_i / m_j`` of its
    column's total weight before it is summed (the weights of each column
    scaled by that column's largest first), so no partial sum exceeds the
    largest value in magnitude, and each squared deviation is formed as
    ``(p_i d_i) d_i``, which overflows only where the variance itself is not
    representable.
    """
    present = ~np.isnan(X)
    W = present.astype(np.float64)
    if w is not None:
        W *= w[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        weight = W.sum(axis=0)
        wmax = W.max(axis=0, initial=0.0)
        W /= np.where(wmax > 0, wmax, 1.0)
        P = W / np.where(weight > 0, W.sum(axis=0), 1.0)
        x0 = np.where(present, X, 0.0)
        mean = (P * x0).sum(axis=0)
        d = np.where(present, x0 - mean, 0.0)
        Pd = P * d
        # A deviation beyond the float64 range makes the variance
        # unrepresentable (inf); the mean is still right without correction.
        correction = Pd.sum(axis=0)
        correction = np.where(np.isfinite(correction), correction, 0.0)
        spread = (Pd * d).sum(axis=0)
        # c^2 <= sum(p d^2), so where the sum overflows so does the variance
        var = np.where(np.isinf(spread), spread, spread - correction * correction)
        mean = mean + correction
    empty = weight == 0
    mean[empty] = 0.0
    var[empty] = 0.0
    return Moments(weight, mean, np.maximum(var, 0.0))


def _fast_block(X: np.ndarray, w: np.ndarray | None, total: float) -> tuple:
    """The corrected two-pass moments of one block, without checks:
    ``(mean, var, residual, weight)``; ``w=None`` for no weights (``X`` then
    C-contiguous float64).  The compiled kernels skip NaN (``weight`` counts
    the values present); NumPy's path does not (``weight`` is None: ``total``
    for every column, and a column with NaN gets NaN)."""
    if w is None and _kernels is not None:
        if not X.flags.aligned:  # e.g. unpickled from a byte stream: an aligned copy
            X = X.copy()
        return _compiled_block(X)[1:]
    n_rows = X.shape[0]
    if w is None:
        w = _ONES[:n_rows] if n_rows <= BLOCK_ROWS else np.ones(n_rows)
    with np.errstate(over="ignore", invalid="ignore"):
        mean0 = (w @ X) / total
        d = X - mean0
        correction = (w @ d) / total
        np.multiply(d, d, out=d)
        var = (w @ d) / total - correction * correction
        mean, residual = _two_sum(mean0, correction)
    return mean, var, residual, None


def compiled_moments() -> bool:
    """Whether the compiled kernels (``skbn._kernels``) compute the moments."""
    return _kernels is not None


def _compiled_block(X: np.ndarray) -> tuple:
    """``(plain, mean, var, residual, weight)`` of an aligned, C-contiguous
    float64 block by :func:`skbn._kernels.block_moments` (``plain``: every
    column complete and finite, its variance above rounding of 0)."""
    n = X.shape[1]
    out = np.empty(4 * n)
    plain = _kernels.block_moments(X, out)
    return plain, out[:n], out[n : 2 * n], out[2 * n : 3 * n], out[3 * n :]


def block_moments(X: np.ndarray, sample_weight: np.ndarray | None = None) -> Moments:
    """Weighted, NaN-aware moments of one block of rows.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Finite values or NaN, any float dtype; accumulated in float64.
    sample_weight : ndarray of shape (n_rows,), default=None
        Non-negative frequency weights; ``None`` means all ones.

    Returns
    -------
    Moments
        Uses the corrected two-pass algorithm: ``mu = sum(w x) / m``, then
        ``d = x - mu``, ``c = sum(w d) / m``, ``s2 = sum(w d^2) / m - c^2`` and
        ``mu + c``.  Columns whose fast path meets NaN or overflow are
        recomputed by a careful path that cannot overflow; columns whose
        variance is within rounding of 0 are checked for being constant.

    Examples
    --------
    >>> import numpy as np
    >>> m = block_moments(np.array([[1.0, 2.0], [3.0, np.nan]]))
    >>> m.weight.tolist(), m.mean.tolist(), m.var.tolist()
    ([2.0, 1.0], [2.0, 2.0], [1.0, 0.0])
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    w_scaled, exponent, wide = _weight_scale(sample_weight)
    moments = _unpinned_block(X, w_scaled, wide)
    if exponent:
        moments = moments._replace(weight=np.ldexp(moments.weight, exponent))
    return _pin_constants(X, sample_weight, moments, np.flatnonzero(_suspect(moments, len(X))))


_ONES = np.ones(BLOCK_ROWS)
_ONES.setflags(write=False)


def plain_block_moments(X: np.ndarray, residual: bool = True) -> Moments | None:
    """:func:`block_moments` of an aligned, C-contiguous float64 block of at most
    ``BLOCK_ROWS`` rows without weights, when it needs nothing but the fast
    path (no NaN, no overflow, no variance within rounding of 0); None
    otherwise.  The same bits as :func:`block_moments` when not None, the
    mean's ``residual`` left out (None) unless asked for.

    Without the compiled kernels, overflow and invalid-value warnings must
    be off (``np.errstate``) in the caller: this is the small-batch path,
    where every NumPy call counts.
    """
    n, n_features = X.shape
    total = float(n)
    if _kernels is not None:
        plain, mean, var, error, _ = _compiled_block(X)
        if not plain:
            return None
        return Moments(_uniform_weight(n_features, total), mean, var, error if residual else None)
    ones = _ONES[:n]
    mean0 = ones @ X
    mean0 /= total
    d = X - mean0
    correction = ones @ d
    correction /= total
    np.multiply(d, d, out=d)
    var = ones @ d
    var /= total
    var -= correction * correction
    mean = mean0 + correction
    # _suspect's bound; NaN or inf anywhere also fails the comparison
    k = n * _EPS
    bound = (k * mean) ** 2
    bound += k * var
    if np.count_nonzero(var > bound) != n_features:
        return None
    error = _two_sum(mean0, correction)[1] if residual else None
    return Moments(_uniform_weight(n_features, total), mean, var, error)


@functools.lru_cache(maxsize=256)
def _uniform_weight(n_features: int, total: float) -> np.ndarray:
    """A read-only array of ``n_features`` times ``total`` (shared)."""
    weight = np.full(n_features, total)
    weight.flags.writeable = False
    return weight


def _unpinned_block(X: np.ndarray, w: np.ndarray | None, wide: bool) -> Moments:
    n_rows, n_features = X.shape
    total = float(n_rows) if w is None else float(w.sum())
    if total == 0 or wide:
        raise_if_infinite(X)
        return _careful_moments(X, w)
    mean, var, residual, weight = _fast_block(X, w, total)
    weight = np.full(n_features, total) if weight is None else weight
    bad = ~np.isfinite(residual + var)
    if bad.any():
        raise_if_infinite(X, np.flatnonzero(bad))
        safe = _careful_moments(X[:, bad], w)
        weight[bad], mean[bad], var[bad], residual[bad] = safe.weight, safe.mean, safe.var, 0.0
    np.maximum(var, 0.0, out=var)
    return Moments(weight, mean, var, residual)


def merge_moments(a: Moments, b: Moments, xp=np) -> Moments:
    """Merge the moments of two disjoint sets of rows (Chan et al., 1983).

    With ``m = m_a + m_b``, ``p_a = m_a / m``, ``p_b = m_b / m`` and
    ``delta = mu_b - mu_a``::

        mu = mu_a + p_b delta
        s2 = p_a s2_a + p_b s2_b + (p_a delta)(p_b delta)

    which is exact in exact arithmetic and, written with proportions, does
    not overflow where the result is representable (where ``delta`` itself
    overflows, ``mu = p_a mu_a + p_b mu_b``).  Equal means give the mean
    exactly and add no spread.  ``xp`` is the arrays' namespace.

    Examples
    --------
    >>> import numpy as np
    >>> one = lambda w, mu, s2: Moments(np.array([w]), np.array([mu]), np.array([s2]))
    >>> merge_moments(one(1.0, 0.0, 0.0), one(1.0, 2.0, 0.0))
    Moments(weight=array([2.]), mean=array([1.]), var=array([1.]), residual=None)
    """
    weight = a.weight + b.weight
    safe = xp.where(weight > 0, weight, xp.ones_like(weight))
    carry = a.residual is not None or b.residual is not None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p_a = a.weight / safe
        p_b = b.weight / safe
        delta = b.mean - a.mean
        wide = ~xp.isfinite(delta)
        if carry:  # the means to about eps^2: delta loses nothing to the offset
            r_a = xp.zeros_like(a.mean) if a.residual is None else a.residual
            r_b = xp.zeros_like(b.mean) if b.residual is None else b.residual
            delta = delta + (r_b - r_a)
            mean, residual = _two_sum(a.mean, r_a + p_b * delta)
            residual = xp.where(wide, xp.zeros_like(residual), residual)
        else:
            mean = a.mean + p_b * delta
            mean = xp.where(delta == 0, a.mean, mean)
        mean = xp.where(wide, p_a * a.mean + p_b * b.mean, mean)
        var = p_a * a.var + p_b * b.var + (p_a * delta) * (p_b * delta)
    only_a = b.weight == 0
    only_b = a.weight == 0
    mean = xp.where(only_a, a.mean, xp.where(only_b, b.mean, mean))
    var = xp.where(only_a, a.var, xp.where(only_b, b.var, var))
    if not carry:
        return Moments(weight, mean, var)
    residual = xp.where(only_a, r_a, xp.where(only_b, r_b, residual))
    residual = xp.where(xp.isfinite(residual), residual, xp.zeros_like(residual))
    return Moments(weight, mean, var, residual)


def reduce_moments(parts: list) -> Moments:
    """Merge a list of moments left to right, in their given order."""
    total = parts[0]
    for part in parts[1:]:
        total = merge_moments(total, part)
    return total


#: A shifted sum is trusted when the shift is within 2**10 standard
#: deviations of the mean; otherwise the column is recomputed block by block.
_MAX_SHIFT_RATIO2 = float(2**20)


def moment_blocks(n_rows: int, n_features: int, block_rows: int = BLOCK_ROWS) -> list:
    """The ``(rows, columns)`` slices :func:`dense_moments` reads, in order.

    ``block_rows`` rows at a time (the last block shorter), each in panels of
    at most ``PANEL_COLUMNS`` columns: a column's blocks never depend on the
    other columns.

    Examples
    --------
    >>> moment_blocks(5, 1, block_rows=2)[:2]
    [(slice(0, 2, None), slice(0, 1, None)), (slice(2, 4, None), slice(0, 1, None))]
    """
    rows = [slice(a, min(a + block_rows, n_rows)) for a in range(0, n_rows, block_rows)]
    cols = [
        slice(c, min(c + PANEL_COLUMNS, n_features)) for c in range(0, n_features, PANEL_COLUMNS)
    ]
    return [(r, c) for c in cols for r in rows]


def _shifted_sums(X, w, shift, blocks, n_jobs):
    """Per block, ``(sum w d, sum w d^2)`` with ``d = x - shift``, in block order."""
    rows = blocks[0][0].stop - blocks[0][0].start
    panel = max(c.stop - c.start for _, c in blocks)
    ones = aligned_empty(rows)
    ones.fill(1.0)
    local = threading.local()

    def one(block):
        r, c = block
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = aligned_empty(rows * panel)
        k, width = r.stop - r.start, c.stop - c.start
        d = buf[: k * width]
        d2 = d.reshape(k, width)
        wb = ones[:k] if w is None else w[r]
        with np.errstate(over="ignore", invalid="ignore"):  # errstate is per thread
            np.subtract(X[r, c], shift[c], out=d2)
            s1 = wb @ d2
            np.multiply(d, d, out=d)
            return s1, wb @ d2

    return map_blocks(one, blocks, n_jobs)


def _gather(parts, blocks, n_features) -> tuple:
    """Sum the per-block ``(S1, S2)`` of each column, in row-block order."""
    s1 = np.zeros(n_features)
    s2 = np.zeros(n_features)
    with np.errstate(over="ignore", invalid="ignore"):
        for (_, c), (p1, p2) in zip(blocks, parts, strict=True):
            s1[c] += p1
            s2[c] += p2
    return s1, s2


def _refine(X, w, columns, moments, blocks_rows, n_jobs):
    """One more pass over ``columns``, shifted by their (merged) mean.

    Block moments merged with Chan's formula carry each block mean rounded
    to ``ulp(mean)``, which costs about ``ulp(mean) |delta| / s2`` of the
    variance per merge.  Summing ``w d`` and ``w d^2`` with ``d = x - K`` for
    ``K`` that mean (NaN-aware) is accurate to a few ``eps``.  Where these
    sums overflow, the merged moments are kept.
    """
    K = np.where(moments.weight > 0, moments.mean, 0.0)

    def sums(r):
        if w is None and _kernels is not None:  # the same sums, in one pass
            xb = np.ascontiguousarray(X[r][:, columns], dtype=np.float64)
            out = np.empty(2 * len(columns))
            _kernels.shifted_sums(xb, K, out)
            return out[: len(columns)], out[len(columns) :]
        xb = np.asarray(X[r][:, columns], dtype=np.float64)
        present = ~np.isnan(xb)
        W = present.astype(np.float64)
        if w is not None:
            W *= w[r][:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            d = np.where(present, xb - K, 0.0)
            Wd = W * d
            return Wd.sum(axis=0), (Wd * d).sum(axis=0)

    m = moments.weight
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s1 = np.zeros(len(columns))
        s2 = np.zeros(len(columns))
        for p1, p2 in map_blocks(sums, blocks_rows, n_jobs):
            s1 += p1
            s2 += p2
        m1 = s1 / m
        (mean, residual), var = _two_sum(K, m1), s2 / m - m1 * m1
    good = (m > 0) & np.isfinite(residual) & np.isfinite(var)
    return Moments(
        m,
        np.where(good, mean, moments.mean),
        np.where(good, np.maximum(var, 0.0), moments.var),
        np.where(good, residual, 0.0),
    )


def dense_moments(
    X: np.ndarray,
    sample_weight: np.ndarray | None = None,
    n_jobs: int | None = None,
    block_rows: int = BLOCK_ROWS,
) -> Moments:
    """Moments of a dense 2-D array: one pass over the data, more for hard columns.

    A batch of at most ``block_rows`` rows gets :func:`block_moments`.  A
    larger one is read block by block, in cache: each block contributes
    ``sum w d`` and ``sum w d^2`` with ``d = x - K``, where the shift ``K`` is
    the (corrected two-pass) mean of the first block (which is read twice),
    and::

        mu = K + S1 / m          s2 = S2 / m - (S1 / m)^2

    This is the corrected two-pass formula with the shift ``K`` in place of a
    first pass; its relative error is about ``eps (1 + (mu - K)^2 / s2)``.  A
    column whose ``(mu - K)^2`` exceeds ``2^20 s2``, or that meets NaN,
    overflow or weights spanning more than 600 binary orders of magnitude,
    is recomputed block by block with :func:`block_moments`, merged with
    :func:`merge_moments`, and refined by one more shifted pass around the
    merged mean.  A column whose variance is within rounding of 0 is then
    checked for being constant (exactly its value and 0 if so); the variance
    is never set to 0 otherwise.

    The blocks depend only on the number of rows (and panels of columns), no
    block's result depends on the thread that computes it (BLAS runs on one
    thread here), and blocks are summed in order, so the result is the same,
    bit for bit, for every ``n_jobs`` and every memory layout.
    """
    n_rows, n_features = X.shape
    if n_rows <= block_rows:
        return block_moments(X, sample_weight)
    w, exponent, wide = _weight_scale(sample_weight)
    moments = _unpinned_dense(X, w, wide, n_jobs, block_rows)
    if exponent:
        moments = moments._replace(weight=np.ldexp(moments.weight, exponent))
    suspect = np.flatnonzero(_suspect(moments, n_rows))
    return _pin_constants(X, sample_weight, moments, suspect)


def _unpinned_dense(X, w, wide, n_jobs, block_rows) -> Moments:
    n_rows, n_features = X.shape
    rows = [slice(a, min(a + block_rows, n_rows)) for a in range(0, n_rows, block_rows)]
    total = float(n_rows) if w is None else float(w.sum())
    weight = np.full(n_features, total)
    if total == 0 or wide:
        bad = np.ones(n_features, dtype=bool)
        mean = np.zeros(n_features)
        var = np.zeros(n_features)
        residual = np.zeros(n_features)
    else:
        blocks = moment_blocks(n_rows, n_features, block_rows)
        with single_threaded_blas():
            first = _unpinned_block(
                np.ascontiguousarray(X[rows[0]], dtype=np.float64),
                None if w is None else w[rows[0]],
                False,
            )
            shift = np.where(first.weight > 0, first.mean, 0.0)
            parts = _shifted_sums(X, w, shift, blocks, n_jobs)
        s1, s2 = _gather(parts, blocks, n_features)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            m1 = s1 / total
            (mean, residual), var = _two_sum(shift, m1), s2 / total - m1 * m1
            bad = ~(
                np.isfinite(residual) & np.isfinite(var) & (m1 * m1 <= _MAX_SHIFT_RATIO2 * var)
            )
    if bad.any():
        columns = np.flatnonzero(bad)
        raise_if_infinite(X, columns)

        def careful(r):
            xb = np.ascontiguousarray(X[r][:, columns], dtype=np.float64)
            return _unpinned_block(xb, None if w is None else w[r], wide)

        with single_threaded_blas():
            safe = reduce_moments(map_blocks(careful, rows, n_jobs))
        safe = _refine(X, w, columns, safe, rows, n_jobs)
        weight[bad], mean[bad], var[bad] = safe.weight, safe.mean, safe.var
        residual[bad] = 0.0 if safe.residual is None else safe.residual
    return Moments(weight, mean, np.maximum(var, 0.0), residual)


def unbiased_variance(moments: Moments, xp=np):
    """``s2 * m / (m - 1)`` (Bessel's correction); NaN where ``m <= 1``."""
    m = moments.weight
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        corrected = moments.var * (m / (m - 1))
    return xp.where(m > 1, corrected, xp.full_like(corrected, float("nan")))
