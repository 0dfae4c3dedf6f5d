"""End-to-end tests: sparse input, DataFrames, pipelines, metadata routing, copies.

Every expected value is derived independently of skbn: with NumPy, with
scikit-learn's ``StandardScaler``, or from the formulas of SPEC sections 3-4.
"""

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from skbn import BatchNormScaler

SPARSE_CONTAINERS = [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array]
FLOAT_DTYPES = [np.float32, np.float64]
EPS = 1e-3  # the default epsilon


# -- independent references -----------------------------------------------------


def _moving_reference(batch_values, start, momentum):
    """SPEC section 3 written out: S <- S + alpha (b - S), debiased init."""
    S = np.array(start, dtype=np.float64)
    W = 0.0
    for t, b in enumerate(batch_values, start=1):
        if momentum is None:
            alpha = 1.0 / t
        else:
            W = momentum * W + (1.0 - momentum)
            alpha = (1.0 - momentum) / W
        S = S + alpha * (np.asarray(b, dtype=np.float64) - S)
    return S


def _stream_reference(batches, momentum):
    """Moving mean and (biased) variance of a list of dense float64 batches."""
    n_features = batches[0].shape[1]
    means = [b.mean(axis=0) for b in batches]
    variances = [b.var(axis=0) for b in batches]
    return (
        _moving_reference(means, np.zeros(n_features), momentum),
        _moving_reference(variances, np.ones(n_features), momentum),
    )


def _masked_weighted_moments(X, w=None):
    """Per-column weighted mean and biased variance over the non-NaN rows."""
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    means, variances, counts = [], [], []
    for j in range(X.shape[1]):
        keep = ~np.isnan(X[:, j])
        col, wj = X[keep, j], w[keep]
        mu = np.average(col, weights=wj)
        means.append(mu)
        variances.append(np.average((col - mu) ** 2, weights=wj))
        counts.append(wj.sum())
    return np.array(means), np.array(variances), np.array(counts)


def _sparse_data(dtype, seed=0, n_samples=60, n_features=5):
    """Dense data with about half its entries exactly zero, then a given dtype."""
    rng = np.random.default_rng(seed)
    X = rng.normal(
        loc=3.0, scale=[1.0, 2.0, 0.5, 4.0, 3.0][:n_features], size=(n_samples, n_features)
    )
    X[rng.random(X.shape) < 0.5] = 0.0
    return X.astype(dtype)


def _tol(dtype):
    return 1e-12 if dtype == np.float64 else 2e-6


# -- 1. sparse input ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_fit_transform_inverse_match_dense(container, dtype):
    X = _sparse_data(dtype)
    S = container(X)
    S_before = S.copy()
    dense = S.toarray().astype(np.float64)

    scaler = BatchNormScaler(with_mean=False).fit(S)

    # Statistics: the exact mean and biased variance of the densified data.
    rtol = _tol(dtype)
    np.testing.assert_allclose(scaler.moving_mean_, dense.mean(axis=0), rtol=rtol)
    np.testing.assert_allclose(scaler.moving_var_, dense.var(axis=0), rtol=rtol)
    assert scaler.moving_mean_.dtype == np.float64
    assert scaler.moving_var_.dtype == np.float64
    assert scaler.n_samples_seen_ == X.shape[0]
    assert scaler.n_batches_seen_ == 1

    # Transform: same container class, same format, same dtype, same values.
    T = scaler.transform(S)
    assert type(T) is container
    assert T.format == S.format
    assert T.dtype == dtype
    expected = dense / np.sqrt(dense.var(axis=0) + EPS)
    np.testing.assert_allclose(T.toarray(), expected, rtol=10 * rtol, atol=0)
    # ... and equals the dense transform of the same scaler.
    np.testing.assert_allclose(T.toarray(), scaler.transform(S.toarray()), rtol=10 * rtol, atol=0)
    # The sparsity pattern is kept: no explicit entries were added.
    assert T.nnz == S.nnz
    # copy=True (default) left the input alone.
    assert (S != S_before).nnz == 0

    # fit_transform gives the same thing.
    T2 = BatchNormScaler(with_mean=False).fit_transform(S)
    assert type(T2) is container
    np.testing.assert_array_equal(T2.toarray(), T.toarray())

    # inverse_transform round-trips, with the same container.
    back = scaler.inverse_transform(T)
    assert type(back) is container
    assert back.format == S.format
    assert back.dtype == dtype
    np.testing.assert_allclose(back.toarray(), S.toarray(), rtol=10 * rtol, atol=1e-12)


