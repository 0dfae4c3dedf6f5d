"""``BatchNormScaler`` to and from ``flax.nnx.BatchNorm`` (Flax NNX).

Flax and JAX are imported inside the functions only (the ``flax`` extra).
Nothing here imports the estimator: :meth:`~skbn.BatchNormScaler.to_flax`
passes the layer-equivalent arrays of :func:`skbn._weights.layer_arrays`, and
:meth:`~skbn.BatchNormScaler.from_flax` builds the scaler from what
:func:`from_flax` returns.

The mapping (Flax's ``momentum`` is the Keras one, the weight of the old
estimate)::

    BatchNormScaler              nnx.BatchNorm
    momentum, epsilon            momentum, epsilon
    center, scale                use_bias, use_scale
    beta_, gamma_                bias, scale        (nnx.Param, None when off)
    moving_mean_, moving_var_    mean, var          (nnx.BatchStat, float32)

With ``use_running_average=True`` (``module.eval()``) the module computes
``(x - mean) * rsqrt(var + epsilon) * scale + bias``; in train mode
(``module.train()``) it updates ``stat <- momentum * stat + (1 - momentum) *
batch_stat`` with the biased batch variance, starting from mean 0 and
variance 1: the update of ``BatchNormScaler(unbiased=False, init="keras")``.
Flax keeps ``mean`` and ``var`` in float32 whatever the module's ``dtype``,
and computes the batch statistics in at least float32 (by default as
``E[x**2] - E[x]**2``, ``use_fast_variance=True``).
"""

from __future__ import annotations

import numpy as np

from ._weights import check_values, check_zero_divisor, unrepresentable_features

__all__ = ["from_flax", "to_flax"]


def _import_flax():
    try:
        import jax.numpy as jnp
        from flax import nnx
    except ImportError as exc:
        raise ImportError(
            "BatchNormScaler.to_flax / from_flax need Flax (NNX) and JAX, which are not "
            'installed: pip install "skbn[flax]"'
        ) from exc
    return nnx, jnp


def _numpy(variable) -> np.ndarray:
    """An ``nnx.Variable`` (or array) as a new float64 NumPy array."""
    return np.array(np.asarray(variable[...]), dtype=np.float64)


def to_flax(
    layer: dict,
    *,
    epsilon: float,
    momentum,
    center: bool,
    scale: bool,
    dtype=None,
    param_dtype=None,
):
    """An ``nnx.BatchNorm`` in eval mode holding ``layer``'s arrays.

    Parameters
    ----------
    layer : dict
        The float64 arrays ``gamma``, ``beta``, ``moving_mean`` and
        ``moving_variance`` of :func:`skbn._weights.layer_arrays` (the
        neutral values already stand in where the scaler leaves a term out:
        ``moving_mean = 0`` for ``with_mean=False``, ``moving_variance = 1``
        where ``moving_var_ + epsilon == 0``).
    epsilon : float
        ``epsilon`` of the module.
    momentum : float
        ``momentum`` of the module (the weight of the old estimate, as in
        skbn and Keras).  ``None`` (a cumulative average) and ``"pooled"``
        have no Flax equivalent and are refused.
    center, scale : bool
        ``use_bias`` and ``use_scale`` of the module.  When off, the module
        has no ``bias`` / ``scale`` (``None``), as the scaler has no term.
    dtype : jax dtype, default=None
        The module's computation dtype (``None``: inferred from the input and
        the weights, float32 for float32 input).
    param_dtype : jax dtype, default=None
        The dtype of ``scale`` and ``bias`` (float32 when ``None``).  The
        statistics are float32 whatever ``dtype`` and ``param_dtype`` are,
        as in every ``nnx.BatchNorm``.  (Without ``jax_enable_x64``, JAX
        truncates float64 to float32, with a warning.)

    Returns
    -------
    module : flax.nnx.BatchNorm
        With ``use_running_average=True``, ``axis=-1`` and
        ``num_features = n_features_in_``; switch it with ``module.train()``
        / ``module.eval()``.  Every export of a scaler with the same
        settings has the same ``nnx.graphdef``, so ``nnx.update`` carries
        one's state into another.

    Raises
    ------
    ValueError
        If ``momentum`` is ``None`` or ``"pooled"``, or if a weight is out of
        the range of the dtype it is stored or computed in (e.g. a mean of
        1e39 in float32), or a positive ``moving_var_ + epsilon`` rounds to 0
        there (the module would divide by 0).
    """
    nnx, jnp = _import_flax()
    if momentum is None or isinstance(momentum, str):
        raise ValueError(
            f"Cannot export a scaler with momentum={momentum!r} to Flax: nnx.BatchNorm "
            "only has an exponential moving average with a constant momentum, no "
            "cumulative or pooled average. Export the statistics with a float momentum, "
            "e.g. scaler.set_params(momentum=0.99).to_flax() (this keeps the fitted "
            "statistics; the momentum only matters when the module trains)."
        )
    n_features = layer["moving_mean"].shape[0]
    module = nnx.BatchNorm(
        n_features,
        use_running_average=True,
        momentum=float(momentum),
        epsilon=float(epsilon),
        dtype=dtype,
        param_dtype=jnp.float32 if param_dtype is None else param_dtype,
        use_bias=bool(center),
        use_scale=bool(scale),
        rngs=nnx.Rngs(0),  # scale and bias start at 1 and 0: no randomness used
    )
    variables = {
        "gamma": module.scale,
        "beta": module.bias,
        "moving_mean": module.mean,
        "moving_variance": module.var,
    }
    variables = {name: v for name, v in variables.items() if v is not None}
    stored = {name: np.dtype(v[...].dtype) for name, v in variables.items()}
    # The module promotes the input, statistics and weights to one dtype
    # (``dtype`` if given) and computes var + epsilon in it.
    compute = np.dtype(jnp.result_type(jnp.float32, *stored.values()) if dtype is None else dtype)
    arrays = {name: layer[name] for name in variables}
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        rounded = {
            name: arr.astype(stored[name]).astype(compute).astype(np.float64)
            for name, arr in arrays.items()
        }
        eps_rounded = float(np.asarray(epsilon, dtype=np.float64).astype(compute))
    bad = unrepresentable_features(arrays, float(epsilon), rounded, eps_rounded)
    if bad:
        where = ", ".join(f"{name} as {stored[name]}" for name in bad)
        raise ValueError(
            f"Cannot export this scaler to a Flax BatchNorm that stores {where} and "
            f"computes in {compute}: at the features {bad} a weight is outside that range "
            f"or a positive moving_var_ + epsilon rounds to 0 in {compute}, where the "
            "module would divide by 0. Export with a wider dtype / param_dtype."
        )
    for name, variable in variables.items():
        variable[...] = jnp.asarray(arrays[name].astype(stored[name]))
    return module


