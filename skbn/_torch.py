"""``BatchNormScaler`` to and from ``torch.nn.BatchNorm1d``.

PyTorch is imported inside the functions only (the ``torch`` extra).

The mapping (PyTorch's ``momentum`` is the weight of the *new* batch, skbn's
the weight of the old estimate)::

    BatchNormScaler              BatchNorm1d
    momentum = rho               momentum = 1 - rho        (None stays None)
    epsilon                      eps
    moving_mean_, moving_var_    running_mean, running_var
    gamma_, beta_                weight, bias              (affine)
    n_batches_seen_              num_batches_tracked

In eval mode the module computes
``(x - running_mean) / sqrt(running_var + eps) * weight + bias``, and in train
mode it updates ``running <- (1 - momentum) running + momentum batch``, with
the unbiased batch variance, starting from mean 0 and variance 1, or, with
``momentum=None``, ``running <- running + (batch - running) / t`` where ``t``
is ``num_batches_tracked`` after its increment: the update of
``BatchNormScaler(momentum=1 - momentum, unbiased=True, init="keras")``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np

from ._weights import (
    LayerExport,
    check_values,
    check_zero_divisor,
    complement,
    unrepresentable_features,
)

if TYPE_CHECKING:
    import torch


__all__ = ["from_torch", "to_torch"]


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "BatchNormScaler.to_torch / from_torch need PyTorch, which is not "
            'installed: pip install "skbn[torch]"'
        ) from exc
    return torch


def _numpy(tensor) -> np.ndarray:
    """A tensor of any float dtype and device as a new float64 NumPy array."""
    import torch

    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _has_bias_option(torch) -> bool:
    """Whether ``BatchNorm1d`` takes ``bias=False`` (recent releases; older ones lack it)."""
    return "bias" in inspect.signature(torch.nn.BatchNorm1d.__init__).parameters


def to_torch(scaler: LayerExport, dtype: torch.dtype | None = None) -> torch.nn.BatchNorm1d:
    """A ``torch.nn.BatchNorm1d`` in eval mode whose output is ``scaler.transform``.

    Parameters
    ----------
    scaler : LayerExport
        What the fitted scaler exports (``BatchNormScaler._export()``).
    dtype : torch.dtype, default=None
        Floating dtype of the module's parameters and buffers; ``None`` means
        ``torch.get_default_dtype()`` (float32 unless changed).

    Returns
    -------
    module : torch.nn.BatchNorm1d
        In eval mode, with ``eps = epsilon``, ``momentum = 1 - momentum``
        (``None`` stays ``None``), ``track_running_stats=True``,
        ``running_mean``, ``running_var`` and ``num_batches_tracked`` from the
        scaler, and ``affine=center or scale`` with ``weight = gamma_`` and
        ``bias = beta_``.  Where PyTorch cannot leave a term out, an
        equivalent value stands in, so the eval-mode output is still the
        transform (to the rounding of ``dtype``):

        * ``center=True, scale=False``: ``weight`` is 1, frozen
          (``requires_grad=False``) so that training leaves it at 1;
        * ``center=False, scale=True``: ``bias=False`` (no bias parameter;
          a PyTorch too old for that option gets a bias of 0, frozen);
        * ``with_mean=False``: ``running_mean`` is 0;
        * ``moving_var_ + epsilon == 0`` (a constant feature, ``epsilon=0``):
          ``running_var`` is 1 there (the scaler divides by 1, PyTorch would
          divide by 0).

    Raises
    ------
    ValueError
        If a weight is out of the range of ``dtype`` (inf once rounded) or a
        positive ``moving_var_ + epsilon`` rounds to 0 in ``dtype`` (the
        module would divide by 0); the message suggests ``torch.float64``.

    Notes
    -----
    In train mode the module updates its buffers with PyTorch's rule, the
    unbiased batch variance and a constant step ``momentum`` from the
    exported values: it continues exactly as the scaler would only when the
    scaler has ``unbiased=True`` and ``init="keras"`` (``init`` is irrelevant
    with ``momentum=None``), and where none of the substitutions above apply.
    """
    torch = _import_torch()
    if dtype is None:
        dtype = torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch.dtype, e.g. torch.float32; got {dtype!r}."
        )
    arrays = scaler.arrays
    epsilon = float(scaler.epsilon)
    tensors = {name: torch.tensor(arr, dtype=dtype) for name, arr in arrays.items()}
    rounded = {name: _numpy(t) for name, t in tensors.items()}
    eps_rounded = float(torch.tensor(epsilon, dtype=dtype).to(torch.float64))
    bad = unrepresentable_features(arrays, epsilon, rounded, eps_rounded)
    if bad:
        raise ValueError(
            f"Cannot export this scaler to a {dtype} BatchNorm1d: at the features "
            f"{bad} a weight is outside the range of {dtype} or a positive "
            f"moving_var_ + epsilon rounds to 0, where the module would divide by 0. "
            "Export with dtype=torch.float64."
        )

    center, scale = bool(scaler.center), bool(scaler.scale)
    kwargs = {}
    if scale and not center and _has_bias_option(torch):
        kwargs["bias"] = False
    module = torch.nn.BatchNorm1d(
        scaler.n_features_in_,
        eps=epsilon,
        momentum=complement(scaler.momentum),
        affine=center or scale,
        track_running_stats=True,
        dtype=dtype,
        **kwargs,
    )
    with torch.no_grad():
        module.running_mean.copy_(tensors["moving_mean"])
        module.running_var.copy_(tensors["moving_variance"])
        module.num_batches_tracked.fill_(scaler.batches_tracked)
        if module.weight is not None:
            module.weight.copy_(tensors["gamma"])
        if module.bias is not None:
            module.bias.copy_(tensors["beta"])
    if module.weight is not None and not scale:
        module.weight.requires_grad_(False)
    if module.bias is not None and not center:
        module.bias.requires_grad_(False)
    return module.eval()


def _frozen_constant(param, value: float) -> bool:
    """A parameter that is ``value`` everywhere and not trained (``to_torch``'s
    stand-in for a term the scaler leaves out)."""
    return param is not None and not param.requires_grad and bool((param == value).all())


def from_torch(module: torch.nn.BatchNorm1d) -> tuple:
    """A fitted ``cls`` that transforms like ``module`` in eval mode.

    Parameters
    ----------
    module : torch.nn.BatchNorm1d
        With ``track_running_stats=True``, ``momentum`` in (0, 1] or None.

    Returns
    -------
    params, arrays, n_batches : dict, dict, int
        What ``BatchNormScaler._from_layer`` builds the scaler from:
        ``momentum = 1 - module.momentum`` (``None`` stays ``None``),
        ``epsilon = eps``, ``unbiased=True``, ``init="keras"``,
        ``scale`` / ``center`` where the module has a ``weight`` / ``bias``
        (except a frozen weight of ones / bias of zeros, which is how
        :func:`to_torch` writes a term the scaler leaves out), the ``gamma``
        and ``beta`` parameters *and* ``gamma_`` / ``beta_`` from the weight
        and bias (so a later ``fit`` keeps them), the moving statistics from
        the running ones (as float64), ``n_batches_seen_`` and every update
        count from ``num_batches_tracked``, and ``n_samples_seen_ = 0`` (the
        module does not count samples).

        Fed the same batches, its :meth:`partial_fit` then updates the
        statistics as the module does in train mode, ``momentum=None``
        included (``alpha = 1 / (num_batches_tracked + 1)`` next).

    Raises
    ------
    TypeError
        If ``module`` is not a ``torch.nn.BatchNorm1d``.
    ValueError
        If it has no running statistics (``track_running_stats=False``,
        or a lazy module not yet run), a momentum outside (0, 1]
        (``momentum=0`` freezes the statistics, which a scaler cannot), a
        negative ``eps``, non-finite values, or ``eps = 0`` with a zero
        running variance (the module divides by 0 there; a scaler divides
        by 1).
    """
    torch = _import_torch()
    if not isinstance(module, (torch.nn.BatchNorm1d, torch.nn.LazyBatchNorm1d)):
        raise TypeError(f"from_torch expects a torch.nn.BatchNorm1d; got {type(module).__name__}.")
    lazy = getattr(module, "has_uninitialized_params", None)
    if lazy is not None and lazy():
        raise ValueError(
            "This LazyBatchNorm1d has not been run yet, so it has no running "
            "statistics: run it on a batch first."
        )
    if not module.track_running_stats or module.running_mean is None:
        raise ValueError(
            "This BatchNorm1d has track_running_stats=False: it has no running "
            "statistics (in eval mode it normalizes each batch by its own "
            "statistics), so no scaler reproduces it."
        )
    momentum = module.momentum
    if momentum is not None and not 0 < momentum <= 1:
        raise ValueError(
            f"This BatchNorm1d has momentum={momentum}; BatchNormScaler needs a PyTorch "
            "momentum in (0, 1] (its own momentum = 1 - that, in [0, 1)) or None. "
            "momentum=0 freezes the running statistics, which a scaler cannot do; set "
            "module.momentum first (the value does not change the eval-mode output)."
        )
    epsilon = float(module.eps)
    if not epsilon >= 0:
        raise ValueError(f"This BatchNorm1d has eps={module.eps}; it must be >= 0.")

    mean = _numpy(module.running_mean)
    var = _numpy(module.running_var)
    weight = None if module.weight is None else _numpy(module.weight)
    bias = None if module.bias is None else _numpy(module.bias)
    arrays = {"moving_mean": mean, "moving_variance": var}
    if weight is not None:
        arrays["gamma"] = weight
    if bias is not None:
        arrays["beta"] = bias
    check_values(arrays)
    check_zero_divisor(var, epsilon, "BatchNorm1d module")

    scale = weight is not None and not _frozen_constant(module.weight, 1.0)
    center = bias is not None and not _frozen_constant(module.bias, 0.0)
    params = {
        "momentum": complement(momentum),
        "epsilon": epsilon,
        "unbiased": True,
        "init": "keras",
        "center": center,
        "scale": scale,
    }
    n_features = mean.shape[0]
    arrays = {
        "moving_mean": mean,
        "moving_variance": var,
        "gamma": weight if scale else np.ones(n_features),
        "beta": bias if center else np.zeros(n_features),
    }
    if not scale:
        del arrays["gamma"]
    if not center:
        del arrays["beta"]
    return params, arrays, int(module.num_batches_tracked)
