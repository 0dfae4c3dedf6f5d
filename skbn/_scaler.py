"""``BatchNormScaler``: batch normalization's moving statistics as a transformer."""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import __version__, _array_api, _stats
from ._affine import affine, scale_columns_sparse, transform_coefficients

__all__ = ["BatchNormScaler"]


# float32 stays float32, every other dtype (float16 included) becomes float64.
_FLOAT_DTYPES = (np.float64, np.float32)

#: Version of the pickled state; bump it (and migrate in __setstate__) when
#: the fitted attributes change meaning.
_STATE_FORMAT = 1

# The parameters whose values can be compared cheaply; see _check_params.
_CHEAP_PARAMS = (
    "momentum", "epsilon", "unbiased", "init", "center", "scale",
    "with_mean", "batch_size", "n_jobs", "copy",
)  # fmt: skip


def _is_float32_frame(X) -> bool:
    """A polars DataFrame whose columns are all Float32 (scikit-learn cannot
    see a polars frame's dtype and would pick float64)."""
    if type(X).__module__.partition(".")[0] != "polars" or not hasattr(X, "schema"):
        return False
    dtypes = list(X.schema.values())
    return bool(dtypes) and all(str(dt) == "Float32" for dt in dtypes)


def _to_numpy(a):
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


def _is_dask(X) -> bool:
    """A dask collection, recognised without importing dask."""
    return type(X).__module__.partition(".")[0] == "dask"


@contextmanager
def _atomic(estimator):
    """Restore every attribute of ``estimator`` if the block raises.

    Fitted arrays are always replaced, never written in place, so a shallow
    copy of ``__dict__`` is a complete snapshot.
    """
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


def _feature_labels(estimator, mask: np.ndarray) -> list:
    names = getattr(estimator, "feature_names_in_", None)
    idx = np.flatnonzero(mask)
    if names is not None:
        return [str(names[i]) for i in idx]
    return [int(i) for i in idx]


def _infinite_error(estimator, columns, what: str = "X") -> ValueError:
    mask = np.zeros(estimator.n_features_in_, dtype=bool)
    mask[np.asarray(columns, dtype=np.intp)] = True
    return ValueError(
        f"Input {what} contains infinity in feature(s) {_feature_labels(estimator, mask)}. "
        f"{type(estimator).__name__} accepts NaN (a missing value, ignored by the "
        "statistics) but not +/-inf: replace infinite values, e.g. with "
        "np.nan or a clipped finite value."
    )


def _check_finite(X, estimator) -> None:
    """Refuse +/-inf (NaN is allowed: it marks a missing value)."""
    values = X.data if sp.issparse(X) else X
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(values, dtype=np.float64)):
            return
    if not np.isinf(values).any():
        return
    if sp.issparse(X):
        coo = X.tocoo()
        columns = np.unique(coo.col[np.isinf(coo.data)])
    else:
        columns = np.flatnonzero(np.isinf(X).any(axis=0))
    raise _infinite_error(estimator, columns)


