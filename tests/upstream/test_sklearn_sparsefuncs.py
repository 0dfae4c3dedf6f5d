"""scikit-learn's sparse mean/variance tests, ported to the sparse ``with_mean=False`` path.

Source: ``sklearn/utils/tests/test_sparsefuncs.py`` of the installed
scikit-learn (the tests of ``mean_variance_axis`` and
``incr_mean_variance_axis``, which ``StandardScaler`` uses on sparse input).
The original names are kept.

``mean_variance_axis(X, axis=0)`` is ``pooled(with_mean=False).fit(X)``'s
``(mean_, var_)``; ``incr_mean_variance_axis`` is its ``partial_fit``;
``axis=1`` is the same on ``X.T``.  A previous state ``(last_mean, last_var,
last_n)`` is built by fitting rows with exactly those statistics (the
original's ``(535, 4225, 2)``: rows 470 and 600).  Results are compared with
the real scikit-learn functions and the original's references.

Documented differences (``docs/refusals.md``):

* LIL (and other formats) are converted to CSR and accepted, where
  ``mean_variance_axis`` raises ``TypeError``;
* statistics are float64 for float32 input (``mean_variance_axis`` returns
  float32): skbn accumulates in float64 on every path (README, "dtypes");
* an empty batch (0 rows) is refused with a ``ValueError`` and changes
  nothing, where ``incr_mean_variance_axis`` returns the old statistics;
* negative weights are refused.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_almost_equal, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.utils._testing import assert_allclose
from sklearn.utils.fixes import (
    CSC_CONTAINERS,
    CSR_CONTAINERS,
    LIL_CONTAINERS,
    _sparse_random_array,
)
from sklearn.utils.sparsefuncs import incr_mean_variance_axis, mean_variance_axis
from upstream_common import pooled


def sparse_pooled(**params):
    """The sparse path of the scaler under test (sparse input needs with_mean=False)."""
    return pooled(with_mean=False, **params)


def fitted(X, axis, weights=None):
    """(mean_, var_, n_samples_seen_) of X along ``axis`` (axis=1: of X.T)."""
    X = X if axis == 0 else X.T
    scaler = sparse_pooled().fit(X, sample_weight=weights)
    return scaler.mean_, scaler.var_, scaler.n_samples_seen_


def with_state(mean, var, n_features):
    """A sparse pooled scaler whose statistics are (mean, var) over 2 rows."""
    d = np.sqrt(var)
    rows = sp.csr_matrix(np.array([[mean - d] * n_features, [mean + d] * n_features]))
    scaler = sparse_pooled().partial_fit(rows)
    assert_array_equal(scaler.mean_, mean)
    assert_array_equal(scaler.var_, var)
    return scaler


def _stats_of(scaler):
    return scaler.mean_.copy(), scaler.var_.copy(), scaler.n_samples_seen_, scaler.n_batches_seen_


@pytest.mark.parametrize("csc_container", CSC_CONTAINERS)
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
@pytest.mark.parametrize("lil_container", LIL_CONTAINERS)
def test_mean_variance_axis0(csc_container, csr_container, lil_container):
    X, _ = make_classification(5, 4, random_state=0)
    # Sparsify the array a little bit
    X[0, 0] = 0
    X[2, 1] = 0
    X[4, 3] = 0
    X_lil = lil_container(X)
    X_lil[1, 0] = 0
    X[1, 0] = 0

    with pytest.raises(TypeError):
        mean_variance_axis(X_lil, axis=0)
    # Documented difference: LIL is converted to CSR and accepted
    lil_mean, lil_var, _ = fitted(X_lil, axis=0)
    assert_allclose(lil_mean, np.mean(X, axis=0), rtol=1e-12)
    assert_allclose(lil_var, np.var(X, axis=0), rtol=1e-12)

    X_csr = csr_container(X_lil)
    X_csc = csc_container(X_lil)

    expected_dtypes = [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int32, np.float64),
        (np.int64, np.float64),
    ]

    for input_dtype, output_dtype in expected_dtypes:
        X_test = X.astype(input_dtype)
        for X_sparse in (X_csr, X_csc):
            X_sparse = X_sparse.astype(input_dtype)
            X_means, X_vars, _ = fitted(X_sparse, axis=0)
            # Documented difference: float64 statistics for every input dtype
            assert X_means.dtype == np.float64
            assert X_vars.dtype == np.float64
            assert_array_almost_equal(X_means, np.mean(X_test, axis=0))
            assert_array_almost_equal(X_vars, np.var(X_test, axis=0))
            theirs_means, theirs_vars = mean_variance_axis(X_sparse, axis=0)
            assert theirs_means.dtype == output_dtype
            rtol = 1e-12 if output_dtype == np.float64 else 1e-6
            assert_allclose(X_means, theirs_means, rtol=rtol)
            assert_allclose(X_vars, theirs_vars, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse_constructor", CSC_CONTAINERS + CSR_CONTAINERS)
def test_mean_variance_axis0_precision(dtype, sparse_constructor):
    # Check that there's no big loss of precision when the real variance is
    # exactly 0. (#19766)
    rng = np.random.RandomState(0)
    X = np.full(fill_value=100.0, shape=(1000, 1), dtype=dtype)
    # Add some missing records which should be ignored:
    missing_indices = rng.choice(np.arange(X.shape[0]), 10, replace=False)
    X[missing_indices, 0] = np.nan
    X = sparse_constructor(X)

    # Random positive weights:
    sample_weight = rng.rand(X.shape[0]).astype(dtype)

    mean, var, _ = fitted(X, axis=0, weights=sample_weight)

    assert var < np.finfo(dtype).eps
    # skbn promises a constant column exact: variance 0, mean the value
    assert_array_equal(var, [0.0])
    assert_array_equal(mean, [100.0])
    _, theirs_var = mean_variance_axis(X, weights=sample_weight, axis=0)
    assert theirs_var < np.finfo(dtype).eps


@pytest.mark.parametrize("csc_container", CSC_CONTAINERS)
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
@pytest.mark.parametrize("lil_container", LIL_CONTAINERS)
def test_mean_variance_axis1(csc_container, csr_container, lil_container):
    X, _ = make_classification(5, 4, random_state=0)
    # Sparsify the array a little bit
    X[0, 0] = 0
    X[2, 1] = 0
    X[4, 3] = 0
    X_lil = lil_container(X)
    X_lil[1, 0] = 0
    X[1, 0] = 0

    with pytest.raises(TypeError):
        mean_variance_axis(X_lil, axis=1)

    X_csr = csr_container(X_lil)
    X_csc = csc_container(X_lil)

    expected_dtypes = [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int32, np.float64),
        (np.int64, np.float64),
    ]

    for input_dtype, _output_dtype in expected_dtypes:
        X_test = X.astype(input_dtype)
        for X_sparse in (X_csr, X_csc):
            X_sparse = X_sparse.astype(input_dtype)
            # (the original, despite its name, checks axis=0 here; the port
            # checks axis=1 too, as the fit of the transpose)
            for axis in (0, 1):
                X_means, X_vars, _ = fitted(X_sparse, axis=axis)
                assert X_means.dtype == np.float64
                assert X_vars.dtype == np.float64
                assert_array_almost_equal(X_means, np.mean(X_test, axis=axis))
                assert_array_almost_equal(X_vars, np.var(X_test, axis=axis))


@pytest.mark.parametrize(
    ["Xw", "X", "weights"],
    [
        ([[0, 0, 1], [0, 2, 3]], [[0, 0, 1], [0, 2, 3]], [1, 1, 1]),
        ([[0, 0, 1], [0, 1, 1]], [[0, 0, 0, 1], [0, 1, 1, 1]], [1, 2, 1]),
        ([[0, 0, 1], [0, 1, 1]], [[0, 0, 1], [0, 1, 1]], None),
        (
            [[0, np.nan, 2], [0, np.nan, np.nan]],
            [[0, np.nan, 2], [0, np.nan, np.nan]],
            [1.0, 1.0, 1.0],
        ),
        (
            [[0, 0], [1, np.nan], [2, 0], [0, 3], [np.nan, np.nan], [np.nan, 2]],
            [
                [0, 0, 0],
                [1, 1, np.nan],
                [2, 2, 0],
                [0, 0, 3],
                [np.nan, np.nan, np.nan],
                [np.nan, np.nan, 2],
            ],
            [2.0, 1.0],
        ),
        (
            [[1, 0, 1], [0, 3, 1]],
            [[1, 0, 0, 0, 1], [0, 3, 3, 3, 1]],
            np.array([1, 3, 1]),
        ),
    ],
)
@pytest.mark.parametrize("sparse_constructor", CSC_CONTAINERS + CSR_CONTAINERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_incr_mean_variance_axis_weighted_axis1(Xw, X, weights, sparse_constructor, dtype):
    # axis=1: the rows are the features, so the scaler is fed the transposes
    _check_incr_weighted(Xw, X, weights, sparse_constructor, dtype, axis=1)


@pytest.mark.parametrize(
    ["Xw", "X", "weights"],
    [
        ([[0, 0, 1], [0, 2, 3]], [[0, 0, 1], [0, 2, 3]], [1, 1]),
        ([[0, 0, 1], [0, 1, 1]], [[0, 0, 1], [0, 1, 1], [0, 1, 1]], [1, 2]),
        ([[0, 0, 1], [0, 1, 1]], [[0, 0, 1], [0, 1, 1]], None),
        (
            [[0, np.nan, 2], [0, np.nan, np.nan]],
            [[0, np.nan, 2], [0, np.nan, np.nan]],
            [1.0, 1.0],
        ),
        (
            [[0, 0, 1, np.nan, 2, 0], [0, 3, np.nan, np.nan, np.nan, 2]],
            [
                [0, 0, 1, np.nan, 2, 0],
                [0, 0, 1, np.nan, 2, 0],
                [0, 3, np.nan, np.nan, np.nan, 2],
            ],
            [2.0, 1.0],
        ),
        (
            [[1, 0, 1], [0, 0, 1]],
            [[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]],
            np.array([1, 3]),
        ),
    ],
)
@pytest.mark.parametrize("sparse_constructor", CSC_CONTAINERS + CSR_CONTAINERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_incr_mean_variance_axis_weighted_axis0(Xw, X, weights, sparse_constructor, dtype):
    _check_incr_weighted(Xw, X, weights, sparse_constructor, dtype, axis=0)


def _check_incr_weighted(Xw, X, weights, sparse_constructor, dtype, axis):
    Xw_sparse = sparse_constructor(Xw).astype(dtype)
    X_sparse = sparse_constructor(X).astype(dtype)
    if axis == 1:
        Xw_sparse, X_sparse = Xw_sparse.T, X_sparse.T

    # first round
    plain = sparse_pooled().partial_fit(X_sparse)
    weighted = sparse_pooled().partial_fit(Xw_sparse, sample_weight=weights)
    means0, vars0, n_incr0 = plain.mean_, plain.var_, plain.n_samples_seen_
    means_w0, vars_w0, n_incr_w0 = weighted.mean_, weighted.var_, weighted.n_samples_seen_

    # (the original: the dtype of the input; skbn: float64, documented)
    assert means_w0.dtype == np.float64
    assert vars_w0.dtype == np.float64

    means_simple, vars_simple = mean_variance_axis(X=X_sparse, axis=0)
    # the statistics of the features that have a value (a feature that never
    # had one keeps the starting mean 0 and variance 1, documented, where
    # scikit-learn says NaN)
    seen = ~np.isnan(means_simple)
    assert_array_equal(means0[~seen], 0.0)
    assert_array_equal(vars0[~seen], 1.0)

    assert_array_almost_equal(means0, means_w0)
    assert_array_almost_equal(means0[seen], means_simple[seen])
    assert_array_almost_equal(vars0, vars_w0)
    assert_array_almost_equal(vars0[seen], vars_simple[seen])
    assert_array_almost_equal(n_incr0, n_incr_w0)

    # check second round for incremental
    plain.partial_fit(X_sparse)
    weighted.partial_fit(Xw_sparse, sample_weight=weights)

    assert_array_almost_equal(plain.mean_, weighted.mean_)
    assert_array_almost_equal(plain.var_, weighted.var_)
    assert_array_almost_equal(plain.n_samples_seen_, weighted.n_samples_seen_)

    # and as the real incr_mean_variance_axis, two rounds from zero
    n = X_sparse.shape[1]
    last = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for _ in range(2):
        last = incr_mean_variance_axis(
            X_sparse.astype(np.float64),
            axis=0,
            last_mean=last[0],
            last_var=last[1],
            last_n=last[2],
        )
    assert_allclose(plain.mean_[seen], last[0][seen], rtol=1e-12)
    assert_allclose(plain.var_[seen], last[1][seen], rtol=1e-12)
    assert_array_equal(plain.n_samples_seen_ * np.ones(n), last[2])


@pytest.mark.parametrize("csc_container", CSC_CONTAINERS)
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
@pytest.mark.parametrize("lil_container", LIL_CONTAINERS)
def test_incr_mean_variance_axis(csc_container, csr_container, lil_container):
    for axis in [0, 1]:
        rng = np.random.RandomState(0)
        n_features = 50
        n_samples = 10
        if axis == 0:
            data_chunks = [rng.randint(0, 2, size=n_features) for i in range(n_samples)]
        else:
            data_chunks = [rng.randint(0, 2, size=n_samples) for i in range(n_features)]

        # Test errors (the original's TypeErrors are of the function's
        # arguments; the scaler's refusals of them: a non-array, and nothing
        # lost; LIL is accepted, documented)
        X = np.array(data_chunks[0])
        X = np.atleast_2d(X)
        X = X.T if axis == 1 else X
        X_lil = lil_container(X)
        X_csr = csr_container(X_lil)
        with pytest.raises(ValueError):
            sparse_pooled().partial_fit(axis)

        # Test the incremental update with a 1 row input
        X_means, X_vars = mean_variance_axis(X_csr, axis)
        X_means_incr, X_vars_incr, n_incr = fitted(X_csr, axis)
        assert_array_almost_equal(X_means, X_means_incr)
        assert_array_almost_equal(X_vars, X_vars_incr)
        # X.shape[axis] picks # samples
        assert_array_equal(X.shape[axis], n_incr)

        X_csc = csc_container(X_lil)
        X_means, X_vars = mean_variance_axis(X_csc, axis)
        assert_array_almost_equal(X_means, X_means_incr)
        assert_array_almost_equal(X_vars, X_vars_incr)
        assert_array_equal(X.shape[axis], n_incr)
        X_means_lil, X_vars_lil, _ = fitted(X_lil, axis)
        assert_array_equal(X_means_lil, X_means_incr)
        assert_array_equal(X_vars_lil, X_vars_incr)

        # Test with whole data
        X = np.vstack(data_chunks)
        X = X.T if axis == 1 else X
        X_lil = lil_container(X)
        X_csr = csr_container(X_lil)
        X_csc = csc_container(X_lil)

        expected_dtypes = [
            (np.float32, np.float32),
            (np.float64, np.float64),
            (np.int32, np.float64),
            (np.int64, np.float64),
        ]

        for input_dtype, _output_dtype in expected_dtypes:
            for X_sparse in (X_csr, X_csc):
                X_sparse = X_sparse.astype(input_dtype)
                X_means, X_vars = mean_variance_axis(X_sparse, axis)
                X_means_incr, X_vars_incr, n_incr = fitted(X_sparse, axis)
                assert X_means_incr.dtype == np.float64  # documented: float64
                assert X_vars_incr.dtype == np.float64
                assert_array_almost_equal(X_means, X_means_incr)
                assert_array_almost_equal(X_vars, X_vars_incr)
                assert_array_equal(X.shape[axis], n_incr)


@pytest.mark.parametrize("sparse_constructor", CSC_CONTAINERS + CSR_CONTAINERS)
def test_incr_mean_variance_axis_dim_mismatch(sparse_constructor):
    """Check that we raise proper error when the dimension mismatch.
    Non-regression test for:
    https://github.com/scikit-learn/scikit-learn/pull/18655
    """
    n_samples, n_features = 60, 4
    rng = np.random.RandomState(42)
    X = sparse_constructor(rng.rand(n_samples, n_features))

    scaler = sparse_pooled().partial_fit(X)
    assert_allclose(np.mean(X.toarray(), axis=0), scaler.mean_)
    assert_allclose(np.var(X.toarray(), axis=0), scaler.var_)

    # ValueError if the batch has another number of features (the original's
    # axis=1 with statistics of n_features), and the statistics unchanged
    before = _stats_of(scaler)
    with pytest.raises(ValueError, match="X has 60 features"):
        scaler.partial_fit(X.T)
    with pytest.raises(ValueError, match="X has 3 features"):
        scaler.partial_fit(X[:, :-1])
    after = _stats_of(scaler)
    assert_array_equal(before[0], after[0])
    assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize(
    "X1, X2",
    [
        (
            _sparse_random_array((5, 2), density=0.8, format="csr", rng=0),
            _sparse_random_array((13, 2), density=0.8, format="csr", rng=0),
        ),
        (
            _sparse_random_array((5, 2), density=0.8, format="csr", rng=0),
            sp.hstack(
                [
                    np.full((13, 1), fill_value=np.nan),
                    _sparse_random_array((13, 1), density=0.8, rng=42),
                ],
                format="csr",
            ),
        ),
    ],
)
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_incr_mean_variance_axis_equivalence_mean_variance(X1, X2, csr_container):
    # non-regression test for:
    # https://github.com/scikit-learn/scikit-learn/issues/16448
    # check that computing the incremental mean and variance is equivalent to
    # computing the mean and variance on the stacked dataset.
    X1 = csr_container(X1)
    X2 = csr_container(X2)
    scaler = sparse_pooled().partial_fit(X1).partial_fit(X2)
    X = sp.vstack([X1, X2])
    assert_allclose(scaler.mean_, np.nanmean(X.toarray(), axis=0))
    assert_allclose(scaler.var_, np.nanvar(X.toarray(), axis=0))
    assert_allclose(scaler.n_samples_seen_, np.count_nonzero(~np.isnan(X.toarray()), axis=0))


def test_incr_mean_variance_no_new_n():
    # check the behaviour when we update the variance with an empty matrix
    X1 = _sparse_random_array((5, 1), density=0.8, format="csr", rng=0)
    X2 = _sparse_random_array((0, 1), density=0.8, format="csr", rng=0)
    scaler = sparse_pooled().partial_fit(X1)
    before = _stats_of(scaler)
    # Documented difference: an empty batch is refused (incr_mean_variance_axis
    # returns the old statistics); either way the statistics do not change.
    with pytest.raises(ValueError, match="0 sample"):
        scaler.partial_fit(X2)
    after = _stats_of(scaler)
    assert_allclose(after[0], before[0])
    assert_allclose(after[1], before[1])
    assert after[2:] == before[2:]
    last = incr_mean_variance_axis(
        X1, axis=0, last_mean=np.zeros(1), last_var=np.zeros(1), last_n=np.zeros(1, np.int64)
    )
    updated = incr_mean_variance_axis(
        X2, axis=0, last_mean=last[0], last_var=last[1], last_n=last[2]
    )
    assert_allclose(updated[0], after[0])
    assert_allclose(updated[1], after[1])


def test_incr_mean_variance_n_float():
    # check the behaviour of the count: the number of rows (an int)
    X = _sparse_random_array((5, 2), density=0.8, format="csr", rng=0)
    scaler = sparse_pooled().partial_fit(X)
    assert_allclose(scaler.n_samples_seen_, np.full(X.shape[1], X.shape[0]))
    assert scaler.n_samples_seen_ == X.shape[0]


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sparse_constructor", CSC_CONTAINERS + CSR_CONTAINERS)
def test_incr_mean_variance_axis_ignore_nan(axis, sparse_constructor):
    old_means = np.array([535.0, 535.0, 535.0, 535.0])
    old_variances = np.array([4225.0, 4225.0, 4225.0, 4225.0])
    old_sample_count = np.array([2, 2, 2, 2], dtype=np.int64)

    X = sparse_constructor(
        np.array([[170, 170, 170, 170], [430, 430, 430, 430], [300, 300, 300, 300]])
    )

    X_nan = sparse_constructor(
        np.array(
            [
                [170, np.nan, 170, 170],
                [np.nan, 170, 430, 430],
                [430, 430, np.nan, 300],
                [300, 300, 300, np.nan],
            ]
        )
    )

    # we avoid creating specific data for axis 0 and 1: translating the data is
    # enough (and the scaler is fed the transposes back for axis=1).
    if axis:
        X = X.T
        X_nan = X_nan.T

    ours = with_state(535.0, 4225.0, 4).partial_fit(X if axis == 0 else X.T)
    ours_nan = with_state(535.0, 4225.0, 4).partial_fit(X_nan if axis == 0 else X_nan.T)

    assert_allclose(ours_nan.mean_, ours.mean_)
    assert_allclose(ours_nan.var_, ours.var_)
    assert_allclose(ours_nan.n_samples_seen_, ours.n_samples_seen_)

    # and as the real function from the same old statistics
    X_means, X_vars, X_sample_count = incr_mean_variance_axis(
        X,
        axis=axis,
        last_mean=old_means.copy(),
        last_var=old_variances.copy(),
        last_n=old_sample_count.copy(),
    )
    assert_allclose(ours.mean_, X_means, rtol=1e-12)
    assert_allclose(ours.var_, X_vars, rtol=1e-12)
    assert_allclose(ours.n_samples_seen_, X_sample_count)