@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_float32_statistics_accumulated_in_float64(container):
    X = _sparse_data(np.float32)
    dense = X.astype(np.float64)
    scaler = BatchNormScaler(with_mean=False).fit(container(X))
    np.testing.assert_allclose(scaler.moving_mean_, dense.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, dense.var(axis=0), rtol=1e-12)
    # The dense float32 path does accumulate in float64: both must agree.
    dense_scaler = BatchNormScaler(with_mean=False).fit(X)
    np.testing.assert_allclose(scaler.moving_var_, dense_scaler.moving_var_, rtol=1e-12)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_partial_fit_stream_matches_reference(container, dtype):
    X = _sparse_data(dtype, seed=1, n_samples=90)
    dense = X.astype(np.float64)
    batches = [dense[i : i + 20] for i in range(0, 90, 20)]  # the last one is short
    sparse_scaler = BatchNormScaler(with_mean=False, momentum=0.8)
    dense_scaler = BatchNormScaler(with_mean=False, momentum=0.8)
    for start in range(0, 90, 20):
        sparse_scaler.partial_fit(container(X[start : start + 20]))
        dense_scaler.partial_fit(X[start : start + 20])

    mean_ref, var_ref = _stream_reference(batches, momentum=0.8)
    rtol = _tol(dtype)
    np.testing.assert_allclose(sparse_scaler.moving_mean_, mean_ref, rtol=rtol)
    np.testing.assert_allclose(sparse_scaler.moving_var_, var_ref, rtol=rtol)
    np.testing.assert_allclose(sparse_scaler.moving_mean_, dense_scaler.moving_mean_, rtol=rtol)
    np.testing.assert_allclose(sparse_scaler.moving_var_, dense_scaler.moving_var_, rtol=rtol)
    assert sparse_scaler.n_batches_seen_ == len(batches)
    assert sparse_scaler.n_samples_seen_ == 90


@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_nan_is_ignored_by_statistics_and_kept_by_transform(container):
    X = _sparse_data(np.float64, seed=2)
    X[[3, 8, 20], 1] = np.nan
    X[5, 4] = np.nan
    S = container(X)
    scaler = BatchNormScaler(with_mean=False).fit(S)

    mean, var, counts = _masked_weighted_moments(X)
    np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, var, rtol=1e-12)
    # Features saw different numbers of values: one count per feature.
    np.testing.assert_array_equal(scaler.n_samples_seen_, counts)
    assert np.isfinite(scaler.moving_mean_).all()
    assert np.isfinite(scaler.moving_var_).all()

    T = scaler.transform(S)
    assert type(T) is container
    out = T.toarray()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(X))
    np.testing.assert_allclose(out, X / np.sqrt(var + EPS), rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(T).toarray(), X, rtol=1e-12)

    # Sparse and dense NaN-bearing streams give the same statistics.
    dense_scaler = BatchNormScaler(with_mean=False, momentum=None)
    sparse_scaler = BatchNormScaler(with_mean=False, momentum=None)
    for start in (0, 30):
        dense_scaler.partial_fit(X[start : start + 30])
        sparse_scaler.partial_fit(container(X[start : start + 30]))
    np.testing.assert_allclose(sparse_scaler.moving_mean_, dense_scaler.moving_mean_, rtol=1e-12)
    np.testing.assert_allclose(sparse_scaler.moving_var_, dense_scaler.moving_var_, rtol=1e-12)
    np.testing.assert_array_equal(sparse_scaler.n_samples_seen_, dense_scaler.n_samples_seen_)


