"""The fitted state of a scaler: one immutable object, replaced whole.

:class:`State` holds everything a fitted :class:`~skbn.BatchNormScaler`
knows.  It is never modified: a batch, ``set_weights`` or a loaded file make
a new one, and the estimator publishes it by swapping one reference, so a
thread that reads the state while another fits sees it from before or after
a whole batch, never a mixture.

This module is below the estimator: the integrations (the file engine,
bridges, collections) build and read states through it without importing
scikit-learn.
"""

from __future__ import annotations

import threading
import weakref
from typing import NamedTuple

import numpy as np

from . import _averaging, _compat
from ._averaging import Averages
from ._stats import Moments
from ._validation import weight_sum_error

__all__ = [
    "State",
    "advance",
    "from_attributes",
    "new_state",
    "next_state",
    "settled",
    "to_attributes",
    "write_lock",
]

# One lock per estimator serializes the writers; it is not fitted state, so
# it lives outside the object (pickling, clone and vars() never see it).
_WRITE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(owner) -> threading.RLock:
    """The lock that serializes every writer of ``owner``'s state."""
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(owner)
        if lock is None:
            lock = _WRITE_LOCKS[owner] = threading.RLock()
        return lock


class State(NamedTuple):
    """A fitted scaler's state.

    Attributes
    ----------
    averages : Averages
        The moving statistics and their counters (:mod:`skbn._averaging`).
    gamma, beta : array of shape (n_features,)
        The affine weights.
    n_batches : int
        Mini-batches seen.
    weighted : bool
        Whether any batch came with sample weights.
    feature_names : ndarray of str or None
        The names of the features, when fitted on named columns.
    """

    averages: Averages
    gamma: np.ndarray
    beta: np.ndarray
    n_batches: int = 0
    weighted: bool = False
    feature_names: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.averages.mean.shape[0])

    def n_samples_seen(self, xp=np):
        """``n_samples_seen_`` as in ``StandardScaler``: an int (a float when
        weighted) when every feature has seen the same weight, else an array."""
        samples = self.averages.weight
        if xp is np:  # weights are >= 0 and never NaN
            uniform = _averaging.uniform_value(samples) is not None
        else:
            uniform = bool(samples.shape[0]) and bool(xp.min(samples) == xp.max(samples))
        if uniform:
            return float(samples[0]) if self.weighted else int(samples[0])
        return samples if self.weighted else _compat.astype(xp, samples, xp.int64)

    def replace(self, **changes) -> State:
        return self._replace(**changes)


def new_state(gamma, beta, feature_names=None, xp=np, dtype=None, device=None) -> State:
    """The state before any batch: mean 0, variance 1, ``gamma``/``beta`` given."""
    n_features = int(gamma.shape[0])
    averages = _averaging.start(n_features, xp, dtype, device)
    return State(averages, gamma, beta, feature_names=feature_names)


def advance(
    state: State, batch: Moments, *, momentum, init: str, unbiased: bool, weighted: bool, xp=np
) -> State:
    """The state after one mini-batch with per-feature moments ``batch``.

    Raises ``ValueError`` (and changes nothing, there being nothing to
    change) when the total weight seen would exceed float64.
    """
    averages = _averaging.update(
        state.averages, batch, momentum=momentum, init=init, unbiased=unbiased, xp=xp
    )
    total = averages.weight
    if xp is np:
        finite = np.count_nonzero(np.isfinite(total)) == total.shape[0]
    else:
        finite = bool(xp.all(xp.isfinite(total)))
    if not finite:
        raise weight_sum_error(float(xp.max(total)))
    return next_state(state, averages, weighted)


def next_state(state: State, averages: Averages, weighted: bool = False) -> State:
    """``state`` after one more mini-batch, whose update gave ``averages``
    (with finite weights: :func:`advance` checks them)."""
    return State(
        averages,
        state.gamma,
        state.beta,
        state.n_batches + 1,
        state.weighted or weighted,
        state.feature_names,
    )


def settled(
    state: State, *, mean=None, var=None, gamma=None, beta=None, count: int | None = None
) -> State:
    """``state`` with new values, as ``set_weights`` and the bridges load them.

    Statistics that no batch has updated get the update count ``count`` (the
    loaded values count as a settled average); the others keep theirs.  The
    pooled moments follow the new values with the weight already seen.
    """
    avg = state.averages
    mean = avg.mean if mean is None else mean
    var = avg.var if var is None else var
    mean_count, var_count = avg.mean_count, avg.var_count
    if count is not None:
        mean_count = np.where(mean_count == 0, count, mean_count).astype(np.int64)
        var_count = np.where(var_count == 0, count, var_count).astype(np.int64)
    # A changed variance is taken as the pooled (biased) one; an unchanged one
    # leaves the pooled moments as they were.
    pooled = np.where(var == avg.var, avg.pooled_var, var)
    residual = np.where(mean == avg.mean, avg.residual, 0.0)
    averages = Averages(mean, var, mean_count, var_count, avg.weight, pooled, residual)
    return state._replace(
        averages=averages,
        gamma=state.gamma if gamma is None else gamma,
        beta=state.beta if beta is None else beta,
    )


def to_attributes(state: State, xp=np) -> dict:
    """The estimator attributes that hold ``state`` (``feature_names_in_``
    only when there are names), ``n_samples_seen_`` included."""
    avg = state.averages
    attributes = {
        "moving_mean_": avg.mean,
        "moving_var_": avg.var,
        "_mean_updates_": avg.mean_count,
        "_var_updates_": avg.var_count,
        "_samples_per_feature_": avg.weight,
        "_pooled_var_": avg.pooled_var,
        "_mean_residual_": avg.residual,
        "gamma_": state.gamma,
        "beta_": state.beta,
        "n_batches_seen_": state.n_batches,
        "_weighted_": state.weighted,
        "n_features_in_": state.n_features,
        "n_samples_seen_": state.n_samples_seen(xp),
    }
    if state.feature_names is not None:
        attributes["feature_names_in_"] = state.feature_names
    return attributes


def from_attributes(attributes: dict) -> State | None:
    """The :class:`State` that the attributes ``attributes`` hold (one
    consistent snapshot of an estimator's ``__dict__``); None if unfitted."""
    if "n_batches_seen_" not in attributes:
        return None
    mean = attributes["moving_mean_"]
    pooled = attributes.get("_pooled_var_")
    residual = attributes.get("_mean_residual_")
    averages = Averages(
        mean,
        attributes["moving_var_"],
        attributes["_mean_updates_"],
        attributes["_var_updates_"],
        attributes["_samples_per_feature_"],
        mean * 0 if pooled is None else pooled,
        mean * 0 if residual is None else residual,
    )
    return State(
        averages,
        attributes["gamma_"],
        attributes["beta_"],
        int(attributes["n_batches_seen_"]),
        bool(attributes["_weighted_"]),
        attributes.get("feature_names_in_"),
    )
