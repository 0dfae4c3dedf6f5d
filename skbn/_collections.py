"""Which module handles a collection the core does not compute itself.

Distributed collections (dask arrays and DataFrames, Spark DataFrames) are
recognised by the top-level package of their type's module, *without
importing that package*; the handler module is imported on first use.  The
core never imports a handler, and a handler imports only the layers below
the estimator (moments, averaging, affine map, validation).

A handler module provides:

``describe(X, feature_names=None) -> proxy``
    An empty in-memory stand-in for ``X`` with the same columns (an empty
    pandas frame, or ``np.empty((0, n_features))``), which the estimator
    validates as it validates in-memory data (feature names, width, dtype).
    ``transform`` passes the fitted ``feature_names``: a handler whose
    collections hold other columns beside the features (Spark's keys and
    labels) describes only those; others may ignore it.
``batch_moments(X, sample_weight, *, dtype, batch_size) -> Batches``
    The :class:`~skbn._stats.Moments` of each mini-batch of ``X`` in order
    (all of ``X`` when ``batch_size`` is None), computed where the data lives.
``transform(X, coefficients, *, dtype, inverse, feature_names, materialize)``
    The affine map, lazily.
``materialize_weights(sample_weight) -> ndarray``
    A collection of weights for an in-memory ``X``, computed.

Adding an integration means adding a line to :data:`KINDS`.

Two helpers every handler needs live here too: :func:`piece_bounds` cuts a
block of rows into the pieces of consecutive ``batch_size``-row batches, and
:func:`float64_coefficients` copies the affine map's coefficients.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np

__all__ = ["KINDS", "Batches", "float64_coefficients", "handler_for", "piece_bounds"]

#: Top-level package of a collection's type -> the module that handles it.
KINDS = {
    "dask": "skbn._dask",
    "pyspark": "skbn.spark",
}


class Batches(NamedTuple):
    """What a handler's ``batch_moments`` returns.

    Attributes
    ----------
    moments : list of Moments
        One per mini-batch, in order.
    any_weight : bool
        Whether some sample weight is positive (True without weights).
    n_rows : int
        The number of rows of ``X``.
    """

    moments: list
    any_weight: bool
    n_rows: int


def _kind(obj) -> str | None:
    root = type(obj).__module__.partition(".")[0]
    return root if root in KINDS else None


def handler_for(*objects):
    """The handler module for the first of ``objects`` that is a known
    collection, imported now; None when none is."""
    for obj in objects:
        if obj is None or isinstance(obj, np.ndarray):
            continue
        kind = _kind(obj)
        if kind is not None:
            return importlib.import_module(KINDS[kind])
    return None


def piece_bounds(start: int, n_rows: int, batch_size: int | None) -> list:
    """Cut a block of rows into the pieces of the batches it holds.

    Parameters
    ----------
    start : int
        The global index of the block's first row (ignored when
        ``batch_size`` is None).
    n_rows : int
        The number of rows of the block.
    batch_size : int or None
        The batches are the consecutive ``batch_size``-row slices of all
        rows; None: all rows are one batch.

    Returns
    -------
    pieces : list of (int, int, int)
        The local row bounds ``(a, b)`` of each non-empty piece, with the
        index of the batch it belongs to; ``[(0, n_rows, 0)]`` (the whole
        block, even empty) when ``batch_size`` is None.

    Examples
    --------
    >>> piece_bounds(5, 10, 4)
    [(0, 3, 1), (3, 7, 2), (7, 10, 3)]
    """
    if batch_size is None:
        return [(0, n_rows, 0)]
    first = (-start) % batch_size or batch_size
    cuts = [0, *range(first, n_rows, batch_size), n_rows]
    return [
        (a, b, (start + a) // batch_size)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
        if b > a
    ]


def float64_coefficients(coefficients: tuple) -> tuple:
    """``(shift, factor, offset)`` as float64 copies (``None`` stays ``None``).

    A handler takes them when ``transform`` is called, so fitting further
    does not change a lazy result already returned.
    """
    return tuple(None if c is None else np.array(c, dtype=np.float64) for c in coefficients)