@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_sample_weight(container):
    rng = np.random.default_rng(3)
    X = _sparse_data(np.float64, seed=3)
    X[7, 2] = np.nan
    w = rng.integers(0, 4, size=X.shape[0]).astype(np.float64)
    w[7] = 3.0  # the NaN row has a weight: it must not count for feature 2
    scaler = BatchNormScaler(with_mean=False).fit(container(X), sample_weight=w)

    mean, var, counts = _masked_weighted_moments(X, w)
    np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, var, rtol=1e-12)
    np.testing.assert_allclose(scaler.n_samples_seen_, counts)

    # Integer frequency weights are the same as repeating rows.
    repeated = np.repeat(X, w.astype(int), axis=0)
    rep = BatchNormScaler(with_mean=False).fit(container(repeated))
    np.testing.assert_allclose(scaler.moving_mean_, rep.moving_mean_, rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, rep.moving_var_, rtol=1e-12)

    # partial_fit takes sample_weight on sparse input too.
    pf = BatchNormScaler(with_mean=False).partial_fit(container(X), sample_weight=w)
    np.testing.assert_allclose(pf.moving_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(pf.moving_var_, var, rtol=1e-12)


@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_with_mean_true_raises(container):
    X = _sparse_data(np.float64)
    S = container(X)
    for call in (
        lambda: BatchNormScaler().fit(S),
        lambda: BatchNormScaler().partial_fit(S),
        lambda: BatchNormScaler().fit_transform(S),
        lambda: BatchNormScaler().fit(X).transform(S),
        lambda: BatchNormScaler().fit(X).inverse_transform(S),
    ):
        with pytest.raises(ValueError) as excinfo:
            call()
        message = str(excinfo.value)
        assert "sparse" in message
        assert "with_mean=False" in message

    # A failed first partial_fit leaves the scaler unfitted.
    scaler = BatchNormScaler()
    with pytest.raises(ValueError):
        scaler.partial_fit(S)
    with pytest.raises(NotFittedError):
        check_is_fitted(scaler)


@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
@pytest.mark.parametrize("beta", [1.0, [0.0, 0.0, 2.0, 0.0, 0.0]])
def test_sparse_nonzero_beta_with_center_raises(container, beta):
    X = _sparse_data(np.float64)
    S = container(X)
    with pytest.raises(ValueError, match="beta"):
        BatchNormScaler(with_mean=False, beta=beta).fit(S)
    scaler = BatchNormScaler(with_mean=False, beta=beta)
    with pytest.raises(ValueError, match="beta"):
        scaler.partial_fit(S)
    with pytest.raises(NotFittedError):
        check_is_fitted(scaler)

    # Fitted on dense data, the offset still forbids a sparse transform.
    dense_fitted = BatchNormScaler(with_mean=False, beta=beta).fit(X)
    with pytest.raises(ValueError, match="beta"):
        dense_fitted.transform(S)

    # A sparse-fitted scaler whose beta_ is assigned later refuses too,
    # and a partial_fit that raises changes nothing.
    fitted = BatchNormScaler(with_mean=False).fit(S)
    fitted.beta_ = np.broadcast_to(np.asarray(beta, dtype=float), (5,)).copy()
    mean_before, var_before = fitted.moving_mean_.copy(), fitted.moving_var_.copy()
    with pytest.raises(ValueError, match="beta"):
        fitted.transform(S)
    with pytest.raises(ValueError, match="beta"):
        fitted.partial_fit(S)
    np.testing.assert_array_equal(fitted.moving_mean_, mean_before)
    np.testing.assert_array_equal(fitted.moving_var_, var_before)
    assert fitted.n_batches_seen_ == 1


@pytest.mark.parametrize("container", SPARSE_CONTAINERS)
def test_sparse_nonzero_beta_without_center_works(container):
    X = _sparse_data(np.float64)
    S = container(X)
    gamma = np.array([1.0, 2.0, 0.5, -1.0, 3.0])
    scaler = BatchNormScaler(with_mean=False, center=False, beta=5.0, gamma=gamma).fit(S)
    T = scaler.transform(S)
    assert type(T) is container
    # beta_ is not applied when center=False; gamma_ is.
    expected = gamma * X / np.sqrt(X.var(axis=0) + EPS)
    np.testing.assert_allclose(T.toarray(), expected, rtol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(T).toarray(), X, rtol=1e-12, atol=1e-15)


def test_sparse_copy_false_scales_in_place_and_int_sparse_becomes_float64():
    X = _sparse_data(np.float64)
    S = sp.csr_matrix(X)
    scaler = BatchNormScaler(with_mean=False).fit(S)
    T = scaler.transform(S, copy=False)
    assert np.shares_memory(T.data, S.data)
    np.testing.assert_allclose(S.toarray(), X / np.sqrt(X.var(axis=0) + EPS), rtol=1e-12)

    Xi = np.random.default_rng(4).integers(0, 3, size=(30, 4))
    Si = sp.csc_array(Xi)
    Ti = BatchNormScaler(with_mean=False).fit(Si).transform(Si)
    assert type(Ti) is sp.csc_array
    assert Ti.dtype == np.float64
    assert Si.dtype == Xi.dtype
    np.testing.assert_allclose(Ti.toarray(), Xi / np.sqrt(Xi.var(axis=0) + EPS), rtol=1e-12)


# -- 2. pandas and polars ------------------------------------------------------------


def _frame_data(seed=0, n_samples=40):
    rng = np.random.default_rng(seed)
    return rng.normal(
        loc=[5.0, -2.0, 100.0, 0.0], scale=[1.0, 3.0, 10.0, 0.1], size=(n_samples, 4)
    )


COLUMNS = ["alpha", "beta", "gamma", "delta"]


def _numpy_transform(X, fit_on=None):
    fit_on = X if fit_on is None else fit_on
    return (X - fit_on.mean(axis=0)) / np.sqrt(fit_on.var(axis=0) + EPS)


def test_pandas_feature_names_and_pandas_output():
    X = _frame_data()
    index = pd.Index(np.arange(1000, 1000 + X.shape[0]) * 3, name="row")
    df = pd.DataFrame(X, columns=COLUMNS, index=index)

    scaler = BatchNormScaler().fit(df)
    np.testing.assert_array_equal(scaler.feature_names_in_, COLUMNS)
    np.testing.assert_array_equal(scaler.get_feature_names_out(), COLUMNS)
    np.testing.assert_array_equal(scaler.get_feature_names_out(COLUMNS), COLUMNS)
    assert scaler.n_features_in_ == 4

    as_numpy = scaler.transform(df)
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_allclose(as_numpy, _numpy_transform(X), rtol=1e-12, atol=1e-12)

    scaler.set_output(transform="pandas")
    out = scaler.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == COLUMNS
    pd.testing.assert_index_equal(out.index, df.index)
    np.testing.assert_array_equal(out.to_numpy(), as_numpy)

    # fit_transform honours set_output as well.
    out2 = BatchNormScaler().set_output(transform="pandas").fit_transform(df)
    assert isinstance(out2, pd.DataFrame)
    pd.testing.assert_index_equal(out2.index, df.index)
    np.testing.assert_array_equal(out2.to_numpy(), as_numpy)

    # A plain array fitted scaler names its outputs x0..x3.
    plain = BatchNormScaler().fit(X)
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(plain.get_feature_names_out(), ["x0", "x1", "x2", "x3"])


def test_pandas_float32_frame_stays_float32():
    X = _frame_data().astype(np.float32)
    df = pd.DataFrame(X, columns=COLUMNS)
    scaler = BatchNormScaler().set_output(transform="pandas").fit(df)
    out = scaler.transform(df)
    assert all(dtype == np.float32 for dtype in out.dtypes)
    np.testing.assert_allclose(
        out.to_numpy(), _numpy_transform(X.astype(np.float64)), rtol=1e-5, atol=1e-5
    )


def test_polars_in_and_out():
    X = _frame_data(seed=1)
    pdf = pl.DataFrame(X, schema=COLUMNS)

    scaler = BatchNormScaler().fit(pdf)
    np.testing.assert_array_equal(scaler.feature_names_in_, COLUMNS)
    np.testing.assert_array_equal(scaler.get_feature_names_out(), COLUMNS)
    as_numpy = scaler.transform(pdf)
    np.testing.assert_allclose(as_numpy, _numpy_transform(X), rtol=1e-12, atol=1e-12)

    scaler.set_output(transform="polars")
    out = scaler.transform(pdf)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == COLUMNS
    np.testing.assert_array_equal(out.to_numpy(), as_numpy)

    # pandas in, polars out, and polars in, pandas out.
    df = pd.DataFrame(X, columns=COLUMNS)
    out_pl = BatchNormScaler().set_output(transform="polars").fit(df).transform(df)
    assert isinstance(out_pl, pl.DataFrame)
    assert out_pl.columns == COLUMNS
    np.testing.assert_array_equal(out_pl.to_numpy(), as_numpy)
    out_pd = BatchNormScaler().set_output(transform="pandas").fit(pdf).transform(pdf)
    assert isinstance(out_pd, pd.DataFrame)
    assert list(out_pd.columns) == COLUMNS
    np.testing.assert_array_equal(out_pd.to_numpy(), as_numpy)


def test_polars_null_is_ignored():
    pdf = pl.DataFrame({"a": [1.0, None, 3.0, 5.0], "b": [2.0, 4.0, 6.0, None]})
    scaler = BatchNormScaler(epsilon=0.0).fit(pdf)
    np.testing.assert_allclose(scaler.moving_mean_, [3.0, 4.0])
    np.testing.assert_allclose(scaler.moving_var_, [8.0 / 3.0, 8.0 / 3.0])
    np.testing.assert_array_equal(scaler.n_samples_seen_, [3, 3])
    out = scaler.transform(pdf)
    np.testing.assert_array_equal(np.isnan(out), [[0, 0], [1, 0], [0, 0], [0, 1]])


def test_polars_float32_frame_stays_float32():
    X = _frame_data().astype(np.float32)
    pdf = pl.DataFrame(X, schema=COLUMNS)
    assert all(dtype == pl.Float32 for dtype in pdf.dtypes)
    scaler = BatchNormScaler().fit(pdf)
    assert scaler.transform(pdf).dtype == np.float32


def test_partial_fit_over_dataframe_chunks():
    X = _frame_data(seed=2, n_samples=50)
    df = pd.DataFrame(X, columns=COLUMNS)
    pdf = pl.DataFrame(X, schema=COLUMNS)
    batches = [X[i : i + 15] for i in range(0, 50, 15)]
    mean_ref, var_ref = _stream_reference(batches, momentum=None)

    pandas_scaler = BatchNormScaler(momentum=None)
    for start in range(0, 50, 15):
        pandas_scaler.partial_fit(df.iloc[start : start + 15])
    polars_scaler = BatchNormScaler(momentum=None)
    for chunk in pdf.iter_slices(n_rows=15):
        polars_scaler.partial_fit(chunk)

    for scaler in (pandas_scaler, polars_scaler):
        np.testing.assert_array_equal(scaler.feature_names_in_, COLUMNS)
        np.testing.assert_allclose(scaler.moving_mean_, mean_ref, rtol=1e-12)
        np.testing.assert_allclose(scaler.moving_var_, var_ref, rtol=1e-12)
        assert scaler.n_batches_seen_ == 4
        assert scaler.n_samples_seen_ == 50
    expected = (X - mean_ref) / np.sqrt(var_ref + EPS)
    np.testing.assert_allclose(pandas_scaler.transform(df), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(polars_scaler.transform(pdf), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_renamed_or_reordered_columns_raise(lib):
    X = _frame_data(seed=3)

    def frame(data, columns):
        if lib == "pandas":
            return pd.DataFrame(data, columns=columns)
        return pl.DataFrame(data, schema=columns)

    scaler = BatchNormScaler().fit(frame(X, COLUMNS))
    reordered = [COLUMNS[1], COLUMNS[0], COLUMNS[2], COLUMNS[3]]
    renamed = ["alpha", "BETA", "gamma", "delta"]
    for columns in (reordered, renamed):
        bad = frame(X, columns)
        with pytest.raises(ValueError, match="feature names"):
            scaler.transform(bad)
        with pytest.raises(ValueError, match="feature names"):
            scaler.inverse_transform(bad)

    # partial_fit with renamed columns raises and loses nothing.
    mean_before, var_before = scaler.moving_mean_.copy(), scaler.moving_var_.copy()
    with pytest.raises(ValueError, match="feature names"):
        scaler.partial_fit(frame(X, renamed))
    np.testing.assert_array_equal(scaler.moving_mean_, mean_before)
    np.testing.assert_array_equal(scaler.moving_var_, var_before)
    np.testing.assert_array_equal(scaler.feature_names_in_, COLUMNS)
    assert scaler.n_batches_seen_ == 1

    # Wrong number of columns.
    with pytest.raises(ValueError):
        scaler.transform(frame(X[:, :3], COLUMNS[:3]))


def test_pandas_nullable_dtypes_and_nan():
    df = pd.DataFrame(
        {
            "ints": pd.array([1, 2, None, 4, 8], dtype="Int64"),
            "floats": pd.array([1.5, None, None, 3.0, 0.5], dtype="Float64"),
            "plain": [1.0, np.nan, 3.0, 4.0, 10.0],
            "full": [2.0, 2.5, 3.0, 3.5, 4.0],
        },
        index=list("vwxyz"),
    )
    dense = np.array(
        [
            [1.0, 1.5, 1.0, 2.0],
            [2.0, np.nan, np.nan, 2.5],
            [np.nan, np.nan, 3.0, 3.0],
            [4.0, 3.0, 4.0, 3.5],
            [8.0, 0.5, 10.0, 4.0],
        ]
    )
    scaler = BatchNormScaler().fit(df)
    mean = np.nanmean(dense, axis=0)
    var = np.nanvar(dense, axis=0)
    np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, var, rtol=1e-12)
    np.testing.assert_array_equal(scaler.n_samples_seen_, [4, 3, 4, 5])
    np.testing.assert_array_equal(scaler.feature_names_in_, list(df.columns))

    out = scaler.set_output(transform="pandas").transform(df)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_index_equal(out.index, df.index)
    assert list(out.columns) == list(df.columns)
    assert all(dtype == np.float64 for dtype in out.dtypes)
    expected = (dense - mean) / np.sqrt(var + EPS)
    np.testing.assert_allclose(out.to_numpy(dtype=np.float64), expected, rtol=1e-12)


# -- 3. pipelines, column transformers, model selection -------------------------


def test_pipeline_with_logistic_regression_matches_standard_scaler():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    ours = Pipeline(
        [("scale", BatchNormScaler(epsilon=0.0)), ("clf", LogisticRegression(max_iter=2000))]
    ).fit(X_train, y_train)
    reference = Pipeline(
        [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000))]
    ).fit(X_train, y_train)

    np.testing.assert_allclose(
        ours.named_steps["scale"].moving_mean_, X_train.mean(axis=0), rtol=1e-12
    )
    np.testing.assert_allclose(
        ours.predict_proba(X_test), reference.predict_proba(X_test), rtol=1e-6, atol=1e-8
    )
    np.testing.assert_array_equal(ours.predict(X_test), reference.predict(X_test))
    assert ours.score(X_test, y_test) > 0.93


