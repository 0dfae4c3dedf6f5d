"""How the moving statistics follow the batch moments: one table of modes.

A batch ``B`` arrives as its per-feature :class:`~skbn._stats.Moments`
(weight ``m``, mean ``mu``, biased variance ``s2``).  Every mode turns the
current :class:`Averages` and those moments into new :class:`Averages`; the
table :data:`MODES` holds one entry per mode, and :func:`mode_of` picks the
entry a ``momentum`` value selects.  Adding a mode means adding an entry.

Per-statistic modes move each statistic ``S`` (mean or variance) toward its
batch value ``b`` by a step ``alpha`` (one factor serves every such mode, as
in PyTorch's ``BatchNorm``)::

    S_j <- S_j + alpha_j * (b_j - S_j)

with ``t`` the number of batches that have updated that statistic:

============  =====================  ==========================================
mode          momentum               alpha
============  =====================  ==========================================
last          ``0``                  ``1`` (the statistics of the last batch)
exponential   float in (0, 1)        ``1 - momentum`` (``init="keras"``), or
                                     ``(1 - momentum) / (1 - momentum**t)``
                                     (``init="debiased"``)
cumulative    ``None``               ``1 / t``
============  =====================  ==========================================

The joint mode ``pooled`` (``momentum="pooled"``) merges the batch into the
exact weighted mean and biased variance of every value seen (Chan, Golub and
LeVeque), and reports the variance times ``n / (n - 1)`` with
``unbiased=True``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import _compat
from ._stats import Moments, merge_moments, unbiased_variance

try:
    from ._kernels import plain_step as _plain_step
except ImportError:  # installed without a C compiler: update() does the same work
    _plain_step = None

__all__ = [
    "MODES",
    "Averages",
    "Mode",
    "averaging_factor",
    "mode_of",
    "move_toward",
    "moving_update",
    "plain_update",
    "start",
    "uniform_value",
    "update",
]


class Averages(NamedTuple):
    """What the averaging rule keeps per feature (all arrays of shape (n_features,)).

    Attributes
    ----------
    mean, var : array of float
        The moving mean and moving variance.
    mean_count, var_count : array of int
        How many batches have updated each statistic (``t``).
    weight : array of float
        The total weight (number of samples, or sum of sample weights) seen.
    pooled_var : array of float
        The biased variance of every value seen (pooled mode only; 0 otherwise).
    residual : array of float
        What rounding the pooled mean to float64 lost (pooled mode only; 0
        otherwise): merges take the mean to about ``eps^2``.
    """

    mean: np.ndarray
    var: np.ndarray
    mean_count: np.ndarray
    var_count: np.ndarray
    weight: np.ndarray
    pooled_var: np.ndarray
    residual: np.ndarray


def start(n_features: int, xp=np, dtype=None, device=None) -> Averages:
    """The starting averages: mean 0, variance 1 (as in Keras), nothing counted."""
    if xp is np:
        zeros, count = np.zeros(n_features), np.zeros(n_features, dtype=np.int64)
        ones = np.ones(n_features)
        return Averages(zeros, ones, count, count, zeros.copy(), zeros.copy(), zeros.copy())
    zeros = xp.zeros(n_features, dtype=dtype, device=device)
    count = xp.zeros(n_features, dtype=xp.int64, device=device)
    ones = xp.ones(n_features, dtype=dtype, device=device)
    return Averages(zeros, ones, count, count, zeros, zeros, zeros)


def averaging_factor(n_updates, momentum: float | None, init: str = "debiased", xp=np, dtype=None):
    """The step ``alpha`` of the update that is a statistic's ``n_updates``-th.

    * ``momentum=None``: ``alpha = 1 / t``, the cumulative average.
    * ``init="keras"``: ``alpha = 1 - momentum``, the Keras update
      ``S <- momentum S + (1 - momentum) b``.
    * ``init="debiased"``: ``alpha = (1 - momentum) / W_t`` with
      ``W_t = momentum W_{t-1} + (1 - momentum) = 1 - momentum^t``, the
      exponential average started at 0 and divided by its accumulated weight.
      ``W_t`` is computed as ``-expm1(t log1p(momentum - 1))``, accurate to a
      few ``eps`` even for a momentum within ``1e-15`` of 1, where
      ``1 - momentum**t`` would cancel.

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
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        # int64 counts promote to float64 in the arithmetic below: no cast needed
        t = np.asarray(n_updates) if dtype == np.float64 else np.asarray(n_updates, dtype)
    else:
        if dtype is None:
            from sklearn.utils._array_api import _max_precision_float_dtype, device

            dtype = _max_precision_float_dtype(xp, device(n_updates))
        t = xp.astype(n_updates, dtype)
    if momentum is None:
        return 1.0 / t
    step = 1.0 - momentum  # exact for momentum in [0.5, 1) (Sterbenz)
    if init == "keras" or momentum == 0:
        return np.full(t.shape, step, dtype) if xp is np else xp.full_like(t, step)
    # step / -expm1(...) as -step / expm1(...): negation is exact, one call fewer
    return -step / xp.expm1(t * _log_momentum(momentum))


