"""``BatchNormScaler``: batch normalization's moving statistics as a transformer.

The estimator is a thin layer of validation and state.  Data flows one way:
validation (:mod:`skbn._validation` and scikit-learn's ``validate_data``) ->
per-batch moments (:mod:`skbn._stats`, :mod:`skbn._array_api`) -> the
averaging rule (:mod:`skbn._averaging`) -> a new immutable
:class:`~skbn._state.State`, published by :meth:`BatchNormScaler._publish`,
the only place that writes fitted state.  ``transform`` reads the state once
and applies the affine map (:mod:`skbn._affine`).  Collections computed
elsewhere (dask, Spark) go through :mod:`skbn._collections`; the bridges to
other libraries through :mod:`skbn._interop`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _array_api, _collections, _stats
from ._affine import divisor
from ._averaging import KEYWORDS, mode_of, plain_update
from ._input import InputMixin, to_numpy
from ._interop import InteropMixin
from ._mapping import AffineMixin
from ._sparse import sparse_moments
from ._state import State, advance, from_attributes, new_state, next_state, to_attributes
from ._state import write_lock as _write_lock
from ._validation import (
    InfiniteValueError,
    check_affine,
    check_finite,
    feature_labels,
    infinite_error,
)
from ._version import __version__

__all__ = ["BatchNormScaler"]


#: Version of the saved state; bump it (and migrate in __setstate__) when the
#: fitted attributes change meaning.  Format 1 (skbn 0.1) lacks ``_pooled_var_``.
_STATE_FORMAT = 2
_READABLE_FORMATS = (1, 2)


class BatchNormScaler(
    InputMixin, AffineMixin, InteropMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
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
      updated the statistic: the plain average of the batch statistics;
    * ``momentum="pooled"``: the exact weighted mean and biased variance of
      every value seen so far (merged batch by batch with the pairwise update
      of Chan, Golub and LeVeque), what ``StandardScaler.partial_fit``
      computes; times ``n / (n - 1)`` with ``unbiased=True``.

    :meth:`transform` then computes::

        y = gamma_ * (x - moving_mean_) / sqrt(moving_var_ + epsilon) + beta_

    where the divisor is 1 for a feature whose ``moving_var_ + epsilon`` is 0
    or within rounding of 0 (as ``StandardScaler`` guards constant features).

    Read more in the project's user guide (``docs/``).

    Parameters
    ----------
    momentum : float in [0, 1), None or "pooled", default=0.99
        Weight of the old estimate (Keras convention; PyTorch's ``momentum``
        is ``1 - momentum``).  ``None``: cumulative average of the batch
        statistics.  ``0``: the statistics of the last batch.  ``"pooled"``:
        the exact statistics of every value seen (``init`` has no effect).
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
    with_std : bool, default=True
        If False, do not divide by ``sqrt(moving_var_ + epsilon)`` in
        :meth:`transform` (as in ``StandardScaler``).  The moving variance is
        still learned.
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
    scale_ : ndarray of shape (n_features,) or None
        The divisor ``sqrt(moving_var_ + epsilon)``, 1 where that is 0 or
        within rounding of 0 (``moving_var_ + epsilon <= n eps v + (n mu eps)^2``
        with ``v = moving_var_ + epsilon``, ``n`` the samples seen, ``mu`` the
        mean and ``eps`` float64's machine epsilon); ``None`` when
        ``with_std=False``.  As ``StandardScaler.scale_``.
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
    The fitted state is one immutable object, replaced whole by each batch:
    a thread calling :meth:`transform` while another calls
    :meth:`partial_fit` sees the state from before or after a whole batch,
    and concurrent :meth:`partial_fit` calls are serialized.

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
        "momentum": [Interval(Real, 0, 1, closed="left"), None, StrOptions(set(KEYWORDS))],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "unbiased": ["boolean"],
        "init": [StrOptions({"debiased", "keras"})],
        "center": ["boolean"],
        "scale": ["boolean"],
        "gamma": [Real, "array-like"],
        "beta": [Real, "array-like"],
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
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
        with_std=True,
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
        self.with_std = with_std
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.copy = copy

    @property
    def mean_(self):
        """Read-only alias of ``moving_mean_``."""
        return self.moving_mean_

    @property
    def var_(self):
        """Read-only alias of ``moving_var_``."""
        return self.moving_var_

    @property
    def scale_(self):
        """The divisor ``sqrt(moving_var_ + epsilon)`` (1 where guarded), or None."""
        state = self._fitted_state(AttributeError)
        if not self.with_std:
            return None
        xp = self._xp(state)
        return divisor(state.averages, self.epsilon, xp)

    # -- the state: one reader, one writer ---------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return "n_batches_seen_" in self.__dict__

    def _current_state(self) -> State | None:
        """The published state, from one atomic copy of the attributes (None
        when unfitted): a writer publishes a whole state in one update."""
        return from_attributes(self.__dict__.copy())

    def _fitted_state(self, error=None) -> State:
        """The published state, read once (raises NotFittedError, or ``error``)."""
        state = self._current_state()
        if state is None:
            if error is not None:
                raise error(f"{type(self).__name__!r} object is not fitted")
            check_is_fitted(self)
        return state

    @staticmethod
    def _xp(state: State):
        mean = state.averages.mean
        return np if isinstance(mean, np.ndarray) else _array_api.namespace_of(mean)

    def _publish(self, state: State) -> None:
        """The one place that writes fitted state: every attribute of
        ``state`` in one atomic update of ``__dict__`` (readers copy it in
        one step, so they see all of it or none).  Writers hold the write lock."""
        xp = np if type(state.averages.mean) is np.ndarray else self._xp(state)
        if xp is np:  # published arrays are never written again
            for array in state.averages:
                if array.flags.writeable:
                    array.flags.writeable = False
            frozen = {}
            for name, array in (("gamma", state.gamma), ("beta", state.beta)):
                if array.flags.writeable:  # maybe the user's own array: a copy
                    array = array.copy()
                    array.flags.writeable = False
                    frozen[name] = array
            if frozen:
                state = state.replace(**frozen)
        attributes = to_attributes(state, xp)
        if state.feature_names is None:  # a refit without names drops them
            self.__dict__.pop("feature_names_in_", None)
        self.__dict__.update(attributes)

    def _start(self, n_features: int, feature_names, xp=np, device=None) -> State:
        """The state before any batch, with ``gamma_``/``beta_`` from the parameters."""
        gamma = check_affine(self.gamma, "gamma", n_features)
        beta = check_affine(self.beta, "beta", n_features)
        if xp is np:
            return new_state(gamma, beta, feature_names)
        dtype = _array_api.stats_dtype(xp, device)
        gamma = xp.asarray(gamma, dtype=dtype, device=device)
        beta = xp.asarray(beta, dtype=dtype, device=device)
        return new_state(gamma, beta, feature_names, xp, dtype, device)

    def _advance(self, state: State, moments, weighted: bool, xp=np) -> State:
        return advance(
            state, moments, momentum=self.momentum, init=self.init,
            unbiased=bool(self.unbiased), weighted=weighted, xp=xp,
        )  # fmt: skip

    def _fit_moments(self, batches, *, n_features: int, feature_names=None, weighted=False):
        """The seam for engines that compute moments themselves (the file
        engine): forget everything, then apply each :class:`~skbn._stats.Moments`
        of ``batches`` as one mini-batch.  Returns ``self``."""
        self._check_params()
        with _write_lock(self):
            names = None if feature_names is None else np.asarray(feature_names, dtype=object)
            state = self._start(n_features, names)
            for moments in batches:
                state = self._advance(state, moments, weighted)
            self._publish(state)
        return self

    # -- validation --------------------------------------------------------------

    def _moments(self, X, sample_weight, names, xp=np, device=None):
        try:
            if xp is not np:
                return _array_api.moments(X, sample_weight, xp, device)
            if sp.issparse(X):
                check_finite(X)
                return sparse_moments(X, sample_weight)
            return _stats.dense_moments(X, sample_weight, n_jobs=self.n_jobs)
        except InfiniteValueError as exc:
            raise infinite_error(exc.columns, names, type(self).__name__) from None

    # -- fitting -----------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Forget everything, then learn the moving statistics from ``X``.

        ``X`` is fed to :meth:`partial_fit` in consecutive slices of
        ``batch_size`` rows (one batch when ``batch_size`` is None).  With
        the default ``init="debiased"`` (or ``momentum="pooled"``) and one
        batch, the moving statistics are the exact (weighted) mean and biased
        variance of ``X``.  If this method raises, the scaler is left exactly
        as it was.

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
        handler = _collections.handler_for(X, sample_weight)
        if handler is not None:
            return self._fit_collection(handler, X, sample_weight, first=True)
        xp, is_numpy, device = _array_api.namespace(X)
        xp = np if is_numpy else xp
        with _write_lock(self):
            X, n_features, names = self._validate_X(X, reset=True, xp=xp, device=device)
            sample_weight = self._sample_weight(sample_weight, X, xp)
            if sample_weight is not None and not xp.any(sample_weight != 0):
                raise ValueError(
                    "Sample weights must contain at least one non-zero number: "
                    "with all weights zero there is nothing to learn."
                )
            self._check_sparse_supported(X)
            state = self._start(n_features, names, xp, device)
            n = X.shape[0]
            step = n if self.batch_size is None else self.batch_size
            for start in range(0, n, step):
                rows = slice(start, min(start + step, n))
                w = None if sample_weight is None else sample_weight[rows]
                moments = self._moments(X[rows, ...], w, names, xp, device)
                state = self._advance(state, moments, w is not None, xp)
            self._publish(state)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the moving statistics with one mini-batch ``X``.

        All of ``X`` is one batch, whatever ``batch_size`` is.  A feature with
        no non-NaN value of positive weight in ``X`` is not updated.  If this
        method raises, every fitted attribute is left exactly as it was, and
        other threads never see the refused batch.

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
        if sample_weight is None and type(X) is np.ndarray and self._plain_batch(X):
            return self
        handler = _collections.handler_for(X, sample_weight)
        if handler is not None:
            return self._fit_collection(handler, X, sample_weight, first=False)
        # Checked on every call: a parameter changed mid-stream must be
        # refused before it touches the statistics.
        self._check_params()
        xp, is_numpy, device = _array_api.namespace(X)
        with _write_lock(self):
            state = self._current_state()
            if state is not None and xp is not np:  # array_api_dispatch is on
                self._check_same_namespace(X, "partial_fit")
            xp = np if is_numpy else xp
            X, n_features, names = self._validate_X(X, reset=state is None, xp=xp, device=device)
            sample_weight = self._sample_weight(sample_weight, X, xp)
            self._check_sparse_supported(X, None if state is None else state.beta)
            if state is None:
                state = self._start(n_features, names, xp, device)
            moments = self._moments(X, sample_weight, names, xp, device)
            self._publish(self._advance(state, moments, sample_weight is not None, xp))
        return self

    def _plain_batch(self, X) -> bool:
        """``partial_fit(X)`` for the commonest small batch, as cheaply as
        possible: a C-contiguous float64 ndarray of at most
        ``_stats.BLOCK_ROWS`` rows and the fitted width, no weights, a NumPy
        state without feature names, data needing only the fast moments.
        Everything else (and anything doubtful) returns False and takes the
        full path, which gives the same bits."""
        if not self._plain_input(X):
            return False
        self._check_params()
        with _write_lock(self):
            state = self._current_state()
            if state is None or state.n_features != X.shape[1] or state.feature_names is not None:
                return False
            momentum = self.momentum
            averages = plain_update(
                state.averages, X, momentum=momentum, init=self.init, unbiased=bool(self.unbiased)
            )
            if averages is not None:  # one compiled call
                self._publish(next_state(state, averages))
                return True
            pooled = mode_of(momentum).merge is not None  # only merges use the residual
            with np.errstate(over="ignore", invalid="ignore"):
                moments = _stats.plain_block_moments(X, residual=pooled)
            if moments is None:
                return False
            self._publish(self._advance(state, moments, False))
        return True

    def _fit_collection(self, handler, X, sample_weight, *, first: bool):
        """``fit`` (``first=True``) or ``partial_fit`` of a collection that
        ``handler`` computes where it lives (:mod:`skbn._collections`)."""
        self._check_params()
        with _write_lock(self):
            state = None if first else self._current_state()
            if _collections.handler_for(X) is handler:
                proxy = handler.describe(X)  # refuses the kinds it cannot map
            else:  # an in-memory X with a collection of weights
                w = handler.materialize_weights(sample_weight)
                return self.fit(X, sample_weight=w) if first else self.partial_fit(X, None, w)
            reset = state is None
            X_proxy, n_features, names = self._validate_X(proxy, reset=reset, ensure=False)
            dtype = X_proxy.dtype
            try:
                batches = handler.batch_moments(
                    X, sample_weight, dtype=dtype, batch_size=self.batch_size if first else None
                )
            except InfiniteValueError as exc:
                raise infinite_error(exc.columns, names, type(self).__name__) from None
            if batches.n_rows == 0:
                raise ValueError(
                    f"Found array with 0 sample(s) (shape=(0, {n_features})) while a "
                    f"minimum of 1 is required by {type(self).__name__}."
                )
            if first and not batches.any_weight:
                raise ValueError(
                    "Sample weights must contain at least one non-zero number: "
                    "with all weights zero there is nothing to learn."
                )
            if state is None:
                state = self._start(n_features, names)
            for moments in batches.moments:
                state = self._advance(state, moments, sample_weight is not None)
            self._publish(state)
        return self

    # -- transforming ------------------------------------------------------------

    def transform(self, X, copy=None):
        """Scale ``X`` with the moving statistics.

        ``y = gamma_ * (x - moving_mean_) / scale_ + beta_`` with
        ``scale_ = sqrt(moving_var_ + epsilon)`` (1 where that is 0 or within
        rounding of 0), leaving out ``gamma_`` when ``scale=False``, ``beta_``
        when ``center=False``, the mean when ``with_mean=False`` and the
        division when ``with_std=False``.  NaN stays NaN.

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
        state = self._fitted_state()
        zero_gamma = np.asarray(to_numpy(state.gamma)) == 0
        if self.scale and zero_gamma.any():
            raise ValueError(
                "Cannot invert the transform: gamma_ is 0 for feature(s) "
                f"{feature_labels(np.flatnonzero(zero_gamma), state.feature_names)}, "
                "which transform maps to a constant. Set those gamma_ values to "
                "nonzero numbers."
            )
        return self._apply(X, copy, inverse=True)

    # -- persistence -------------------------------------------------------------

    def __getstate__(self):
        state = self.__dict__.copy()  # a new dict: the live object is not touched
        state.pop("_checked_params", None)
        state["_skbn_format"] = _STATE_FORMAT
        return state

    def __setstate__(self, state):
        state = dict(state)
        found = state.pop("_skbn_format", None)
        if type(found) is not int or found not in _READABLE_FORMATS:
            raise ValueError(
                f"This BatchNormScaler was saved in state format {found!r}, which "
                f"this skbn ({__version__}, format {_STATE_FORMAT}) cannot read. "
                "Load it with the skbn version that saved it, or refit it."
            )
        if "moving_mean_" in state and "_pooled_var_" not in state:  # format 1
            state["_pooled_var_"] = state["moving_mean_"] * 0
            state["_mean_residual_"] = state["moving_mean_"] * 0
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        no_offset = not self.center or np.all(np.asarray(self.beta) == 0)
        tags.input_tags.sparse = (not self.with_mean) and bool(no_offset)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags
