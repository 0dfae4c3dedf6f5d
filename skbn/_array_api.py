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

from ._stats import InfiniteValueError, Moments, snap_constant

__all__ = ["affine", "check_finite", "moments", "namespace", "stats_dtype"]


def namespace(*arrays):
    """``(xp, is_numpy, device)`` of ``arrays``: NumPy unless dispatch is on."""
    from sklearn import get_config

    if not get_config()["array_api_dispatch"]:
        return np, True, None
    from sklearn.utils._array_api import _is_numpy_namespace, get_namespace_and_device

    xp, _, device = get_namespace_and_device(*arrays)
    return xp, _is_numpy_namespace(xp), device


def stats_dtype(xp, device):
    """The dtype statistics are accumulated in: float64 where the device has it."""
    from sklearn.utils._array_api import _max_precision_float_dtype

    return _max_precision_float_dtype(xp, device)


def check_finite(X, xp) -> None:
    """Raise :class:`~skbn._stats.InfiniteValueError` if ``X`` holds +/-inf."""
    infinite = xp.any(xp.isinf(X), axis=0)
    if xp.any(infinite):
        columns = [j for j in range(infinite.shape[0]) if bool(infinite[j])]
        raise InfiniteValueError(columns)


def moments(X, sample_weight, xp, device) -> Moments:
    """Weighted, NaN-aware batch moments in the namespace ``xp``.

    The corrected two-pass algorithm of :func:`skbn._stats.block_moments`:
    ``mu = sum(w x) / m``, ``d = x - mu``, ``c = sum(w d) / m``,
    ``s2 = sum(w d^2) / m - c^2``, mean ``mu + c``, over the non-NaN values.
    """
    check_finite(X, xp)
    dtype = stats_dtype(xp, device)
    X = xp.astype(X, dtype)
    present = ~xp.isnan(X)
    W = xp.astype(present, dtype)
    if sample_weight is not None:
        W = W * xp.reshape(xp.astype(sample_weight, dtype), (-1, 1))
    zeros = xp.zeros_like(X)
    weight = xp.sum(W, axis=0)
    divisor = xp.where(weight > 0, weight, xp.ones_like(weight))
    x0 = xp.where(present, X, zeros)
    mean = xp.sum(W * x0, axis=0) / divisor
    d = xp.where(present, X - mean, zeros)
    Wd = W * d
    correction = xp.sum(Wd, axis=0) / divisor
    var = xp.sum(Wd * d, axis=0) / divisor - correction * correction
    empty = weight == 0
    mean = xp.where(empty, xp.zeros_like(mean), mean + correction)
    var = xp.where(empty, xp.zeros_like(var), xp.maximum(var, xp.zeros_like(var)))
    return snap_constant(Moments(weight, mean, var), X.shape[0], xp)


def affine(X, shift, factor, offset, *, inverse: bool, xp):
    """``(X - shift) * factor + offset`` (or its inverse) in ``X``'s dtype.

    ``None`` leaves a term out; +/-inf in ``X`` raises
    :class:`~skbn._stats.InfiniteValueError`.
    """
    check_finite(X, xp)
    first, last = (offset, shift) if inverse else (shift, offset)

    def cast(c):
        return None if c is None else xp.astype(c, X.dtype)

    first, factor, last = cast(first), cast(factor), cast(last)
    Y = X if first is None else X - first
    Y = Y / factor if inverse else Y * factor
    return Y if last is None else Y + last
