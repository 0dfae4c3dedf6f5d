"""River bridge: batch normalization's moving statistics as a River transformer.

:class:`RiverBatchNormScaler` is a ``river.base.MiniBatchTransformer`` whose
statistics are those of :class:`skbn.BatchNormScaler`: every update is one
``partial_fit`` batch.  River streams dicts whose features come and go, so
the transformer keeps the order of the features it has seen and, when new
ones appear, starts a further ``BatchNormScaler`` for them (a *generation*);
each feature's statistics are those a single scaler over all the features
would hold, the absent ones being missing (NaN) values (bit for bit while the
features stay the same, to the last bits of rounding once they change).

Needs the ``river`` extra (``pip install "skbn[river]"``).
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

try:
    import pandas as pd
    from river import base
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        f'skbn.river needs River and pandas ({exc}); install them with pip install "skbn[river]"'
    ) from exc

from ._scaler import BatchNormScaler

__all__ = ["RiverBatchNormScaler"]

#: The parameters passed on to each ``BatchNormScaler`` (all but ``batch_size``).
_SCALER_PARAMS = (
    "momentum", "epsilon", "unbiased", "init", "center", "scale",
    "gamma", "beta", "with_mean", "with_std", "n_jobs",
)  # fmt: skip

_DEFAULT_BATCH_SIZE = 32


def _order_key(feature):
    """A total order on feature names of any type: the columns that a batch
    adds are sorted by it, so the order of keys in a row never matters."""
    if isinstance(feature, str):
        return (0, feature)
    if isinstance(feature, Integral) and not isinstance(feature, bool):
        return (1, int(feature))
    return (2, f"{type(feature).__qualname__}:{feature!r}")


def _as_float(feature, value) -> float:
    """``value`` as a float; ``None`` and ``pd.NA`` are missing (NaN)."""
    if value is None or value is pd.NA:
        return math.nan
    if not isinstance(value, (str, bytes)):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TypeError(
        f"Feature {feature!r} has the value {value!r} ({type(value).__name__}): "
        "RiverBatchNormScaler scales numbers only. Route the other features "
        "elsewhere, e.g. compose.SelectType(numbers.Number) | RiverBatchNormScaler()."
    )


def _infinite_error(features) -> ValueError:
    return ValueError(
        f"Feature(s) {list(features)} hold +/-inf. RiverBatchNormScaler accepts "
        "NaN or None (a missing value, ignored by the statistics) but not +/-inf: "
        "replace infinite values, e.g. with None or a clipped finite value."
    )


def _frame_values(X, method: str):
    """``(columns, float64 values)`` of a pandas DataFrame, refused otherwise."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{method} takes a pandas DataFrame; got {type(X).__name__}. "
            "Convert it first (polars: X.to_pandas())."
        )
    if not X.columns.is_unique:
        duplicated = X.columns[X.columns.duplicated()].unique().tolist()
        raise ValueError(f"{method}: the column names must be unique; {duplicated} repeat.")
    try:
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{method}: could not convert the columns to numbers ({exc}). "
            "RiverBatchNormScaler scales numbers only: select the numeric columns "
            "first, e.g. X.select_dtypes('number')."
        ) from None
    return list(X.columns), values


