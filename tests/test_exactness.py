"""Exact at every extreme, on every path: each defect of the hostile review
as a test, held against scikit-learn's StandardScaler and exact arithmetic."""

import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from exact import assert_close_to_exact, exact_batch
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler
from skbn._averaging import averaging_factor

BIG = np.finfo(np.float64).max


def _same_as_standard_scaler(X, rtol=1e-12, **params):
    ours = BatchNormScaler(epsilon=0.0, **params).fit(X)
    theirs = StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=rtol)
    np.testing.assert_allclose(ours.var_, theirs.var_, rtol=rtol)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=rtol)
    # Where the data sit far from 0 the two means may differ by an ulp of the
    # data, which the transform shows as that ulp over the divisor.
    # (scikit-learn's mean of a constant column can be ulps off; ours is exact).
    ulp = 8 * np.spacing(np.abs(theirs.mean_)) / theirs.scale_
    ours_t, theirs_t = ours.transform(X), theirs.transform(X)
    assert np.all(np.abs(ours_t - theirs_t) <= rtol * np.abs(theirs_t) + ulp + 1e-12)
    if len(X) <= 2000:  # and ours is the exact mean, to rounding
        exact = exact_batch(X)
        assert_close_to_exact(ours.mean_, [e[1] for e in exact], 1e-15)
    return ours, theirs


def test_ids_like_magnitude_keeps_its_variance():
    """The issue's first example: a spread of 1 far above rounding is not 0."""
    rng = np.random.default_rng(0)
    X = 1e11 + rng.normal(size=(100_000, 1))
    ours, theirs = _same_as_standard_scaler(X, rtol=1e-9)
    assert 0.99 < ours.var_[0] < 1.01
    assert abs(BatchNormScaler().fit(X).transform(X).std() - 1.0) < 0.01


def test_readme_claim_epsilon_zero_is_standard_scaler_at_2m_rows():
    """README: ``BatchNormScaler(epsilon=0).fit(X)`` gives what
    ``StandardScaler().fit(X)`` gives: ``mean_``, ``var_``, ``scale_`` and the
    transform (the issue's 1e9 + N(0, 0.2^2) with 2M rows)."""
    rng = np.random.default_rng(1)
    X = 1e9 + 0.2 * rng.normal(size=(2_000_000, 1))
    _same_as_standard_scaler(X, rtol=1e-9)


@pytest.mark.parametrize(
    "X",
    [
        np.random.default_rng(2).normal(size=(300, 4)) * [1, 1e-8, 1e8, 3] + [0, 1e9, -5, 1e15],
        np.repeat(np.array([[1.0, 0.1, -3e100, 7.0]]), 50, axis=0),
        np.vstack([np.full((40, 3), 2.5), np.full((1, 3), 2.5 + 2**-51)]),
    ],
    ids=["offsets", "constant", "nearly-constant"],
)
def test_epsilon_zero_equals_standard_scaler_on_any_data(X):
    _same_as_standard_scaler(X)


def test_statistics_do_not_depend_on_block_size_or_other_columns():
    rng = np.random.default_rng(3)
    col = 1e11 + rng.normal(size=(100_000, 1))
    alone = BatchNormScaler(momentum="pooled").fit(col)
    chunked = BatchNormScaler(momentum="pooled", batch_size=10_000).fit(col)
    np.testing.assert_allclose(chunked.var_, alone.var_, rtol=1e-12)
    wide = np.hstack([rng.normal(size=(100_000, 7)), col, rng.normal(size=(100_000, 8)) * 1e6])
    beside = BatchNormScaler(momentum="pooled").fit(wide)
    np.testing.assert_allclose(beside.var_[7], alone.var_[0], rtol=1e-14)
    np.testing.assert_allclose(beside.mean_[7], alone.mean_[0], rtol=1e-16)
    exact = exact_batch(col[:20_000])[0]
    got = BatchNormScaler().fit(col[:20_000])
    assert_close_to_exact(got.var_, [exact[2]], 1e-9)


HUGE_CONSTANTS = [
    np.vstack([np.full((10, 1), 1e200), [[np.nan]]]),
    np.full((1000, 1), 1e306),
    np.full((3, 1), 1.7e308),
    np.full((9000, 1), -BIG),
    np.full((5000, 2), 0.1),
]