@functools.lru_cache(maxsize=64)
def _log_momentum(momentum: float) -> float:
    """``log(momentum)``, as ``log1p`` of the exact ``momentum - 1`` near 1."""
    with np.errstate(divide="ignore"):
        return float(np.log1p(momentum - 1.0))


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


#: Factors are computed (and kept) for this many consecutive counts at a time.
_FACTOR_BLOCK = 1024


def _shared_factor(mode: Mode, t: int, momentum, init: str) -> float:
    """``alpha`` of the ``t``-th update when every feature shares the count
    ``t``: the same bits as :func:`averaging_factor` of an array of counts,
    taken from a cached block of consecutive counts (one NumPy call per
    ``_FACTOR_BLOCK`` batches of a stream instead of several per batch)."""
    block, index = divmod(t - 1, _FACTOR_BLOCK)
    return _factor_block(mode, momentum, init, block)[index]


@functools.lru_cache(maxsize=64)
def _factor_block(mode: Mode, momentum, init: str, block: int) -> np.ndarray:
    counts = np.arange(block * _FACTOR_BLOCK + 1, (block + 1) * _FACTOR_BLOCK + 1)
    alpha = mode.factor(counts, momentum, init, np, np.dtype(np.float64))
    alpha.flags.writeable = False
    return alpha


def uniform_value(a: np.ndarray):
    """The value every element of the NumPy array ``a`` holds, else None.

    Compares bytes, without a NumPy call (this runs per mini-batch): right
    for integers and for floats without NaN or signed zeros.
    """
    raw = a.tobytes()
    if not raw or raw != raw[: a.itemsize] * a.shape[0]:
        return None
    return a[0]


