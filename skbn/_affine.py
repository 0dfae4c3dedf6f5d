"""The per-feature affine map of ``transform`` and its inverse, block by block."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._stats import map_blocks, row_blocks

__all__ = ["affine", "scale_columns_sparse", "transform_coefficients"]


def transform_coefficients(
    moving_var: np.ndarray,
    epsilon: float,
    gamma: np.ndarray | None,
) -> np.ndarray:
    """The multiplier ``gamma / sqrt(moving_var + epsilon)`` of each feature.

    Where ``moving_var + epsilon == 0`` the divisor is 1, as
    ``StandardScaler`` does for constant features.  ``gamma=None`` (``scale``
    off) stands for 1.

    Examples
    --------
    >>> import numpy as np
    >>> transform_coefficients(np.array([4.0, 0.0]), 0.0, np.array([2.0, 3.0])).tolist()
    [1.0, 3.0]
    """
    divisor = np.sqrt(moving_var + epsilon)
    divisor = np.where(divisor == 0, 1.0, divisor)
    return (1.0 if gamma is None else gamma) / divisor


def affine(
    X: np.ndarray,
    out: np.ndarray,
    shift: np.ndarray | None,
    factor: np.ndarray,
    offset: np.ndarray | None,
    *,
    inverse: bool = False,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Write ``(X - shift) * factor + offset`` into ``out``, one row block at a time.

    With ``inverse=True`` it writes ``(X - offset) / factor + shift`` instead.
    ``None`` leaves a term out.  The coefficients are cast to ``out.dtype``
    so float32 data is mapped in float32.  ``out`` may be ``X`` itself.
    """
    dtype = out.dtype
    shift = None if shift is None else shift.astype(dtype)
    factor = factor.astype(dtype)
    offset = None if offset is None else offset.astype(dtype)
    if inverse:
        first, op, last = offset, np.divide, shift
    else:
        first, op, last = shift, np.multiply, offset

    def one(block):
        o = out[block]
        if first is None:
            op(X[block], factor, out=o)
        else:
            np.subtract(X[block], first, out=o)
            op(o, factor, out=o)
        if last is not None:
            np.add(o, last, out=o)

    map_blocks(one, row_blocks(X.shape[0], X.shape[1]), n_jobs)
    return out


def scale_columns_sparse(X, factor: np.ndarray):
    """Multiply each column of a CSR/CSC matrix by ``factor`` in place."""
    factor = factor.astype(X.dtype)
    if X.format == "csr":
        X.data *= factor[X.indices]
    else:
        X.data *= np.repeat(factor, np.diff(X.indptr))
    return X


def is_sparse(X) -> bool:
    return sp.issparse(X)