def test_digits_constant_features_match_standard_scaler_and_pipeline_predicts():
    X, y = load_digits(return_X_y=True)
    # Digits has always-zero pixels: the divisor must be 1 there, as in StandardScaler.
    assert (X.var(axis=0) == 0).any()
    ours = BatchNormScaler(epsilon=0.0).fit(X)
    np.testing.assert_allclose(
        ours.transform(X), StandardScaler().fit(X).transform(X), rtol=1e-12, atol=1e-12
    )
    pipe = Pipeline(
        [("scale", BatchNormScaler(batch_size=200)), ("clf", LogisticRegression(max_iter=500))]
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9
    scaler = pipe.named_steps["scale"]
    assert scaler.n_batches_seen_ == int(np.ceil(len(X_train) / 200))
    assert scaler.n_samples_seen_ == len(X_train)


def test_column_transformer_numeric_scaled_strings_passed_or_encoded():
    rng = np.random.default_rng(5)
    n = 40
    df = pd.DataFrame(
        {
            "x": rng.normal(5.0, 2.0, n),
            "city": rng.choice(["paris", "oslo", "lima"], n),
            "y": rng.normal(-3.0, 0.5, n),
        },
        index=np.arange(n) + 7,
    )
    numeric = df[["x", "y"]].to_numpy()
    scaled = _numpy_transform(numeric)

    passthrough = ColumnTransformer(
        [("num", BatchNormScaler(), ["x", "y"]), ("cat", "passthrough", ["city"])]
    ).set_output(transform="pandas")
    out = passthrough.fit_transform(df)
    assert list(out.columns) == ["num__x", "num__y", "cat__city"]
    pd.testing.assert_index_equal(out.index, df.index)
    np.testing.assert_allclose(out[["num__x", "num__y"]].to_numpy(), scaled, rtol=1e-12)
    assert list(out["cat__city"]) == list(df["city"])
    np.testing.assert_array_equal(
        passthrough.named_transformers_["num"].feature_names_in_, ["x", "y"]
    )

    encoded = ColumnTransformer(
        [
            ("num", BatchNormScaler(), make_column_selector(dtype_include="number")),
            ("cat", OneHotEncoder(sparse_output=False), ["city"]),
        ]
    )
    arr = encoded.fit_transform(df)
    names = list(encoded.get_feature_names_out())
    assert names == ["num__x", "num__y", "cat__city_lima", "cat__city_oslo", "cat__city_paris"]
    np.testing.assert_allclose(arr[:, :2], scaled, rtol=1e-12)
    for k, city in enumerate(["lima", "oslo", "paris"]):
        np.testing.assert_array_equal(arr[:, 2 + k], (df["city"] == city).to_numpy())
    # transform on new rows uses the fitted statistics.
    new = df.iloc[:5]
    np.testing.assert_allclose(
        encoded.transform(new)[:, :2], _numpy_transform(numeric[:5], fit_on=numeric), rtol=1e-12
    )

    # Sparse one-hot output stacked with a with_mean=False scaler stays sparse.
    sparse_ct = ColumnTransformer(
        [
            ("num", BatchNormScaler(with_mean=False), ["x", "y"]),
            ("cat", OneHotEncoder(), ["city"]),
        ],
        sparse_threshold=1.0,
    )
    sparse_out = sparse_ct.fit_transform(df)
    assert sp.issparse(sparse_out)
    np.testing.assert_allclose(
        sparse_out.toarray()[:, :2], numeric / np.sqrt(numeric.var(axis=0) + EPS), rtol=1e-12
    )


def test_grid_search_over_momentum_and_epsilon_refits_best():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = Pipeline(
        [("scale", BatchNormScaler(batch_size=100)), ("clf", LogisticRegression(max_iter=2000))]
    )
    grid = {"scale__momentum": [0.0, 0.9], "scale__epsilon": [1e-3, 10.0]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)

    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_
    assert best is not pipe
    scaler = best.named_steps["scale"]
    assert scaler.momentum == search.best_params_["scale__momentum"]
    assert scaler.epsilon == search.best_params_["scale__epsilon"]
    # Refit on all the data, batch by batch.
    assert scaler.n_samples_seen_ == X.shape[0]
    assert scaler.n_batches_seen_ == int(np.ceil(X.shape[0] / 100))
    batches = [X[i : i + 100] for i in range(0, X.shape[0], 100)]
    mean_ref, var_ref = _stream_reference(batches, momentum=scaler.momentum)
    np.testing.assert_allclose(scaler.moving_mean_, mean_ref, rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, var_ref, rtol=1e-12)
    assert search.score(X, y) > 0.9
    # The template pipeline itself was never fitted.
    with pytest.raises(NotFittedError):
        check_is_fitted(pipe.named_steps["scale"])


def test_clone_keeps_parameters_and_drops_fitted_state():
    gamma = np.array([1.0, 2.0, 3.0])
    beta = np.array([0.5, 0.0, -1.0])
    params = dict(
        momentum=0.9,
        epsilon=0.25,
        unbiased=True,
        init="keras",
        center=False,
        scale=True,
        gamma=gamma,
        beta=beta,
        with_mean=False,
        with_std=False,
        batch_size=7,
        n_jobs=2,
        copy=False,
    )
    original = BatchNormScaler(**params).fit(np.random.default_rng(6).normal(size=(20, 3)))
    copy = clone(original)
    assert copy is not original
    got = copy.get_params()
    assert set(got) == set(params)
    for name, value in params.items():
        np.testing.assert_array_equal(got[name], value)
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    check_is_fitted(original)

    cloned_pipe = clone(Pipeline([("scale", BatchNormScaler(momentum=None, epsilon=0.5))]))
    assert cloned_pipe.get_params()["scale__momentum"] is None
    assert cloned_pipe.get_params()["scale__epsilon"] == 0.5


# -- 4. metadata routing -------------------------------------------------------------


def _weighted_data():
    X, y = load_breast_cancer(return_X_y=True)
    w = np.random.default_rng(7).integers(1, 5, size=X.shape[0]).astype(np.float64)
    return X, y, w


def test_routing_sample_weight_reaches_scaler_in_pipeline():
    X, y, w = _weighted_data()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("scale", BatchNormScaler().set_fit_request(sample_weight=True)),
                ("clf", LogisticRegression(max_iter=2000).set_fit_request(sample_weight=False)),
            ]
        )
        pipe.fit(X, y, sample_weight=w)
        pipe.predict(X)
    scaler = pipe.named_steps["scale"]
    mean = np.average(X, weights=w, axis=0)
    np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(
        scaler.moving_var_, np.average((X - mean) ** 2, weights=w, axis=0), rtol=1e-12
    )
    assert scaler.n_samples_seen_ == w.sum()

    # Requested by both steps: both get it.
    with sklearn.config_context(enable_metadata_routing=True):
        both = Pipeline(
            [
                ("scale", BatchNormScaler().set_fit_request(sample_weight=True)),
                ("clf", LogisticRegression(max_iter=2000).set_fit_request(sample_weight=True)),
            ]
        ).fit(X, y, sample_weight=w)
    assert both.named_steps["scale"].n_samples_seen_ == w.sum()


