"""scikit-learn's ``StandardScaler`` tests, ported to ``BatchNormScaler``.

Source: ``sklearn/preprocessing/tests/test_data.py`` of the installed
scikit-learn (every test on ``StandardScaler``; the tests of the ``scale``
function, of the other scalers and of scikit-learn's private helpers are not
ours).  The original test names are kept.  Each test runs on
``BatchNormScaler(epsilon=0, momentum="pooled")``, the configuration the README
promises to be ``StandardScaler`` (exact pooled statistics over every
``partial_fit``, no epsilon), and, where the original compares with known
numbers or with another fit, the port also compares with the real
``StandardScaler`` fed the same data.

Where skbn differs on purpose, the port asserts the documented difference and
says why beside it.  The differences are:

* ``with_std=False`` / ``with_mean=False``: ``StandardScaler`` then sets
  ``var_`` (and ``mean_``) to None; ``BatchNormScaler`` still learns them
  (its docstring: "The moving variance is still learned"), since its moving
  statistics are the state a batch-normalization layer exports.
* float16 input: converted to float64 (``docs/refusals.md``, "Accepted on
  purpose"), so ``transform`` returns float64 where ``StandardScaler`` keeps
  float16.
* Refusal messages are skbn's own (``docs/refusals.md``).
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn import config_context, datasets
from sklearn.base import clone
from sklearn.preprocessing import StandardScaler, scale
from sklearn.utils import gen_batches
from sklearn.utils._array_api import move_to
from sklearn.utils._testing import (
    _array_api_for_tests,
    _convert_container,
    assert_allclose,
    assert_allclose_dense_sparse,
    assert_almost_equal,
    assert_array_almost_equal,
    assert_array_equal,
    assert_array_less,
)
from sklearn.utils.estimator_checks import check_array_api_input_and_values
from sklearn.utils.fixes import (
    CSC_CONTAINERS,
    CSR_CONTAINERS,
    _sparse_random_array,
)
from sklearn.utils.sparsefuncs import mean_variance_axis
from upstream_common import ARRAY_API_COMBINATIONS, assert_same_to_data_rounding, pooled

# Make some data to be used many times (as in the original module)
rng = np.random.RandomState(0)
n_features = 30
n_samples = 1000
offsets = rng.uniform(-1, 1, size=n_features)
scales = rng.uniform(1, 10, size=n_features)
X_2d = rng.randn(n_samples, n_features) * scales + offsets
X_1row = X_2d[0, :].reshape(1, n_features)
X_1col = X_2d[:, 0].reshape(n_samples, 1)
X_list_1row = X_1row.tolist()
X_list_1col = X_1col.tolist()


def toarray(a):
    if hasattr(a, "toarray"):
        a = a.toarray()
    return a


def _check_dim_1axis(a):
    return np.asarray(a).shape[0]


def assert_correct_incr(i, batch_start, batch_stop, n, chunk_size, n_samples_seen):
    if batch_stop != n:
        assert (i + 1) * chunk_size == n_samples_seen
    else:
        assert i * chunk_size + (batch_stop - batch_start) == n_samples_seen


def assert_like_standard_scaler(ours, theirs, X=None, rtol=1e-12):
    """The README's promise: the same mean_, var_, scale_, n_samples_seen_, transform.

    Documented difference (docs/refusals.md, "Accepted on purpose"): a feature
    that never had a value (all NaN) is never updated, so it keeps the starting
    mean 0 and variance 1 (divisor 1) where StandardScaler says NaN.
    """
    assert_array_equal(ours.n_samples_seen_, theirs.n_samples_seen_)
    seen = ~np.isnan(theirs.mean_)
    assert_array_equal(np.asarray(ours.n_samples_seen_ * np.ones(seen.shape)) > 0, seen)
    assert_array_equal(ours.mean_[~seen], 0.0)
    assert_array_equal(ours.var_[~seen], 1.0)
    assert_allclose(ours.mean_[seen], theirs.mean_[seen], rtol=rtol, atol=0)
    assert_allclose(ours.var_[seen], theirs.var_[seen], rtol=rtol, atol=0)
    assert_allclose(ours.scale_, np.where(seen, theirs.scale_, 1.0), rtol=rtol, atol=0)
    if X is not None:
        with np.errstate(invalid="ignore"):
            expected = theirs.transform(X)
        ours_out = ours.transform(X)
        if sparse.issparse(X):
            assert sparse.issparse(ours_out) and ours_out.format == X.format
            ours_out, expected = ours_out.toarray(), expected.toarray()
        # an output near 0 (x next to the mean) carries the rounding of the mean:
        # allow rtol of the column's magnitude over the divisor there
        magnitude = np.nanmax(np.abs(toarray(X)), axis=0, initial=0.0) + np.abs(ours.mean_)
        atol = rtol * magnitude / ours.scale_
        diff = np.abs(ours_out - expected)[:, seen]
        bound = (rtol * np.abs(expected) + atol)[:, seen]
        assert np.all((diff <= bound) | np.isnan(expected[:, seen])), np.max(diff - bound)
        assert_array_equal(np.isnan(ours_out[:, seen]), np.isnan(expected[:, seen]))


def test_raises_value_error_if_sample_weights_greater_than_1d():
    # Sample weights must be either scalar or 1D

    n_sampless = [2, 3]
    n_featuress = [3, 2]

    for n_samples, n_features in zip(n_sampless, n_featuress, strict=True):
        X = rng.randn(n_samples, n_features)
        y = rng.randn(n_samples)

        scaler = pooled()

        # make sure Error is raised the sample weights greater than 1d
        sample_weight_notOK = rng.randn(n_samples, 1) ** 2
        with pytest.raises(ValueError):
            scaler.fit(X, y, sample_weight=sample_weight_notOK)
        with pytest.raises(ValueError):
            StandardScaler().fit(X, y, sample_weight=sample_weight_notOK)


def _yield_xw_x_sampleweight():
    return [
        (
            [[1, 2, 3], [4, 5, 6]],
            [[1, 2, 3], [1, 2, 3], [4, 5, 6]],
            [2.0, 1.0],
        ),
        (
            [[1, 0, 1], [0, 0, 1]],
            [[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]],
            np.array([1, 3]),
        ),
        (
            [[1, np.nan, 1], [np.nan, np.nan, 1]],
            [
                [1, np.nan, 1],
                [np.nan, np.nan, 1],
                [np.nan, np.nan, 1],
                [np.nan, np.nan, 1],
            ],
            np.array([1, 3]),
        ),
    ]


@pytest.mark.parametrize(["Xw", "X", "sample_weight"], _yield_xw_x_sampleweight())
@pytest.mark.parametrize("array_constructor", ["array", "sparse_csr", "sparse_csc"])
def test_standard_scaler_sample_weight(Xw, X, sample_weight, array_constructor):
    with_mean = not array_constructor.startswith("sparse")
    X = _convert_container(X, array_constructor)
    Xw = _convert_container(Xw, array_constructor)

    # weighted scaler
    yw = np.ones(Xw.shape[0])
    scaler_w = pooled(with_mean=with_mean)
    scaler_w.fit(Xw, yw, sample_weight=sample_weight)

    # unweighted, but with repeated samples
    y = np.ones(X.shape[0])
    scaler = pooled(with_mean=with_mean)
    scaler.fit(X, y)

    X_test = [[1.5, 2.5, 3.5], [3.5, 4.5, 5.5]]

    assert_almost_equal(scaler.mean_, scaler_w.mean_)
    assert_almost_equal(scaler.var_, scaler_w.var_)
    assert_almost_equal(scaler.transform(X_test), scaler_w.transform(X_test))

    # and both as the real StandardScaler
    with np.errstate(invalid="ignore"):  # its mean of an all-NaN column: 0 / 0
        theirs_w = StandardScaler(with_mean=with_mean).fit(Xw, yw, sample_weight=sample_weight)
    assert_like_standard_scaler(scaler_w, theirs_w, np.asarray(X_test))


@pytest.mark.parametrize(["Xw", "X", "sample_weight"], _yield_xw_x_sampleweight())
@pytest.mark.parametrize(
    "namespace, device_name, dtype_name",
    [c for c in ARRAY_API_COMBINATIONS if c[0] != "numpy"],
)
def test_standard_scaler_sample_weight_array_api(
    Xw, X, sample_weight, namespace, device_name, dtype_name
):
    # N.B. The sample statistics for Xw w/ sample_weight should match
    #      the statistics of X w/ uniform sample_weight.
    xp, device = _array_api_for_tests(namespace, device_name, dtype_name)

    X = np.array(X).astype(dtype_name, copy=False)
    y = np.ones(X.shape[0]).astype(dtype_name, copy=False)
    Xw = np.array(Xw).astype(dtype_name, copy=False)
    yw = np.ones(Xw.shape[0]).astype(dtype_name, copy=False)
    X_test = np.array([[1.5, 2.5, 3.5], [3.5, 4.5, 5.5]]).astype(dtype_name, copy=False)

    scaler = pooled()
    scaler.fit(X, y)

    scaler_w = pooled()
    scaler_w.fit(Xw, yw, sample_weight=sample_weight)

    # Test array-api support and correctness.
    X_xp = xp.asarray(X, device=device)
    y_xp = xp.asarray(y, device=device)
    Xw_xp = xp.asarray(Xw, device=device)
    yw_xp = xp.asarray(yw, device=device)
    X_test_xp = xp.asarray(X_test, device=device)
    sample_weight_xp = xp.asarray(sample_weight, device=device)

    scaler_w_xp = pooled()
    with config_context(array_api_dispatch=True):
        scaler_w_xp.fit(Xw_xp, yw_xp, sample_weight=sample_weight_xp)
        w_mean = move_to(scaler_w_xp.mean_, xp=np, device="cpu")
        w_var = move_to(scaler_w_xp.var_, xp=np, device="cpu")

    assert_allclose(scaler_w.mean_, w_mean)
    assert_allclose(scaler_w.var_, w_var)

    # unweighted, but with repeated samples
    scaler_xp = pooled()
    with config_context(array_api_dispatch=True):
        scaler_xp.fit(X_xp, y_xp)
        uw_mean = move_to(scaler_xp.mean_, xp=np, device="cpu")
        uw_var = move_to(scaler_xp.var_, xp=np, device="cpu")

    assert_allclose(scaler.mean_, uw_mean)
    assert_allclose(scaler.var_, uw_var)

    # Check that both array-api outputs match.
    assert_allclose(uw_mean, w_mean)
    assert_allclose(uw_var, w_var)
    with config_context(array_api_dispatch=True):
        assert_allclose(
            move_to(scaler_xp.transform(X_test_xp), xp=np, device="cpu"),
            move_to(scaler_w_xp.transform(X_test_xp), xp=np, device="cpu"),
        )

    # and as the real StandardScaler on the NumPy data
    with np.errstate(invalid="ignore"):  # its mean of an all-NaN column: 0 / 0
        theirs = StandardScaler().fit(Xw, yw, sample_weight=sample_weight)
    assert_like_standard_scaler(scaler_w, theirs, X_test.astype(np.float64))


def test_standard_scaler_1d():
    # Test scaling of dataset along single axis
    for X in [X_1row, X_1col, X_list_1row, X_list_1row]:
        scaler = pooled()
        X_scaled = scaler.fit(X).transform(X, copy=True)

        if isinstance(X, list):
            X = np.array(X)  # cast only after scaling done

        if _check_dim_1axis(X) == 1:
            assert_almost_equal(scaler.mean_, X.ravel())
            assert_almost_equal(scaler.scale_, np.ones(n_features))
            assert_array_almost_equal(X_scaled.mean(axis=0), np.zeros_like(n_features))
            assert_array_almost_equal(X_scaled.std(axis=0), np.zeros_like(n_features))
        else:
            assert_almost_equal(scaler.mean_, X.mean())
            assert_almost_equal(scaler.scale_, X.std())
            assert_array_almost_equal(X_scaled.mean(axis=0), np.zeros_like(n_features))
            assert_array_almost_equal(X_scaled.mean(axis=0), 0.0)
            assert_array_almost_equal(X_scaled.std(axis=0), 1.0)
        assert scaler.n_samples_seen_ == X.shape[0]

        # check inverse transform
        X_scaled_back = scaler.inverse_transform(X_scaled)
        assert_array_almost_equal(X_scaled_back, X)

        assert_like_standard_scaler(scaler, StandardScaler().fit(X), X)

    # Constant feature
    X = np.ones((5, 1))
    scaler = pooled()
    X_scaled = scaler.fit(X).transform(X, copy=True)
    assert_almost_equal(scaler.mean_, 1.0)
    assert_almost_equal(scaler.scale_, 1.0)
    assert_array_almost_equal(X_scaled.mean(axis=0), 0.0)
    assert_array_almost_equal(X_scaled.std(axis=0), 0.0)
    assert scaler.n_samples_seen_ == X.shape[0]
    # skbn promises more: a constant column is exact (mean bit for bit, var 0)
    assert_array_equal(scaler.mean_, [1.0])
    assert_array_equal(scaler.var_, [0.0])
    assert_array_equal(X_scaled, np.zeros((5, 1)))


@pytest.mark.parametrize("sparse_container", [None] + CSC_CONTAINERS + CSR_CONTAINERS)
@pytest.mark.parametrize("add_sample_weight", [False, True])
def test_standard_scaler_dtype(add_sample_weight, sparse_container):
    # Ensure scaling does not affect dtype
    rng = np.random.RandomState(0)
    n_samples = 10
    n_features = 3
    if add_sample_weight:
        sample_weight = np.ones(n_samples)
    else:
        sample_weight = None
    with_mean = True
    if sparse_container is not None:
        # scipy sparse containers do not support float16, see
        # https://github.com/scipy/scipy/issues/7408 for more details.
        supported_dtype = [np.float64, np.float32]
    else:
        supported_dtype = [np.float64, np.float32, np.float16]
    for dtype in supported_dtype:
        X = rng.randn(n_samples, n_features).astype(dtype)
        if sparse_container is not None:
            X = sparse_container(X)
            with_mean = False

        scaler = pooled(with_mean=with_mean)
        X_scaled = scaler.fit(X, sample_weight=sample_weight).transform(X)
        if dtype == np.float16:
            # Documented difference (docs/refusals.md, "Accepted on purpose"):
            # float16 is converted to float64; StandardScaler keeps float16.
            assert X_scaled.dtype == np.float64
            theirs = StandardScaler(with_mean=with_mean).fit(X, sample_weight=sample_weight)
            assert theirs.transform(X).dtype == np.float16
        else:
            assert X.dtype == X_scaled.dtype
        assert scaler.mean_.dtype == np.float64
        assert scaler.scale_.dtype == np.float64


@pytest.mark.parametrize("sparse_container", [None] + CSC_CONTAINERS + CSR_CONTAINERS)
@pytest.mark.parametrize("add_sample_weight", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("constant", [0, 1.0, 100.0])
def test_standard_scaler_constant_features(add_sample_weight, sparse_container, dtype, constant):
    # (the original also runs RobustScaler; only StandardScaler is ours)
    scaler = pooled(with_mean=False)

    rng = np.random.RandomState(0)
    n_samples = 100
    n_features = 1
    if add_sample_weight:
        fit_params = dict(sample_weight=rng.uniform(size=n_samples) * 2)
    else:
        fit_params = {}
    X_array = np.full(shape=(n_samples, n_features), fill_value=constant, dtype=dtype)
    X = X_array if sparse_container is None else sparse_container(X_array)
    X_scaled = scaler.fit(X, **fit_params).transform(X)

    # The variance info should be close to zero for constant features.
    assert_allclose(scaler.var_, np.zeros(X.shape[1]), atol=1e-7)
    # skbn promises exactly zero, and the mean bit for bit (issue 11, point 1)
    assert_array_equal(scaler.var_, np.zeros(X.shape[1]))
    assert_array_equal(scaler.mean_, np.full(X.shape[1], float(dtype(constant))))

    # Constant features should not be scaled (scale of 1.):
    assert_allclose(scaler.scale_, np.ones(X.shape[1]))

    assert X_scaled is not X  # make sure we make a copy
    assert_allclose_dense_sparse(X_scaled, X)

    # Also check consistency with the real StandardScaler.
    theirs = StandardScaler(with_mean=False).fit(X, **fit_params)
    assert_allclose(scaler.scale_, theirs.scale_)
    assert_allclose_dense_sparse(X_scaled, theirs.transform(X))


@pytest.mark.parametrize("n_samples", [10, 100, 10_000])
@pytest.mark.parametrize("average", [1e-10, 1, 1e10])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse_container", [None] + CSC_CONTAINERS + CSR_CONTAINERS)
def test_standard_scaler_near_constant_features(n_samples, sparse_container, average, dtype):
    # Check that when the variance is too small (var << mean**2) the feature
    # is considered constant and not scaled.

    scale_min, scale_max = -30, 19
    scales = np.array([10**i for i in range(scale_min, scale_max + 1)], dtype=dtype)

    n_features = scales.shape[0]
    X = np.empty((n_samples, n_features), dtype=dtype)
    # Make a dataset of known var = scales**2 and mean = average
    X[: n_samples // 2, :] = average + scales
    X[n_samples // 2 :, :] = average - scales
    X_array = X if sparse_container is None else sparse_container(X)

    scaler = pooled(with_mean=False).fit(X_array)

    # The scaler uses float64 accumulators even if the data has a float32
    # dtype.
    eps = np.finfo(np.float64).eps

    # if var < bound = N.eps.var + N².eps².mean², the feature is considered
    # constant and the scale_ attribute is set to 1.
    bounds = n_samples * eps * scales**2 + n_samples**2 * eps**2 * average**2
    within_bounds = scales**2 <= bounds

    # Check that scale_min is small enough to have some scales below the
    # bound and therefore detected as constant:
    assert np.any(within_bounds)

    # Check that such features are actually treated as constant by the scaler:
    assert all(scaler.var_[within_bounds] <= bounds[within_bounds])
    assert_allclose(scaler.scale_[within_bounds], 1.0)

    # Depending the on the dtype of X, some features might not actually be
    # representable as non constant for small scales (even if above the
    # precision bound of the float64 variance estimate). Such feature should
    # be correctly detected as constants with 0 variance by the scaler.
    representable_diff = X[0, :] - X[-1, :] != 0
    assert_allclose(scaler.var_[np.logical_not(representable_diff)], 0)
    assert_allclose(scaler.scale_[np.logical_not(representable_diff)], 1)

    # The other features are scaled and scale_ is equal to sqrt(var_) assuming
    # that scales are large enough for average + scale and average - scale to
    # be distinct in X (depending on X's dtype).
    common_mask = np.logical_and(scales**2 > bounds, representable_diff)
    assert_allclose(scaler.scale_[common_mask], np.sqrt(scaler.var_)[common_mask])

    # The real StandardScaler makes the same decisions and divides by the same,
    # fed the same values in float64: on sparse float32 input StandardScaler
    # accumulates in float32 (mean_variance_axis), skbn in float64 on every path
    # (README, "dtypes"), so there it is compared with the float64 fit.
    theirs = StandardScaler(with_mean=False).fit(
        X_array if sparse_container is None else X_array.astype(np.float64)
    )
    assert_allclose(scaler.scale_, theirs.scale_, rtol=1e-12)
    assert_allclose(scaler.var_[common_mask], theirs.var_[common_mask], rtol=1e-12)


def test_standard_scaler_numerical_stability():
    # Test numerical stability of scaling (the original runs the `scale`
    # function; here the scaler's fit_transform, which skbn promises exact:
    # a constant column has mean == value and variance 0 exactly, so the
    # output is exactly 0 and no warning is needed)
    # np.log(1e-5) is taken because of its floating point representation
    # was empirically found to cause numerical problems with np.mean & np.std.
    for n, value in [(8, np.log(1e-5)), (10, np.log(1e-5)), (10, 1e-100), (10, 1e100)]:
        x = np.full((n, 1), value, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x_scaled = pooled().fit_transform(x)
            x_centered = pooled(with_std=False).fit_transform(x)
        assert_array_equal(x_scaled, np.zeros((n, 1)))
        assert_array_equal(x_centered, np.zeros((n, 1)))
        # the original's reference, the scale function: zeros to 6 decimals (it
        # warns on some of these; StandardScaler itself is off by 1.9e84 at 1e100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            assert_array_almost_equal(scale(x), x_scaled)


def test_scaler_2d_arrays():
    # Test scaling of 2d array along first axis
    rng = np.random.RandomState(0)
    n_features = 5
    n_samples = 4
    X = rng.randn(n_samples, n_features)
    X[:, 0] = 0.0  # first feature is always of zero

    scaler = pooled()
    X_scaled = scaler.fit(X).transform(X, copy=True)
    assert not np.any(np.isnan(X_scaled))
    assert scaler.n_samples_seen_ == n_samples

    assert_array_almost_equal(X_scaled.mean(axis=0), n_features * [0.0])
    assert_array_almost_equal(X_scaled.std(axis=0), [0.0, 1.0, 1.0, 1.0, 1.0])
    # Check that X has been copied
    assert X_scaled is not X

    # check inverse transform
    X_scaled_back = scaler.inverse_transform(X_scaled)
    assert X_scaled_back is not X
    assert X_scaled_back is not X_scaled
    assert_array_almost_equal(X_scaled_back, X)
    assert_like_standard_scaler(scaler, StandardScaler().fit(X), X)

    X_scaled = scaler.fit(X).transform(X, copy=False)
    assert not np.any(np.isnan(X_scaled))
    assert_array_almost_equal(X_scaled.mean(axis=0), n_features * [0.0])
    assert_array_almost_equal(X_scaled.std(axis=0), [0.0, 1.0, 1.0, 1.0, 1.0])
    # Check that X has not been copied
    assert X_scaled is X

    X = rng.randn(4, 5)
    X[:, 0] = 1.0  # first feature is a constant, non zero feature
    scaler = pooled()
    X_scaled = scaler.fit(X).transform(X, copy=True)
    assert not np.any(np.isnan(X_scaled))
    assert_array_almost_equal(X_scaled.mean(axis=0), n_features * [0.0])
    assert_array_almost_equal(X_scaled.std(axis=0), [0.0, 1.0, 1.0, 1.0, 1.0])
    # Check that X has not been copied
    assert X_scaled is not X
    assert_like_standard_scaler(scaler, StandardScaler().fit(X), X)


def test_scaler_float16_overflow():
    # Test if the scaler will not overflow on float16 numpy arrays
    rng = np.random.RandomState(0)
    # float16 has a maximum of 65500.0. On the worst case 5 * 200000 is 100000
    # which is enough to overflow the data type
    X = rng.uniform(5, 10, [200000, 1]).astype(np.float16)

    with np.errstate(over="raise"):
        scaler = pooled().fit(X)
        X_scaled = scaler.transform(X)

    # Calculate the float64 equivalent to verify result
    X_scaled_f64 = StandardScaler().fit_transform(X.astype(np.float64))

    # Overflow calculations may cause -inf, inf, or nan. Since there is no nan
    # input, all of the outputs should be finite. This may be redundant since a
    # FloatingPointError exception will be thrown on overflow above.
    assert np.all(np.isfinite(X_scaled))

    # The normal distribution is very unlikely to go above 4. At 4.0-8.0 the
    # float16 precision is 2^-8 which is around 0.004. Thus only 2 decimals are
    # checked to account for precision differences.
    assert_array_almost_equal(X_scaled, X_scaled_f64, decimal=2)
    # skbn converts float16 to float64 (documented), so it is the float64 result
    assert_allclose(X_scaled, X_scaled_f64, rtol=1e-12, atol=1e-12)


def test_standard_scaler_partial_fit():
    # Test if partial_fit run over many batches of size 1 and 50
    # gives the same results as fit
    X = X_2d
    n = X.shape[0]

    for chunk_size in [1, 2, 50, n, n + 42]:
        # Test mean at the end of the process
        scaler_batch = pooled(with_std=False).fit(X)

        scaler_incr = pooled(with_std=False)
        for batch in gen_batches(n_samples, chunk_size):
            scaler_incr = scaler_incr.partial_fit(X[batch])
        assert_array_almost_equal(scaler_batch.mean_, scaler_incr.mean_)
        # Documented difference: with_std=False still learns var_ (StandardScaler: None)
        assert StandardScaler(with_std=False).fit(X).var_ is None
        assert_allclose(scaler_batch.var_, scaler_incr.var_, rtol=1e-12)
        assert scaler_batch.scale_ is scaler_incr.scale_ is None
        assert scaler_batch.n_samples_seen_ == scaler_incr.n_samples_seen_

        # Test std after 1 step
        batch0 = slice(0, chunk_size)
        scaler_incr = pooled().partial_fit(X[batch0])
        if chunk_size == 1:
            assert_array_almost_equal(np.zeros(n_features, dtype=np.float64), scaler_incr.var_)
            assert_array_almost_equal(np.ones(n_features, dtype=np.float64), scaler_incr.scale_)
        else:
            assert_array_almost_equal(np.var(X[batch0], axis=0), scaler_incr.var_)
            # no constants
            assert_array_almost_equal(np.std(X[batch0], axis=0), scaler_incr.scale_)

        # Test std until the end of partial fits, and
        scaler_batch = pooled().fit(X)
        scaler_incr = pooled()  # Clean estimator
        theirs_incr = StandardScaler()
        for i, batch in enumerate(gen_batches(n_samples, chunk_size)):
            scaler_incr = scaler_incr.partial_fit(X[batch])
            theirs_incr.partial_fit(X[batch])
            assert_correct_incr(
                i,
                batch_start=batch.start,
                batch_stop=batch.stop,
                n=n,
                chunk_size=chunk_size,
                n_samples_seen=scaler_incr.n_samples_seen_,
            )

        assert_array_almost_equal(scaler_batch.var_, scaler_incr.var_)
        assert scaler_batch.n_samples_seen_ == scaler_incr.n_samples_seen_
        assert_like_standard_scaler(scaler_incr, theirs_incr, X)


@pytest.mark.parametrize("sparse_container", CSC_CONTAINERS + CSR_CONTAINERS)
def test_standard_scaler_partial_fit_numerical_stability(sparse_container):
    # Test if the incremental computation introduces significative errors
    # for large datasets with values of large magniture
    rng = np.random.RandomState(0)
    n_features = 2
    n_samples = 100
    offsets = rng.uniform(-1e15, 1e15, size=n_features)
    scales = rng.uniform(1e3, 1e6, size=n_features)
    X = rng.randn(n_samples, n_features) * scales + offsets

    scaler_batch = pooled().fit(X)
    scaler_incr = pooled()
    for chunk in X:
        scaler_incr = scaler_incr.partial_fit(chunk.reshape(1, n_features))

    # Regardless of abs values, they must not be more diff 6 significant digits
    tol = 10 ** (-6)
    assert_allclose(scaler_incr.mean_, scaler_batch.mean_, rtol=tol)
    assert_allclose(scaler_incr.var_, scaler_batch.var_, rtol=tol)
    assert_allclose(scaler_incr.scale_, scaler_batch.scale_, rtol=tol)
    # NOTE Be aware that for much larger offsets std is very unstable (last
    # assert) while mean is OK.
    # skbn: the one-batch fit is the real StandardScaler's, and the one-row
    # stream stays within a few rounding errors of the data (ulp(1e15) = 0.125
    # against a spread of 1e3..1e6) of it
    assert_like_standard_scaler(scaler_batch, StandardScaler().fit(X))
    assert_same_to_data_rounding(
        scaler_incr.mean_, scaler_incr.var_, scaler_batch.mean_, scaler_batch.var_, X
    )

    # Sparse input
    size = (100, 3)
    scale = 1e20
    X = sparse_container(rng.randint(0, 2, size).astype(np.float64) * scale)

    # with_mean=False is required with sparse input
    scaler = pooled(with_mean=False).fit(X)
    scaler_incr = pooled(with_mean=False)

    for chunk in X:
        if chunk.ndim == 1:
            # Sparse arrays can be 1D (in scipy 1.14 and later) while old
            # sparse matrix instances are always 2D.
            chunk = chunk.reshape(1, -1)
        scaler_incr = scaler_incr.partial_fit(chunk)

    # Regardless of magnitude, they must not differ more than of 6 digits
    tol = 10 ** (-6)
    assert scaler.mean_ is not None
    assert_allclose(scaler_incr.var_, scaler.var_, rtol=tol)
    assert_allclose(scaler_incr.scale_, scaler.scale_, rtol=tol)
    assert_like_standard_scaler(scaler, StandardScaler(with_mean=False).fit(X), X)


@pytest.mark.parametrize("sample_weight", [True, None])
@pytest.mark.parametrize("sparse_container", CSC_CONTAINERS + CSR_CONTAINERS)
def test_partial_fit_sparse_input(sample_weight, sparse_container):
    # Check that sparsity is not destroyed
    X = sparse_container(np.array([[1.0], [0.0], [0.0], [5.0]]))

    if sample_weight:
        sample_weight = rng.rand(X.shape[0])

    null_transform = pooled(with_mean=False, with_std=False, copy=True)
    X_null = null_transform.partial_fit(X, sample_weight=sample_weight).transform(X)
    assert_array_equal(X_null.toarray(), X.toarray())
    X_orig = null_transform.inverse_transform(X_null)
    assert_array_equal(X_orig.toarray(), X_null.toarray())
    assert_array_equal(X_orig.toarray(), X.toarray())
    assert sparse.issparse(X_null) and X_null.format == X.format


@pytest.mark.parametrize("sample_weight", [True, None])
def test_standard_scaler_transform_with_partial_fit(sample_weight):
    # Check some postconditions after applying partial_fit and transform
    X = X_2d[:100, :]

    if sample_weight:
        sample_weight = np.random.RandomState(1).rand(X.shape[0])

    scaler_incr = pooled()
    for i, batch in enumerate(gen_batches(X.shape[0], 1)):
        X_sofar = X[: (i + 1), :]
        chunks_copy = X_sofar.copy()
        if sample_weight is None:
            scaled_batch = StandardScaler().fit_transform(X_sofar)
            scaler_incr = scaler_incr.partial_fit(X[batch])
        else:
            scaled_batch = StandardScaler().fit_transform(
                X_sofar, sample_weight=sample_weight[: i + 1]
            )
            scaler_incr = scaler_incr.partial_fit(X[batch], sample_weight=sample_weight[batch])
        scaled_incr = scaler_incr.transform(X_sofar)

        assert_array_almost_equal(scaled_batch, scaled_incr)
        assert_array_almost_equal(X_sofar, chunks_copy)  # No change
        right_input = scaler_incr.inverse_transform(scaled_incr)
        assert_array_almost_equal(X_sofar, right_input)

        zero = np.zeros(X.shape[1])
        epsilon = np.finfo(float).eps
        assert_array_less(zero, scaler_incr.var_ + epsilon)  # as less or equal
        assert_array_less(zero, scaler_incr.scale_ + epsilon)
        if sample_weight is None:
            # (i+1) because the Scaler has been already fitted
            assert (i + 1) == scaler_incr.n_samples_seen_
        else:
            assert np.sum(sample_weight[: i + 1]) == pytest.approx(scaler_incr.n_samples_seen_)


def test_standard_check_array_of_inverse_transform():
    # Check if inverse_transform is converting the integer array to float
    x = np.array(
        [
            [1, 1, 1, 0, 1, 0],
            [1, 1, 1, 0, 1, 0],
            [0, 8, 0, 1, 0, 0],
            [1, 4, 1, 1, 0, 0],
            [0, 1, 0, 0, 1, 0],
            [0, 4, 0, 1, 0, 1],
        ],
        dtype=np.int32,
    )

    scaler = pooled()
    scaler.fit(x)

    # The of inverse_transform should be converted
    # to a float array.
    # If not X *= self.scale_ will fail.
    back = scaler.inverse_transform(x)
    assert back.dtype == np.float64
    assert_allclose(back, StandardScaler().fit(x).inverse_transform(x), rtol=1e-12)


@pytest.mark.parametrize(
    "array_namespace, device_name, dtype_name",
    ARRAY_API_COMBINATIONS,
)
@pytest.mark.parametrize("sample_weight", [True, None])
def test_standard_scaler_array_api_compliance(
    sample_weight, array_namespace, device_name, dtype_name
):
    # scikit-learn's own estimator check, run on the scaler under test
    estimator = pooled()
    name = estimator.__class__.__name__
    check_array_api_input_and_values(
        name,
        estimator,
        array_namespace,
        device_name=device_name,
        dtype_name=dtype_name,
        check_sample_weight=sample_weight,
    )


@pytest.mark.parametrize("sample_weight", [True, None])
@pytest.mark.parametrize("sparse_container", CSC_CONTAINERS + CSR_CONTAINERS)
def test_scaler_without_centering(sample_weight, sparse_container):
    rng = np.random.RandomState(42)
    X = rng.randn(4, 5)
    X[:, 0] = 0.0  # first feature is always of zero
    X_sparse = sparse_container(X)

    if sample_weight:
        sample_weight = rng.rand(X.shape[0])

    with pytest.raises(ValueError):
        pooled().fit(X_sparse)

    scaler = pooled(with_mean=False).fit(X, sample_weight=sample_weight)
    X_scaled = scaler.transform(X, copy=True)
    assert not np.any(np.isnan(X_scaled))

    scaler_sparse = pooled(with_mean=False).fit(X_sparse, sample_weight=sample_weight)
    X_sparse_scaled = scaler_sparse.transform(X_sparse, copy=True)
    assert not np.any(np.isnan(X_sparse_scaled.data))

    assert_array_almost_equal(scaler.mean_, scaler_sparse.mean_)
    assert_array_almost_equal(scaler.var_, scaler_sparse.var_)
    assert_array_almost_equal(scaler.scale_, scaler_sparse.scale_)
    assert_array_almost_equal(scaler.n_samples_seen_, scaler_sparse.n_samples_seen_)

    if sample_weight is None:
        assert_array_almost_equal(X_scaled.mean(axis=0), [0.0, -0.01, 2.24, -0.35, -0.78], 2)
        assert_array_almost_equal(X_scaled.std(axis=0), [0.0, 1.0, 1.0, 1.0, 1.0])

    X_sparse_scaled_mean, X_sparse_scaled_var = mean_variance_axis(X_sparse_scaled, 0)
    assert_array_almost_equal(X_sparse_scaled_mean, X_scaled.mean(axis=0))
    assert_array_almost_equal(X_sparse_scaled_var, X_scaled.var(axis=0))

    # Check that X has not been modified (copy)
    assert X_scaled is not X
    assert X_sparse_scaled is not X_sparse

    X_scaled_back = scaler.inverse_transform(X_scaled)
    assert X_scaled_back is not X
    assert X_scaled_back is not X_scaled
    assert_array_almost_equal(X_scaled_back, X)

    X_sparse_scaled_back = scaler_sparse.inverse_transform(X_sparse_scaled)
    assert X_sparse_scaled_back is not X_sparse
    assert X_sparse_scaled_back is not X_sparse_scaled
    assert_array_almost_equal(X_sparse_scaled_back.toarray(), X)

    if sparse_container in CSR_CONTAINERS:
        null_transform = pooled(with_mean=False, with_std=False, copy=True)
        X_null = null_transform.fit_transform(X_sparse)
        assert_array_equal(X_null.data, X_sparse.data)
        X_orig = null_transform.inverse_transform(X_null)
        assert_array_equal(X_orig.data, X_sparse.data)

    theirs = StandardScaler(with_mean=False)
    assert_like_standard_scaler(scaler, theirs.fit(X, sample_weight=sample_weight), X)
    assert_like_standard_scaler(
        scaler_sparse, theirs.fit(X_sparse, sample_weight=sample_weight), X_sparse
    )


@pytest.mark.parametrize("with_mean", [True, False])
@pytest.mark.parametrize("with_std", [True, False])
@pytest.mark.parametrize("sparse_container", [None] + CSC_CONTAINERS + CSR_CONTAINERS)
def test_scaler_n_samples_seen_with_nan(with_mean, with_std, sparse_container):
    X = np.array([[0, 1, 3], [np.nan, 6, 10], [5, 4, np.nan], [8, 0, np.nan]], dtype=np.float64)
    if sparse_container is not None:
        X = sparse_container(X)

    transformer = pooled(with_mean=with_mean, with_std=with_std)
    if sparse.issparse(X) and with_mean:
        # The original skips: 'with_mean=True' cannot be used with sparse
        # matrix.  Both scalers refuse it.
        with pytest.raises(ValueError, match="Cannot center sparse matrices"):
            transformer.fit(X)
        with pytest.raises(ValueError, match="Cannot center sparse matrices"):
            StandardScaler(with_mean=with_mean, with_std=with_std).fit(X)
        return

    transformer.fit(X)

    assert_array_equal(transformer.n_samples_seen_, np.array([3, 4, 2]))
    theirs = StandardScaler(with_mean=with_mean, with_std=with_std).fit(X)
    assert_array_equal(transformer.n_samples_seen_, theirs.n_samples_seen_)


def _check_identity_scalers_attributes(scaler_1, scaler_2):
    # Documented difference: StandardScaler(with_mean=False, with_std=False)
    # sets mean_ and var_ to None; BatchNormScaler still learns them.
    assert_allclose(scaler_1.mean_, scaler_2.mean_, rtol=1e-12)
    assert_allclose(scaler_1.var_, scaler_2.var_, rtol=1e-12)
    assert scaler_1.scale_ is scaler_2.scale_ is None
    assert scaler_1.n_samples_seen_ == scaler_2.n_samples_seen_


@pytest.mark.parametrize("sparse_container", CSC_CONTAINERS + CSR_CONTAINERS)
def test_scaler_return_identity(sparse_container):
    # test that the scaler return identity when with_mean and with_std are
    # False
    X_dense = np.array([[0, 1, 3], [5, 6, 0], [8, 0, 10]], dtype=np.float64)
    X_sparse = sparse_container(X_dense)

    transformer_dense = pooled(with_mean=False, with_std=False)
    X_trans_dense = transformer_dense.fit_transform(X_dense)
    assert_allclose(X_trans_dense, X_dense)

    transformer_sparse = clone(transformer_dense)
    X_trans_sparse = transformer_sparse.fit_transform(X_sparse)
    assert_allclose_dense_sparse(X_trans_sparse, X_sparse)

    _check_identity_scalers_attributes(transformer_dense, transformer_sparse)
    theirs = StandardScaler(with_mean=False, with_std=False).fit(X_dense)
    assert theirs.mean_ is theirs.var_ is theirs.scale_ is None
    assert_allclose(transformer_dense.mean_, X_dense.mean(axis=0), rtol=1e-12)
    assert_allclose(transformer_dense.var_, X_dense.var(axis=0), rtol=1e-12)

    transformer_dense.partial_fit(X_dense)
    transformer_sparse.partial_fit(X_sparse)
    _check_identity_scalers_attributes(transformer_dense, transformer_sparse)

    transformer_dense.fit(X_dense)
    transformer_sparse.fit(X_sparse)
    _check_identity_scalers_attributes(transformer_dense, transformer_sparse)


@pytest.mark.parametrize("sparse_container", CSC_CONTAINERS + CSR_CONTAINERS)
def test_scaler_int(sparse_container):
    # test that scaler converts integer input to floating
    # for both sparse and dense matrices
    rng = np.random.RandomState(42)
    X = rng.randint(20, size=(4, 5))
    X[:, 0] = 0  # first feature is always of zero
    X_sparse = sparse_container(X)

    with warnings.catch_warnings(record=True):
        scaler = pooled(with_mean=False).fit(X)
        X_scaled = scaler.transform(X, copy=True)
    assert not np.any(np.isnan(X_scaled))

    with warnings.catch_warnings(record=True):
        scaler_sparse = pooled(with_mean=False).fit(X_sparse)
        X_sparse_scaled = scaler_sparse.transform(X_sparse, copy=True)
    assert not np.any(np.isnan(X_sparse_scaled.data))

    assert_array_almost_equal(scaler.mean_, scaler_sparse.mean_)
    assert_array_almost_equal(scaler.var_, scaler_sparse.var_)
    assert_array_almost_equal(scaler.scale_, scaler_sparse.scale_)

    assert_array_almost_equal(X_scaled.mean(axis=0), [0.0, 1.109, 1.856, 21.0, 1.559], 2)
    assert_array_almost_equal(X_scaled.std(axis=0), [0.0, 1.0, 1.0, 1.0, 1.0])

    X_sparse_scaled_mean, X_sparse_scaled_std = mean_variance_axis(
        X_sparse_scaled.astype(float), 0
    )
    assert_array_almost_equal(X_sparse_scaled_mean, X_scaled.mean(axis=0))
    assert_array_almost_equal(X_sparse_scaled_std, X_scaled.std(axis=0))

    # Check that X has not been modified (copy)
    assert X_scaled is not X
    assert X_sparse_scaled is not X_sparse

    X_scaled_back = scaler.inverse_transform(X_scaled)
    assert X_scaled_back is not X
    assert X_scaled_back is not X_scaled
    assert_array_almost_equal(X_scaled_back, X)

    X_sparse_scaled_back = scaler_sparse.inverse_transform(X_sparse_scaled)
    assert X_sparse_scaled_back is not X_sparse
    assert X_sparse_scaled_back is not X_sparse_scaled
    assert_array_almost_equal(X_sparse_scaled_back.toarray(), X)

    if sparse_container in CSR_CONTAINERS:
        null_transform = pooled(with_mean=False, with_std=False, copy=True)
        with warnings.catch_warnings(record=True):
            X_null = null_transform.fit_transform(X_sparse)
        assert_array_equal(X_null.data, X_sparse.data)
        X_orig = null_transform.inverse_transform(X_null)
        assert_array_equal(X_orig.data, X_sparse.data)

    assert_like_standard_scaler(scaler, StandardScaler(with_mean=False).fit(X), X)
    assert_like_standard_scaler(
        scaler_sparse, StandardScaler(with_mean=False).fit(X_sparse), X_sparse
    )


@pytest.mark.parametrize("sparse_container", CSR_CONTAINERS + CSC_CONTAINERS)
def test_scaler_without_copy(sparse_container):
    # Check that fit does not change input
    rng = np.random.RandomState(42)
    X = rng.randn(4, 5)
    X[:, 0] = 0.0  # first feature is always of zero
    X_sparse = sparse_container(X)

    X_copy = X.copy()
    pooled(copy=False).fit(X)
    assert_array_equal(X, X_copy)

    X_sparse_copy = X_sparse.copy()
    pooled(with_mean=False, copy=False).fit(X_sparse)
    assert_array_equal(X_sparse.toarray(), X_sparse_copy.toarray())


@pytest.mark.parametrize("sparse_container", CSR_CONTAINERS + CSC_CONTAINERS)
def test_scale_sparse_with_mean_raise_exception(sparse_container):
    rng = np.random.RandomState(42)
    X = rng.randn(4, 5)
    X_sparse = sparse_container(X)

    # check fit with direct calls on sparse data (the `scale` function part
    # of the original is not ours)
    with pytest.raises(ValueError):
        pooled(with_mean=True).fit(X_sparse)

    # check transform and inverse_transform after a fit on a dense array
    scaler = pooled(with_mean=True).fit(X)
    with pytest.raises(ValueError):
        scaler.transform(X_sparse)

    X_transformed_sparse = sparse_container(scaler.transform(X))
    with pytest.raises(ValueError):
        scaler.inverse_transform(X_transformed_sparse)


def test_scale_input_finiteness_validation():
    # Check if non-finite inputs raise ValueError (skbn's message names the
    # feature and says what to do: docs/refusals.md)
    X = [[np.inf, 5, 6, 7, 8]]
    with pytest.raises(ValueError, match=r"Input X contains infinity in feature\(s\) \[0\]"):
        pooled().fit(X)
    with pytest.raises(ValueError, match=r"Input X contains infinity"):
        StandardScaler().fit(X)


def test_fit_transform():
    rng = np.random.RandomState(0)
    X = rng.random_sample((5, 4))
    obj = pooled()
    X_transformed = obj.fit(X).transform(X)
    X_transformed2 = obj.fit_transform(X)
    assert_array_equal(X_transformed, X_transformed2)
    assert_allclose(X_transformed, StandardScaler().fit_transform(X), rtol=1e-12)


def test_fit_cold_start():
    X = datasets.load_iris().data
    X_2d = X[:, :2]

    scaler = pooled(with_mean=False, with_std=False)
    scaler.fit_transform(X)
    # with a different shape, this may break the scaler unless the internal
    # state is reset
    scaler.fit_transform(X_2d)
    assert scaler.n_features_in_ == 2


@pytest.mark.parametrize(
    "X_2",
    [_sparse_random_array((10, 1), density=0.8, rng=0)]
    + [csr_container(np.full((10, 1), fill_value=np.nan)) for csr_container in CSR_CONTAINERS],
)
def test_standard_scaler_sparse_partial_fit_finite_variance(X_2):
    # non-regression test for:
    # https://github.com/scikit-learn/scikit-learn/issues/16448
    X_1 = _sparse_random_array((5, 1), density=0.8, rng=1)
    scaler = pooled(with_mean=False)
    scaler.fit(X_1).partial_fit(X_2)
    assert np.isfinite(scaler.var_[0])
    theirs = StandardScaler(with_mean=False).fit(X_1).partial_fit(X_2)
    assert_like_standard_scaler(scaler, theirs)


def test_standard_scaler_raise_error_for_1d_input():
    """Check that `inverse_transform` raises an error with 1D array.
    Non-regression test for:
    https://github.com/scikit-learn/scikit-learn/issues/19518
    """
    scaler = pooled().fit(X_2d)
    err_msg = "Expected 2D array, got 1D array instead"
    with pytest.raises(ValueError, match=err_msg):
        scaler.inverse_transform(X_2d[:, 0])


def test_one_to_one_features():
    """Check one-to-one transformers give correct feature names."""
    iris = datasets.load_iris()
    tr = pooled().fit(iris.data)
    names_out = tr.get_feature_names_out(iris.feature_names)
    assert_array_equal(names_out, iris.feature_names)
    assert_array_equal(
        names_out, StandardScaler().fit(iris.data).get_feature_names_out(iris.feature_names)
    )


def test_one_to_one_features_pandas():
    """Check one-to-one transformers give correct feature names."""
    iris = datasets.load_iris()
    df = pd.DataFrame(iris.data, columns=iris.feature_names)
    tr = pooled().fit(df)

    names_out_df_default = tr.get_feature_names_out()
    assert_array_equal(names_out_df_default, iris.feature_names)

    names_out_df_valid_in = tr.get_feature_names_out(iris.feature_names)
    assert_array_equal(names_out_df_valid_in, iris.feature_names)

    msg = re.escape("input_features is not equal to feature_names_in_")
    with pytest.raises(ValueError, match=msg):
        invalid_names = list("abcd")
        tr.get_feature_names_out(invalid_names)
