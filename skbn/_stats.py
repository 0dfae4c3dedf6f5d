"""Per-feature batch statistics and the moving-average update, as pure functions.

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
``E[x^2] - E[x]^2`` shortcut is used anywhere.  Every moving statistic ``S``
then moves toward its batch value ``b`` by a step ``alpha``::

    S_j <- S_j + alpha_j * (b_j - S_j)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from joblib import effective_n_jobs

__all__ = [
    "InfiniteValueError",
    "Moments",
    "averaging_factor",
    "block_moments",
    "dense_moments",
    "merge_moments",
    "move_toward",
    "moving_update",
    "reduce_moments",
    "raise_if_infinite",
    "row_blocks",
    "rows_per_block",
    "snap_constant",
    "sparse_moments",
    "unbiased_variance",
]

#: Bytes per row block of :func:`dense_moments` (2 MiB, counted as float64
#: whatever the dtype: ``BLOCK_BYTES // (8 * n_features)`` rows).  Fixed (it
#: never depends on ``n_jobs``), so results are identical, bit for bit, for
#: every ``n_jobs``; its rows are also the ``n`` of :func:`snap_constant`.
BLOCK_BYTES = 1 << 21

_EPS = np.finfo(np.float64).eps


class InfiniteValueError(ValueError):
    """The data holds +/-inf; ``columns`` are the indices of the features."""

    def __init__(self, columns):
        self.columns = np.asarray(columns)
        super().__init__(f"infinite values in column(s) {self.columns.tolist()}")


def raise_if_infinite(X: np.ndarray, columns: np.ndarray | None = None) -> None:
    """Raise :class:`InfiniteValueError` if ``X`` (or its ``columns``) holds +/-inf."""
    sub = X if columns is None else X[:, columns]
    infinite = np.isinf(sub).any(axis=0)
    if infinite.any():
        idx = np.flatnonzero(infinite)
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
    """

    weight: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def rows_per_block(n_features: int, block_bytes: int = BLOCK_BYTES) -> int:
    """The rows of a full block: ``block_bytes`` of float64 rows, at least 1."""
    return max(1, block_bytes // (8 * max(n_features, 1)))


def row_blocks(n_rows: int, n_features: int, block_bytes: int = BLOCK_BYTES) -> list:
    """Partition ``range(n_rows)`` into consecutive slices of about ``block_bytes``.

    The partition depends on the shape only (float64 itemsize is assumed for
    every input dtype), never on ``n_jobs`` or on the memory layout.

    Examples
    --------
    >>> row_blocks(5, 1, block_bytes=16)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    rows = rows_per_block(n_features, block_bytes)
    return [slice(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows)]


_MIN_BLOCKS_PER_THREAD = 4
_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    """One pool for the process, made on first use (starting threads on every
    call costs more than a small batch takes); a forked child makes its own."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, 2))
            _pool_pid = os.getpid()
        return _pool


def threads_for(n_blocks: int, n_jobs: int | None) -> int:
    """How many threads :func:`map_blocks` uses for ``n_blocks`` blocks.

    Threads pay off only with several blocks each: between its NumPy calls a
    thread needs the GIL, and waiting for it costs more than a small batch.
    """
    most = n_blocks // _MIN_BLOCKS_PER_THREAD
    return 1 if most < 2 else min(effective_n_jobs(n_jobs), most)


def map_blocks(func, blocks: list, n_jobs: int | None) -> list:
    """``[func(b) for b in blocks]``, spread over threads, results in order.

    Threads (from one pool per process) are used only when ``n_jobs`` allows
    two or more and each gets at least ``_MIN_BLOCKS_PER_THREAD`` blocks;
    each takes one contiguous run of blocks (a static schedule: one task per
    thread, so the pool costs nothing per block).  ``func`` sees the same
    blocks however many threads run it, so the results do not depend on
    ``n_jobs``.
    """
    n_threads = threads_for(len(blocks), n_jobs)
    if n_threads <= 1:
        return [func(block) for block in blocks]
    bounds = np.linspace(0, len(blocks), n_threads + 1).astype(int)
    runs = [blocks[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    results = _thread_pool().map(lambda run: [func(block) for block in run], runs)
    return [r for run in results for r in run]


def _careful_moments(X: np.ndarray, w: np.ndarray | None) -> Moments:
    """Moments that neither overflow nor mind NaN; the slow, safe path.

    Each value is multiplied by its proportion ``p_i = w_i / m_j`` of the
    total weight before it is summed, so no partial sum exceeds the largest
    value in magnitude, and each squared deviation is formed as
    ``(p_i d_i) d_i``, which overflows only where the variance itself is not
    representable.
    """
    present = ~np.isnan(X)
    W = present.astype(np.float64)
    if w is not None:
        W *= w[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
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


def _unit_scale(sample_weight: np.ndarray | None) -> tuple:
    """Weights times a power of two that brings the largest into [0.5, 1).

    Exact (the moments do not change), but tiny weights no longer underflow
    when multiplied with the data; returns the scaled weights and the
    exponent that restores their sum.
    """
    if sample_weight is None or sample_weight.size == 0:
        return sample_weight, 0
    largest = float(sample_weight.max())
    if largest == 0:
        return sample_weight, 0
    exponent = int(np.frexp(largest)[1])
    if exponent == 0:
        return sample_weight, 0
    return np.ldexp(sample_weight, -exponent), exponent


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
        recomputed by a careful path that cannot overflow.

    Examples
    --------
    >>> import numpy as np
    >>> m = block_moments(np.array([[1.0, 2.0], [3.0, np.nan]]))
    >>> m.weight.tolist(), m.mean.tolist(), m.var.tolist()
    ([2.0, 1.0], [2.0, 2.0], [1.0, 0.0])
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n_rows, n_features = X.shape
    sample_weight, exponent = _unit_scale(sample_weight)
    if exponent:
        moments = block_moments(X, sample_weight)
        return moments._replace(weight=np.ldexp(moments.weight, exponent))
    w = np.ones(n_rows) if sample_weight is None else sample_weight
    total = float(n_rows) if sample_weight is None else float(w.sum())
    if total == 0:
        raise_if_infinite(X)
        return _careful_moments(X, w)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = (w @ X) / total
        d = X - mean
        correction = (w @ d) / total
        np.multiply(d, d, out=d)
        var = (w @ d) / total - correction * correction
        mean += correction
        bad = ~np.isfinite(mean + var)
    if bad.any():
        raise_if_infinite(X, np.flatnonzero(bad))
        safe = _careful_moments(X[:, bad], sample_weight)
        weight = np.full(n_features, total)
        weight[bad], mean[bad], var[bad] = safe
    else:
        weight = np.full(n_features, total)
    np.maximum(var, 0.0, out=var)
    return Moments(weight, mean, var)


def merge_moments(a: Moments, b: Moments) -> Moments:
    """Merge the moments of two disjoint sets of rows (Chan et al., 1983).

    With ``m = m_a + m_b``, ``p_a = m_a / m``, ``p_b = m_b / m`` and
    ``delta = mu_b - mu_a``::

        mu = mu_a + p_b delta
        s2 = p_a s2_a + p_b s2_b + (p_a delta)(p_b delta)

    which is exact in exact arithmetic and, written with proportions, does
    not overflow where the result is representable.

    Examples
    --------
    >>> import numpy as np
    >>> one = lambda w, mu, s2: Moments(np.array([w]), np.array([mu]), np.array([s2]))
    >>> merge_moments(one(1.0, 0.0, 0.0), one(1.0, 2.0, 0.0))
    Moments(weight=array([2.]), mean=array([1.]), var=array([1.]))
    """
    weight = a.weight + b.weight
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p_a = a.weight / weight
        p_b = b.weight / weight
        delta = b.mean - a.mean
        mean = a.mean + p_b * delta
        wide = ~np.isfinite(delta)
        if wide.any():
            mean[wide] = p_a[wide] * a.mean[wide] + p_b[wide] * b.mean[wide]
        var = p_a * a.var + p_b * b.var + (p_a * delta) * (p_b * delta)
    only_a = b.weight == 0
    only_b = a.weight == 0
    mean = np.where(only_a, a.mean, np.where(only_b, b.mean, mean))
    var = np.where(only_a, a.var, np.where(only_b, b.var, var))
    return Moments(weight, mean, var)


def reduce_moments(parts: list) -> Moments:
    """Merge a list of moments left to right, in their given order."""
    total = parts[0]
    for part in parts[1:]:
        total = merge_moments(total, part)
    return total


def snap_constant(moments: Moments, n_rows: int, xp=np) -> Moments:
    """Set to exactly 0 the variances that are indistinguishable from 0.

    A variance below the rounding error of its computation,
    ``s2 <= n eps s2 + (n mu eps)^2`` with ``n`` the rows per block (the
    bound scikit-learn's ``StandardScaler`` uses to detect constant features),
    comes from a constant feature and is set to 0.  ``xp`` is the array
    namespace of ``moments`` (NumPy by default).
    """
    var = moments.var
    eps = _EPS if xp is np else float(xp.finfo(var.dtype).eps)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = n_rows * eps * var + (n_rows * moments.mean * eps) ** 2
        constant = (var <= bound) & xp.isfinite(var)
    if xp is np:
        return moments._replace(var=np.where(constant, 0.0, var)) if constant.any() else moments
    return moments._replace(var=xp.where(constant, xp.zeros_like(var), var))


def aligned_empty(n: int, align: int = 64) -> np.ndarray:
    """An uninitialised float64 vector whose data starts on an ``align``-byte
    boundary, so BLAS kernels take the same path (and round the same way) on
    every buffer."""
    raw = np.empty(n + align // 8, dtype=np.float64)
    offset = (-raw.ctypes.data % align) // 8
    return raw[offset : offset + n]


_blas_controller = None


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def _single_threaded_blas():
    """BLAS on one thread, whatever ``n_jobs`` is: a multithreaded BLAS sums
    in another order, and the results must not depend on the thread count.

    The limit is process-wide, so overlapping calls (a threaded grid search)
    share it: the first to enter sets it, the last to leave restores it.
    OpenBLAS may ignore a limit set from a thread other than the main one
    once the main thread has set one; the sums are then still correct, but
    their last bits may vary with the BLAS thread count.
    """
    global _blas_controller, _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController()
            _blas_limiter = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


#: A shifted sum is trusted when the shift is within 2**10 standard
#: deviations of the mean; otherwise the column is recomputed block by block.
_MAX_SHIFT_RATIO2 = float(2**20)


def _shifted_sums(X, sample_weight, shift, blocks, n_jobs):
    """Per block, ``(sum w d, sum w d^2)`` with ``d = x - shift``, in block order."""
    n_features = X.shape[1]
    rows = blocks[0].stop - blocks[0].start
    # A C-contiguous float64 block is subtracted as one flat vector against a
    # tiled shift: the same values as the broadcast, without its short loops.
    flat = X.dtype == np.float64 and X.flags.c_contiguous
    tile = np.tile(shift, rows) if flat else None
    ones = aligned_empty(rows)
    ones.fill(1.0)
    local = threading.local()

    def one(block):
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = aligned_empty(rows * n_features)
        k = block.stop - block.start
        d = buf[: k * n_features]
        d2 = d.reshape(k, n_features)
        w = ones[:k] if sample_weight is None else sample_weight[block]
        with np.errstate(over="ignore", invalid="ignore"):  # errstate is per thread
            if flat:
                np.subtract(X[block].reshape(-1), tile[: k * n_features], out=d)
            else:
                np.subtract(X[block], shift, out=d2)
            s1 = w @ d2
            np.multiply(d, d, out=d)
            return s1, w @ d2

    return map_blocks(one, blocks, n_jobs)


def _shifted_moments(parts, shift, weight) -> tuple:
    """Mean and variance from the per-block ``(sum w d, sum w d^2)`` of
    ``d = x - shift``, summed in block order::

        mu = shift + S1 / m          s2 = S2 / m - (S1 / m)^2

    Returns ``(mu, s2, S1 / m)``; ``s2`` is not clipped at 0, and overflow or
    a zero ``weight`` gives inf / NaN without a warning.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s1 = parts[0][0].copy()
        s2 = parts[0][1].copy()
        for p1, p2 in parts[1:]:
            s1 += p1
            s2 += p2
        m1 = s1 / weight
        return shift + m1, s2 / weight - m1 * m1, m1


def _refine(X, sample_weight, columns, moments, blocks, n_jobs):
    """One more pass over ``columns``, shifted by their (merged) mean.

    Block moments merged with Chan's formula carry each block mean rounded
    to ``ulp(mean)``, which costs about ``ulp(mean) |delta| / s2`` of the
    variance per merge (1e-9 for ``1e9 + N(0, 1)`` data in 500-row blocks).
    Summing ``w d`` and ``w d^2`` with ``d = x - K`` for ``K`` that mean
    (NaN-aware) is accurate to a few ``eps``.  Where these sums overflow,
    the merged moments are kept.
    """
    K = np.where(moments.weight > 0, moments.mean, 0.0)

    def sums(block):
        xb = np.asarray(X[block][:, columns], dtype=np.float64)
        present = ~np.isnan(xb)
        W = present.astype(np.float64)
        if sample_weight is not None:
            W *= sample_weight[block][:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            d = np.where(present, xb - K, 0.0)
            Wd = W * d
            return Wd.sum(axis=0), (Wd * d).sum(axis=0)

    m = moments.weight
    mean, var, _ = _shifted_moments(map_blocks(sums, blocks, n_jobs), K, m)
    good = (m > 0) & np.isfinite(mean) & np.isfinite(var)
    return Moments(
        m,
        np.where(good, mean, moments.mean),
        np.where(good, np.maximum(var, 0.0), moments.var),
    )


def dense_moments(
    X: np.ndarray,
    sample_weight: np.ndarray | None = None,
    n_jobs: int | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Moments:
    """Moments of a dense 2-D array: one pass over the data, more for hard columns.

    A batch that fits in one block gets :func:`block_moments`.  A larger one
    is read block by block, in cache: each block contributes ``sum w d`` and
    ``sum w d^2`` with ``d = x - K``, where the shift ``K`` is the (corrected
    two-pass) mean of the first block (which is read twice), and::

        mu = K + S1 / m          s2 = S2 / m - (S1 / m)^2

    This is the corrected two-pass formula with the shift ``K`` in place of a
    first pass; its relative error is about ``eps (1 + (mu - K)^2 / s2)``,
    and since ``s2 >= (m_1 / m) (mu_1 - mu)^2`` that is at most
    ``eps (1 + m / m_1)``.  A column whose ``(mu - K)^2`` exceeds ``2^20 s2``
    anyway, or that meets NaN or overflow, is recomputed block by block with
    :func:`block_moments`, merged with :func:`merge_moments`, and refined by
    one more shifted pass around the merged mean (``_refine``).  Either way,
    variances within rounding of 0 are then set to 0 (:func:`snap_constant`,
    ``n`` the rows of one block).

    The block partition depends only on the shape, no block's result depends
    on the thread that computes it (BLAS runs on one thread in the shifted
    pass), and blocks are merged in order, so the result is the same, bit for
    bit, for every ``n_jobs`` and every memory layout.
    """
    n_rows, n_features = X.shape
    sample_weight, exponent = _unit_scale(sample_weight)
    if exponent:
        moments = dense_moments(X, sample_weight, n_jobs, block_bytes)
        return moments._replace(weight=np.ldexp(moments.weight, exponent))
    blocks = row_blocks(n_rows, n_features, block_bytes)
    block_rows = blocks[0].stop - blocks[0].start
    if len(blocks) == 1:
        return snap_constant(block_moments(X, sample_weight), block_rows)

    def weights(block):
        return None if sample_weight is None else sample_weight[block]

    with _single_threaded_blas():
        first = block_moments(X[blocks[0]], weights(blocks[0]))
        shift = np.where(first.weight > 0, first.mean, 0.0)
        parts = _shifted_sums(X, sample_weight, shift, blocks, n_jobs)
    total = float(n_rows) if sample_weight is None else float(sample_weight.sum())
    weight = np.full(n_features, total)
    mean, var, m1 = _shifted_moments(parts, shift, total)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~(np.isfinite(mean) & np.isfinite(var) & (m1 * m1 <= _MAX_SHIFT_RATIO2 * var))
    if total == 0:
        bad[:] = True
    if bad.any():
        columns = np.flatnonzero(bad)
        raise_if_infinite(X, columns)

        def careful(block):
            return block_moments(X[block][:, columns], weights(block))

        with _single_threaded_blas():
            safe = reduce_moments(map_blocks(careful, blocks, n_jobs))
        safe = _refine(X, sample_weight, columns, safe, blocks, n_jobs)
        weight[bad], mean[bad], var[bad] = safe
    return snap_constant(Moments(weight, mean, np.maximum(var, 0.0)), block_rows)


def sparse_moments(X, sample_weight: np.ndarray | None = None) -> Moments:
    """Moments of a SciPy CSR/CSC matrix or array, implicit zeros included."""
    from sklearn.utils.sparsefuncs import mean_variance_axis

    mean, var, weight = mean_variance_axis(
        X.astype(np.float64), axis=0, weights=sample_weight, return_sum_weights=True
    )
    weight = np.asarray(weight, dtype=np.float64)
    nan = np.isnan(X.data)
    if nan.any():
        # NaN weight is subtracted from the total, which leaves rounding dust
        # (not 0) in a column of NaN only: find those columns by counting.
        coo = X.tocoo()
        positive = np.ones(X.shape[0], bool) if sample_weight is None else sample_weight > 0
        nan_rows = np.isnan(coo.data) & positive[coo.row]
        missing = np.bincount(coo.col[nan_rows], minlength=X.shape[1])
        weight = np.where(positive.sum() - missing == 0, 0.0, weight)
    mean = np.where(weight > 0, mean, 0.0).astype(np.float64)
    var = np.where(weight > 0, np.maximum(var, 0.0), 0.0).astype(np.float64)
    return snap_constant(Moments(weight, mean, var), X.shape[0])


def unbiased_variance(moments: Moments, xp=np):
    """``s2 * m / (m - 1)`` (Bessel's correction); NaN where ``m <= 1``."""
    m = moments.weight
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = moments.var * (m / (m - 1))
    return xp.where(m > 1, corrected, xp.full_like(corrected, float("nan")))


def averaging_factor(n_updates, momentum: float | None, init: str = "debiased", xp=np, dtype=None):
    """The step ``alpha`` of the update that is a statistic's ``n_updates``-th.

    * ``momentum=None``: ``alpha = 1 / t``, the cumulative average.
    * ``init="keras"``: ``alpha = 1 - momentum``, the Keras update
      ``S <- momentum S + (1 - momentum) b``.
    * ``init="debiased"``: ``alpha = (1 - momentum) / W_t`` with
      ``W_t = momentum W_{t-1} + (1 - momentum) = 1 - momentum^t``, the
      exponential average started at 0 and divided by its accumulated weight.

    ``n_updates`` is an integer array of the namespace ``xp``; ``alpha`` is of
    ``dtype`` (default: the namespace's highest float precision on the device).

    Examples
    --------
    >>> import numpy as np
    >>> averaging_factor(np.array([1, 2, 4]), None).tolist()
    [1.0, 0.5, 0.25]
    >>> averaging_factor(np.array([1, 2]), 0.5).tolist()
    [1.0, 0.6666666666666666]
    >>> averaging_factor(np.array([1, 2]), 0.5, "keras").tolist()
    [0.5, 0.5]
    """
    if xp is np:
        t = np.asarray(n_updates, dtype=np.float64 if dtype is None else dtype)
    else:
        if dtype is None:
            from sklearn.utils._array_api import _max_precision_float_dtype, device

            dtype = _max_precision_float_dtype(xp, device(n_updates))
        t = xp.astype(n_updates, dtype)
    if momentum is None:
        return 1.0 / t
    step = 1.0 - momentum
    if init == "keras":
        return xp.full_like(t, step)
    return step / (1.0 - momentum**t)


def move_toward(S, b, alpha, xp=np):
    """``S + alpha * (b - S)``; exactly ``b`` where ``alpha == 1``.

    Where ``b - S`` overflows (``S`` and ``b`` of opposite signs near the
    float64 limit) the equivalent ``(1 - alpha) S + alpha b`` is used, which
    stays finite for finite inputs.
    """
    if xp is np:  # the same steps, with NumPy's cheaper array methods
        with np.errstate(over="ignore", invalid="ignore"):
            out = S + alpha * (b - S)
            if not np.isfinite(out).all():
                out = np.where(np.isfinite(out), out, (1.0 - alpha) * S + alpha * b)
        exact = alpha == 1.0
        return np.where(exact, b, out) if exact.any() else out
    out = S + alpha * (b - S)
    wide = ~xp.isfinite(out)
    if xp.any(wide):
        out = xp.where(wide, (1.0 - alpha) * S + alpha * b, out)
    return xp.where(alpha == 1.0, b, out)


def moving_update(S, n_updates, b, mask, momentum: float | None, init: str, xp=np) -> tuple:
    """One step of a moving statistic: ``S <- S + alpha (b - S)`` where ``mask``.

    Parameters
    ----------
    S : array of shape (n_features,)
        The moving statistic.
    n_updates : array of int of shape (n_features,)
        How many batches have updated each feature's ``S`` so far.
    b : array of shape (n_features,)
        The batch statistic (ignored where ``mask`` is False).
    mask : array of bool of shape (n_features,)
        The features this batch updates.
    momentum, init
        As in :func:`averaging_factor`.
    xp : array namespace, default=numpy
        The namespace of the arrays.

    Returns
    -------
    S_new, n_updates_new : array
        New arrays; the inputs are not modified.

    Examples
    --------
    >>> import numpy as np
    >>> S, t = moving_update(np.zeros(2), np.zeros(2, int), np.array([4.0, 8.0]),
    ...                      np.array([True, False]), None, "debiased")
    >>> S.tolist(), t.tolist()
    ([4.0, 0.0], [1, 0])
    """
    if mask.all() if xp is np else xp.all(mask):
        t = n_updates + 1
        return move_toward(S, b, averaging_factor(t, momentum, init, xp, S.dtype), xp), t
    t = n_updates + xp.astype(mask, n_updates.dtype)
    alpha = averaging_factor(xp.maximum(t, xp.ones_like(t)), momentum, init, xp, S.dtype)
    moved = move_toward(S, xp.where(mask, b, S), alpha, xp)
    return xp.where(mask, moved, S), t
