"""Input validation for the estimator, as a mixin below ``BatchNormScaler``.

``validate_data`` does the work (dtypes, shapes, feature names), with a fix
hint added where scikit-learn's own message does not say how to fix the
input; with ``reset=True`` it records the width and names on a stub, never
on the estimator, so that they enter the fitted state only when a whole new
state is published.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from . import _array_api
from ._stats import BLOCK_ROWS
from ._validation import check_sample_weight

try:  # the thread's configuration itself: get_config() copies it, on every batch
    from sklearn._config import _get_threadlocal_config as _config
except ImportError:  # pragma: no cover - a scikit-learn that moved it
    _config = get_config

__all__ = ["InputMixin", "to_numpy"]

# float32 stays float32, every other dtype (float16 included) becomes float64.
_FLOAT_DTYPES = (np.float64, np.float32)

# The parameters whose values can be compared cheaply; see _check_params.
_CHEAP_PARAMS = (
    "momentum", "epsilon", "unbiased", "init", "center", "scale",
    "with_mean", "with_std", "batch_size", "n_jobs", "copy",
)  # fmt: skip

_STUBS: dict = {}


def _is_float32_frame(X) -> bool:
    """A polars DataFrame whose columns are all Float32 (scikit-learn cannot
    see a polars frame's dtype and would pick float64)."""
    if type(X).__module__.partition(".")[0] != "polars" or not hasattr(X, "schema"):
        return False
    dtypes = list(X.schema.values())
    return bool(dtypes) and all(str(dt) == "Float32" for dt in dtypes)


def to_numpy(a):
    """A fitted array as NumPy, whatever namespace and device it lives in."""
    if isinstance(a, np.ndarray):
        return a
    from sklearn.utils._array_api import _convert_to_numpy, get_namespace

    return _convert_to_numpy(a, get_namespace(a)[0])


_NUMERIC_HINT = (
    "BatchNormScaler scales numbers only: select the numeric columns first (for "
    "example df.select_dtypes('number'), or a ColumnTransformer that routes the "
    "other columns elsewhere)."
)


def _fix_hint(message: str) -> str | None:
    """How to fix an input that scikit-learn's validation refused, where its
    own message does not say (None where it does)."""
    if "could not convert" in message or "argument must be" in message:
        return _NUMERIC_HINT
    if "Complex data not supported" in message:
        return "Pass real numbers: np.real(X), or np.abs(X) for the magnitude."
    if "inhomogeneous" in message or "sequence" in message:
        return "Every row of X must have the same number of values (n_features)."
    return None


def _stub(estimator) -> BaseEstimator:
    """A bare estimator named like ``estimator``, for ``validate_data(reset=True)``,
    which records the width and feature names on the object it is given:
    here they are read back from the stub and enter the new state instead."""
    name = type(estimator).__name__
    cls = _STUBS.get(name)
    if cls is None:
        cls = _STUBS[name] = type(name, (BaseEstimator,), {"__module__": __name__})
    return cls()


class InputMixin:
    """Validation of ``X``, sample weights and parameters."""

    def _plain_input(self, X: np.ndarray) -> bool:
        """Whether ``X`` (an ndarray) is the commonest small batch that the
        fast paths of ``partial_fit`` and ``transform`` take: aligned,
        C-contiguous float64, 1 to ``BLOCK_ROWS`` rows of the fitted width, for a scaler
        with a NumPy state and no feature names.  A cheap test on one read
        of the attributes; the fast paths check the state they then read."""
        d = self.__dict__
        return (
            X.ndim == 2
            and X.dtype == np.float64
            and X.flags.c_contiguous
            and X.flags.aligned
            and 0 < X.shape[0] <= BLOCK_ROWS
            and d.get("n_features_in_") == X.shape[1]
            and "feature_names_in_" not in d
            and type(d.get("moving_mean_")) is np.ndarray
        )

    def _validate_X(
        self, X, *, reset: bool, copy: bool = False, xp=np, device=None, ensure: bool = True
    ):
        """Validate ``X`` (finiteness is checked where the data is read).

        Returns ``(X, n_features, feature_names)``.  With ``reset=True`` the
        width and names are recorded on a stub, never on ``self``: they enter
        the new state when it is published.  A plain 2-D float ndarray of
        the fitted width, for a scaler fitted without feature names, is
        already what ``validate_data`` would return, so it skips that call.
        """
        state = None if reset else self._current_state()
        if (
            state is not None
            and type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _FLOAT_DTYPES
            and X.shape[0] > 0
            and X.shape[1] == state.n_features
            and state.feature_names is None
        ):
            return X, state.n_features, None
        if xp is np:
            dtype = np.float32 if _is_float32_frame(X) else _FLOAT_DTYPES
        else:  # float32 stays float32, the rest takes the device's best float
            dtype = (_array_api.stats_dtype(xp, device), xp.float32)
        target = _stub(self) if reset else self
        try:
            X = validate_data(
                target, X, reset=reset, accept_sparse=("csr", "csc"), dtype=dtype,
                ensure_all_finite=False, copy=copy, ensure_min_samples=1 if ensure else 0,
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            message = str(exc)
            if message.startswith("Complex data not supported"):
                message = "Complex data not supported"  # without the whole array
            hint = _fix_hint(message)
            if hint is None:
                raise
            separator = " " if message.endswith(".") else ". "
            raise type(exc)(f"{message}{separator}{hint}") from None
        if not reset:
            return X, state.n_features, state.feature_names
        return X, target.n_features_in_, getattr(target, "feature_names_in_", None)

    def _sample_weight(self, sample_weight, X, xp):
        """Validated weights: NumPy through :func:`check_sample_weight`, other
        namespaces through scikit-learn's, with the same refusals."""
        if xp is np or sample_weight is None:
            return check_sample_weight(sample_weight, X.shape[0])
        from sklearn.utils.validation import _check_sample_weight as sk_check

        w = sk_check(sample_weight, X, dtype=X.dtype, allow_all_zero_weights=True)
        check_sample_weight(to_numpy(w), X.shape[0])  # the same refusals
        return w

    def _check_params(self) -> None:
        """Validate the parameters, skipping the work when they have not
        changed since the last successful check (``gamma`` and ``beta`` are
        checked where they are used, when fitting starts)."""
        if _config().get("skip_parameter_validation"):
            return
        values = tuple(map(self.__dict__.get, _CHEAP_PARAMS))
        key = (values, tuple(map(type, values)))
        if key != self.__dict__.get("_checked_params"):
            self._validate_params()
            self._checked_params = key

    def _check_sparse_supported(self, X, beta=None) -> None:
        if not sp.issparse(X):
            return
        if self.with_mean:
            raise ValueError(
                "Cannot center sparse matrices: subtracting the mean would make "
                "them dense. Pass `with_mean=False` to BatchNormScaler, or convert "
                "X to a dense array."
            )
        beta = self.beta if beta is None else beta
        if self.center and np.any(to_numpy(np.asarray(beta) if np.isscalar(beta) else beta) != 0):
            raise ValueError(
                "Cannot add a nonzero beta_ offset to sparse matrices: it would make "
                "them dense. Pass `center=False` (or set beta to 0), or convert X "
                "to a dense array."
            )
