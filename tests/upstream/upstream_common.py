"""What the ported upstream tests share: the scaler under test and the bounds."""

import numpy as np

from skbn import BatchNormScaler

EPS = np.finfo(np.float64).eps

# The Array API namespaces and devices of this machine (scikit-learn's
# yield_namespace_device_dtype_combinations also lists cupy, CUDA, MPS, XPU and
# dpnp, which would be skipped here, and CI counts skips as failures).
ARRAY_API_COMBINATIONS = [
    ("numpy", None, None),
    ("array_api_strict", "CPU_DEVICE", "float64"),
    ("array_api_strict", "device1", "float32"),
    ("torch", "cpu", "float64"),
    ("torch", "cpu", "float32"),
]


def pooled(**params):
    """The scaler under test: StandardScaler's statistics (pooled, epsilon 0)."""
    return BatchNormScaler(epsilon=0.0, momentum="pooled", **params)


def assert_same_to_data_rounding(mean, var, ref_mean, ref_var, X, k=8):
    """(mean, var) are (ref_mean, ref_var) to within k rounding errors of the data.

    ``u = eps * max|x|`` is the rounding error of one datum; the mean may move
    by ``k u``, the variance by as much as data moved by ``k u`` each move it:
    ``2 k u sqrt(var) + (k u)^2``.
    """
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
    u = EPS * np.nanmax(np.abs(X))
    assert np.all(np.abs(mean - ref_mean) <= k * u)
    assert np.all(np.abs(var - ref_var) <= 2 * k * u * np.sqrt(ref_var) + (k * u) ** 2)
