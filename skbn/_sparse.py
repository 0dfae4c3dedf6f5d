"""Moments of SciPy sparse matrices and arrays, implicit zeros included."""

from __future__ import annotations

import numpy as np

from ._stats import Moments, _pinned, merge_moments

__all__ = ["sparse_moments"]


def sparse_moments(X, sample_weight: np.ndarray | None = None) -> Moments:
    """Moments of a SciPy CSR/CSC matrix or array, implicit zeros included.

    Duplicate entries are summed first (SciPy's meaning of a non-canonical
    matrix).  Per column, the explicit values get the careful moments of
    :func:`_careful_moments` (weights as proportions of the column's own
    total, so no weight underflows and no sum overflows), the implicit zeros
    are one group of mean 0 and variance 0, and the two are merged with
    :func:`merge_moments`.  Constant columns are exact, as in the dense path.
    """
    import scipy.sparse as sp

    X = sp.csc_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    n_rows, n_features = X.shape
    counts = np.diff(X.indptr)
    col = np.repeat(np.arange(n_features), counts)
    data = X.data
    w_row = np.ones(n_rows) if sample_weight is None else sample_weight
    w_entry = w_row[X.indices]
    present = ~np.isnan(data) & (w_entry > 0)

    def per_column(values):
        return np.bincount(col, weights=values, minlength=n_features)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        w_p = np.where(present, w_entry, 0.0)
        w_max = np.zeros(n_features)
        np.maximum.at(w_max, col, w_p)
        scaled = w_p / np.where(w_max > 0, w_max, 1.0)[col]
        scaled_total = per_column(scaled)
        p = scaled / np.where(scaled_total > 0, scaled_total, 1.0)[col]
        x0 = np.where(present, data, 0.0)
        mean = per_column(p * x0)
        d = np.where(present, x0 - mean[col], 0.0)
        pd = p * d
        correction = per_column(pd)
        correction = np.where(np.isfinite(correction), correction, 0.0)
        spread = per_column(pd * d)
        var = np.where(np.isinf(spread), spread, spread - correction * correction)
        mean = mean + correction
    explicit_weight = per_column(w_p)
    explicit = Moments(
        explicit_weight,
        np.where(explicit_weight > 0, mean, 0.0),
        np.where(explicit_weight > 0, np.maximum(var, 0.0), 0.0),
    )
    lo = np.full(n_features, np.inf)
    hi = np.full(n_features, -np.inf)
    np.minimum.at(lo, col[present], data[present])
    np.maximum.at(hi, col[present], data[present])
    explicit = _pinned(explicit, np.arange(n_features), lo, hi)
    # The implicit zeros: the rows with no entry in the column.
    if sample_weight is None:
        zero_weight = (n_rows - counts).astype(np.float64)
    else:
        zero_weight = np.maximum(float(sample_weight.sum()) - per_column(w_entry), 0.0)
        zero_weight[counts == n_rows] = 0.0
    zeros = Moments(zero_weight, np.zeros(n_features), np.zeros(n_features))
    return merge_moments(explicit, zeros)