@pytest.mark.parametrize("X", HUGE_CONSTANTS, ids=lambda X: f"{X.shape}-{np.nanmax(X):.1e}")
def test_constant_columns_are_exact_at_every_magnitude(X):
    value = np.nanmax(X)
    scaler = BatchNormScaler(epsilon=0.0).fit(X)
    assert np.all(scaler.var_ == 0.0)
    assert np.all(scaler.mean_ == value)
    assert np.all(np.nan_to_num(scaler.transform(X)) == 0.0)
    # streamed: one such batch does not poison the moving variance
    stream = BatchNormScaler(momentum=0.5).partial_fit(X)
    stream.partial_fit(X)
    assert np.all(stream.var_ == 0.0) and np.all(stream.mean_ == value)


def test_sparse_paths_are_exact_and_overflow_free():
    X = np.full((4, 1), 1e308)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array):
        scaler = BatchNormScaler(with_mean=False).fit(fmt(X))
        assert scaler.mean_[0] == 1e308 and scaler.var_[0] == 0.0


def test_sparse_duplicates_mean_their_sum():
    # entry (0, 0) given twice: SciPy means 1 + 2 = 3 there
    dup = sp.csr_matrix(
        (np.array([1.0, 2.0, 5.0, 7.0]), np.array([0, 0, 1, 0]), np.array([0, 3, 4])),
        shape=(2, 2),
    )
    assert not dup.has_canonical_format
    dense = dup.toarray()
    got = BatchNormScaler(with_mean=False).fit(dup)
    want = BatchNormScaler(with_mean=False).fit(dense)
    np.testing.assert_allclose(got.mean_, want.mean_, rtol=1e-15)
    np.testing.assert_allclose(got.var_, want.var_, rtol=1e-15)
    exact = exact_batch(dense)
    assert_close_to_exact(got.var_, [e[2] for e in exact], 1e-15)


def test_subnormal_weights_on_the_sparse_path():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 3))
    X[X < 0] = 0.0
    w = np.full(30, 5e-324)
    w[::3] = 1e-320
    dense = BatchNormScaler(with_mean=False).fit(X, sample_weight=w)
    sparse = BatchNormScaler(with_mean=False).fit(sp.csr_matrix(X), sample_weight=w)
    exact = exact_batch(X, w)
    for got in (dense, sparse):
        assert_close_to_exact(got.mean_, [e[1] for e in exact], 1e-14)
        assert_close_to_exact(got.var_, [e[2] for e in exact], 1e-13)


def test_opposite_extremes_give_inf_variance_not_nan():
    X = np.array([[BIG], [-BIG], [BIG], [-BIG]])
    for data in (X, sp.csr_matrix(X)):
        scaler = BatchNormScaler(with_mean=False).fit(data)
        assert scaler.mean_[0] == 0.0
        assert scaler.var_[0] == np.inf


def test_array_api_torch_at_huge_constants():
    torch = pytest.importorskip("torch")
    import sklearn

    for X in (np.full((6, 2), 1.7e308), np.array([[BIG], [-BIG], [BIG], [-BIG]])):
        want = BatchNormScaler().fit(X)
        with sklearn.config_context(array_api_dispatch=True):
            got = BatchNormScaler().fit(torch.asarray(X))
        np.testing.assert_array_equal(got.moving_mean_.numpy(), want.moving_mean_)
        np.testing.assert_array_equal(got.moving_var_.numpy(), want.moving_var_)


def test_weight_sum_beyond_float64_is_refused_and_changes_nothing():
    scaler = BatchNormScaler(unbiased=True).partial_fit(np.arange(6.0).reshape(3, 2))
    before = scaler.__getstate__()
    with pytest.raises(ValueError, match="rescale"):
        scaler.partial_fit(np.ones((3, 2)), sample_weight=[1e308] * 3)
    after = scaler.__getstate__()
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    with pytest.raises(ValueError, match="rescale"):
        BatchNormScaler(with_mean=False).fit(
            sp.csr_matrix(np.ones((3, 1))), sample_weight=[1e308] * 3
        )


def test_a_tiny_weight_still_counts():
    X = np.array([[1.0, 5.0], [2.0, np.nan], [3.0, np.nan]])
    w = np.array([1e-300, 1e300, 1e300])  # feature 1's only value has the tiny weight
    for data in (X,):
        scaler = BatchNormScaler().fit(data, sample_weight=w)
        assert scaler.mean_[1] == 5.0 and scaler.var_[1] == 0.0
        assert scaler._mean_updates_[1] == 1
        exact = exact_batch(X, w)
        assert_close_to_exact(scaler.mean_, [e[1] for e in exact], 1e-15)


