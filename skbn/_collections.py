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
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np

__all__ = ["KINDS", "Batches", "handler_for"]

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