def _check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate frequency weights: 1-d, length n_samples, finite, >= 0."""
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
        w = np.asarray(sample_weight, dtype=np.float64)
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
    return w


def _check_affine(value, name: str, n_features: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
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


class BatchNormScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale features with batch normalization's moving mean and variance.

    Each call to :meth:`partial_fit` is one mini-batch ``B``.  For each feature
    ``j``, over the rows of ``B`` whose value is not NaN, with frequency
    weights ``w_i``::

        m_j  = sum_i w_i
        mu_j = sum_i w_i x_ij / m_j
        s2_j = sum_i w_i (x_ij - mu_j)^2 / m_j
        s2_j = s2_j * m_j / (m_j - 1)              (only if unbiased)

    and each moving statistic ``S`` (mean or variance) moves toward its batch
    value ``b`` by a step ``alpha``: ``S_j <- S_j + alpha_j (b_j - S_j)``, with

    * ``init="keras"``: ``alpha = 1 - momentum``, starting from mean 0 and
      variance 1, exactly the update of Keras ``BatchNormalization``
      (``moving = moving * momentum + batch * (1 - momentum)``) and, with
      ``unbiased=True``, of PyTorch ``BatchNorm1d(momentum=1 - momentum)``;
    * ``init="debiased"``: ``alpha = (1 - momentum) / W`` where
      ``W <- momentum W + (1 - momentum)`` starts at 0: the same exponential
      average, divided by its accumulated weight (as Adam corrects its
      moments), so the first batch's statistics are taken exactly;
    * ``momentum=None``: ``alpha = 1 / t``, ``t`` the number of batches that
      updated the statistic: the plain average of the batch statistics.

    :meth:`transform` then computes::

        y = gamma_ * (x - moving_mean_) / sqrt(moving_var_ + epsilon) + beta_

    Read more in the project's user guide (``docs/``).

    Parameters
    ----------
    momentum : float in [0, 1) or None, default=0.99
        Weight of the old estimate (Keras convention; PyTorch's ``momentum``
        is ``1 - momentum``).  ``None``: cumulative average of the batch
        statistics.  ``0``: the statistics of the last batch.
    epsilon : float >= 0, default=1e-3
        Added to the moving variance in :meth:`transform` (Keras default).
    unbiased : bool, default=False
        Multiply each batch variance by ``m / (m - 1)`` before it enters the
        moving variance, as PyTorch's ``running_var`` does.  A feature with
        ``m <= 1`` in a batch then updates its mean but not its variance.
    init : {"debiased", "keras"}, default="debiased"
        How the moving statistics start; see above.  No effect when
        ``momentum=None``.
    center : bool, default=True
        Add ``beta_`` in :meth:`transform` (Keras ``center``).
    scale : bool, default=True
        Multiply by ``gamma_`` in :meth:`transform` (Keras ``scale``).
    gamma : float or array-like of shape (n_features,), default=1.0
        Starting value of ``gamma_``.
    beta : float or array-like of shape (n_features,), default=0.0
        Starting value of ``beta_``.
    with_mean : bool, default=True
        If False, do not subtract the moving mean in :meth:`transform`
        (required for sparse input).  The moving mean is still learned.
    batch_size : int >= 1 or None, default=None
        :meth:`fit` feeds ``X`` to :meth:`partial_fit` in consecutive slices of
        this many rows; ``None``: all of ``X`` is one batch.
    n_jobs : int or None, default=None
        Threads used for the per-block work.  ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context, ``-1`` means all cores.  The
        results are identical, bit for bit, for every value.
    copy : bool, default=True
        If False, :meth:`transform` and :meth:`inverse_transform` write into
        ``X`` when it is already a writeable float ndarray.

    Attributes
    ----------
    moving_mean_ : ndarray of shape (n_features,)
        The moving mean (float64).
    moving_var_ : ndarray of shape (n_features,)
        The moving variance (float64).
    gamma_ : ndarray of shape (n_features,)
        Scale applied when ``scale=True``; set from ``gamma`` when fitting
        starts, never changed by :meth:`partial_fit`.
    beta_ : ndarray of shape (n_features,)
        Offset applied when ``center=True``; set from ``beta`` likewise.
    mean_ : ndarray of shape (n_features,)
        Read-only alias of ``moving_mean_`` (``StandardScaler`` name).
    var_ : ndarray of shape (n_features,)
        Read-only alias of ``moving_var_`` (``StandardScaler`` name).
    n_samples_seen_ : int, float or ndarray of shape (n_features,)
        Number of samples seen (sum of the sample weights when they were
        given); an array, one count per feature, when the features have seen
        different numbers of non-NaN values, as in ``StandardScaler``.
    n_batches_seen_ : int
        Number of mini-batches seen (calls to :meth:`partial_fit`, or slices
        of :meth:`fit`).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        column names.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : Exact mean and variance of all data.
    keras.layers.BatchNormalization : The Keras layer whose update this follows.
    torch.nn.BatchNorm1d : The PyTorch layer whose update this follows.

    Notes
    -----
    NaN values are ignored by the statistics and kept in :meth:`transform`.
    Statistics are accumulated in float64 with a blocked, corrected two-pass
    algorithm (no ``E[x^2] - E[x]^2``); float32 data is transformed in
    float32.  A :meth:`partial_fit` that raises leaves every fitted attribute
    exactly as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from skbn import BatchNormScaler
    >>> X = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0], [6.0, 40.0]])
    >>> scaler = BatchNormScaler(epsilon=0.0).fit(X)
    >>> scaler.moving_mean_, scaler.moving_var_
    (array([ 3., 25.]), array([  5., 125.]))
    >>> scaler.transform([[3.0, 25.0]])
    array([[0., 0.]])
    >>> stream = BatchNormScaler(momentum=None)
    >>> for chunk in (X[:2], X[2:]):
    ...     stream = stream.partial_fit(chunk)
    >>> stream.moving_mean_, stream.moving_var_, stream.n_batches_seen_
    (array([ 3., 25.]), array([ 1., 25.]), 2)
    """

    _parameter_constraints: dict = {
        "momentum": [Interval(Real, 0, 1, closed="left"), None],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "unbiased": ["boolean"],
        "init": [StrOptions({"debiased", "keras"})],
        "center": ["boolean"],
        "scale": ["boolean"],
        "gamma": [Real, "array-like"],
        "beta": [Real, "array-like"],
        "with_mean": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "copy": ["boolean"],
    }

    def __init__(
        self,
        *,
        momentum=0.99,
        epsilon=1e-3,
        unbiased=False,
        init="debiased",
        center=True,
        scale=True,
        gamma=1.0,
        beta=0.0,
        with_mean=True,
        batch_size=None,
        n_jobs=None,
        copy=True,
    ):
        self.momentum = momentum
        self.epsilon = epsilon
        self.unbiased = unbiased
        self.init = init
        self.center = center
        self.scale = scale
        self.gamma = gamma
        self.beta = beta
        self.with_mean = with_mean
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.copy = copy

    # -- read-only StandardScaler aliases -------------------------------------

    @property
    def mean_(self) -> np.ndarray:
        """Read-only alias of ``moving_mean_``."""
        return self.moving_mean_

    @property
    def var_(self) -> np.ndarray:
        """Read-only alias of ``moving_var_``."""
        return self.moving_var_

    # -- state -----------------------------------------------------------------

    def _reset(self) -> None:
        """Forget everything learned; the parameters are untouched."""
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("__"):
                delattr(self, name)

    def _start(self, n_features: int, xp=np, device=None) -> None:
        """Set the starting state: mean 0, variance 1, no update counted.

        The arrays live in the namespace ``xp`` on ``device`` (NumPy by default).
        """
        gamma = _check_affine(self.gamma, "gamma", n_features)
        beta = _check_affine(self.beta, "beta", n_features)
        if xp is np:
            self.gamma_, self.beta_ = gamma, beta
            self.moving_mean_ = np.zeros(n_features)
            self.moving_var_ = np.ones(n_features)
            self._mean_updates_ = np.zeros(n_features, dtype=np.int64)
            self._samples_per_feature_ = np.zeros(n_features)
        else:
            dtype = _array_api.stats_dtype(xp, device)
            self.gamma_ = xp.asarray(gamma, dtype=dtype, device=device)
            self.beta_ = xp.asarray(beta, dtype=dtype, device=device)
            self.moving_mean_ = xp.zeros(n_features, dtype=dtype, device=device)
            self.moving_var_ = xp.ones(n_features, dtype=dtype, device=device)
            self._mean_updates_ = xp.zeros(n_features, dtype=xp.int64, device=device)
            self._samples_per_feature_ = xp.zeros(n_features, dtype=dtype, device=device)
        self._var_updates_ = xp.asarray(self._mean_updates_, copy=True)
        self.n_batches_seen_ = 0
        self.n_samples_seen_ = 0
        self._weighted_ = False

    def _validate_X(self, X, *, reset: bool, copy: bool = False, xp=np, device=None):
        """Validate ``X`` (finiteness is checked later, where the data is read).

        A plain 2-D float32/float64 ndarray of the fitted width, for a scaler
        fitted without feature names, is already what ``validate_data`` would
        return, so it skips that call; everything else goes through it.
        """
        if (
            not reset
            and type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _FLOAT_DTYPES
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
        ):
            return X
        if xp is np:
            dtype = np.float32 if _is_float32_frame(X) else _FLOAT_DTYPES
        else:  # float32 stays float32, the rest takes the device's best float
            dtype = (_array_api.stats_dtype(xp, device), xp.float32)
        try:
            return validate_data(
                self,
                X,
                reset=reset,
                accept_sparse=("csr", "csc"),
                dtype=dtype,
                ensure_all_finite=False,
                copy=copy,
            )
        except (TypeError, ValueError) as exc:
            message = str(exc)
            if message.startswith("Complex data not supported"):
                message = "Complex data not supported"  # without the whole array
            hint = _fix_hint(message)
            if hint is None:
                raise
            separator = " " if message.endswith(".") else ". "
            raise type(exc)(f"{message}{separator}{hint}") from None

    def _sample_weight(self, sample_weight, X, xp):
        """Validated weights: NumPy through ``_check_sample_weight`` above,
        other namespaces through scikit-learn's, with the same refusals."""
        if xp is np or sample_weight is None:
            return _check_sample_weight(sample_weight, X.shape[0])
        from sklearn.utils.validation import _check_sample_weight as sk_check

        w = sk_check(sample_weight, X, dtype=X.dtype, allow_all_zero_weights=True)
        if not bool(xp.all(xp.isfinite(w))):
            raise ValueError(
                "sample_weight contains NaN or infinity; every weight must be a finite "
                "number >= 0 (use 0 to leave a sample out)."
            )
        if bool(xp.any(w < 0)):
            raise ValueError(
                "Negative values in data passed to sample_weight: frequency weights "
                "must be >= 0 (use 0 to leave a sample out)."
            )
        return w

    def _check_is_fitted(self) -> None:
        # Every fitted scaler has n_batches_seen_; scikit-learn's check (which
        # builds the estimator's tags) runs only to raise its NotFittedError.
        if "n_batches_seen_" not in self.__dict__:
            check_is_fitted(self, "n_batches_seen_")

    def _check_params(self) -> None:
        """Validate the parameters, skipping the work when they have not
        changed since the last successful check (``gamma`` and ``beta`` are
        checked where they are used, when fitting starts)."""
        key = tuple((type(v).__name__, v) for v in map(self.__dict__.get, _CHEAP_PARAMS))
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
        if self.center and np.any(np.asarray(beta) != 0):
            raise ValueError(
                "Cannot add a nonzero beta_ offset to sparse matrices: it would make "
                "them dense. Pass `center=False` (or set beta to 0), or convert X "
                "to a dense array."
            )

    def _moments(self, X, sample_weight, xp=np, device=None):
        try:
            if xp is not np:
                return _array_api.moments(X, sample_weight, xp, device)
            if sp.issparse(X):
                _check_finite(X, self)
                return _stats.sparse_moments(X, sample_weight)
            return _stats.dense_moments(X, sample_weight, n_jobs=self.n_jobs)
        except _stats.InfiniteValueError as exc:
            raise _infinite_error(self, exc.columns) from None

    def _update(self, X, sample_weight, xp=np, device=None) -> None:
        """Apply one mini-batch to the moving statistics (SPEC section 3)."""
        moments = self._moments(X, sample_weight, xp, device)
        self._apply_moments(moments, sample_weight is not None, xp)

    def _apply_moments(self, moments: _stats.Moments, weighted: bool, xp=np) -> None:
        """Move the statistics toward one batch's ``moments`` (SPEC section 3)."""
        weight = moments.weight
        update_mean = weight > 0
        if self.unbiased:
            batch_var = _stats.unbiased_variance(moments, xp)
            update_var = weight > 1
        else:
            batch_var = moments.var
            update_var = update_mean
        moving_mean, mean_updates = _stats.moving_update(
            self.moving_mean_, self._mean_updates_, moments.mean, update_mean,
            self.momentum, self.init, xp,
        )  # fmt: skip
        moving_var, var_updates = _stats.moving_update(
            self.moving_var_, self._var_updates_, batch_var, update_var,
            self.momentum, self.init, xp,
        )  # fmt: skip

        samples = self._samples_per_feature_ + weight
        weighted = self._weighted_ or weighted
        if xp.min(samples) == xp.max(samples):
            seen = float(samples[0]) if weighted else int(samples[0])
        else:
            seen = samples if weighted else xp.astype(samples, xp.int64)

        self.moving_mean_ = moving_mean
        self.moving_var_ = moving_var
        self._mean_updates_ = mean_updates
        self._var_updates_ = var_updates
        self._samples_per_feature_ = samples
        self._weighted_ = weighted
        self.n_samples_seen_ = seen
        self.n_batches_seen_ += 1

    # -- fitting ---------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Forget everything, then learn the moving statistics from ``X``.

        ``X`` is fed to :meth:`partial_fit` in consecutive slices of
        ``batch_size`` rows (one batch when ``batch_size`` is None).  With
        the default ``init="debiased"`` and one batch, the moving statistics
        are the exact (weighted) mean and biased variance of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; NaN marks a missing value.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights; they may not all be zero.

        Returns
        -------
        self : object
            Fitted scaler.
        """
        if _is_dask(X) or _is_dask(sample_weight):
            from ._dask import fit

            return fit(self, X, sample_weight)
        xp, is_numpy, device = _array_api.namespace(X)
        xp = np if is_numpy else xp
        with _atomic(self):
            self._reset()
            X = self._validate_X(X, reset=True, xp=xp, device=device)
            sample_weight = self._sample_weight(sample_weight, X, xp)
            if sample_weight is not None and not xp.any(sample_weight != 0):
                raise ValueError(
                    "Sample weights must contain at least one non-zero number: "
                    "with all weights zero there is nothing to learn."
                )
            self._check_sparse_supported(X)
            self._start(X.shape[1], xp, device)
            n = X.shape[0]
            step = n if self.batch_size is None else self.batch_size
            for start in range(0, n, step):
                rows = slice(start, min(start + step, n))
                w = None if sample_weight is None else sample_weight[rows]
                self._update(X[rows, ...], w, xp, device)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the moving statistics with one mini-batch ``X``.

        All of ``X`` is one batch, whatever ``batch_size`` is.  A feature with
        no non-NaN value of positive weight in ``X`` is not updated.  If this
        method raises, every fitted attribute is left exactly as it was.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The mini-batch; NaN marks a missing value.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights.

        Returns
        -------
        self : object
            Fitted scaler.
        """
        if _is_dask(X) or _is_dask(sample_weight):
            from ._dask import partial_fit

            return partial_fit(self, X, sample_weight)
        with _atomic(self):
            first_call = not hasattr(self, "n_batches_seen_")
            # Checked on every call: a parameter changed mid-stream must be
            # refused before it touches the statistics.
            if not get_config()["skip_parameter_validation"]:
                self._check_params()
            xp, is_numpy, device = _array_api.namespace(X)
            if not first_call and xp is not np:  # array_api_dispatch is on
                self._check_same_namespace(X, "partial_fit")
            xp = np if is_numpy else xp
            X = self._validate_X(X, reset=first_call, xp=xp, device=device)
            sample_weight = self._sample_weight(sample_weight, X, xp)
            self._check_sparse_supported(X, None if first_call else self.beta_)
            if first_call:
                self._start(X.shape[1], xp, device)
            self._update(X, sample_weight, xp, device)
        return self

    # -- transforming ----------------------------------------------------------

    def _coefficients(self, xp=np):
        """``(shift, factor, offset)`` of the affine map; ``None`` leaves a term out."""
        gamma = self.gamma_ if self.scale else None
        factor = transform_coefficients(self.moving_var_, self.epsilon, gamma, xp)
        shift = self.moving_mean_ if self.with_mean else None
        offset = self.beta_ if self.center else None
        return shift, factor, offset

    def _check_same_namespace(self, X, method: str) -> None:
        from sklearn.utils._array_api import check_same_namespace

        check_same_namespace(X, self, attribute="moving_mean_", method=method)

    def _apply_xp(self, X, inverse: bool, xp, device):
        """The affine map for an Array API namespace other than NumPy."""
        X = self._validate_X(X, reset=False, xp=xp, device=device)
        shift, factor, offset = self._coefficients(xp)
        try:
            return _array_api.affine(X, shift, factor, offset, inverse=inverse, xp=xp)
        except _stats.InfiniteValueError as exc:
            raise _infinite_error(self, exc.columns) from None

    def _apply(self, X_in, copy, inverse: bool):
        """Validate ``X_in``, choose where to write, and apply the affine map."""
        xp, is_numpy, device = _array_api.namespace(X_in)
        if xp is not np:  # array_api_dispatch is on
            self._check_same_namespace(X_in, "inverse_transform" if inverse else "transform")
        if not is_numpy:
            return self._apply_xp(X_in, inverse, xp, device)
        copy = self.copy if copy is None else copy
        X = self._validate_X(X_in, reset=False, copy=copy and sp.issparse(X_in))
        shift, factor, offset = self._coefficients()
        if sp.issparse(X):
            self._check_sparse_supported(X, self.beta_)
            _check_finite(X, self)
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
            _check_finite(X, self)  # all of X, before any of it is overwritten
        out = X if in_place else np.empty_like(X)
        try:
            return affine(
                X, out, shift, factor, offset,
                inverse=inverse, check_finite=not in_place, n_jobs=self.n_jobs,
            )  # fmt: skip
        except _stats.InfiniteValueError as exc:
            raise _infinite_error(self, exc.columns) from None

    def transform(self, X, copy=None):
        """Scale ``X`` with the moving statistics.

        ``y = gamma_ * (x - moving_mean_) / sqrt(moving_var_ + epsilon) + beta_``,
        leaving out ``gamma_`` when ``scale=False``, ``beta_`` when
        ``center=False`` and the mean when ``with_mean=False``.  Where
        ``moving_var_ + epsilon == 0`` the divisor is 1.  NaN stays NaN.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to scale.  Sparse input needs ``with_mean=False`` and no
            ``beta_`` offset; it is returned in the same sparse format.
        copy : bool, default=None
            Copy ``X`` (default: the ``copy`` parameter).

        Returns
        -------
        X_tr : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Scaled data, float32 for float32 input, float64 otherwise.
        """
        self._check_is_fitted()
        if _is_dask(X):
            from ._dask import transform

            return transform(self, X, inverse=False)
        return self._apply(X, copy, inverse=False)

    def inverse_transform(self, X, copy=None):
        """Undo :meth:`transform`: ``x = (y - beta_) / factor + moving_mean_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Scaled data.
        copy : bool, default=None
            Copy ``X`` (default: the ``copy`` parameter).

        Returns
        -------
        X_original : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Data in the original units.

        Raises
        ------
        ValueError
            If ``scale=True`` and some ``gamma_`` is 0: those features were
            mapped to a constant and cannot be recovered.
        """
        self._check_is_fitted()
        zero_gamma = np.asarray(_to_numpy(self.gamma_)) == 0
        if self.scale and zero_gamma.any():
            raise ValueError(
                "Cannot invert the transform: gamma_ is 0 for feature(s) "
                f"{_feature_labels(self, zero_gamma)}, which transform maps "
                "to a constant. Set those gamma_ values to nonzero numbers."
            )
        if _is_dask(X):
            from ._dask import transform

            return transform(self, X, inverse=True)
        return self._apply(X, copy, inverse=True)

    # -- interop (SPEC section 6): each integration lives in its own module,
    # imported only when its method is called ----------------------------------

    def get_weights(self) -> list:
        """The weights in Keras order ``[gamma, beta, moving_mean, moving_variance]``.

        ``gamma`` is left out when ``scale=False`` and ``beta`` when
        ``center=False``, as Keras's ``BatchNormalization.get_weights`` does.

        Returns
        -------
        weights : list of ndarray of shape (n_features,)
            Copies of ``gamma_``, ``beta_``, ``moving_mean_`` and ``moving_var_``.
        """
        from ._weights import get_weights

        return get_weights(self)

    def set_weights(self, weights) -> BatchNormScaler:
        """Load weights in the order of :meth:`get_weights`; works unfitted too.

        On a fitted scaler the values are replaced and the update counts kept.
        On an unfitted one the loaded statistics count as a settled average:
        with a momentum, the next :meth:`partial_fit` moves them by
        ``1 - momentum`` whatever ``init`` is (as the layer would); with
        ``momentum=None`` they count as one batch.

        Parameters
        ----------
        weights : list of array-like of shape (n_features,)
            ``[gamma, beta, moving_mean, moving_variance]``, without ``gamma``
            when ``scale=False`` and without ``beta`` when ``center=False``.

        Returns
        -------
        self : object
            The scaler, fitted.

        Raises
        ------
        ValueError
            If the number of arrays, a shape or a value (NaN, inf, a negative
            variance) is wrong; the scaler is then left as it was.
        """
        from ._weights import set_weights

        return set_weights(self, weights)

    def to_torch(self, dtype=None):
        """A ``torch.nn.BatchNorm1d`` in eval mode that transforms like this scaler.

        PyTorch's ``momentum`` is ``1 - momentum`` (``None`` stays ``None``),
        ``eps`` is ``epsilon``, ``weight``/``bias`` are ``gamma_``/``beta_`` and
        ``num_batches_tracked`` is ``n_batches_seen_``.  What the layer cannot
        represent is exported as an equivalent layer (``with_mean=False``: a
        running mean of 0; a constant feature with ``epsilon=0``: a running
        variance of 1 there; ``scale``/``center`` off: a frozen weight of 1 or
        no bias) or refused; see ``docs/interop.md``.  Needs the ``torch``
        extra (``pip install "skbn[torch]"``).

        Parameters
        ----------
        dtype : torch.dtype, default=None
            The module's dtype; ``None`` means ``torch.get_default_dtype()``
            (float32 unless changed).

        Returns
        -------
        module : torch.nn.BatchNorm1d
            In eval mode; ``module(X)`` equals ``transform(X)``.
        """
        from ._torch import to_torch

        return to_torch(self, dtype=dtype)

    @classmethod
    def from_torch(cls, module) -> BatchNormScaler:
        """A fitted scaler with the statistics and affine weights of ``module``.

        The scaler transforms like the module in eval mode and, fed the same
        batches, updates its statistics exactly as the module does in train
        mode (``unbiased=True``, ``init="keras"``, ``momentum = 1 -`` the
        module's momentum).

        Parameters
        ----------
        module : torch.nn.BatchNorm1d
            A module that tracks running statistics.

        Returns
        -------
        scaler : BatchNormScaler
        """
        from ._torch import from_torch

        return from_torch(module, cls=cls)

    def to_keras(self):
        """A built ``keras.layers.BatchNormalization`` with the same weights.

        ``momentum``, ``epsilon``, ``center`` and ``scale`` are carried over;
        the layer's inference output equals :meth:`transform` (Keras stores
        float32 weights).  ``momentum=None`` has no Keras equivalent and is
        refused.  Needs the ``keras`` extra (``pip install "skbn[keras]"``).

        Returns
        -------
        layer : keras.layers.BatchNormalization
        """
        from ._keras import to_keras

        return to_keras(self)

    @classmethod
    def from_keras(cls, layer) -> BatchNormScaler:
        """A fitted scaler with the weights, momentum and epsilon of ``layer``.

        The scaler uses ``init="keras"`` and ``unbiased=False``, so fed the
        same batches it updates as the layer does with ``training=True``.

        Parameters
        ----------
        layer : keras.layers.BatchNormalization
            A built layer normalizing the last axis.

        Returns
        -------
        scaler : BatchNormScaler
        """
        from ._keras import from_keras

        return from_keras(layer, cls=cls)

    # -- persistence -----------------------------------------------------------

    def __getstate__(self):
        state = super().__getstate__()
        state["_skbn_format"] = _STATE_FORMAT
        return state

    def __setstate__(self, state):
        state = dict(state)
        found = state.pop("_skbn_format", None)
        if type(found) is not int or found != _STATE_FORMAT:
            raise ValueError(
                f"This BatchNormScaler was saved in state format {found!r}, which "
                f"this skbn ({__version__}, format {_STATE_FORMAT}) cannot read. "
                "Load it with the skbn version that saved it, or refit it."
            )
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        no_offset = not self.center or np.all(np.asarray(self.beta) == 0)
        tags.input_tags.sparse = (not self.with_mean) and bool(no_offset)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags
