"""``BatchNormScaler`` to and from ``keras.layers.BatchNormalization`` (Keras 3).

Keras is imported inside the functions only (the ``keras`` extra), and works
on whichever backend Keras is configured for.

The mapping is one to one (skbn follows the Keras conventions)::

    BatchNormScaler              BatchNormalization
    momentum, epsilon            momentum, epsilon
    center, scale                center, scale
    gamma_, beta_                gamma, beta
    moving_mean_, moving_var_    moving_mean, moving_variance

At inference (``training=False``) the layer computes
``gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``, and in
training it updates ``moving <- momentum * moving + (1 - momentum) * batch``
with the biased batch variance, starting from mean 0 and variance 1: the
update of ``BatchNormScaler(unbiased=False, init="keras")``.

Keras stores the weights as float32 (its default ``floatx``) and computes in
float32, so a round trip through Keras rounds every weight to float32 (a
relative error of at most 2**-24, about 6e-8).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from ._weights import (
    LayerExport,
    check_values,
    check_zero_divisor,
    unrepresentable_features,
)

if TYPE_CHECKING:
    import keras


__all__ = ["from_keras", "to_keras"]


def _import_keras():
    try:
        import keras
    except ImportError as exc:
        raise ImportError(
            "BatchNormScaler.to_keras / from_keras need Keras 3, which is not "
            'installed: pip install "skbn[keras]"'
        ) from exc
    return keras


def _numpy(variable) -> np.ndarray:
    """A Keras variable as a new float64 NumPy array, on any backend."""
    value = getattr(variable, "value", variable)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        # np.asarray(tensor), which keras.ops.convert_to_numpy uses, warns on
        # NumPy 2 with some PyTorch releases; .numpy() does not.
        return value.detach().to(device="cpu", dtype=torch.float64).numpy().copy()
    import keras

    return np.array(keras.ops.convert_to_numpy(value), dtype=np.float64)


def to_keras(scaler: LayerExport) -> keras.layers.BatchNormalization:
    """A built ``keras.layers.BatchNormalization`` that infers like ``transform``.

    Parameters
    ----------
    scaler : LayerExport
        A fitted scaler with a momentum (Keras has no cumulative average).

    Returns
    -------
    layer : keras.layers.BatchNormalization
        Built for inputs of shape ``(batch, n_features_in_)``, with the
        scaler's ``momentum``, ``epsilon``, ``center`` and ``scale`` and its
        weights (:meth:`~skbn.BatchNormScaler.get_weights`) rounded to the
        layer's dtype (float32 by default).  Two values are replaced by
        equivalent ones, so that ``layer(x, training=False)`` is still the
        transform (to float32 rounding):

        * ``with_mean=False``: ``moving_mean`` is 0 (the layer always
          subtracts it);
        * ``moving_var_ + epsilon == 0`` (a constant feature, ``epsilon=0``):
          ``moving_variance`` is 1 there (the scaler divides by 1, the layer
          would divide by 0).

    Raises
    ------
    ValueError
        If ``momentum=None`` (Keras's layer has no cumulative average; set a
        momentum first, e.g. ``scaler.set_params(momentum=0.99)``, which keeps
        the fitted statistics), or if a weight is out of float32 range or a
        positive ``moving_var_ + epsilon`` rounds to 0 in float32.

    Notes
    -----
    Trained further (``training=True``), the layer updates its statistics
    with Keras's rule: the biased batch variance and a constant step
    ``1 - momentum``.  That is the scaler's own continuation only for
    ``unbiased=False`` and ``init="keras"`` (the default ``init="debiased"``
    converges to it after a few ``1 / (1 - momentum)`` batches).
    """
    keras = _import_keras()
    if scaler.momentum is None or isinstance(scaler.momentum, str):
        raise ValueError(
            f"Cannot export a scaler with momentum={scaler.momentum!r} to Keras: "
            "BatchNormalization has no cumulative or pooled average. Give the scaler "
            "a momentum first, e.g. "
            "scaler.set_params(momentum=0.99).to_keras() (this keeps the fitted "
            "statistics; the momentum only matters when the layer trains)."
        )
    arrays = scaler.arrays
    epsilon = float(scaler.epsilon)
    layer = keras.layers.BatchNormalization(
        momentum=float(scaler.momentum),
        epsilon=epsilon,
        center=bool(scaler.center),
        scale=bool(scaler.scale),
    )
    layer.build((None, scaler.n_features_in_))
    dtype = np.dtype(keras.backend.standardize_dtype(layer.moving_mean.dtype))
    with np.errstate(over="ignore", under="ignore"):
        rounded = {name: arr.astype(dtype).astype(np.float64) for name, arr in arrays.items()}
        eps_rounded = float(np.asarray(epsilon).astype(dtype))
    bad = unrepresentable_features(arrays, epsilon, rounded, eps_rounded)
    if bad:
        raise ValueError(
            f"Cannot export this scaler to a Keras layer, which stores {dtype} weights: "
            f"at the features {bad} a weight is outside the range of {dtype} or a "
            f"positive moving_var_ + epsilon rounds to 0 in {dtype}, where the layer "
            "would divide by 0."
        )
    variables = {
        "gamma": layer.gamma,
        "beta": layer.beta,
        "moving_mean": layer.moving_mean,
        "moving_variance": layer.moving_variance,
    }
    for name, variable in variables.items():
        if variable is not None:
            variable.assign(arrays[name].astype(dtype))
    return layer


def from_keras(layer: keras.layers.BatchNormalization) -> tuple:
    """A fitted ``cls`` that transforms like ``layer(x, training=False)``.

    Parameters
    ----------
    layer : keras.layers.BatchNormalization
        Built, normalizing the last axis, with a momentum in [0, 1).

    Returns
    -------
    params, arrays : dict, dict
        What ``BatchNormScaler._from_layer`` builds the scaler from: the
        layer's ``momentum``, ``epsilon``, ``center`` and ``scale``,
        ``unbiased=False`` and ``init="keras"`` (so :meth:`partial_fit`
        continues as the layer trains, to float32 rounding), the ``gamma`` and
        ``beta`` parameters *and* ``gamma_`` / ``beta_`` from the layer's
        weights (so a later ``fit`` keeps them), and the moving statistics as
        float64.  Keras counts neither batches nor samples:
        ``n_batches_seen_ = n_samples_seen_ = 0``.

    Raises
    ------
    TypeError
        If ``layer`` is not a ``keras.layers.BatchNormalization``.
    ValueError
        If it is not built, normalizes another axis than the last, has a
        momentum outside [0, 1) (``momentum=1`` freezes the statistics, which
        a scaler cannot) or a negative epsilon, non-finite weights, or
        ``epsilon = 0`` with a zero moving variance (the layer divides by 0
        there; a scaler divides by 1).

    Notes
    -----
    A layer with ``renorm=True`` infers with its moving mean and variance
    like any other, which is what the scaler gets; its renormalization
    statistics only matter in training and are not carried.
    """
    keras = _import_keras()
    if not isinstance(layer, keras.layers.BatchNormalization):
        raise TypeError(
            f"from_keras expects a keras.layers.BatchNormalization; got {type(layer).__name__}."
        )
    if not layer.built or layer.moving_mean is None:
        raise ValueError(
            "This BatchNormalization layer is not built, so it has no weights yet: "
            "call layer.build((None, n_features)) or run it on data first."
        )
    ndim = layer.input_spec.ndim if layer.input_spec is not None else None
    if ndim is not None and layer.axis % ndim != ndim - 1:
        raise ValueError(
            f"This BatchNormalization layer normalizes axis {layer.axis} of {ndim}-d "
            "inputs; a BatchNormScaler normalizes features, the last axis. Only "
            "layers with axis=-1 (the last axis) can be imported."
        )
    momentum = float(layer.momentum)
    if not 0 <= momentum < 1:
        raise ValueError(
            f"This layer has momentum={momentum}; BatchNormScaler needs a momentum in "
            "[0, 1) (momentum=1 freezes the moving statistics, which a scaler cannot "
            "do). Set layer.momentum first; it does not change the inference output."
        )
    epsilon = float(layer.epsilon)
    if not epsilon >= 0:
        raise ValueError(f"This layer has epsilon={layer.epsilon}; it must be >= 0.")

    center, scale = bool(layer.center), bool(layer.scale)
    arrays = {
        "moving_mean": _numpy(layer.moving_mean),
        "moving_variance": _numpy(layer.moving_variance),
    }
    if scale:
        arrays["gamma"] = _numpy(layer.gamma)
    if center:
        arrays["beta"] = _numpy(layer.beta)
    check_values(arrays)
    check_zero_divisor(arrays["moving_variance"], epsilon, "Keras BatchNormalization layer")

    params = {
        "momentum": momentum,
        "epsilon": epsilon,
        "unbiased": False,
        "init": "keras",
        "center": center,
        "scale": scale,
    }
    return params, arrays  # loaded as set_weights loads into an unfitted scaler
