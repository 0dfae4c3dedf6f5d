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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._averaging import averaging_factor

if TYPE_CHECKING:
    from ._state import State

__all__ = [
    "LayerExport",
    "check_values",
    "check_zero_divisor",
    "complement",
    "get_weights",
    "layer_arrays",
    "parse_weights",
    "unrepresentable_features",
    "warm_count",
    "weight_names",
]


class LayerExport(NamedTuple):
    """What a bridge gets to build a layer equivalent to a fitted scaler.

    Attributes
    ----------
    arrays : dict
        :func:`layer_arrays`: ``gamma``, ``beta``, ``moving_mean``,
        ``moving_variance`` (float64, neutral values substituted).
    n_features_in_ : int
    momentum : float, None or str
    epsilon : float
    center, scale : bool
    batches_tracked : int
        PyTorch's ``num_batches_tracked`` (the ``t`` of ``momentum=None``).
    """

    arrays: dict
    n_features_in_: int
    momentum: object
    epsilon: float
    center: bool
    scale: bool
    batches_tracked: int


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


def get_weights(state: State, center: bool, scale: bool) -> list:
    """``[gamma_, beta_, moving_mean_, moving_var_]`` as new float64 arrays.

    ``gamma_`` is left out when ``scale=False`` and ``beta_`` when
    ``center=False``, as Keras's ``BatchNormalization.get_weights`` does.

    Returns
    -------
    weights : list of ndarray of shape (n_features,)
        Copies: changing them does not change the state.
    """
    arrays = {
        "gamma": state.gamma,
        "beta": state.beta,
        "moving_mean": state.averages.mean,
        "moving_variance": state.averages.var,
    }
    return [np.array(arrays[name], dtype=np.float64) for name in weight_names(center, scale)]


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
    >>> warm_count(None), warm_count(0.0)
    (1, 1)
    >>> t = warm_count(0.99)
    >>> bool(averaging_factor(np.array([t]), 0.99, "debiased")[0] == 1.0 - 0.99)
    True
    """
    if momentum is None or isinstance(momentum, str) or momentum == 0:
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


def parse_weights(weights: Iterable, center: bool, scale: bool, expected: int | None) -> dict:
    """Validate ``[gamma, beta, moving_mean, moving_variance]`` for ``set_weights``.

    ``gamma`` is expected only when ``scale=True`` and ``beta`` only when
    ``center=True`` (the order of :func:`get_weights`).  Every array must be
    1-d, finite, of one length (``expected``, the fitted width, when not
    None), and the moving variance >= 0.  Returns the arrays by name, as new
    float64 vectors; raises a ``ValueError`` (or a ``TypeError`` for values
    that are not numbers) that says what was expected and what was given.
    """
    if isinstance(weights, (str, bytes, dict)) or not isinstance(weights, Iterable):
        raise TypeError(
            "weights must be a list of arrays [gamma, beta, moving_mean, "
            f"moving_variance] (as returned by get_weights); got {type(weights).__name__}."
        )
    weights = list(weights)
    names = weight_names(center, scale)
    if len(weights) != len(names):
        raise ValueError(
            f"Expected {len(names)} weight arrays {names} (center={center}, "
            f"scale={scale}; gamma is left out when scale=False and beta when "
            f"center=False, as in Keras); got {len(weights)}."
        )
    arrays = {name: _as_vector(w, name) for name, w in zip(names, weights, strict=True)}
    if expected is not None:
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
    return arrays


def layer_arrays(
    state: State, epsilon: float, substitute, *, center: bool, scale: bool, with_mean: bool
) -> dict:
    """The float64 weights of a layer whose inference output equals ``transform``.

    A batch-normalization layer computes
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with every term
    present.  Where the scaler leaves a term out, the neutral value stands in:

    * ``scale=False``: ``gamma = 1``;  ``center=False``: ``beta = 0``;
    * ``with_mean=False``: ``mean = 0`` (the layer always subtracts it);
    * where the scaler divides by 1 (``substitute``: the features whose
      divisor is guarded, a constant feature with a tiny ``epsilon``):
      ``var = 1 - epsilon`` (at least 0), so that ``sqrt(var + epsilon) = 1``;
      ``with_std=False`` (``substitute=None``): every feature so.

    Returns
    -------
    dict
        ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``: new
        float64 arrays of shape (n_features,).
    """
    n = state.n_features
    var = np.array(state.averages.var, dtype=np.float64)
    one = max(1.0 - epsilon, 0.0)
    if substitute is None:
        var[:] = one
    else:
        var[np.asarray(substitute)] = one
    return {
        "gamma": np.array(state.gamma, dtype=np.float64) if scale else np.ones(n),
        "beta": np.array(state.beta, dtype=np.float64) if center else np.zeros(n),
        "moving_mean": (
            np.array(state.averages.mean, dtype=np.float64) if with_mean else np.zeros(n)
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