def test_routing_explicitly_not_requested_fits_unweighted():
    X, y, w = _weighted_data()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("scale", BatchNormScaler().set_fit_request(sample_weight=False)),
                ("clf", LogisticRegression(max_iter=2000).set_fit_request(sample_weight=True)),
            ]
        ).fit(X, y, sample_weight=w)
    scaler = pipe.named_steps["scale"]
    np.testing.assert_allclose(scaler.moving_mean_, X.mean(axis=0), rtol=1e-12)
    assert scaler.n_samples_seen_ == X.shape[0]


def test_routing_unset_request_raises():
    X, y, w = _weighted_data()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("scale", BatchNormScaler()),
                ("clf", LogisticRegression(max_iter=2000).set_fit_request(sample_weight=False)),
            ]
        )
        with pytest.raises(UnsetMetadataPassedError, match="BatchNormScaler"):
            pipe.fit(X, y, sample_weight=w)
        # Without sample_weight the same pipeline fits fine.
        pipe.fit(X, y)
    assert pipe.named_steps["scale"].n_samples_seen_ == X.shape[0]
    assert issubclass(UnsetMetadataPassedError, ValueError)


def test_set_partial_fit_request_and_direct_partial_fit():
    X, _, w = _weighted_data()
    # Outside routing, the request setters refuse, as for every sklearn estimator.
    with pytest.raises(RuntimeError, match="metadata routing"):
        BatchNormScaler().set_partial_fit_request(sample_weight=True)

    with sklearn.config_context(enable_metadata_routing=True):
        scaler = BatchNormScaler(momentum=None)
        assert scaler.set_partial_fit_request(sample_weight=True) is scaler
        routing = scaler.get_metadata_routing()
        assert routing.partial_fit.requests["sample_weight"] is True
        assert routing.fit.requests["sample_weight"] is None
        for start in (0, 300):
            scaler.partial_fit(X[start : start + 300], sample_weight=w[start : start + 300])

        # A direct call does not need a request at all.
        unrequested = BatchNormScaler().partial_fit(X[:300], sample_weight=w[:300])

    halves = [(X[:300], w[:300]), (X[300:], w[300:])]
    batch_means = [np.average(b, weights=bw, axis=0) for b, bw in halves]
    batch_vars = [
        np.average((b - m) ** 2, weights=bw, axis=0)
        for (b, bw), m in zip(halves, batch_means, strict=True)
    ]
    np.testing.assert_allclose(
        scaler.moving_mean_, _moving_reference(batch_means, np.zeros(X.shape[1]), None), rtol=1e-12
    )
    # The reference variance is a plain two-pass np.average, whose own rounding
    # reaches ~1e-12 relative on the tiny-variance features of this data set.
    np.testing.assert_allclose(
        scaler.moving_var_, _moving_reference(batch_vars, np.ones(X.shape[1]), None), rtol=1e-10
    )
    assert scaler.n_samples_seen_ == w.sum()
    np.testing.assert_allclose(unrequested.moving_mean_, batch_means[0], rtol=1e-12)
    assert unrequested.n_samples_seen_ == w[:300].sum()


# -- 5. copies, memory layout and dtypes -------------------------------------------


def _dense(seed=8, shape=(37, 6)):
    rng = np.random.default_rng(seed)
    return rng.normal(loc=4.0, scale=2.0, size=shape)


def test_copy_false_transforms_in_place():
    X = _dense()
    expected = _numpy_transform(X)
    scaler = BatchNormScaler().fit(X)

    work = X.copy()
    assert work.flags.c_contiguous and work.flags.writeable
    out = scaler.transform(work, copy=False)
    assert np.shares_memory(out, work)
    np.testing.assert_allclose(work, expected, rtol=1e-12, atol=1e-12)

    back = scaler.inverse_transform(work, copy=False)
    assert np.shares_memory(back, work)
    np.testing.assert_allclose(work, X, rtol=1e-12)

    # The constructor parameter sets the default.
    work = X.copy()
    out = BatchNormScaler(copy=False).fit(X).transform(work)
    assert np.shares_memory(out, work)
    np.testing.assert_allclose(work, expected, rtol=1e-12, atol=1e-12)
    # ... and the call argument overrides it.
    work = X.copy()
    out = BatchNormScaler(copy=False).fit(X).transform(work, copy=True)
    assert not np.shares_memory(out, work)
    np.testing.assert_array_equal(work, X)


