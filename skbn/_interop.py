"""The estimator's bridges to other libraries, as a mixin.

Each method imports its bridge (:mod:`skbn._torch`, :mod:`skbn._keras`,
:mod:`skbn._flax`, :mod:`skbn._weights`) only when called.  A bridge never
imports the estimator: it takes a :class:`~skbn._weights.LayerExport` (plain
arrays and parameters) and returns plain values, from which
:meth:`InteropMixin._from_layer` builds the scaler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._state import State, settled, write_lock

if TYPE_CHECKING:
    from ._scaler import BatchNormScaler

__all__ = ["InteropMixin"]


def _to_numpy_state(state: State) -> State:
    """``state`` with NumPy arrays, whatever namespace it lives in."""
    if isinstance(state.averages.mean, np.ndarray):
        return state
    from sklearn.utils._array_api import _convert_to_numpy, get_namespace

    xp = get_namespace(state.averages.mean)[0]

    def conv(a):
        return _convert_to_numpy(a, xp)

    averages = type(state.averages)(*(conv(a) for a in state.averages))
    return state.replace(averages=averages, gamma=conv(state.gamma), beta=conv(state.beta))


def _load(state: State, arrays: dict, count: int) -> State:
    """``state`` holding the layer ``arrays`` (validated float64 vectors)."""
    return settled(
        state,
        mean=arrays["moving_mean"],
        var=arrays["moving_variance"],
        gamma=arrays.get("gamma"),
        beta=arrays.get("beta"),
        count=count,
    )


class InteropMixin:
    """``get_weights``/``set_weights`` and the ``to_*``/``from_*`` bridges."""

    def get_weights(self) -> list:
        """The weights in Keras order ``[gamma, beta, moving_mean, moving_variance]``.

        ``gamma`` is left out when ``scale=False`` and ``beta`` when
        ``center=False``, as Keras's ``BatchNormalization.get_weights`` does.

        Returns
        -------
        weights : list of ndarray of shape (n_features,)
            Copies of ``gamma_``, ``beta_``, ``moving_mean_`` and ``moving_var_``.
        """
        from ._weights import get_weights

        state = self._fitted_state()
        return get_weights(_to_numpy_state(state), self.center, self.scale)

    def set_weights(self, weights) -> BatchNormScaler:
        """Load weights in the order of :meth:`get_weights`; works unfitted too.

        On a fitted scaler the values are replaced and the update counts kept.
        On an unfitted one the loaded statistics count as a settled average:
        with a momentum, the next :meth:`partial_fit` moves them by
        ``1 - momentum`` whatever ``init`` is (as the layer would); with
        ``momentum=None`` they count as one batch.

        Parameters
        ----------
        weights : list of array-like of shape (n_features,)
            ``[gamma, beta, moving_mean, moving_variance]``, without ``gamma``
            when ``scale=False`` and without ``beta`` when ``center=False``.

        Returns
        -------
        self : object
            The scaler, fitted.

        Raises
        ------
        ValueError
            If the number of arrays, a shape or a value (NaN, inf, a negative
            variance) is wrong; the scaler is then left as it was.
        """
        from ._weights import parse_weights, warm_count

        self._check_params()
        with write_lock(self):
            state = self._current_state()
            expected = None if state is None else state.n_features
            arrays = parse_weights(weights, self.center, self.scale, expected)
            if state is None:
                state = self._start(arrays["moving_mean"].shape[0], None)
            self._publish(_load(state, arrays, count=warm_count(self.momentum)))
        return self

    def to_torch(self, dtype=None):
        """A ``torch.nn.BatchNorm1d`` in eval mode that transforms like this scaler.

        PyTorch's ``momentum`` is ``1 - momentum`` (``None`` stays ``None``),
        ``eps`` is ``epsilon``, ``weight``/``bias`` are ``gamma_``/``beta_`` and
        ``num_batches_tracked`` is ``n_batches_seen_``.  What the layer cannot
        represent is exported as an equivalent layer (``with_mean=False``: a
        running mean of 0; a constant feature with ``epsilon=0``: a running
        variance of 1 there; ``scale``/``center`` off: a frozen weight of 1 or
        no bias) or refused; see ``docs/interop.md``.  Needs the ``torch``
        extra (``pip install "skbn[torch]"``).

        Parameters
        ----------
        dtype : torch.dtype, default=None
            The module's dtype; ``None`` means ``torch.get_default_dtype()``
            (float32 unless changed).

        Returns
        -------
        module : torch.nn.BatchNorm1d
            In eval mode; ``module(X)`` equals ``transform(X)``.
        """
        from ._torch import to_torch

        return to_torch(self._export(), dtype=dtype)

    @classmethod
    def from_torch(cls, module) -> BatchNormScaler:
        """A fitted scaler with the statistics and affine weights of ``module``.

        The scaler transforms like the module in eval mode and, fed the same
        batches, updates its statistics exactly as the module does in train
        mode (``unbiased=True``, ``init="keras"``, ``momentum = 1 -`` the
        module's momentum).

        Parameters
        ----------
        module : torch.nn.BatchNorm1d
            A module that tracks running statistics.

        Returns
        -------
        scaler : BatchNormScaler
        """
        from ._torch import from_torch

        params, arrays, n_batches = from_torch(module)
        return cls._from_layer(params, arrays, count=n_batches, n_batches=n_batches)

    def to_keras(self):
        """A built ``keras.layers.BatchNormalization`` with the same weights.

        ``momentum``, ``epsilon``, ``center`` and ``scale`` are carried over;
        the layer's inference output equals :meth:`transform` (Keras stores
        float32 weights).  ``momentum=None`` has no Keras equivalent and is
        refused.  Needs the ``keras`` extra (``pip install "skbn[keras]"``).

        Returns
        -------
        layer : keras.layers.BatchNormalization
        """
        from ._keras import to_keras

        return to_keras(self._export())

    @classmethod
    def from_keras(cls, layer) -> BatchNormScaler:
        """A fitted scaler with the weights, momentum and epsilon of ``layer``.

        The scaler uses ``init="keras"`` and ``unbiased=False``, so fed the
        same batches it updates as the layer does with ``training=True``.

        Parameters
        ----------
        layer : keras.layers.BatchNormalization
            A built layer normalizing the last axis.

        Returns
        -------
        scaler : BatchNormScaler
        """
        from ._keras import from_keras

        params, arrays = from_keras(layer)
        return cls._from_layer(params, arrays)

    def to_flax(self, dtype=None, param_dtype=None):
        """A ``flax.nnx.BatchNorm`` whose eval output equals :meth:`transform`.

        Flax's ``momentum`` is the Keras one (the weight of the old estimate);
        ``mean``/``var`` become the module's batch statistics and
        ``gamma_``/``beta_`` its ``scale``/``bias`` (``use_scale``/``use_bias``
        from ``scale``/``center``).  ``momentum=None`` and ``"pooled"`` have no
        Flax meaning and are refused.  Needs the ``flax`` extra
        (``pip install "skbn[flax]"``).

        Parameters
        ----------
        dtype : jax dtype, default=None
            The module's computation dtype (None: from the input and weights,
            float32 for float32 input).  Flax keeps ``mean`` and ``var`` in
            float32 whatever ``dtype`` is.
        param_dtype : jax dtype, default=None
            The dtype of ``scale`` and ``bias`` (float32 when None).

        Returns
        -------
        module : flax.nnx.BatchNorm
            With ``use_running_average=True`` (eval mode).
        """
        from ._flax import to_flax

        export = self._export()
        return to_flax(
            export.arrays,
            epsilon=export.epsilon,
            momentum=export.momentum,
            center=export.center,
            scale=export.scale,
            dtype=dtype,
            param_dtype=param_dtype,
        )

    @classmethod
    def from_flax(cls, module) -> BatchNormScaler:
        """A fitted scaler with the statistics, weights and settings of ``module``.

        ``momentum``, ``epsilon`` and ``center``/``scale`` (from
        ``use_bias``/``use_scale``) are carried over, with ``init="keras"`` and
        ``unbiased=False``, so fed the same batches the scaler updates as the
        module does in train mode.

        Parameters
        ----------
        module : flax.nnx.BatchNorm

        Returns
        -------
        scaler : BatchNormScaler
        """
        from ._flax import from_flax

        params, arrays = from_flax(module)
        return cls._from_layer(params, arrays)

    @classmethod
    def _from_layer(cls, params: dict, arrays: dict, *, count=None, n_batches: int = 0):
        """The seam for bridges: a fitted scaler from constructor ``params``
        and layer ``arrays`` (``gamma``/``beta`` where the layer has them,
        ``moving_mean``, ``moving_variance``).  Every statistic's update count
        is ``count`` (default: the loaded values count as a settled average,
        :func:`~skbn._weights.warm_count`)."""
        from ._weights import check_values, warm_count

        arrays = {k: np.array(v, dtype=np.float64) for k, v in arrays.items()}
        check_values(arrays)
        extra = {k: arrays[k].copy() for k in ("gamma", "beta") if k in arrays}
        scaler = cls(**{**params, **extra})
        scaler._check_params()
        count = warm_count(scaler.momentum) if count is None else count
        with write_lock(scaler):
            state = scaler._start(arrays["moving_mean"].shape[0], None)
            state = _load(state, arrays, count=count).replace(n_batches=int(n_batches))
            scaler._publish(state)
        return scaler

    def _export(self):
        """What a bridge needs to build an equivalent layer (plain values)."""
        from ._affine import guarded
        from ._weights import LayerExport, layer_arrays

        state = _to_numpy_state(self._fitted_state())
        substitute = guarded(state.averages, self.epsilon) if self.with_std else None
        arrays = layer_arrays(
            state, self.epsilon, substitute,
            center=self.center, scale=self.scale, with_mean=self.with_mean,
        )  # fmt: skip
        counts = np.concatenate([state.averages.mean_count, state.averages.var_count])
        tracked = state.n_batches
        if self.momentum is None and counts.size and counts.min() == counts.max():
            tracked = int(counts[0])  # loaded statistics count as batches
        return LayerExport(
            arrays, state.n_features, self.momentum, float(self.epsilon),
            bool(self.center), bool(self.scale), tracked,
        )  # fmt: skip
