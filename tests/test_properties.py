"""Property-based tests of ``BatchNormScaler`` (hypothesis).

Random shapes, batch sizes, sample weights, NaN patterns and parameters.  The
examples are derandomized (the same on every run, so CI is reproducible) and
few enough that the file runs in seconds.  The references are independent of
skbn: exact rational arithmetic (``tests/exact.py``), NumPy, or skbn itself
fed an equivalent input (rows reordered, rows repeated, dense for sparse,
float64 for float32).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import scipy.sparse as sp
from exact import exact_batch
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skbn import BatchNormScaler

EPS = np.finfo(np.float64).eps
EPS32 = float(np.finfo(np.float32).eps)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
# float32 values of magnitude 0 or >= 1e-30, so 1 / (spread of a feature) fits in
# float32 (test_float32_transform_of_a_tiny_spread, an expected failure, in
# test_reliability.py, is the case where it does not).
FINITE32 = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32).filter(
    lambda v: v == 0 or abs(v) >= 1e-30
)
# Weights of 0, or far enough from the underflow range that w * x and w * d^2
# stay normal (tiny weights are test_tiny_weights_are_scale_free, an expected
# failure, in test_reliability.py).
WEIGHT = st.just(0.0) | st.floats(1e-3, 10.0)

PARAMS = st.fixed_dictionaries(
    {
        "momentum": st.sampled_from([None, 0.0, 0.5, 0.9, 0.99]),
        "init": st.sampled_from(["debiased", "keras"]),
        "unbiased": st.booleans(),
        "epsilon": st.sampled_from([0.0, 1e-3, 1.0]),
    }
)


@st.composite
def streams(draw, weights="real", nan=True, elements=FINITE, zeros=False, max_batches=4):
    """A list of ``(X, sample_weight)`` batches with the same number of features.

    ``weights``: None (no weights), "real" (maybe none, maybe reals >= 0) or
    "int" (integers 0..3, at least one positive per batch).
    """
    n_features = draw(st.integers(1, 4))
    batches = []
    for _ in range(draw(st.integers(1, max_batches))):
        rows = draw(st.integers(1, 12))
        X = draw(hnp.arrays(np.float64, (rows, n_features), elements=elements))
        if zeros:
            X[draw(hnp.arrays(np.bool_, X.shape))] = 0.0
        if nan:
            X[draw(hnp.arrays(np.bool_, X.shape))] = np.nan
        w = None
        if weights == "real" and draw(st.booleans()):
            w = draw(hnp.arrays(np.float64, rows, elements=WEIGHT))
        elif weights == "int":
            w = draw(hnp.arrays(np.int64, rows, elements=st.integers(0, 3)))
            w[0] = max(w[0], 1)
        batches.append((X, w))
    return batches


def _fed(batches, **params):
    scaler = BatchNormScaler(**params)
    for X, w in batches:
        scaler.partial_fit(X, sample_weight=w)
    return scaler


def _scale(batches):
    """The largest magnitude in the data (at least 1): the unit of rounding."""
    finite = [np.abs(X[~np.isnan(X)]).max(initial=0.0) for X, _ in batches]
    return max(1.0, *finite)


def assert_same_to_rounding(a, b, batches):
    """Two scalers' statistics agree to rounding errors of the data's scale."""
    s = _scale(batches)
    np.testing.assert_allclose(a.moving_mean_, b.moving_mean_, rtol=1e-10, atol=1e-12 * s)
    np.testing.assert_allclose(a.moving_var_, b.moving_var_, rtol=1e-8, atol=1e-12 * s * s)


def _numpy_batch(X, w):
    """Per feature (m, mean, biased var) with NumPy, NaN ignored; m may be 0."""
    w = np.ones(len(X)) if w is None else np.asarray(w, dtype=np.float64)
    m, mean, var = [], [], []
    for j in range(X.shape[1]):
        keep = ~np.isnan(X[:, j])
        col, wj = X[keep, j], w[keep]
        total = wj.sum()
        m.append(total)
        if total == 0:
            mean.append(0.0)
            var.append(0.0)
            continue
        mu = np.average(col, weights=wj)
        mean.append(mu)
        var.append(np.average((col - mu) ** 2, weights=wj))
    return np.array(m), np.array(mean), np.array(var)


def _divisor(scaler, epsilon):
    """sqrt(moving_var_ + epsilon), 1 where that is 0 (SPEC section 4)."""
    divisor = np.sqrt(scaler.moving_var_ + epsilon)
    return np.where(divisor == 0, 1.0, divisor)


# -- the properties ---------------------------------------------------------------------


@SETTINGS
@given(batches=streams(), params=PARAMS, data=st.data())
def test_row_order_within_a_batch_does_not_matter(batches, params, data):
    shuffled = []
    for X, w in batches:
        order = np.array(data.draw(st.permutations(range(len(X)))))
        shuffled.append((X[order], None if w is None else w[order]))
    a, b = _fed(batches, **params), _fed(shuffled, **params)
    assert_same_to_rounding(a, b, batches)
    np.testing.assert_allclose(a.n_samples_seen_, b.n_samples_seen_, rtol=1e-14)


@SETTINGS
@given(batches=streams(), init=st.sampled_from(["debiased", "keras"]), unbiased=st.booleans())
def test_momentum_zero_keeps_the_last_batch(batches, init, unbiased):
    """momentum=0: each statistic is that of the last batch that updated it
    (a feature all NaN in the last batch keeps its earlier value)."""
    scaler = _fed(batches, momentum=0.0, init=init, unbiased=unbiased)
    n_features = batches[0][0].shape[1]
    mean, var = np.zeros(n_features), np.ones(n_features)
    for X, w in batches:
        m, mu, s2 = _numpy_batch(X, w)
        mean = np.where(m > 0, mu, mean)
        if unbiased:
            with np.errstate(divide="ignore", invalid="ignore"):
                var = np.where(m > 1, s2 * m / (m - 1), var)
        else:
            var = np.where(m > 0, s2, var)
    s = _scale(batches)
    np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-10, atol=1e-12 * s)
    np.testing.assert_allclose(scaler.moving_var_, var, rtol=1e-8, atol=1e-12 * s * s)
    # and, bit for bit, what a new scaler makes of the last batch alone
    X, w = batches[-1]
    last = BatchNormScaler(momentum=0.0, init=init, unbiased=unbiased).partial_fit(
        X, sample_weight=w
    )
    m = _numpy_batch(X, w)[0]
    np.testing.assert_array_equal(scaler.moving_mean_[m > 0], last.moving_mean_[m > 0])
    updated = m > 1 if unbiased else m > 0
    np.testing.assert_array_equal(scaler.moving_var_[updated], last.moving_var_[updated])


@SETTINGS
@given(
    batches=streams(max_batches=1),
    momentum=st.sampled_from([None, 0.0, 0.5, 0.99]),
    unbiased=st.booleans(),
)
def test_first_debiased_batch_is_its_exact_statistics(batches, momentum, unbiased):
    """init="debiased": after one batch the moving statistics are that batch's
    weighted, NaN-ignoring mean and variance, checked against Fractions."""
    X, w = batches[0]
    scaler = BatchNormScaler(momentum=momentum, unbiased=unbiased).partial_fit(X, sample_weight=w)
    n = len(X)
    s = _scale(batches)
    for j, stats in enumerate(exact_batch(X, w)):
        if stats is None:  # no value of positive weight: the starting values
            assert (scaler.moving_mean_[j], scaler.moving_var_[j]) == (0.0, 1.0)
            continue
        m, mu, s2 = stats
        assert abs(Fraction(scaler.moving_mean_[j]) - mu) <= 1e-13 * abs(mu) + 8 * n * EPS * s
        if unbiased:
            if m <= 1:
                assert scaler.moving_var_[j] == 1.0
                continue
            s2 = s2 * m / (m - 1)
        # rounding, plus the bound below which skbn calls a feature constant (0)
        bound = 1e-9 * s2 + Fraction(4 * (n * EPS * s) ** 2)
        assert abs(Fraction(scaler.moving_var_[j]) - s2) <= bound, (j, float(s2))


@SETTINGS
@given(batches=streams(weights="int"), params=PARAMS)
def test_integer_weights_equal_repeated_rows(batches, params):
    repeated = [(np.repeat(X, w, axis=0), None) for X, w in batches]
    weighted, plain = _fed(batches, **params), _fed(repeated, **params)
    assert_same_to_rounding(weighted, plain, batches)
    np.testing.assert_array_equal(
        np.asarray(weighted.n_samples_seen_, dtype=np.float64),
        np.asarray(plain.n_samples_seen_, dtype=np.float64),
    )


@SETTINGS
@given(
    batches=streams(),
    params=PARAMS,
    flags=st.fixed_dictionaries(
        {"center": st.booleans(), "scale": st.booleans(), "with_mean": st.booleans()}
    ),
    data=st.data(),
)
def test_inverse_transform_undoes_transform(batches, params, flags, data):
    n_features = batches[0][0].shape[1]
    magnitude = st.floats(0.1, 10.0)
    gamma = np.array(
        [data.draw(magnitude) * data.draw(st.sampled_from([-1, 1])) for _ in range(n_features)]
    )
    beta = np.array([data.draw(st.floats(-10.0, 10.0)) for _ in range(n_features)])
    scaler = _fed(batches, gamma=gamma, beta=beta, **params, **flags)
    X = np.vstack([X for X, _ in batches])
    Y = scaler.transform(X)
    back = scaler.inverse_transform(Y)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(X))
    factor = np.abs(gamma if flags["scale"] else 1.0) / _divisor(scaler, params["epsilon"])
    unit = np.abs(X) + np.abs(scaler.moving_mean_) + np.abs(beta) / factor
    keep = ~np.isnan(X)
    assert (np.abs(back - X)[keep] <= 1e-12 * unit[keep] + 1e-300).all()


SPARSE_FORMATS = st.sampled_from([sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array])


@SETTINGS
@given(
    batches=streams(zeros=True, weights=None) | streams(zeros=True, nan=False),
    params=PARAMS,
    fmt=SPARSE_FORMATS,
)
def test_sparse_equals_dense(batches, params, fmt):
    """with_mean=False: a sparse matrix gives what its dense array gives (NaN,
    or sample weights; both together: the expected failure below)."""
    _check_sparse_equals_dense(batches, params, fmt)


@settings(SETTINGS, phases=[Phase.explicit, Phase.generate])  # no shrinking: fail fast
@given(batches=streams(zeros=True), params=PARAMS, fmt=SPARSE_FORMATS)
@example(  # the minimal case: a weighted batch in which the only feature is all NaN
    batches=[(np.array([[1.0]]), None), (np.full((3, 1), np.nan), np.full(3, 1.3))],
    params=dict(momentum=None, init="debiased", unbiased=False, epsilon=0.0),
    fmt=sp.csr_matrix,
)
def test_sparse_equals_dense_with_weights_and_nan(batches, params, fmt):
    _check_sparse_equals_dense(batches, params, fmt)


def _check_sparse_equals_dense(batches, params, fmt):
    sparse = [(fmt(X), w) for X, w in batches]
    a = _fed(batches, with_mean=False, **params)
    b = _fed(sparse, with_mean=False, **params)
    assert_same_to_rounding(a, b, batches)
    np.testing.assert_allclose(a.n_samples_seen_, b.n_samples_seen_, rtol=1e-14)
    X = batches[-1][0]
    out = b.transform(fmt(X))
    assert sp.issparse(out) and out.format == fmt(X).format
    s = _scale(batches)
    factor = 1 / _divisor(a, params["epsilon"])
    np.testing.assert_allclose(
        out.toarray(), a.transform(X), rtol=1e-8, atol=1e-12 * s * factor.max()
    )


@SETTINGS
@given(batches=streams(elements=FINITE32), params=PARAMS)
def test_float32_agrees_with_float64(batches, params):
    """The same values in float32: statistics accumulated in float64 (to float64
    rounding), transform computed in float32 (to float32 rounding)."""
    as32 = [(X.astype(np.float32), w) for X, w in batches]
    a, b = _fed(batches, **params), _fed(as32, **params)
    assert_same_to_rounding(a, b, batches)
    X = batches[-1][0]
    Y64 = a.transform(X)
    Y32 = b.transform(X.astype(np.float32))
    assert Y32.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(Y32), np.isnan(Y64))
    factor = 1 / _divisor(a, params["epsilon"])
    unit = (np.abs(X) + np.abs(a.moving_mean_)) * factor + np.abs(Y64)
    keep = ~np.isnan(X)
    assert (np.abs(Y32 - Y64)[keep] <= 4 * EPS32 * unit[keep] + 1e-30).all()