def _variants(X):
    wide = np.repeat(X, 2, axis=1)  # wide[:, ::2] is X, not contiguous
    read_only = X.copy()
    read_only.flags.writeable = False
    return {
        "C": X.copy(),
        "F": np.asfortranarray(X),
        "strided": wide[:, ::2],
        "read-only": read_only,
        "float32": X.astype(np.float32),
        "list": X.tolist(),
    }


@pytest.mark.parametrize("variant", ["C", "F", "strided", "read-only", "float32", "list"])
@pytest.mark.parametrize("copy", [True, None, False])
def test_copy_never_modifies_input_unless_asked(variant, copy):
    X = _dense()
    scaler = BatchNormScaler().fit(X)
    inp = _variants(X)[variant]
    before = np.array(inp, copy=True)
    base = inp.base if isinstance(inp, np.ndarray) and inp.base is not None else None
    base_before = None if base is None else np.array(base, copy=True)

    kwargs = {} if copy is None else {"copy": copy}
    out = scaler.transform(inp, **kwargs)
    expected = _numpy_transform(X)
    if variant == "float32":
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    else:
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)

    in_place_expected = copy is False and variant in ("C", "F", "strided", "float32")
    if isinstance(inp, np.ndarray) and not in_place_expected:
        assert not np.shares_memory(out, inp)
        np.testing.assert_array_equal(inp, before)
        if base_before is not None:
            np.testing.assert_array_equal(base, base_before)
    if variant == "read-only":
        assert not inp.flags.writeable  # still read-only, and untouched
        np.testing.assert_array_equal(inp, before)

    back = scaler.inverse_transform(np.array(out, copy=True), **kwargs)
    np.testing.assert_allclose(back, X, rtol=1e-5 if variant == "float32" else 1e-12)


@pytest.mark.parametrize("copy", [True, False])
def test_read_only_input_is_safe_for_inverse_transform(copy):
    X = _dense()
    scaler = BatchNormScaler().fit(X)
    Y = scaler.transform(X)
    Y.flags.writeable = False
    Y_before = Y.copy()
    back = scaler.inverse_transform(Y, copy=copy)
    np.testing.assert_array_equal(Y, Y_before)
    np.testing.assert_allclose(back, X, rtol=1e-12)


def test_float32_stays_float32_with_float64_statistics():
    X = _dense().astype(np.float32)
    scaler = BatchNormScaler()
    out = scaler.fit_transform(X)
    assert out.dtype == np.float32
    assert scaler.moving_mean_.dtype == np.float64
    assert scaler.moving_var_.dtype == np.float64
    X64 = X.astype(np.float64)
    # Statistics of float32 data are accumulated in float64.
    np.testing.assert_allclose(scaler.moving_mean_, X64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.moving_var_, X64.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(out, _numpy_transform(X64), rtol=1e-5, atol=1e-5)
    assert scaler.inverse_transform(out).dtype == np.float32
    # float64 in, float64 out from the same scaler.
    assert scaler.transform(X64).dtype == np.float64


@pytest.mark.parametrize("int_dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_integer_input_becomes_float64(int_dtype):
    rng = np.random.default_rng(9)
    X = rng.integers(0, 100, size=(25, 3)).astype(int_dtype)
    X_before = X.copy()
    scaler = BatchNormScaler().fit(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(scaler.moving_mean_, X64.mean(axis=0), rtol=1e-12)
    for copy in (True, False):
        out = scaler.transform(X, copy=copy)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, _numpy_transform(X64), rtol=1e-12, atol=1e-12)
        back = scaler.inverse_transform(X, copy=copy)
        assert back.dtype == np.float64
        np.testing.assert_array_equal(X, X_before)


def test_float16_input_becomes_float64():
    X = _dense().astype(np.float16)
    scaler = BatchNormScaler().fit(X)
    assert scaler.transform(X).dtype == np.float64