def from_flax(module) -> tuple[dict, dict]:
    """The constructor parameters and weights of a scaler like ``module``.

    Parameters
    ----------
    module : flax.nnx.BatchNorm
        Normalizing the last axis of ``(batch, num_features)`` inputs
        (``axis`` -1 or 1), with a momentum in [0, 1).

    Returns
    -------
    params : dict
        ``momentum``, ``epsilon``, ``center`` (``use_bias``), ``scale``
        (``use_scale``), ``init="keras"`` and ``unbiased=False``: the scaler's
        :meth:`~skbn.BatchNormScaler.partial_fit` then updates as the module
        does in train mode (to float32 rounding).
    arrays : dict
        New float64 arrays: ``moving_mean`` and ``moving_variance`` (the
        module's ``mean`` and ``var``), ``gamma`` (``scale``) when
        ``use_scale`` and ``beta`` (``bias``) when ``use_bias``.

    Raises
    ------
    TypeError
        If ``module`` is not a ``flax.nnx.BatchNorm``.
    ValueError
        If it normalizes another axis, its statistics are not vectors of
        ``num_features`` (e.g. a module stacked by ``nnx.vmap``), its
        momentum is outside [0, 1) (``momentum=1`` freezes the statistics,
        which a scaler cannot) or its epsilon negative, a weight is not
        finite or the variance negative, or ``epsilon = 0`` with a zero
        variance (the module divides by 0 there; a scaler divides by 1).

    Notes
    -----
    ``use_running_average``, ``use_fast_variance``, ``axis_name`` and
    ``dtype`` only change how the module trains or rounds, not what it
    holds; they are not carried.  Flax counts neither batches nor samples.
    """
    nnx, _ = _import_flax()
    if not isinstance(module, nnx.BatchNorm):
        raise TypeError(f"from_flax expects a flax.nnx.BatchNorm; got {type(module).__name__}.")
    axis = module.axis
    if isinstance(axis, (tuple, list)) and len(axis) == 1:
        axis = axis[0]
    if isinstance(axis, (tuple, list)) or int(axis) not in (-1, 1):
        raise ValueError(
            f"This BatchNorm normalizes axis {module.axis}; a BatchNormScaler normalizes "
            "the features of 2-d (batch, features) data, axis -1 (or 1). Only modules "
            "with axis=-1 or axis=1 can be imported."
        )
    momentum = float(module.momentum)
    if not 0 <= momentum < 1:
        raise ValueError(
            f"This module has momentum={momentum}; BatchNormScaler needs a momentum in "
            "[0, 1) (momentum=1 freezes the moving statistics, which a scaler cannot "
            "do). Set module.momentum first; it does not change the eval output."
        )
    epsilon = float(module.epsilon)
    if not epsilon >= 0:
        raise ValueError(f"This module has epsilon={module.epsilon}; it must be >= 0.")

    center = bool(module.use_bias) and module.bias is not None
    scale = bool(module.use_scale) and module.scale is not None
    arrays = {"moving_mean": _numpy(module.mean), "moving_variance": _numpy(module.var)}
    if scale:
        arrays["gamma"] = _numpy(module.scale)
    if center:
        arrays["beta"] = _numpy(module.bias)
    shape = (int(module.num_features),)
    shapes = {name: arr.shape for name, arr in arrays.items()}
    if any(s != shape for s in shapes.values()):
        raise ValueError(
            f"Expected every array of this BatchNorm of shape {shape} (num_features); got "
            f"{shapes}. A module stacked by nnx.vmap or nnx.scan holds one set of "
            "statistics per slice: import one slice at a time."
        )
    check_values(arrays)
    check_zero_divisor(arrays["moving_variance"], epsilon, "Flax BatchNorm module")
    params = {
        "momentum": momentum,
        "epsilon": epsilon,
        "center": center,
        "scale": scale,
        "init": "keras",
        "unbiased": False,
    }
    return params, arrays
