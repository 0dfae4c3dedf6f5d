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

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from joblib import effective_n_jobs

__all__ = [
    "Moments",
    "averaging_factor",
    "block_moments",
    "dense_moments",
    "merge_moments",
    "move_toward",
    "reduce_moments",
    "row_blocks",
    "snap_constant",
    "sparse_moments",
    "unbiased_variance",
]

#: Bytes of float64 data per row block.  Fixed (it never depends on
#: ``n_jobs``), so results are identical, bit for bit, for every ``n_jobs``.
BLOCK_BYTES = 1 << 18

_EPS = np.finfo(np.float64).eps


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


def row_blocks(n_rows: int, n_features: int, block_bytes: int = BLOCK_BYTES) -> list:
    """Partition ``range(n_rows)`` into consecutive slices of about ``block_bytes``.

    The partition depends on the shape only (float64 itemsize is assumed for
    every input dtype), never on ``n_jobs`` or on the memory layout.

    Examples
    --------
    >>> row_blocks(5, 1, block_bytes=16)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    rows = max(1, block_bytes // (8 * max(n_features, 1)))
    return [slice(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows)]


def map_blocks(func, blocks: list, n_jobs: int | None) -> list:
    """``[func(b) for b in blocks]``, spread over threads, results in order."""
    n_threads = min(effective_n_jobs(n_jobs), len(blocks))
    if n_threads <= 1:
        return [func(block) for block in blocks]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        return list(pool.map(func, blocks))


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
        var = (Pd * d).sum(axis=0) - correction * correction
    mean = mean + correction
    empty = weight == 0
    mean[empty] = 0.0
    var[empty] = 0.0
    return Moments(weight, mean, np.maximum(var, 0.0))


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
    with np.errstate(over="ignore", invalid="ignore"):
        if sample_weight is None:
            weight = np.full(n_features, float(n_rows))
            mean = X.sum(axis=0) / n_rows
            d = X - mean
            correction = d.sum(axis=0) / n_rows
            var = np.einsum("ij,ij->j", d, d) / n_rows - correction * correction
        else:
            w = sample_weight[:, None]
            total = float(sample_weight.sum())
            weight = np.full(n_features, total)
            if total > 0:
                mean = (X * w).sum(axis=0) / total
                d = X - mean
                wd = d * w
                correction = wd.sum(axis=0) / total
                var = np.einsum("ij,ij->j", wd, d) / total - correction * correction
            else:
                mean = np.zeros(n_features)
                correction = var = mean
                if np.isnan(X).any():  # NaN never counts, even at weight 0
                    return _careful_moments(X, sample_weight)
        mean = mean + correction
    bad = ~(np.isfinite(mean) & np.isfinite(var))
    if bad.any():
        safe = _careful_moments(X[:, bad], sample_weight)
        weight[bad], mean[bad], var[bad] = safe
    return Moments(weight, mean, np.maximum(var, 0.0))


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


def snap_constant(moments: Moments, n_rows: int) -> Moments:
    """Set to exactly 0 the variances that are indistinguishable from 0.

    A variance below the rounding error of its computation,
    ``s2 <= n eps s2 + (n mu eps)^2`` with ``n`` the rows per block (the
    bound scikit-learn's ``StandardScaler`` uses to detect constant features),
    comes from a constant feature and is set to 0.
    """
    var = moments.var
    bound = n_rows * _EPS * var + (n_rows * moments.mean * _EPS) ** 2
    with np.errstate(over="ignore", invalid="ignore"):
        constant = var <= bound
    return moments._replace(var=np.where(constant, 0.0, var))


def dense_moments(
    X: np.ndarray,
    sample_weight: np.ndarray | None = None,
    n_jobs: int | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Moments:
    """Moments of a dense 2-D array, one row block at a time.

    Blocks are computed in cache (in threads when ``n_jobs`` allows) and merged
    in block order, so the result is the same, bit for bit, for every
    ``n_jobs`` and every memory layout.
    """
    blocks = row_blocks(X.shape[0], X.shape[1], block_bytes)

    def one(block):
        w = None if sample_weight is None else sample_weight[block]
        return block_moments(X[block], w)

    moments = reduce_moments(map_blocks(one, blocks, n_jobs))
    return snap_constant(moments, blocks[0].stop - blocks[0].start)


def sparse_moments(X, sample_weight: np.ndarray | None = None) -> Moments:
    """Moments of a SciPy CSR/CSC matrix or array, implicit zeros included."""
    from sklearn.utils.sparsefuncs import mean_variance_axis

    mean, var, weight = mean_variance_axis(
        X.astype(np.float64), axis=0, weights=sample_weight, return_sum_weights=True
    )
    weight = np.asarray(weight, dtype=np.float64)
    mean = np.where(weight > 0, mean, 0.0).astype(np.float64)
    var = np.where(weight > 0, np.maximum(var, 0.0), 0.0).astype(np.float64)
    return snap_constant(Moments(weight, mean, var), X.shape[0])


def unbiased_variance(moments: Moments) -> np.ndarray:
    """``s2 * m / (m - 1)`` (Bessel's correction); NaN where ``m <= 1``."""
    m = moments.weight
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m > 1, moments.var * (m / (m - 1)), np.nan)


def averaging_factor(
    n_updates: np.ndarray, momentum: float | None, init: str = "debiased"
) -> np.ndarray:
    """The step ``alpha`` of the update that is a statistic's ``n_updates``-th.

    * ``momentum=None``: ``alpha = 1 / t``, the cumulative average.
    * ``init="keras"``: ``alpha = 1 - momentum``, the Keras update
      ``S <- momentum S + (1 - momentum) b``.
    * ``init="debiased"``: ``alpha = (1 - momentum) / W_t`` with
      ``W_t = momentum W_{t-1} + (1 - momentum) = 1 - momentum^t``, the
      exponential average started at 0 and divided by its accumulated weight.

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
    t = np.asarray(n_updates, dtype=np.float64)
    if momentum is None:
        return 1.0 / t
    step = 1.0 - momentum
    if init == "keras":
        return np.full(t.shape, step)
    return step / (1.0 - momentum**t)


def move_toward(S: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``S + alpha * (b - S)``; exactly ``b`` where ``alpha == 1``.

    Where ``b - S`` overflows (``S`` and ``b`` of opposite signs near the
    float64 limit) the equivalent ``(1 - alpha) S + alpha b`` is used, which
    stays finite for finite inputs.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = S + alpha * (b - S)
        wide = ~np.isfinite(out)
        if wide.any():
            out[wide] = (1.0 - alpha[wide]) * S[wide] + alpha[wide] * b[wide]
    return np.where(alpha == 1.0, b, out)