@pytest.mark.parametrize("chunks", [(8, 1), (1, 1), (3, 1), (16, 1)])
def test_dask_exact_whatever_the_chunks(chunks):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(5)
    x = 1e9 + np.round(rng.normal(size=(256, 1)) * 3)
    y = 1e9 + rng.normal(size=(64, 1))
    for data in (x, y):
        want = BatchNormScaler().fit(data)
        got = BatchNormScaler().fit(da.from_array(data, chunks=chunks))
        np.testing.assert_allclose(got.var_, want.var_, rtol=1e-13)
        np.testing.assert_allclose(got.mean_, want.mean_, rtol=1e-16)
        assert_close_to_exact(got.var_, [exact_batch(data)[0][2]], 1e-13)


@pytest.mark.parametrize("momentum", [1 - 1e-9, 1 - 1e-15, 0.99, 0.5])
@pytest.mark.parametrize("t", [1, 2, 3, 10, 1000])
def test_debiasing_step_is_accurate_near_momentum_one(momentum, t):
    m = Fraction(momentum)
    exact = (1 - m) / (1 - m**t)
    got = averaging_factor(np.array([t]), momentum, "debiased")[0]
    assert abs(Fraction(float(got)) - exact) <= 4 * Fraction(2**-52) * exact


def test_moving_mean_near_momentum_one_keeps_its_digits():
    from exact import ExactScaler

    rng = np.random.default_rng(6)
    momentum = 1 - 1e-9
    ours = BatchNormScaler(momentum=momentum)
    oracle = ExactScaler(2, momentum=momentum)
    for _ in range(5):
        batch = 3.0 + rng.normal(size=(20, 2))
        ours.partial_fit(batch)
        oracle.partial_fit(batch)
    assert_close_to_exact(ours.mean_, oracle.mean, 1e-14)
    assert_close_to_exact(ours.var_, oracle.var, 1e-13)


def test_scale_and_with_std():
    rng = np.random.default_rng(7)
    X = rng.normal(2.0, 3.0, size=(200, 3))
    X[:, 2] = 4.0
    ss = StandardScaler(with_std=False).fit(X)
    ours = BatchNormScaler(epsilon=0.0, with_std=False).fit(X)
    assert ours.scale_ is None and ss.scale_ is None
    np.testing.assert_allclose(ours.var_, StandardScaler().fit(X).var_, rtol=1e-12)  # learned
    np.testing.assert_allclose(ours.transform(X), ss.transform(X), rtol=1e-12, atol=1e-12)
    with_std = BatchNormScaler(epsilon=0.0).fit(X)
    assert with_std.scale_[2] == 1.0  # the divisor is guarded, the variance is 0
    assert with_std.var_[2] == 0.0
    np.testing.assert_allclose(with_std.scale_, StandardScaler().fit(X).scale_, rtol=1e-12)
    np.testing.assert_allclose(
        BatchNormScaler(epsilon=0.25).fit(X).scale_, np.sqrt(X.var(axis=0) + 0.25), rtol=1e-12
    )


def test_finite_data_never_give_an_infinite_or_nan_mean():
    rng = np.random.default_rng(8)
    for scale in (1e300, 1e306, BIG / 2):
        X = rng.uniform(-1, 1, size=(5000, 3)) * scale
        X[rng.random(X.shape) < 0.1] = np.nan
        for data, kw in ((X, {}), (sp.csr_matrix(np.nan_to_num(X)), {"with_mean": False})):
            scaler = BatchNormScaler(**kw).fit(data)
            assert np.isfinite(scaler.mean_).all()
            assert not np.isnan(scaler.var_).any()
            assert math.isfinite(float(np.nanmax(np.abs(scaler.mean_))))


def test_dask_two_d_and_unknown_chunks_equal_the_in_memory_fit():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(9)
    X = 1e9 + rng.normal(size=(300, 6)) * [1, 1e-3, 10, 1, 1, 1e3]
    want = BatchNormScaler(momentum="pooled").fit(X)
    two_d = da.from_array(X, chunks=(7, 4))
    unknown = da.from_array(X, chunks=(50, 6))
    unknown = unknown[unknown[:, 0] > -np.inf]  # a boolean filter: row counts unknown
    assert np.isnan(unknown.shape[0])
    for data in (two_d, unknown):
        got = BatchNormScaler(momentum="pooled").fit(data)
        np.testing.assert_allclose(got.mean_, want.mean_, rtol=1e-16)
        np.testing.assert_allclose(got.var_, want.var_, rtol=1e-14)
