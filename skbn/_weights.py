"""A fitted scaler's weights in Keras order, and the layer-equivalent arrays.

Everything here is NumPy only; the PyTorch and Keras bridges
(``skbn._torch``, ``skbn._keras``) build on it.

The weights are, in the order of Keras's ``BatchNormalization.get_weights``::

    [gamma, beta, moving_mean, moving_variance]

leaving out ``gamma`` when ``scale=False`` and ``beta`` when ``center=False``.
A layer computes, at inference::

    y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta

which is :meth:`~skbn.BatchNormScaler.transform` except in two places, where
:func:`layer_arrays` substitutes an equivalent value: a layer always subtracts
the mean (``with_mean=False`` exports a moving mean of 0), and where
``moving_var_ + epsilon == 0`` a layer divides by 0 while the scaler divides by
1 (exported as a moving variance of 1, with ``epsilon == 0`` there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._stats import averaging_factor

if TYPE_CHECKING:
    from ._scaler import BatchNormScaler

__all__ = [
    "check_values",
    "check_zero_divisor",
    "complement",
    "get_weights",
    "layer_arrays",
    "load",
    "load_settled",
    "set_weights",
    "unrepresentable_features",
    "warm_count",
    "weight_names",
]

#: The names of the weights, in Keras order.
KERAS_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")


def weight_names(center: bool, scale: bool) -> list:
    """The names of the weights that ``get_weights`` returns, in order.

    Examples
    --------
    >>> weight_names(center=False, scale=True)
    ['gamma', 'moving_mean', 'moving_variance']
    """
    used = {"gamma": scale, "beta": center, "moving_mean": True, "moving_variance": True}
    return [name for name in KERAS_ORDER if used[name]]


def get_weights(scaler: BatchNormScaler) -> list:
    """``[gamma_, beta_, moving_mean_, moving_var_]`` as new float64 arrays.

    ``gamma_`` is left out when ``scale=False`` and ``beta_`` when
    ``center=False``, as Keras's ``BatchNormalization.get_weights`` does.

    Parameters
    ----------
    scaler : BatchNormScaler
        A fitted scaler.

    Returns
    -------
    weights : list of ndarray of shape (n_features,)
        Copies: changing them does not change ``scaler``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``scaler`` is not fitted.
    """
    check_is_fitted(scaler)
    arrays = {
        "gamma": scaler.gamma_,
        "beta": scaler.beta_,
        "moving_mean": scaler.moving_mean_,
        "moving_variance": scaler.moving_var_,
    }
    return [
        np.array(arrays[name], dtype=np.float64)
        for name in weight_names(scaler.center, scaler.scale)
    ]


def complement(value: float | None) -> float | None:
    """``1 - value``, converting between the Keras and PyTorch momentum.

    Among the floats ``c`` with ``1 - c == value`` exactly (in float64), the
    one with the fewest significant digits is returned, so that conversions
    round-trip and look as typed (``complement(0.9) == 0.1``, not
    ``0.09999999999999998``).  When there is none, ``1 - value``.  ``None``
    (the cumulative average) stays ``None``.

    Examples
    --------
    >>> complement(0.9), complement(0.1), complement(0.99), complement(None)
    (0.1, 0.9, 0.01, None)
    """
    if value is None:
        return None
    value = float(value)
    exact = 1.0 - value
    for digits in range(1, 18):
        candidate = float(f"{exact:.{digits}g}")
        if 1.0 - candidate == value:
            return candidate
    return exact


def warm_count(momentum: float | None) -> int:
    """The update count at which loaded statistics count as a settled average.

    Used for statistics that no batch has updated when weights are loaded
    (:func:`set_weights` on an unfitted scaler, ``from_keras``): the next
    :meth:`~skbn.BatchNormScaler.partial_fit` should move them as the layer
    they came from would, not replace them.

    * ``momentum=None`` (``alpha = 1 / t``): 1, the loaded values count as one
      batch, so the next batch gets ``alpha = 1/2``.
    * otherwise a ``t`` (the smallest, or a little above it) at which
      ``init="debiased"`` no longer corrects anything,
      ``(1 - momentum) / (1 - momentum**t) == 1 - momentum``
      in float64 (``momentum**t <= 2**-54``: 3,725 for 0.99), so every
      ``init`` moves the loaded values by ``alpha = 1 - momentum``, the Keras
      and PyTorch step.

    Examples
    --------
    >>> warm_count(None), warm_count(0.0), warm_count(0.5), warm_count(0.99)
    (1, 1, 55, 3725)
    """
    if momentum is None or momentum == 0:
        return 1
    step = 1.0 - momentum
    # 1 - momentum**t rounds to 1 once momentum**t <= 2**-54, from about
    # t = 54 ln 2 / -ln(momentum) (ln(momentum) as log1p of the exact
    # momentum - 1 near 1).  Start just below and step up, by growing steps
    # (float64 cannot tell t from t + 1 beyond 2**53), until it is exact.
    log_momentum = math.log1p(momentum - 1.0) if momentum >= 0.5 else math.log(momentum)
    t = max(1, math.floor(54 * math.log(2.0) / -log_momentum) - 2)
    jump = 1
    while averaging_factor(np.array([t]), momentum, "debiased")[0] != step:
        t += jump
        jump *= 2
    return t


def _as_vector(value, name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"Weight {name!r} could not be converted to a float64 array ({exc}); pass "
            "NumPy arrays (for a torch tensor: tensor.detach().cpu().numpy())."
        ) from None
    if arr.ndim != 1:
        raise ValueError(
            f"Weight {name!r} must be a 1-d array of shape (n_features,); got shape {arr.shape}."
        )
    return arr


def check_values(arrays: dict) -> None:
    """Every weight finite and ``moving_variance`` >= 0, or a ``ValueError``."""
    for name, arr in arrays.items():
        if not np.isfinite(arr).all():
            bad = np.flatnonzero(~np.isfinite(arr)).tolist()
            raise ValueError(
                f"Weight {name!r} holds NaN or infinity at feature(s) {bad}; every "
                "weight must be finite."
            )
    var = arrays["moving_variance"]
    if (var < 0).any():
        bad = np.flatnonzero(var < 0).tolist()
        raise ValueError(
            f"Weight 'moving_variance' is negative at feature(s) {bad}: a variance must be >= 0."
        )


def load(
    scaler: BatchNormScaler,
    *,
    gamma: np.ndarray,
    beta: np.ndarray,
    moving_mean: np.ndarray,
    moving_var: np.ndarray,
    updates: int,
    n_batches_seen: int,
) -> None:
    """Give ``scaler`` a complete fitted state in one assignment.

    Every statistic's update count is ``updates``.  ``n_samples_seen_`` is 0
    and ``n_batches_seen_`` is ``n_batches_seen``: they count what this
    scaler has seen, and loaded weights carry no sample count.  The arrays
    must already be validated float64 arrays of one length.
    """
    n_features = moving_mean.shape[0]
    counts = np.full(n_features, updates, dtype=np.int64)
    scaler.__dict__.update(
        n_features_in_=n_features,
        gamma_=gamma,
        beta_=beta,
        moving_mean_=moving_mean,
        moving_var_=moving_var,
        n_batches_seen_=int(n_batches_seen),
        n_samples_seen_=0,
        _mean_updates_=counts,
        _var_updates_=counts.copy(),
        _samples_per_feature_=np.zeros(n_features),
        _weighted_=False,
    )


def load_settled(scaler: BatchNormScaler, arrays: dict) -> None:
    """Make the unfitted ``scaler`` a fitted one holding ``arrays`` as a settled average.

    ``arrays`` maps weight names to validated float64 vectors of one length
    (``gamma`` / ``beta`` only when they are among the weights); ``gamma_``
    and ``beta_`` come from the ``gamma`` / ``beta`` parameters where they are
    not.  Every update count is :func:`warm_count`, and no batch has been
    seen.  Used by :func:`set_weights` on an unfitted scaler and ``from_keras``.
    """
    from ._scaler import _check_affine

    n_features = arrays["moving_mean"].shape[0]
    scaler._check_params()
    gamma = arrays.get("gamma")
    beta = arrays.get("beta")
    load(
        scaler,
        gamma=_check_affine(scaler.gamma, "gamma", n_features) if gamma is None else gamma,
        beta=_check_affine(scaler.beta, "beta", n_features) if beta is None else beta,
        moving_mean=arrays["moving_mean"],
        moving_var=arrays["moving_variance"],
        updates=warm_count(scaler.momentum),
        n_batches_seen=0,
    )


def set_weights(scaler: BatchNormScaler, weights: Iterable) -> BatchNormScaler:
    """Load ``[gamma, beta, moving_mean, moving_variance]`` into ``scaler``.

    ``gamma`` is expected only when ``scale=True`` and ``beta`` only when
    ``center=True`` (the order of :func:`get_weights`).  Every array must be
    1-d, finite, of one length (``n_features_in_`` on a fitted scaler), and
    the moving variance >= 0.  If anything is wrong a ``ValueError`` (or a
    ``TypeError`` for values that are not numbers) says what was expected
    and what was given, and ``scaler`` is left exactly as it was.

    *Fitted scaler*: the values are replaced; the counts
    (``n_samples_seen_``, ``n_batches_seen_`` and each statistic's update
    count) are kept, so the averaging goes on as before with the new values.
    A statistic that no batch had updated yet gets :func:`warm_count`.

    *Unfitted scaler*: it becomes a fitted one with ``n_features_in_`` the
    length of the arrays, ``gamma_`` / ``beta_`` from the ``gamma`` / ``beta``
    parameters when they are not among the weights, ``n_samples_seen_ = 0``
    and ``n_batches_seen_ = 0`` (it has seen no data), and each statistic's
    update count at :func:`warm_count`: the loaded values are a settled
    average, which the next :meth:`~skbn.BatchNormScaler.partial_fit` moves by
    ``alpha = 1 - momentum`` whatever ``init`` is (exactly what a Keras layer
    with these weights would do), or, with ``momentum=None``, counts as one
    batch (``alpha = 1/2`` for the next batch).  A later ``fit`` forgets the
    loaded weights, as it forgets everything learned.

    Parameters
    ----------
    scaler : BatchNormScaler
        Fitted or not.
    weights : list of array-like of shape (n_features,)
        ``[gamma, beta, moving_mean, moving_variance]``, without ``gamma``
        when ``scale=False`` and without ``beta`` when ``center=False``.

    Returns
    -------
    scaler : BatchNormScaler
        The same object, fitted.

    Raises
    ------
    ValueError
        Wrong number of arrays, wrong shapes, non-finite values, a negative
        variance, or (unfitted) invalid parameters.
    TypeError
        ``weights`` is not a list of arrays, or holds values that are not
        numbers.
    """
    from ._scaler import _atomic

    if isinstance(weights, (str, bytes, dict)) or not isinstance(weights, Iterable):
        raise TypeError(
            "weights must be a list of arrays [gamma, beta, moving_mean, "
            f"moving_variance] (as returned by get_weights); got {type(weights).__name__}."
        )
    weights = list(weights)
    names = weight_names(scaler.center, scaler.scale)
    if len(weights) != len(names):
        raise ValueError(
            f"Expected {len(names)} weight arrays {names} (center={scaler.center}, "
            f"scale={scaler.scale}; gamma is left out when scale=False and beta when "
            f"center=False, as in Keras); got {len(weights)}."
        )
    arrays = {name: _as_vector(w, name) for name, w in zip(names, weights, strict=True)}
    fitted = hasattr(scaler, "n_batches_seen_")
    if fitted:
        expected = scaler.n_features_in_
        where = f"this scaler was fitted on {expected} features"
    else:
        expected = arrays["moving_mean"].shape[0]
        where = "all weights must have the length of moving_mean"
    for name, arr in arrays.items():
        if arr.shape != (expected,):
            shapes = {k: v.shape for k, v in arrays.items()}
            raise ValueError(
                f"Expected every weight of shape ({expected},) ({where}); got shape "
                f"{arr.shape} for {name!r} (shapes: {shapes})."
            )
    if expected == 0:
        raise ValueError("The weights are empty: at least one feature is needed.")
    check_values(arrays)

    with _atomic(scaler):
        if fitted:
            gamma = arrays.get("gamma", scaler.gamma_)
            beta = arrays.get("beta", scaler.beta_)
            warm = warm_count(scaler.momentum)
            mean_updates = np.where(scaler._mean_updates_ == 0, warm, scaler._mean_updates_)
            var_updates = np.where(scaler._var_updates_ == 0, warm, scaler._var_updates_)
            scaler.__dict__.update(
                gamma_=np.array(gamma, dtype=np.float64),
                beta_=np.array(beta, dtype=np.float64),
                moving_mean_=arrays["moving_mean"],
                moving_var_=arrays["moving_variance"],
                _mean_updates_=mean_updates.astype(np.int64),
                _var_updates_=var_updates.astype(np.int64),
            )
        else:
            load_settled(scaler, arrays)
    return scaler


def layer_arrays(scaler: BatchNormScaler) -> dict:
    """The float64 weights of a layer whose inference output equals ``transform``.

    A batch-normalization layer computes
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with every term
    present.  Where the scaler leaves a term out, the neutral value stands in:

    * ``scale=False``: ``gamma = 1``;  ``center=False``: ``beta = 0``;
    * ``with_mean=False``: ``mean = 0`` (the layer always subtracts it);
    * ``moving_var_ + epsilon == 0`` (a constant feature with
      ``epsilon=0``): the scaler divides by 1 there, so ``var = 1``
      (``sqrt(1 + 0) = 1``).

    Returns
    -------
    dict
        ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``: new
        float64 arrays of shape (n_features,).
    """
    check_is_fitted(scaler)
    n = scaler.n_features_in_
    var = np.array(scaler.moving_var_, dtype=np.float64)
    var[var + scaler.epsilon == 0] = 1.0
    return {
        "gamma": np.array(scaler.gamma_, dtype=np.float64) if scaler.scale else np.ones(n),
        "beta": np.array(scaler.beta_, dtype=np.float64) if scaler.center else np.zeros(n),
        "moving_mean": (
            np.array(scaler.moving_mean_, dtype=np.float64) if scaler.with_mean else np.zeros(n)
        ),
        "moving_variance": var,
    }


def unrepresentable_features(
    arrays: dict, epsilon: float, rounded: dict, eps_rounded: float
) -> dict:
    """Features that a layer storing the ``rounded`` weights would get wrong.

    ``arrays`` are the float64 :func:`layer_arrays`, ``rounded`` the same
    values after a round trip through the layer's dtype (float32 for Keras),
    ``eps_rounded`` likewise for ``epsilon``.  A feature is wrong when a
    rounded weight is not finite (the value is out of the dtype's range), or
    when ``var + epsilon > 0`` but the rounded ``var + epsilon`` is 0 (the
    layer would divide by 0).

    Returns
    -------
    dict
        Weight name -> list of feature indices; empty when all is well.
    """
    bad = {}
    for name, arr in rounded.items():
        idx = np.flatnonzero(~np.isfinite(arr))
        if idx.size:
            bad[name] = idx.tolist()
    var, var_r = arrays["moving_variance"], rounded["moving_variance"]
    with np.errstate(over="ignore", invalid="ignore"):
        underflow = (var + epsilon > 0) & ~(var_r + eps_rounded > 0)
    idx = np.flatnonzero(underflow)
    if idx.size:
        bad.setdefault("moving_variance", [])
        bad["moving_variance"] = sorted(set(bad["moving_variance"]) | set(idx.tolist()))
    return bad


def check_zero_divisor(var: np.ndarray, epsilon: float, source: str) -> None:
    """Refuse a layer that divides by 0 (``var + epsilon == 0``) somewhere.

    The layer's output is NaN or +/-inf there, while a scaler divides by 1:
    no scaler reproduces it.
    """
    zero = np.flatnonzero(var + epsilon == 0)
    if zero.size:
        raise ValueError(
            f"The {source} has epsilon=0 and a moving variance of 0 at feature(s) "
            f"{zero.tolist()}, where it divides by 0 (its output is NaN or inf), while "
            "BatchNormScaler divides by 1 there: no scaler reproduces it. Give the layer "
            "an epsilon > 0, or a nonzero variance for those features, first."
        )
