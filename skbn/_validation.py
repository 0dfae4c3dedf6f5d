"""Checks shared by the estimator and its integrations, below all of them.

Like ``sklearn/utils/validation.py``: every refusal of a value (weights,
``gamma``/``beta``, +/-inf in the data) is written once, here, with a message
that says what was wrong and how to fix it.  NumPy and SciPy only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from numbers import Real

import numpy as np

__all__ = [
    "InfiniteValueError",
    "check_affine",
    "check_finite",
    "check_sample_weight",
    "feature_labels",
    "infinite_error",
    "infinite_columns",
    "weight_sum_error",
]


class InfiniteValueError(ValueError):
    """The data holds +/-inf; ``columns`` are the indices of the features."""

    def __init__(self, columns):
        self.columns = np.asarray(columns, dtype=np.intp)
        super().__init__(f"infinite values in column(s) {self.columns.tolist()}")


def _issparse(X) -> bool:
    """``scipy.sparse.issparse(X)`` without importing scipy.sparse (a sparse
    matrix exists only once it is imported): the file engine and the command
    line never need it, and it costs 0.1 s of their start-up."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def infinite_columns(X) -> np.ndarray:
    """Indices of the columns of ``X`` (dense or SciPy sparse) holding +/-inf."""
    if _issparse(X):
        coo = X.tocoo()
        return np.unique(coo.col[np.isinf(coo.data)]).astype(np.intp)
    return np.flatnonzero(np.isinf(X).any(axis=0))


def check_finite(X) -> None:
    """Raise :class:`InfiniteValueError` if ``X`` holds +/-inf (NaN is allowed).

    One summation decides for almost all data (a finite sum means no inf);
    only when it is not finite are the values looked at one by one.
    """
    values = X.data if _issparse(X) else X
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(values, dtype=np.float64)):
            return
    columns = infinite_columns(X)
    if columns.size:
        raise InfiniteValueError(columns)


def feature_labels(columns, feature_names: Sequence | None) -> list:
    """The features ``columns`` by name when there are names, else by index."""
    idx = np.asarray(columns, dtype=np.intp).ravel()
    if feature_names is not None:
        return [str(feature_names[i]) for i in idx]
    return [int(i) for i in idx]


def infinite_error(
    columns, feature_names: Sequence | None = None, owner: str = "BatchNormScaler", what="X"
) -> ValueError:
    """The ``ValueError`` for +/-inf in ``columns`` of the input ``what``."""
    return ValueError(
        f"Input {what} contains infinity in feature(s) {feature_labels(columns, feature_names)}. "
        f"{owner} accepts NaN (a missing value, ignored by the statistics) but not "
        "+/-inf: replace infinite values, e.g. with np.nan or a clipped finite value."
    )


def weight_sum_error(total: float) -> ValueError:
    """The ``ValueError`` for weights whose sum does not fit in float64."""
    return ValueError(
        f"The sample weights sum to {total}, beyond what float64 can hold, so the "
        "number of samples seen would be infinite. Only the ratios of frequency "
        "weights matter to the statistics: rescale them, e.g. "
        "sample_weight / sample_weight.max()."
    )


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate frequency weights: 1-d, length ``n_samples``, finite, >= 0,
    with a finite sum.  Returns a new float64 array (or None)."""
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight) and isinstance(sample_weight, (Real, np.number)):
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    try:
        raw = np.asarray(sample_weight)
    except (TypeError, ValueError):
        raw = None  # refused below, with the conversion's own message
    if raw is not None and raw.dtype.kind == "c":
        raise TypeError(
            "sample_weight is complex; frequency weights must be real numbers >= 0 "
            "(pass np.real(sample_weight) or np.abs(sample_weight))."
        )
    try:
        w = np.array(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "sample_weight must be an array of non-negative real numbers, one per "
            f"sample; could not convert it to float64 ({exc})."
        ) from None
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has shape {w.shape}, but X has {n_samples} samples: "
            f"pass a 1-d array of shape ({n_samples},), one weight per row of X."
        )
    if not np.isfinite(w).all():
        raise ValueError(
            "sample_weight contains NaN or infinity; every weight must be a finite "
            "number >= 0 (use 0 to leave a sample out)."
        )
    if (w < 0).any():
        raise ValueError(
            "Negative values in data passed to sample_weight: frequency weights "
            "must be >= 0 (use 0 to leave a sample out)."
        )
    with np.errstate(over="ignore"):
        total = w.sum()
    if not np.isfinite(total):
        raise weight_sum_error(total)
    return w


def check_affine(value, name: str, n_features: int) -> np.ndarray:
    """``gamma`` or ``beta``: a finite scalar or vector of length ``n_features``,
    returned as a new float64 vector."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or an array of them ({exc}).") from None
    if arr.ndim == 0:
        arr = np.full(n_features, float(arr))
    if arr.shape != (n_features,):
        raise ValueError(
            f"{name} must be a scalar or an array of shape (n_features,) = "
            f"({n_features},); got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite; got {arr}.")
    return arr.copy()