def moving_update(S, n_updates, b, mask, factor: Callable, xp=np) -> tuple:
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
    factor : callable
        ``factor(t)``: the step ``alpha`` of each statistic's ``t``-th update.
    xp : array namespace, default=numpy

    Returns
    -------
    S_new, n_updates_new : array
        New arrays; the inputs are not modified.

    Examples
    --------
    >>> import numpy as np
    >>> S, t = moving_update(np.zeros(2), np.zeros(2, int), np.array([4.0, 8.0]),
    ...                      np.array([True, False]), lambda t: 1.0 / t)
    >>> S.tolist(), t.tolist()
    ([4.0, 0.0], [1, 0])
    """
    if mask.all() if xp is np else xp.all(mask):
        t = n_updates + 1
        return move_toward(S, b, factor(t), xp), t
    t = n_updates + _compat.astype(xp, mask, n_updates.dtype)
    alpha = factor(xp.maximum(t, xp.ones_like(t)))
    moved = move_toward(S, xp.where(mask, b, S), alpha, xp)
    return xp.where(mask, moved, S), t


@dataclass(frozen=True)
class Mode:
    """One averaging mode.

    Attributes
    ----------
    name : str
    selects : callable
        ``selects(momentum)``: whether this mode is the one ``momentum`` means.
    factor : callable or None
        Per-statistic modes: ``factor(t, momentum, init, xp, dtype)``, the step
        ``alpha`` of a statistic's ``t``-th update.
    merge : callable or None
        Joint modes: ``merge(averages, moments, unbiased, xp)`` -> Averages.
    keyword : str or None
        The string value of ``momentum`` that selects the mode, if any.
    """

    name: str
    selects: Callable
    factor: Callable | None = None
    merge: Callable | None = None
    keyword: str | None = None


def _is_float(momentum) -> bool:
    return momentum is not None and not isinstance(momentum, str)


def _pooled(avg: Averages, batch: Moments, unbiased: bool, xp=np) -> Averages:
    """Merge ``batch`` into the pooled moments of everything seen (Chan et al.)."""
    merged = merge_moments(Moments(avg.weight, avg.mean, avg.pooled_var, avg.residual), batch, xp)
    updated = batch.weight > 0
    if unbiased:
        var = unbiased_variance(merged, xp)
        var_updated = updated & (merged.weight > 1)
    else:
        var, var_updated = merged.var, updated
    one = _compat.astype(xp, updated, avg.mean_count.dtype)
    return Averages(
        xp.where(updated, merged.mean, avg.mean),
        xp.where(var_updated, var, avg.var),
        avg.mean_count + one,
        avg.var_count + _compat.astype(xp, var_updated, avg.var_count.dtype),
        merged.weight,
        xp.where(updated, merged.var, avg.pooled_var),
        merged.residual if merged.residual is not None else avg.residual,
    )


#: The averaging modes, in the order they are tried by :func:`mode_of`.
MODES = {
    "last": Mode(
        "last",
        selects=lambda m: _is_float(m) and m == 0,
        factor=lambda t, m, init, xp, dtype: averaging_factor(t, 0.0, "keras", xp, dtype),
    ),
    "exponential": Mode(
        "exponential",
        selects=_is_float,
        factor=lambda t, m, init, xp, dtype: averaging_factor(t, float(m), init, xp, dtype),
    ),
    "cumulative": Mode(
        "cumulative",
        selects=lambda m: m is None,
        factor=lambda t, m, init, xp, dtype: averaging_factor(t, None, init, xp, dtype),
    ),
    "pooled": Mode("pooled", selects=lambda m: m == "pooled", merge=_pooled, keyword="pooled"),
}

#: The string values ``momentum`` accepts (for the parameter constraints).
KEYWORDS = frozenset(mode.keyword for mode in MODES.values() if mode.keyword)


def mode_of(momentum) -> Mode:
    """The entry of :data:`MODES` that ``momentum`` selects.

    Examples
    --------
    >>> [mode_of(m).name for m in (0, 0.99, None, "pooled")]
    ['last', 'exponential', 'cumulative', 'pooled']
    """
    try:
        return _MODE_OF[type(momentum), momentum]
    except (KeyError, TypeError):  # not seen yet, or unhashable
        pass
    for mode in MODES.values():
        if mode.selects(momentum):
            if len(_MODE_OF) < 256:
                try:
                    _MODE_OF[type(momentum), momentum] = mode
                except TypeError:
                    pass
            return mode
    raise ValueError(f"momentum={momentum!r} selects no averaging mode.")


#: mode_of's answers so far, by (type, value) of momentum (a mini-batch asks
#: once per call).
_MODE_OF: dict = {}


def update(
    avg: Averages, batch: Moments, *, momentum, init: str, unbiased: bool, xp=np
) -> Averages:
    """The averages after one batch whose per-feature moments are ``batch``.

    A feature with no weight in the batch is not updated by it; with
    ``unbiased=True`` a feature with weight ``<= 1`` updates its mean but not
    its variance.  Nothing is modified in place.
    """
    mode = mode_of(momentum)
    if mode.merge is not None:
        return mode.merge(avg, batch, unbiased, xp)
    dtype = avg.mean.dtype

    def factor(t):
        return mode.factor(t, momentum, init, xp, dtype)

    weight = avg.weight + batch.weight
    if (
        xp is np
        and not unbiased
        and avg.mean_count is avg.var_count
        and np.count_nonzero(batch.weight) == batch.weight.shape[0]  # weights are >= 0
    ):
        # Every feature updated, both statistics sharing their counts (the
        # usual case): one factor, and the fewest NumPy calls (small batches).
        count = avg.mean_count + 1
        t = uniform_value(count)
        if t is None:
            alpha = factor(count)
            exact = np.count_nonzero(alpha == 1.0)
        else:
            alpha = _shared_factor(mode, int(t), momentum, init)
            exact = alpha == 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            mean = batch.mean - avg.mean  # S + alpha (b - S), in place
            mean *= alpha
            mean += avg.mean
            var = batch.var - avg.var
            var *= alpha
            var += avg.var
            # an inf or NaN in either makes the dot product inf or NaN (an
            # overflow in it only costs the careful forms' time)
            fine = math.isfinite(mean @ var)
        if not fine or exact:  # the careful forms
            mean = move_toward(avg.mean, batch.mean, alpha)
            var = move_toward(avg.var, batch.var, alpha)
        return Averages(mean, var, count, count, weight, avg.pooled_var, avg.residual)
    update_mean = batch.weight > 0
    if unbiased:
        batch_var, update_var = unbiased_variance(batch, xp), batch.weight > 1
    else:
        batch_var, update_var = batch.var, update_mean
    mean, mean_count = moving_update(avg.mean, avg.mean_count, batch.mean, update_mean, factor, xp)
    var, var_count = moving_update(avg.var, avg.var_count, batch_var, update_var, factor, xp)
    if xp is np and np.array_equal(mean_count, var_count):
        var_count = mean_count  # shared again: the next batch needs one factor
    return Averages(mean, var, mean_count, var_count, weight, avg.pooled_var, avg.residual)


def plain_update(
    avg: Averages, X: np.ndarray, *, momentum, init: str, unbiased: bool
) -> Averages | None:
    """``update(avg, plain_block_moments(X), ...)`` in one compiled call.

    For the commonest mini-batch: ``X`` an aligned, C-contiguous float64
    block of at most ``BLOCK_ROWS`` rows without weights, a per-statistic
    mode, ``unbiased=False``, and every feature and both statistics at the
    same update count ``t``.  :mod:`skbn._kernels` computes the batch's
    corrected two-pass moments and then ``S + alpha (b - S)`` with the
    ``alpha`` of :data:`MODES`, the same IEEE operations as
    :func:`~skbn._stats.plain_block_moments` and :func:`update` (so the same
    bits).  None wherever that does not apply: no compiled kernels, another
    mode or count, or a block that needs more than the fast path (NaN,
    overflow, a variance within rounding of 0, an update that is not finite).
    """
    if _plain_step is None or unbiased or avg.mean_count is not avg.var_count:
        return None
    mode = mode_of(momentum)
    t = uniform_value(avg.mean_count)
    if mode.factor is None or t is None:
        return None
    alpha = _shared_factor(mode, int(t) + 1, momentum, init)
    n = X.shape[1]
    out, count = np.empty(6 * n), np.empty(n, dtype=np.int64)
    try:
        if _plain_step(X, avg.mean, avg.var, avg.weight, avg.mean_count, alpha, out, count):
            return None
    except (TypeError, ValueError, BufferError):  # a state set by hand (other dtypes,
        return None  # strides): update() reads it
    # The weight is avg.weight + n_rows: adding at most BLOCK_ROWS to a finite
    # float64 never overflows (it rounds back at the top of the range).
    mean, var, weight = out[:n], out[n : 2 * n], out[2 * n : 3 * n]
    return Averages(mean, var, count, count, weight, avg.pooled_var, avg.residual)