class RiverBatchNormScaler(base.MiniBatchTransformer):
    """Batch normalization's moving statistics as a River transformer.

    Every update is one :meth:`skbn.BatchNormScaler.partial_fit` batch:
    :meth:`learn_many` learns its DataFrame as one batch, and :meth:`learn_one`
    buffers rows and learns each ``batch_size`` consecutive rows as one batch,
    exactly as ``partial_fit`` on consecutive slices of that many rows would
    (batch normalization needs batches: the variance of one row is 0).
    :meth:`transform_one` and :meth:`transform_many` compute
    ``gamma * (x - moving_mean) / sqrt(moving_var + epsilon) + beta``, equal to
    :meth:`skbn.BatchNormScaler.transform`.

    Features may come and go.  A feature seen for the first time starts its
    own statistics, as a column of a ``BatchNormScaler`` whose earlier batches
    held no value for it; a feature absent from a row or a batch is a missing
    value there (its statistics do not move); features never learned pass
    through :meth:`transform_one` and :meth:`transform_many` unchanged; the
    order of the keys never matters.  Inputs are copied, never kept.

    Parameters
    ----------
    momentum : float in [0, 1), None or "pooled", default=0.99
        Weight of the old estimate (Keras convention); ``None``: the
        cumulative average of the batch statistics; ``"pooled"``: the exact
        mean and variance of all the rows learned.  As in
        :class:`skbn.BatchNormScaler`, whose every value this accepts.
    epsilon : float >= 0, default=1e-3
        Added to the moving variance in the transform.
    unbiased : bool, default=False
        Multiply each batch variance by ``m / (m - 1)`` (PyTorch's rule).
    init : {"debiased", "keras"}, default="debiased"
        How the moving statistics start: ``"debiased"`` takes the first batch
        exactly, ``"keras"`` starts from mean 0 and variance 1.
    center : bool, default=True
        Add ``beta``.
    scale : bool, default=True
        Multiply by ``gamma``.
    gamma : float, default=1.0
        Starting value of every feature's ``gamma_``.
    beta : float, default=0.0
        Starting value of every feature's ``beta_``.
    with_mean : bool, default=True
        If False, do not subtract the moving mean in the transform.
    with_std : bool, default=True
        If False, do not divide by ``sqrt(moving_var + epsilon)`` in the
        transform.
    batch_size : int >= 1, default=32
        Number of rows :meth:`learn_one` gathers into one batch.
    n_jobs : int or None, default=None
        Threads for the per-block work of the underlying scaler.

    Attributes
    ----------
    features : list
        The features learned so far, in the order of the statistics (those a
        batch added sorted by name).
    moving_mean : dict
        The moving mean of each feature.
    moving_var : dict
        The moving variance of each feature.
    n_samples_seen : dict
        The number of non-missing values each feature has learned from.
    n_batches_seen : int
        The number of batches learned (rows waiting in the buffer excluded).
    n_buffered : int
        The number of rows :meth:`learn_one` holds until its next batch.

    See Also
    --------
    skbn.BatchNormScaler : The scikit-learn estimator behind it;
        :meth:`to_sklearn` and :meth:`from_sklearn` carry the statistics over.
    river.preprocessing.StandardScaler : The exact running mean and variance,
        updated row by row.
    river.preprocessing.AdaptiveStandardScaler : A per-row exponentially
        weighted mean and variance.

    Notes
    -----
    Until the first batch is learned there are no statistics:
    :meth:`transform_one` and :meth:`transform_many` then return their input
    unchanged (a copy), and so they do for any feature not learned yet.

    Unlike River's ``AdaptiveStandardScaler``, which moves an exponentially
    weighted mean and variance once per row, this moves them once per batch,
    toward the batch's own mean and (within-batch) variance.  With one row
    per batch the means follow the same recursion (``momentum = 1 -
    fading_factor``) but the batch variance is 0, so the moving variance
    decays to 0; use batches.  A feature learned in several batches has, with
    ``momentum=None``, the average of its batch means (the all-time mean when
    the batches are equally full) and the average of its within-batch
    variances, which leaves out the spread of the batch means that River's
    ``StandardScaler`` counts.

    :meth:`learn_many` is one batch, not a sequence of rows, so it does not
    match a :meth:`learn_one` loop unless the loop's batches are the same
    rows; rows buffered by :meth:`learn_one` stay buffered across it.
    NaN, ``None`` and ``pd.NA`` are missing values; +/-inf and values that are
    not numbers are refused (before anything is learned or buffered).

    Examples
    --------
    >>> from skbn.river import RiverBatchNormScaler
    >>> scaler = RiverBatchNormScaler(batch_size=2, epsilon=0.0)
    >>> scaler.learn_one({"x": 1.0, "y": 10.0})
    >>> scaler.transform_one({"x": 1.0, "y": 10.0})  # nothing learned yet
    {'x': 1.0, 'y': 10.0}
    >>> scaler.learn_one({"y": 30.0, "x": 3.0})  # the second row: one batch
    >>> scaler.moving_mean, scaler.moving_var
    ({'x': 2.0, 'y': 20.0}, {'x': 1.0, 'y': 100.0})
    >>> scaler.transform_one({"x": 3.0, "y": 10.0, "z": "kept"})
    {'x': 1.0, 'y': -1.0, 'z': 'kept'}
    >>> sk = scaler.to_sklearn()  # a skbn.BatchNormScaler with these statistics
    >>> sk.moving_mean_, sk.n_batches_seen_, scaler.features
    (array([ 2., 20.]), 1, ['x', 'y'])
    """

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
        batch_size=_DEFAULT_BATCH_SIZE,
        n_jobs=None,
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
        self._check_params()
        self._features: list = []  # the statistics' column order
        self._index: dict = {}  # feature -> column
        self._generations: list = []  # [start, stop, BatchNormScaler]: columns start:stop
        self._view = None  # a BatchNormScaler over all the columns, for transforming
        self._buffer: list = []  # rows (dicts of floats) waiting for the next batch
        self._n_batches = 0

    # -- parameters ------------------------------------------------------------

    def _check_params(self) -> None:
        """Refuse a wrong parameter now, not at the first batch."""
        size = self.batch_size
        if not isinstance(size, Integral) or isinstance(size, bool) or size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {size!r}.")
        for name in ("gamma", "beta"):
            value = getattr(self, name)
            if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(
                    f"{name} must be a finite number (it starts every feature's "
                    f"{name}_, whichever features appear); got {value!r}."
                )
        # The estimator validates the others (and any value it gains later).
        self._new_scaler().partial_fit(np.zeros((1, 1)))

    def _new_scaler(self) -> BatchNormScaler:
        return BatchNormScaler(**{name: getattr(self, name) for name in _SCALER_PARAMS})

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"batch_size": 4, "momentum": None}
        yield {"batch_size": 1, "init": "keras", "unbiased": True, "epsilon": 0.0}

    def _unit_test_skips(self):
        # learn_many learns its DataFrame as one batch, and learn_one every
        # batch_size rows: a batch is not a sequence of rows for batch
        # normalization (its variance is the within-batch one), so the two
        # agree only when the batches are the same rows.
        return {"check_learn_many_matches_learn_one"}

    # -- learning ----------------------------------------------------------------

    def learn_one(self, x):
        """Buffer the row ``x``; every ``batch_size`` rows, learn them as one batch.

        Parameters
        ----------
        x : dict
            Feature name -> number; NaN or None is a missing value, and so is
            every learned feature that ``x`` lacks.
        """
        row = {feature: _as_float(feature, value) for feature, value in x.items()}
        infinite = [feature for feature, value in row.items() if math.isinf(value)]
        if infinite:
            raise _infinite_error(infinite)
        self._buffer.append(row)
        if len(self._buffer) < self.batch_size:
            return
        rows = self._buffer
        columns = list(dict.fromkeys(feature for row in rows for feature in row))
        position = {feature: j for j, feature in enumerate(columns)}
        values = np.full((len(rows), len(columns)), np.nan)
        for i, row in enumerate(rows):
            for feature, value in row.items():
                values[i, position[feature]] = value
        self._learn(columns, values)
        self._buffer = []

    def learn_many(self, X):
        """Learn the DataFrame ``X`` as one batch (one ``partial_fit``).

        Parameters
        ----------
        X : pandas.DataFrame
            One column per feature; NaN is a missing value, and so is every
            learned feature that ``X`` lacks.  An empty ``X`` learns nothing.
            Rows buffered by :meth:`learn_one` stay buffered.
        """
        columns, values = _frame_values(X, "learn_many")
        if values.shape[0] == 0:
            return
        if np.isinf(values).any():
            raise _infinite_error(
                [columns[j] for j in np.flatnonzero(np.isinf(values).any(axis=0))]
            )
        self._learn(columns, values)

    def _learn(self, columns: list, values: np.ndarray) -> None:
        """One batch: ``values[:, j]`` holds feature ``columns[j]`` (NaN: missing)."""
        present = ~np.isnan(values).all(axis=0)
        new = [f for f, p in zip(columns, present, strict=True) if p and f not in self._index]
        if new:
            start = len(self._features)
            self._features.extend(sorted(new, key=_order_key))
            self._index.update((f, start + j) for j, f in enumerate(self._features[start:]))
            self._generations.append([start, len(self._features), self._new_scaler()])
        wide = np.full((values.shape[0], len(self._features)), np.nan)
        known = [j for j, f in enumerate(columns) if f in self._index]
        wide[:, [self._index[columns[j]] for j in known]] = values[:, known]
        for start, stop, scaler in self._generations:
            # Every generation counts the batch, with or without values in it.
            block = np.ascontiguousarray(wide[:, start:stop])
            names = getattr(scaler, "feature_names_in_", None)  # from from_sklearn
            scaler.partial_fit(block if names is None else pd.DataFrame(block, columns=names))
        self._n_batches += 1
        self._refresh_view()

    def _refresh_view(self) -> None:
        """The scaler that transforms: the one generation, or all of them joined
        (so that one ``transform`` call, on a NumPy array, does every column)."""
        only = self._generations[0][2] if len(self._generations) == 1 else None
        if only is not None and not hasattr(only, "feature_names_in_"):
            self._view = only
        else:
            self._view = self._merged()

    def _merged(self) -> BatchNormScaler:
        """A new scaler holding every generation's weights side by side."""
        parts = zip(*(scaler.get_weights() for _, _, scaler in self._generations), strict=True)
        return self._new_scaler().set_weights([np.concatenate(arrays) for arrays in parts])

    # -- transforming ------------------------------------------------------------

    def transform_one(self, x):
        """Scale the row ``x``; features not learned yet pass through unchanged.

        Before the first batch is learned (``batch_size`` rows for
        :meth:`learn_one`), nothing is learned and ``x`` is returned
        unchanged (as a new dict).

        Parameters
        ----------
        x : dict
            Feature name -> value.

        Returns
        -------
        dict
            The same keys in the same order; each learned feature's value is
            the float that :meth:`skbn.BatchNormScaler.transform` gives it
            (NaN for NaN or None), the others are ``x``'s values.
        """
        out = dict(x)
        index = self._index
        known = [feature for feature in x if feature in index]
        if not known:
            return out
        row = np.full((1, len(self._features)), np.nan)
        for feature in known:
            row[0, index[feature]] = _as_float(feature, x[feature])
        scaled = self._view.transform(row)[0]
        for feature in known:
            out[feature] = float(scaled[index[feature]])
        return out

    def transform_many(self, X):
        """Scale the DataFrame ``X``; columns not learned yet pass through unchanged.

        Parameters
        ----------
        X : pandas.DataFrame
            One column per feature.

        Returns
        -------
        pandas.DataFrame
            A new DataFrame with the columns and index of ``X``; each learned
            feature's column is float64, equal to
            :meth:`skbn.BatchNormScaler.transform` of it.  Before the first
            batch is learned, a copy of ``X``.
        """
        if not isinstance(X, pd.DataFrame) or not X.columns.is_unique:
            _frame_values(X, "transform_many")  # raises, saying why
        out = X.copy()
        index = self._index
        known = [j for j, feature in enumerate(X.columns) if feature in index]
        if not known or len(X) == 0:
            return out
        _, values = _frame_values(X.iloc[:, known], "transform_many")
        columns = [index[X.columns[j]] for j in known]
        wide = np.full((len(X), len(self._features)), np.nan)
        wide[:, columns] = values
        scaled = self._view.transform(wide)
        for j, column in zip(known, columns, strict=True):
            out.isetitem(j, scaled[:, column])
        return out

    # -- the statistics ----------------------------------------------------------

    @property
    def features(self) -> list:
        """The features learned so far, in the order of the statistics."""
        return list(self._features)

    @property
    def n_batches_seen(self) -> int:
        """The number of batches learned."""
        return self._n_batches

    @property
    def n_buffered(self) -> int:
        """The number of rows :meth:`learn_one` holds until its next batch."""
        return len(self._buffer)

    def _per_feature(self, values) -> dict:
        return {f: v.item() for f, v in zip(self._features, np.asarray(values), strict=True)}

    @property
    def moving_mean(self) -> dict:
        """Feature -> moving mean (empty before the first batch)."""
        return {} if self._view is None else self._per_feature(self._view.moving_mean_)

    @property
    def moving_var(self) -> dict:
        """Feature -> moving variance (empty before the first batch)."""
        return {} if self._view is None else self._per_feature(self._view.moving_var_)

    @property
    def n_samples_seen(self) -> dict:
        """Feature -> number of non-missing values learned from."""
        counts = [
            np.broadcast_to(np.asarray(scaler.n_samples_seen_), (stop - start,))
            for start, stop, scaler in self._generations
        ]
        return self._per_feature(np.concatenate(counts)) if counts else {}

    # -- to scikit-learn and back --------------------------------------------------

    def to_sklearn(self) -> BatchNormScaler:
        """A :class:`skbn.BatchNormScaler` with these parameters and statistics.

        Its columns are :attr:`features`, in that order (fitted on NumPy
        arrays, without ``feature_names_in_`` unless it continues a named
        scaler given to :meth:`from_sklearn`): ``transform(X[features])``
        equals :meth:`transform_many`.  When
        every feature appeared in the first batch (one generation, always the
        case for a fixed set of features), it is a copy of the scaler that
        learned them, with every count: fed the next batches it continues
        exactly as this transformer would.  Otherwise the generations'
        statistics are joined with :meth:`skbn.BatchNormScaler.set_weights`,
        so it continues as a scaler loaded with weights does (a settled
        average; ``n_samples_seen_`` and ``n_batches_seen_`` are 0).  Rows
        buffered by :meth:`learn_one` are not in it.  Before the first batch:
        an unfitted scaler.

        Returns
        -------
        scaler : skbn.BatchNormScaler
            A new estimator, independent of this transformer.
        """
        if not self._generations:
            return self._new_scaler()
        if len(self._generations) == 1:
            return copy.deepcopy(self._generations[0][2])
        return self._merged()

    @classmethod
    def from_sklearn(cls, scaler, *, features=None, batch_size=None) -> RiverBatchNormScaler:
        """A transformer that continues a fitted :class:`skbn.BatchNormScaler`.

        Its parameters are the scaler's (``gamma``/``beta`` given as arrays
        become the default 1.0/0.0, which only features that appear later
        start from); its statistics, affine weights and counts are a copy of
        the scaler's, so fed the same batches both update alike.

        Parameters
        ----------
        scaler : skbn.BatchNormScaler
            A fitted scaler (NumPy arrays).
        features : list, default=None
            The feature name of each column; by default ``feature_names_in_``,
            or the column numbers ``0 .. n_features_in_ - 1``.
        batch_size : int, default=None
            The transformer's ``batch_size``; by default the scaler's, or 32
            where that is None.

        Returns
        -------
        RiverBatchNormScaler
        """
        if not isinstance(scaler, BatchNormScaler):
            raise TypeError(f"from_sklearn takes a BatchNormScaler; got {type(scaler).__name__}.")
        check_is_fitted(scaler)
        if not isinstance(scaler.moving_mean_, np.ndarray):
            raise ValueError(
                "from_sklearn needs a scaler fitted on NumPy data (this one holds "
                f"{type(scaler.moving_mean_).__name__} arrays)."
            )
        n = scaler.n_features_in_
        if features is None:
            names = getattr(scaler, "feature_names_in_", None)
            features = list(range(n)) if names is None else [str(f) for f in names]
        else:
            features = list(features)
            if len(features) != n or len(set(features)) != n:
                raise ValueError(
                    f"features must name each of the scaler's {n} columns once; "
                    f"got {len(features)} names, {len(set(features))} distinct."
                )
        params = scaler.get_params()
        kwargs = {name: params[name] for name in _SCALER_PARAMS if name in params}
        for name, default in (("gamma", 1.0), ("beta", 0.0)):
            if not isinstance(kwargs[name], Real):
                kwargs[name] = default
        if batch_size is None:
            batch_size = params["batch_size"] or _DEFAULT_BATCH_SIZE
        new = cls(**kwargs, batch_size=batch_size)
        new._features = features
        new._index = {f: j for j, f in enumerate(features)}
        # A named scaler goes on learning from DataFrames with its names.
        new._generations = [[0, n, copy.deepcopy(scaler)]]
        new._n_batches = scaler.n_batches_seen_
        new._refresh_view()
        return new
