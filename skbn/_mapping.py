"""The affine map of ``transform`` and ``inverse_transform``, as a mixin.

The estimator's published state is read once per call; the coefficients
``(shift, factor, offset)`` are made from it (and kept, outside the object,
for as long as the state is the published one), then the blocked kernel of
:mod:`skbn._affine`, the Array API path or a collection's handler applies
them.
"""

from __future__ import annotations

import weakref

import numpy as np
import scipy.sparse as sp

from . import _array_api, _collections
from ._affine import (
    affine,
    compiled_plain_affine,
    plain_affine,
    plain_coefficients,
    scale_columns_sparse,
    tiled,
    transform_coefficients,
)
from ._state import State, from_attributes
from ._validation import InfiniteValueError, check_finite, infinite_error

__all__ = ["AffineMixin"]

# Affine coefficients per estimator, for the state they were made from: a
# cache, not fitted state, so it lives outside the object.
_COEFFICIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The largest batch (values) whose map uses tiled coefficients.
_TILED_SIZE = 1 << 16
#: The fitted attributes the coefficients are made from.
_SOURCES = ("moving_mean_", "moving_var_", "_samples_per_feature_", "gamma_", "beta_")


class AffineMixin:
    """``(shift, factor, offset)`` from the state, and their application."""

    def _coefficients(self, state: State | None = None, xp=np):
        """``(shift, factor, offset)`` of the affine map; ``None`` leaves a term out.

        Kept (outside the object) for the published arrays they were made
        from, which are read-only: the next call with the same state and
        parameters reuses them."""
        state = self._fitted_state() if state is None else state
        if xp is not np:
            return self._make_coefficients(state, xp)
        return self._cached_coefficients(state)[0]

    def _cached_coefficients(self, state: State | dict) -> tuple:
        """``(coefficients, plain, tiles)`` of ``state`` (a :class:`State`, or a
        snapshot of the fitted attributes); ``plain`` when
        :func:`~skbn._affine.plain_affine` may apply them (float64 arrays, no
        shift near the float64 limit); ``tiles`` maps a number of rows to
        the coefficients tiled for it."""
        if isinstance(state, dict):
            sources = tuple(map(state.__getitem__, _SOURCES))
        else:
            avg = state.averages
            sources = (avg.mean, avg.var, avg.weight, state.gamma, state.beta)
        params = (self.epsilon, self.with_mean, self.with_std, self.center, self.scale)
        cached = _COEFFICIENTS.get(self)
        # the cache holds its source arrays, so their ids cannot be reused
        if (
            cached is not None
            and cached[1] == params
            and all(a is b for a, b in zip(cached[0], sources, strict=True))
        ):
            return cached[2]
        if isinstance(state, dict):
            state = from_attributes(state)
        coefficients = self._make_coefficients(state, np)
        entry = (coefficients, plain_coefficients(*coefficients), {})
        if not any(a.flags.writeable for a in sources):
            _COEFFICIENTS[self] = (sources, params, entry)
        return entry

    def _plain_transform(self, X, copy, inverse: bool):
        """``transform`` (or its inverse) of the commonest small batch, as
        cheaply as possible: a C-contiguous float64 ndarray of at most
        ``BLOCK_ROWS`` rows and the fitted width, written to a new array, a
        NumPy state without feature names.  None for anything else, which
        takes the full path (the same bits)."""
        if not (self.copy if copy is None else copy) or not self._plain_input(X):
            return None
        snapshot = self.__dict__.copy()  # the published state, read once
        if (
            snapshot.get("n_features_in_") != X.shape[1]
            or "feature_names_in_" in snapshot
            or "n_batches_seen_" not in snapshot
        ):
            return None
        coefficients, plain, tiles = self._cached_coefficients(snapshot)
        if not plain or X.size > _TILED_SIZE:
            return None
        try:
            out = compiled_plain_affine(X, *coefficients, inverse=inverse)
        except InfiniteValueError as exc:
            raise infinite_error(exc.columns, None, type(self).__name__) from None
        if out is not None:
            return out
        n_rows = X.shape[0]
        tile = tiles.get(n_rows)
        if tile is None:  # kept for one batch size: a stream repeats it
            tile = tiled(coefficients, n_rows)
            tiles.clear()
            tiles[n_rows] = tile
        try:
            return plain_affine(X, *tile, inverse=inverse)
        except InfiniteValueError as exc:
            raise infinite_error(exc.columns, None, type(self).__name__) from None

    def _make_coefficients(self, state: State, xp):
        gamma = state.gamma if self.scale else None
        if self.with_std:
            factor = transform_coefficients(state.averages, self.epsilon, gamma, xp)
        elif gamma is not None:
            factor = gamma
        else:
            factor = xp.ones_like(state.averages.mean)
        shift = state.averages.mean if self.with_mean else None
        offset = state.beta if self.center else None
        return shift, factor, offset

    def _check_same_namespace(self, X, method: str) -> None:
        from sklearn.utils._array_api import check_same_namespace

        check_same_namespace(X, self, attribute="moving_mean_", method=method)

    def _apply(self, X_in, copy, inverse: bool):
        """Validate ``X_in``, choose where to write, and apply the affine map."""
        if type(X_in) is np.ndarray:
            out = self._plain_transform(X_in, copy, inverse)
            if out is not None:
                return out
        state = self._fitted_state()
        method = "inverse_transform" if inverse else "transform"
        handler = _collections.handler_for(X_in)
        if handler is not None:
            proxy = handler.describe(X_in, feature_names=state.feature_names)
            X_proxy, _, names = self._validate_X(proxy, reset=False, ensure=False)
            return handler.transform(
                X_in, self._coefficients(state), dtype=X_proxy.dtype, inverse=inverse,
                feature_names=names,
                materialize=not inverse and self._output_container() != "default",
            )  # fmt: skip
        if type(X_in) is np.ndarray and isinstance(state.averages.mean, np.ndarray):
            xp, is_numpy, device = np, True, None  # NumPy whatever the dispatch
        else:
            xp, is_numpy, device = _array_api.namespace(X_in)
        if xp is not np:  # array_api_dispatch is on
            self._check_same_namespace(X_in, method)
        names = state.feature_names
        if not is_numpy:
            X, _, _ = self._validate_X(X_in, reset=False, xp=xp, device=device)
            shift, factor, offset = self._coefficients(state, xp)
            try:
                return _array_api.affine(X, shift, factor, offset, inverse=inverse, xp=xp)
            except InfiniteValueError as exc:
                raise infinite_error(exc.columns, names, type(self).__name__) from None
        copy = self.copy if copy is None else copy
        X, _, _ = self._validate_X(X_in, reset=False, copy=copy and sp.issparse(X_in))
        shift, factor, offset = self._coefficients(state)
        try:
            if sp.issparse(X):
                self._check_sparse_supported(X, state.beta)
                check_finite(X)
                if not X.data.flags.writeable:
                    X = X.copy()
                return scale_columns_sparse(X, 1.0 / factor if inverse else factor)
            # validate_data may already have made a new array (a list, another
            # dtype); it can then be written into even when copy=True.
            fresh = isinstance(X_in, (list, tuple)) or (
                isinstance(X_in, np.ndarray) and not np.may_share_memory(X, X_in)
            )
            in_place = X.flags.writeable and (fresh or not copy)
            if in_place:
                check_finite(X)  # all of X, before any of it is overwritten
            out = X if in_place else np.empty_like(X)
            return affine(
                X, out, shift, factor, offset,
                inverse=inverse, check_finite=not in_place, n_jobs=self.n_jobs,
            )  # fmt: skip
        except InfiniteValueError as exc:
            raise infinite_error(exc.columns, names, type(self).__name__) from None

    def _output_container(self) -> str:
        """The container ``set_output`` configured for ``transform``."""
        from sklearn.utils._set_output import _get_output_config

        return _get_output_config("transform", self)["dense"]
