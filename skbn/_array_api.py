"""The generic Array API path: batch moments and the affine map in any namespace.

NumPy input always takes the blocked kernels of :mod:`skbn._stats` and
:mod:`skbn._affine`.  With ``sklearn.set_config(array_api_dispatch=True)``,
arrays of any other Array API namespace (PyTorch tensors, CuPy,
array_api_strict, ...) take this path: the same corrected two-pass formulas,
written with the standard's functions only, computed in the input's namespace
and on its device.  Statistics are accumulated in the highest float precision
the device has (float64, or float32 where the device lacks float64, such as
Apple's MPS).
"""

from __future__ import annotations

import numpy as np

from ._stats import Moments
from ._validation import InfiniteValueError

__all__ = ["affine", "check_finite", "moments", "namespace", "stats_dtype"]


def namespace(*arrays):
    """``(xp, is_numpy, device)`` of ``arrays``: NumPy unless dispatch is on."""
    from sklearn import get_config

    if not get_config()["array_api_dispatch"]:
        return np, True, None
    from sklearn.utils._array_api import _is_numpy_namespace, get_namespace_and_device

    xp, _, device = get_namespace_and_device(*arrays)
    return xp, _is_numpy_namespace(xp), device


def namespace_of(array):
    """The Array API namespace of one (non-NumPy) array."""
    from sklearn.externals.array_api_compat import array_namespace

    return array_namespace(array)


def stats_dtype(xp, device):
    """The dtype statistics are accumulated in: float64 where the device has it."""
    from sklearn.utils._array_api import _max_precision_float_dtype

    return _max_precision_float_dtype(xp, device)


def check_finite(X, xp) -> None:
    """Raise :class:`~skbn._validation.InfiniteValueError` if ``X`` holds +/-inf."""
    infinite = xp.any(xp.isinf(X), axis=0)
    if xp.any(infinite):
        columns = [j for j in range(infinite.shape[0]) if bool(infinite[j])]
        raise InfiniteValueError(columns)


def moments(X, sample_weight, xp, device) -> Moments:
    """Weighted, NaN-aware batch moments in the namespace ``xp``.

    The careful formulas of the NumPy path (:mod:`skbn._stats`): each value
    is weighted by its proportion ``p_i = w_i / m_j`` of its column's weight
    (the weights of a column scaled by their largest first), so no sum
    overflows and no weight underflows; ``mu = sum(p x)``, ``d = x - mu``,
    ``c = sum(p d)``, ``s2 = sum((p d) d) - c^2``, mean ``mu + c``.  Columns
    whose present values are all equal get that value and a variance of 0;
    the mean is clamped to the column's range.
    """
    check_finite(X, xp)
    dtype = stats_dtype(xp, device)
    X = xp.astype(X, dtype)
    present = ~xp.isnan(X)
    W = xp.astype(present, dtype)
    if sample_weight is not None:
        W = W * xp.reshape(xp.astype(sample_weight, dtype), (-1, 1))
    zeros = xp.zeros_like(X)
    ones = xp.ones(X.shape[1], dtype=dtype, device=device)
    weight = xp.sum(W, axis=0)
    wmax = xp.max(W, axis=0) if X.shape[0] else xp.zeros_like(weight)
    W = W / xp.where(wmax > 0, wmax, ones)
    scaled = xp.sum(W, axis=0)
    P = W / xp.where(scaled > 0, scaled, ones)
    x0 = xp.where(present, X, zeros)
    mean = xp.sum(P * x0, axis=0)
    d = xp.where(present, X - mean, zeros)
    Pd = P * d
    correction = xp.sum(Pd, axis=0)
    correction = xp.where(xp.isfinite(correction), correction, xp.zeros_like(correction))
    spread = xp.sum(Pd * d, axis=0)
    var = xp.where(xp.isinf(spread), spread, spread - correction * correction)
    mean = mean + correction
    used = present & (W > 0)
    inf = xp.full_like(X, float("inf"))
    lo = xp.min(xp.where(used, X, inf), axis=0)
    hi = xp.max(xp.where(used, X, -inf), axis=0)
    has = lo <= hi
    constant = has & (lo == hi)
    mean = xp.where(has, xp.minimum(xp.maximum(mean, lo), hi), mean)
    mean = xp.where(constant, lo, mean)
    var = xp.where(constant, xp.zeros_like(var), var)
    empty = weight == 0
    mean = xp.where(empty, xp.zeros_like(mean), mean)
    var = xp.where(empty, xp.zeros_like(var), xp.maximum(var, xp.zeros_like(var)))
    return Moments(weight, mean, var)


def affine(X, shift, factor, offset, *, inverse: bool, xp):
    """``(X - shift) * factor + offset`` (or its inverse) in ``X``'s dtype.

    ``None`` leaves a term out; +/-inf in ``X`` raises
    :class:`~skbn._validation.InfiniteValueError`.
    """
    check_finite(X, xp)
    first, last = (offset, shift) if inverse else (shift, offset)

    def cast(c):
        return None if c is None else xp.astype(c, X.dtype)

    first, factor, last = cast(first), cast(factor), cast(last)
    Y = X if first is None else X - first
    Y = Y / factor if inverse else Y * factor
    return Y if last is None else Y + last
