"""Reliability (SPEC section 5): exact under hard data, nothing lost on bad input,
save and resume.

Every expected value comes from outside skbn: exact rational arithmetic
(``tests/exact.py`` or the integer moments below), NumPy, or the libraries
compared against (River, scikit-learn).  The refusal catalogue ``REFUSALS`` is
also the source of the table in ``docs/refusals.md``; a test checks that the
table shows the messages the code really raises.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import skops.io as sio
from exact import ExactScaler, assert_close_to_exact, exact_batch
from river.preprocessing import StandardScaler as RiverStandardScaler
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from test_scaler import _state, assert_same_state  # every attribute ending in "_"

from skbn import BatchNormScaler
from skbn._stats import BLOCK_BYTES

FLOAT_MAX = Fraction(float(np.finfo(np.float64).max))


# -- exact arithmetic with integers ---------------------------------------------------
#
# Every float64 is an integer times a power of two, so the moments of a column
# are ratios of integer sums: exact, and fast enough for 400,000 values, where
# tests/exact.py (one Fraction per value) would take minutes.


def _as_scaled_ints(values) -> tuple[list, int]:
    """Integers ``k_i`` and one exponent ``e`` with ``values[i] == k_i * 2**e`` exactly."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return [], 0
    mant, exp = np.frexp(v)  # v = mant * 2**exp with 0.5 <= |mant| < 1: 53 bits
    ints = (mant * 2.0**53).astype(np.int64).tolist()
    exps = (exp.astype(np.int64) - 53).tolist()
    e = min(x for k, x in zip(ints, exps, strict=True) if k != 0) if any(ints) else 0
    return [k << (x - e) if k else 0 for k, x in zip(ints, exps, strict=True)], e


def _pow2(e: int) -> Fraction:
    return Fraction(2) ** e


def exact_moments(X, weights=None) -> list:
    """``tests/exact.exact_batch`` computed with integers: per feature
    ``(m, mu, s2)`` as Fractions over the non-NaN rows, ``None`` where ``m == 0``."""
    X = np.asarray(X, dtype=np.float64)
    out = []
    for j in range(X.shape[1]):
        keep = ~np.isnan(X[:, j])
        k, e = _as_scaled_ints(X[keep, j])
        if weights is None:
            w, ew = [1] * len(k), 0
        else:
            w, ew = _as_scaled_ints(np.asarray(weights, dtype=np.float64)[keep])
        m = sum(w)
        if m == 0:
            out.append(None)
            continue
        s1 = sum(wi * ki for wi, ki in zip(w, k, strict=True))
        s2 = sum(wi * ki * ki for wi, ki in zip(w, k, strict=True))
        mu = Fraction(s1, m) * _pow2(e)
        var = Fraction(s2 * m - s1 * s1, m * m) * _pow2(2 * e)
        out.append((m * _pow2(ew), mu, var))
    return out


class FastExactScaler(ExactScaler):
    """``tests/exact.ExactScaler`` (SPEC section 3 in Fractions) fed the integer
    moments above, for batches too large for one Fraction per value."""

    def partial_fit(self, X, weights=None):
        return self.apply(exact_moments(X, weights))


def test_integer_moments_equal_fraction_moments():
    """The integer oracle is the Fraction oracle of tests/exact.py, exactly."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4)) * [1.0, 1e-200, 1e200, 1.0] + [0.0, 0.0, 0.0, 1e9]
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 0] = 0.0
    X[3, 0] = 5e-324  # subnormal
    w = rng.random(30) * 3
    w[::5] = 0.0
    for weights in (None, w):
        assert exact_moments(X, weights) == exact_batch(X, weights)
        a, b = FastExactScaler(4, momentum=0.9), ExactScaler(4, momentum=0.9)
        a.partial_fit(X[:10], weights if weights is None else weights[:10])
        b.partial_fit(X[:10], weights if weights is None else weights[:10])
        assert (a.mean, a.var) == (b.mean, b.var)


def _quietly(func):
    """Call ``func`` with floating-point RuntimeWarnings silenced (scikit-learn's
    overflow is the point of the comparison, and pytest turns RuntimeWarning
    into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return func()


# -- 1. large offset: 1e9 + N(0, 1) -----------------------------------------------------

OFFSET_MODES = [
    pytest.param(dict(momentum=None), id="cumulative"),
    pytest.param(dict(momentum=0.9), id="debiased-0.9"),
    pytest.param(dict(momentum=0.99, init="keras"), id="keras-0.99"),
]


def _offset_stream(seed=0, n_batches=60, n_features=3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 80, size=n_batches)
    return [1e9 + rng.normal(size=(size, n_features)) for size in sizes]


@pytest.mark.parametrize("mode", OFFSET_MODES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
def test_large_offset_stream_is_exact(mode, weighted, unbiased):
    rng = np.random.default_rng(1)
    scaler = BatchNormScaler(unbiased=unbiased, **mode)
    exact = ExactScaler(3, unbiased=unbiased, **mode)
    for X in _offset_stream():
        w = rng.random(len(X)) * 4 if weighted else None
        scaler.partial_fit(X, sample_weight=w)
        exact.partial_fit(X, w)
    assert_close_to_exact(scaler.moving_mean_, exact.mean, 1e-15)
    assert_close_to_exact(scaler.moving_var_, exact.var, 1e-9)


@pytest.mark.parametrize("variant", ["plain", "weighted", "nan"])
def test_large_offset_one_big_batch_is_exact(variant):
    """40,000 x 10 float64 (3.2 MB > one 2 MiB block): the multi-block path."""
    rng = np.random.default_rng(2)
    X = 1e9 + rng.normal(size=(40_000, 10)) * np.linspace(0.5, 2.0, 10)
    assert X.nbytes > 2 * 2**20 and X.nbytes > BLOCK_BYTES
    w = None
    if variant == "weighted":
        w = rng.random(40_000) * 3
    if variant == "nan":
        X[rng.random(X.shape) < 0.1] = np.nan
    scaler = BatchNormScaler().fit(X, sample_weight=w)
    exact = exact_moments(X, w)
    assert_close_to_exact(scaler.moving_mean_, [mu for _, mu, _ in exact], 1e-15)
    assert_close_to_exact(scaler.moving_var_, [s2 for _, _, s2 in exact], 1e-9)
    # unbiased too: s2 * m / (m - 1)
    scaler = BatchNormScaler(unbiased=True).fit(X, sample_weight=w)
    assert_close_to_exact(scaler.moving_var_, [s2 * m / (m - 1) for m, _, s2 in exact], 1e-9)


@pytest.mark.parametrize("mode", OFFSET_MODES)
def test_large_offset_fit_in_small_batches_is_exact(mode):
    rng = np.random.default_rng(3)
    X = 1e9 + rng.normal(size=(40_000, 10))
    X[rng.random(X.shape) < 0.05] = np.nan
    scaler = BatchNormScaler(batch_size=997, **mode).fit(X)
    exact = FastExactScaler(10, **mode)
    for start in range(0, len(X), 997):
        exact.partial_fit(X[start : start + 997])
    assert scaler.n_batches_seen_ == math.ceil(40_000 / 997)
    assert_close_to_exact(scaler.moving_mean_, exact.mean, 1e-15)
    assert_close_to_exact(scaler.moving_var_, exact.var, 1e-9)


def test_river_learn_many_is_wrong_where_we_are_exact():
    """River's StandardScaler.learn_many computes each batch variance as
    E[x^2] - E[x]^2: with x near 1e9, x^2 near 1e18 has a spacing of 128, so
    the variance of N(0, 1) noise is lost (negative, or off by far more than
    itself).  The same stream, the same (cumulative, count-weighted) merge."""
    batches = _offset_stream(seed=4, n_batches=50)
    columns = ["a", "b", "c"]
    river = RiverStandardScaler()
    ours = BatchNormScaler(momentum=None)
    exact = exact_moments(np.vstack(batches))  # River pools the batches exactly
    for X in batches:
        river.learn_many(pd.DataFrame(X, columns=columns))
        ours.partial_fit(X)
    true_var = [s2 for _, _, s2 in exact]
    for j, name in enumerate(columns):
        river_var = river.vars[name]
        assert river_var < 0 or abs(Fraction(river_var) - true_var[j]) > true_var[j] / 2, (
            f"River happens to be right on {name}: {river_var} vs {float(true_var[j])}"
        )
    # Ours averages the batch variances (momentum=None), which is its own
    # contract; against exactly that, it is right to 1e-9.
    exact_stream = ExactScaler(3, momentum=None)
    for X in batches:
        exact_stream.partial_fit(X)
    assert_close_to_exact(ours.moving_var_, exact_stream.var, 1e-9)
    # and a single pooled batch gives the pooled variance River aims at
    assert_close_to_exact(BatchNormScaler().fit(np.vstack(batches)).moving_var_, true_var, 1e-9)


# -- 2. near the float64 limit ----------------------------------------------------------


def _exact_moving_mean(batch_means, momentum, init="debiased"):
    """SPEC section 3 on a sequence of exact batch means."""
    S, W = Fraction(0), Fraction(0)
    rho = None if momentum is None else Fraction(momentum)
    for t, b in enumerate(batch_means, start=1):
        if rho is None:
            alpha = Fraction(1, t)
        elif init == "keras":
            alpha = 1 - rho
        else:
            W = rho * W + (1 - rho)
            alpha = (1 - rho) / W
        S += alpha * (b - S)
    return S


HUGE_STREAMS = [
    # (scale, rows per batch, batches, frequency weight per row): scikit-learn's
    # running sum ``mean * n_samples_seen`` passes 1.8e308 once n_samples_seen
    # exceeds 1.8e308 / scale.
    pytest.param(1e301, 100, 30, 1e4, id="1e301-weighted"),
    pytest.param(1e305, 100, 60, None, id="1e305"),
]


@pytest.mark.parametrize("scale, rows, n_batches, weight", HUGE_STREAMS)
@pytest.mark.parametrize("mode", OFFSET_MODES)
def test_mean_near_float_max_never_overflows_stream(scale, rows, n_batches, weight, mode):
    rng = np.random.default_rng(5)
    distinct = [scale * (1 + 1e-3 * rng.normal(size=(rows, 2))) for _ in range(4)]
    batches = [distinct[t % 4] for t in range(n_batches)]
    w = None if weight is None else np.full(rows, weight)
    ours = BatchNormScaler(**mode)
    sk = StandardScaler()
    for X in batches:
        ours.partial_fit(X, sample_weight=w)
        _quietly(lambda X=X: sk.partial_fit(X, sample_weight=w))
    exact_means = [[mu for _, mu, _ in exact_moments(X, w)] for X in batches]
    expected = [
        _exact_moving_mean([b[j] for b in exact_means], mode.get("momentum"), mode.get("init"))
        for j in range(2)
    ]
    assert np.isfinite(ours.moving_mean_).all()
    assert_close_to_exact(ours.moving_mean_, expected, 1e-12)
    # scikit-learn's StandardScaler.partial_fit overflows (its issue #5602)
    assert np.isinf(sk.mean_).all()


def test_mean_near_float_max_one_big_batch():
    rng = np.random.default_rng(6)
    X = 1e305 * (1 + 1e-3 * rng.normal(size=(40_000, 10)))
    assert X.nbytes > BLOCK_BYTES
    ours = BatchNormScaler().fit(X)
    expected = [mu for _, mu, _ in exact_moments(X)]
    assert np.isfinite(ours.moving_mean_).all()
    assert_close_to_exact(ours.moving_mean_, expected, 1e-12)
    assert np.isinf(_quietly(lambda: StandardScaler().fit(X)).mean_).all()


@pytest.mark.parametrize("mode", OFFSET_MODES)
def test_mixed_sign_values_near_float_max(mode):
    """Values up to 1.7e308 of both signs: the sums overflow, the mean does not,
    and neither does the moving average between batches of opposite means."""
    rng = np.random.default_rng(7)
    big = 1.7e308 * rng.uniform(-0.6, 1.0, size=(40_000, 10))
    assert big.nbytes > BLOCK_BYTES
    expected = [
        _exact_moving_mean([mu], mode.get("momentum"), mode.get("init"))
        for _, mu, _ in exact_moments(big)
    ]
    # (the RuntimeWarning this fit emits is test_no_floating_point_warning_near_float_max)
    fitted = _quietly(lambda: BatchNormScaler(**mode).fit(big))
    assert_close_to_exact(fitted.moving_mean_, expected, 1e-12)
    # batches alternately near +1.6e308 and -1.2e308: b - S overflows
    batches = []
    for t in range(20):
        sign, level = (1.0, 1.6e308) if t % 2 == 0 else (-1.0, 1.2e308)
        batches.append(sign * level * (1 - 1e-3 * rng.random(size=(50, 3))))
    ours = BatchNormScaler(**mode)
    for X in batches:
        ours.partial_fit(X)
    exact_means = [[mu for _, mu, _ in exact_moments(X)] for X in batches]
    expected = [
        _exact_moving_mean([b[j] for b in exact_means], mode.get("momentum"), mode.get("init"))
        for j in range(3)
    ]
    assert np.isfinite(ours.moving_mean_).all()
    assert_close_to_exact(ours.moving_mean_, expected, 1e-12)


def test_no_floating_point_warning_near_float_max():
    """Finite data: the fast path's overflow is expected and handled (the column
    is recomputed), so the user must not see a RuntimeWarning for it."""
    rows = BLOCK_BYTES // (8 * 10)  # one block of 10 features
    X = np.repeat([[0.0] * 10, [1e308] * 10, [-1e308] * 10], rows, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean = BatchNormScaler().fit(X).moving_mean_
    # The exact mean is 0; blocks that mix the three values have inexact
    # means, so the result is 0 to within rounding of the data (eps * 1e308).
    assert np.all(np.abs(mean) <= 4 * np.finfo(np.float64).eps * 1e308)


VARIANCE_SCALES = [
    # (mean, spread): variance spread**2, representable in every case
    pytest.param(1e150, 1e150, id="var~1e300"),
    pytest.param(0.0, 1.2e153, id="var~1.4e306"),  # sum of squares overflows
    pytest.param(1e153, 1e152, id="mean-1e153-var~1e304"),
]


@pytest.mark.parametrize("mean, spread", VARIANCE_SCALES)
def test_huge_variance_is_finite_and_exact(mean, spread):
    rng = np.random.default_rng(8)
    X = mean + spread * rng.normal(size=(40_000, 10))
    assert X.nbytes > BLOCK_BYTES  # the multi-block path
    exact = exact_moments(X)
    assert all(s2 < FLOAT_MAX for _, _, s2 in exact)
    got = BatchNormScaler().fit(X)
    assert np.isfinite(got.moving_var_).all()
    assert_close_to_exact(got.moving_var_, [s2 for _, _, s2 in exact], 1e-9)
    assert_close_to_exact(got.moving_mean_, [mu for _, mu, _ in exact], 1e-12, atol=1e-12)
    # and as a stream of small batches (one block each)
    stream = BatchNormScaler(momentum=None)
    oracle = FastExactScaler(10, momentum=None)
    for start in range(0, 2_000, 50):
        stream.partial_fit(X[start : start + 50])
        oracle.partial_fit(X[start : start + 50])
    assert np.isfinite(stream.moving_var_).all()
    assert_close_to_exact(stream.moving_var_, oracle.var, 1e-9)


def test_variance_at_the_edge_of_the_float64_range():
    """+/-a with a^2 = 1.69e308, just below the largest float64: the variance
    is a^2 and must come out finite."""
    a = 1.3e154
    X = np.array([[a], [-a]] * 500)
    exact = exact_moments(X)[0][2]
    assert exact < FLOAT_MAX
    assert_close_to_exact(BatchNormScaler().fit(X).moving_var_, [exact], 1e-12)


UNREPRESENTABLE = [
    pytest.param([[1e200], [2e200]], id="1e200-spread-1e200"),
    pytest.param([[1e160], [-1e160]], id="+-1e160"),
    pytest.param([[1.001e301], [1e301], [0.999e301]], id="1e301-spread-1e298"),
    pytest.param([[1e301], [1.1e301]], id="1e301-spread-1e300"),
]


@pytest.mark.parametrize("X", UNREPRESENTABLE)
def test_unrepresentable_variance_is_inf(X):
    """Where the exact variance exceeds the float64 range the only honest float
    is +inf (what skbn's own block_moments test expects); 0 calls the feature
    constant and NaN poisons every later moving average."""
    X = np.asarray(X)
    assert exact_moments(X)[0][2] > FLOAT_MAX
    assert BatchNormScaler().fit(X).moving_var_[0] == np.inf


# -- 3. no drift over 10^5 batches ------------------------------------------------------


def test_no_drift_over_100_000_batches():
    """momentum=None over 10^5 batches of 4 rows: the moving mean and variance
    are the exact average of the exact batch statistics to 1e-11.

    The data are dyadic: x = (C_j + K) / 2^20 with integer K, so every batch's
    sums are integers and the exact averages are integer ratios.
    """
    n_batches, rows = 100_000, 4
    rng = np.random.default_rng(9)
    K = rng.integers(-(2**25), 2**25, size=(n_batches, rows, 2), dtype=np.int64)
    C = np.array([1000 * 2**20, -7 * 2**20], dtype=np.int64)
    X = (K + C).astype(np.float64) / 2.0**20
    assert np.array_equal((X * 2.0**20).astype(np.int64) - C, K)  # exactly dyadic

    scaler = BatchNormScaler(momentum=None)
    partial_fit = scaler.partial_fit
    for batch in X:
        partial_fit(batch)
    assert scaler.n_batches_seen_ == n_batches

    s1 = K.sum(axis=1)  # per batch and feature: sum of K, |s1| < 2^27
    s2 = (K * K).sum(axis=1)  # < 2^52
    var_num = rows * s2 - s1 * s1  # batch variance * rows^2 * 2^40, < 2^54
    scale = Fraction(1, 2**20)
    for j in range(2):
        mean = (Fraction(int(C[j])) + Fraction(sum(s1[:, j].tolist()), rows * n_batches)) * scale
        var = Fraction(sum(var_num[:, j].tolist()), rows * rows * n_batches) * scale**2
        assert_close_to_exact(scaler.moving_mean_[j : j + 1], [mean], 1e-11)
        assert_close_to_exact(scaler.moving_var_[j : j + 1], [var], 1e-11)


# -- 4. NaN columns and the caller's data ---------------------------------------------

STREAM_MODES = [
    pytest.param(dict(momentum=None), id="cumulative"),
    pytest.param(dict(momentum=0.9), id="debiased"),
    pytest.param(dict(momentum=0.9, init="keras"), id="keras"),
    pytest.param(dict(momentum=0.0), id="last-batch"),
    pytest.param(dict(momentum=0.8, unbiased=True), id="debiased-unbiased"),
    pytest.param(dict(momentum=None, unbiased=True), id="cumulative-unbiased"),
]


def _stream(seed=0, n_batches=6, n_features=3):
    """Batches of varying size with NaN, on different scales per feature."""
    rng = np.random.default_rng(seed)
    batches = []
    for size in rng.integers(3, 25, size=n_batches):
        X = rng.normal(size=(size, n_features)) * [1.0, 50.0, 0.01][:n_features]
        X += [5.0, -40.0, 1e3][:n_features]
        X[rng.random(X.shape) < 0.2] = np.nan
        batches.append(X)
    return batches


def _per_feature_arrays(scaler):
    n = scaler.n_features_in_
    return {
        k: v.copy()
        for k, v in scaler.__getstate__().items()
        if k.endswith("_") and isinstance(v, np.ndarray) and v.shape == (n,)
    }


@pytest.mark.parametrize("mode", STREAM_MODES)
@pytest.mark.parametrize("container", ["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_all_nan_column_leaves_its_statistics_untouched_bit_for_bit(mode, container, weighted):
    """A feature with no value of positive weight in a batch keeps every one of
    its per-feature attributes bit for bit; the other features update exactly."""
    rng = np.random.default_rng(10)
    params = dict(mode, with_mean=container == "dense")
    wrap = sp.csr_matrix if container == "csr" else np.asarray
    scaler = BatchNormScaler(**params)
    exact = ExactScaler(3, **mode)
    for X in _stream():
        w = rng.random(len(X)) * 2 if weighted else None
        scaler.partial_fit(wrap(X), sample_weight=w)
        exact.partial_fit(X, w)
    before = _per_feature_arrays(scaler)
    assert {"moving_mean_", "moving_var_", "gamma_", "beta_"} <= before.keys()

    bad = rng.normal(size=(6, 3)) + 3.0
    bad[:, 1] = np.nan  # feature 1: all NaN
    w = rng.random(6) + 0.5 if weighted else None
    if weighted:  # feature 2: its only non-NaN value has weight 0
        bad[1:, 2] = np.nan
        w[0] = 0.0
    scaler.partial_fit(wrap(bad), sample_weight=w)
    exact.partial_fit(bad, w)

    after = _per_feature_arrays(scaler)
    untouched = [1, 2] if weighted else [1]
    for key, old in before.items():
        new = after[key]
        assert new.dtype == old.dtype, key
        for j in untouched:
            assert new[j : j + 1].tobytes() == old[j : j + 1].tobytes(), (key, j)
    assert after["moving_mean_"][0] != before["moving_mean_"][0]
    assert_close_to_exact(scaler.moving_mean_, exact.mean, 1e-12)
    assert_close_to_exact(scaler.moving_var_, exact.var, 1e-9)


def test_sparse_all_nan_column_with_weights_is_not_updated():
    scaler = BatchNormScaler(momentum=None, with_mean=False).partial_fit(sp.csr_matrix([[1.0]]))
    before = _per_feature_arrays(scaler)
    scaler.partial_fit(sp.csr_matrix(np.full((3, 1), np.nan)), sample_weight=[1.3, 1.3, 1.3])
    after = _per_feature_arrays(scaler)
    for key, old in before.items():
        assert after[key].tobytes() == old.tobytes(), key  # moving_mean_: 1.0 -> 0.5
    assert scaler.n_samples_seen_ == 1


def _copy_of(inp):
    if isinstance(inp, pd.DataFrame):
        return inp.copy(deep=True)
    if sp.issparse(inp):
        return inp.copy()
    if isinstance(inp, np.ndarray):
        return np.array(inp, copy=True, order="K")
    return [list(row) for row in inp]


def _assert_unchanged(inp, snapshot):
    if isinstance(inp, pd.DataFrame):
        pd.testing.assert_frame_equal(inp, snapshot, check_exact=True)
    elif sp.issparse(inp):
        assert inp.format == snapshot.format and inp.dtype == snapshot.dtype
        for part in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(inp, part), getattr(snapshot, part), equal_nan=True)
    elif isinstance(inp, np.ndarray):
        assert (
            inp.dtype == snapshot.dtype and inp.flags.f_contiguous == snapshot.flags.f_contiguous
        )
        assert np.array_equal(inp, snapshot, equal_nan=True)
    else:
        assert np.array_equal(np.array(inp), np.array(snapshot), equal_nan=True)


def _read_only(a):
    """A read-only copy of ``a``, same memory layout."""
    a = np.array(a, copy=True, order="K")
    a.flags.writeable = False
    return a


def _read_only_sparse(a):
    a = a.copy()
    for part in (a.data, a.indices, a.indptr):
        part.flags.writeable = False
    return a


CONTAINERS = {
    "C": lambda X: np.array(X, order="C", copy=True),
    "F": lambda X: np.array(X, order="F", copy=True),
    "read-only C": lambda X: _read_only(np.array(X, order="C")),
    "read-only F": lambda X: _read_only(np.array(X, order="F")),
    "float32": lambda X: X.astype(np.float32),
    "read-only float32": lambda X: _read_only(X.astype(np.float32)),
    "list": lambda X: X.tolist(),
    "DataFrame": lambda X: pd.DataFrame(X, columns=["a", "b", "c"]),
    "DataFrame float32": lambda X: pd.DataFrame(X.astype(np.float32), columns=["a", "b", "c"]),
    "csr": lambda X: sp.csr_matrix(np.nan_to_num(X, nan=0.0)),
    "csc": lambda X: sp.csc_array(np.nan_to_num(X, nan=0.0)),
    "read-only csr": lambda X: _read_only_sparse(sp.csr_matrix(np.nan_to_num(X, nan=0.0))),
    "read-only csc": lambda X: _read_only_sparse(sp.csc_array(np.nan_to_num(X, nan=0.0))),
}
METHODS = ["fit", "partial_fit", "fit_transform", "transform", "inverse_transform"]
WRITES = {"fit_transform", "transform", "inverse_transform"}  # may write when copy=False
# what copy=False may write into (a list cannot be written; read-only must not be)
WRITABLE = {"C", "F", "float32", "DataFrame", "DataFrame float32", "csr", "csc"}


def _copy_params():
    for name in CONTAINERS:
        for method in METHODS:
            for copy in (True, False):
                yield pytest.param(name, method, copy, id=f"{name}-{method}-{copy}")


@pytest.mark.parametrize("container, method, copy", list(_copy_params()))
def test_inputs_never_modified_unless_copy_false(container, method, copy):
    """fit, partial_fit, fit_transform, transform and inverse_transform leave X and
    sample_weight as they were (read-only inputs included), unless copy=False
    lets a transform write into X; and the result is right either way."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 3)) * [1.0, 3.0, 0.5] + [2.0, -1.0, 4.0]
    X[rng.random(X.shape) < 0.1] = np.nan
    is_sparse = container.endswith(("csr", "csc"))
    params = dict(copy=copy, with_mean=not is_sparse)
    reference_data = CONTAINERS[container](X)
    dense = reference_data.toarray() if is_sparse else np.asarray(reference_data, dtype=np.float64)

    w = _read_only(rng.random(40) + 0.5) if container.startswith("read-only") else None
    w_before = None if w is None else w.copy()
    scaler = BatchNormScaler(**params)
    if method in ("transform", "inverse_transform"):
        scaler.fit(CONTAINERS[container](X), sample_weight=w)
    inp = CONTAINERS[container](X)
    snapshot = _copy_of(inp)
    if method in ("fit", "partial_fit", "fit_transform"):
        out = getattr(scaler, method)(inp, sample_weight=w)
    else:
        out = getattr(scaler, method)(inp)

    if copy or method not in WRITES or container not in WRITABLE:
        _assert_unchanged(inp, snapshot)
    if w is not None:
        assert not w.flags.writeable
        _assert_unchanged(w, w_before)

    # the result equals the same computation on a fresh float64 copy
    ref = BatchNormScaler(with_mean=not is_sparse).fit(dense, sample_weight=w)
    np.testing.assert_allclose(scaler.moving_mean_, ref.moving_mean_, rtol=1e-12, atol=1e-12)
    if method != "fit" and method != "partial_fit":
        expected = getattr(ref, method if method != "fit_transform" else "transform")(dense)
        got = out.toarray() if sp.issparse(out) else np.asarray(out)
        tol = 1e-5 if "float32" in container else 1e-12
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


# -- 5. bad input: a clear error, and nothing lost --------------------------------------
#
# REFUSALS is every refused input tried.  Each case is tried in the middle of a
# stream (after three good batches): the call must raise the given type with
# a message matching ``match``, leave every fitted attribute bit for bit as it
# was, and the stream must then go on exactly as one that never saw it.
# ``docs/refusals.md`` is generated from this list by running it.

FIRST = "partial_fit (first batch)"
UNFITTED = ("transform (unfitted)", "inverse_transform (unfitted)")
FRESH = (FIRST, *UNFITTED)  # methods called on a scaler that has seen nothing
COLUMNS = ["a", "b", "c"]


def _good():
    return np.arange(12.0).reshape(4, 3) / 7


def _with(value, where=(1, 2), dtype=np.float64):
    X = _good().astype(dtype)
    X[where] = value
    return X


def _csr_with(value):
    X = sp.csr_matrix(_good())
    X.data[4] = value
    return X


@dataclass(frozen=True)
class Refusal:
    """One refused input: ``X`` / ``sample_weight`` (callables) passed to each of
    ``methods`` after ``params`` were set on a scaler built with ``config``."""

    name: str
    methods: tuple
    error: type
    match: str
    X: object = _good
    sample_weight: object = None
    params: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    frame: bool = False  # the stream is DataFrames with columns a, b, c
    setup: object = None  # applied to the fitted scaler (and its reference)
    bug: str | None = None  # not refused as it should be: an expected failure


DATA = ("fit", "partial_fit", "transform", "inverse_transform")
STREAMED = ("partial_fit", "transform", "inverse_transform")
FITS = ("fit", "partial_fit")
PARAMS = ("fit", "partial_fit", FIRST)
INF = r"infinity in feature\(s\) \[{}\].*accepts NaN .* but not \+/-inf"
SPARSE = dict(with_mean=False)
SPARSE_METHODS = ("fit", "partial_fit", FIRST, "transform", "inverse_transform")


def _param(name, value, methods=PARAMS):
    match = rf"The '{name}' parameter of BatchNormScaler must be"
    return Refusal(f"{name}={value!r}", methods, ValueError, match, params={name: value})


def _set_gamma_zero(scaler):
    scaler.gamma_ = np.array([1.0, 0.0, 2.0])


def _set_beta_nonzero(scaler):
    scaler.beta_ = np.array([0.0, 0.5, 0.0])


REFUSALS = [
    # values
    Refusal("+inf", DATA, ValueError, INF.format(2), X=lambda: _with(np.inf)),
    Refusal("-inf", DATA, ValueError, INF.format(0), X=lambda: _with(-np.inf, (0, 0))),
    Refusal(
        "inf in float32 data",
        DATA,
        ValueError,
        INF.format(2),
        X=lambda: _with(np.inf, dtype=np.float32),
    ),
    Refusal(
        "inf in a DataFrame column",
        DATA,
        ValueError,
        INF.format("'b'"),
        X=lambda: pd.DataFrame(_with(np.inf, (0, 1)), columns=COLUMNS),
        frame=True,
    ),
    Refusal(
        "inf in a sparse matrix",
        SPARSE_METHODS,
        ValueError,
        INF.format(2),
        X=lambda: _csr_with(np.inf),
        config=SPARSE,
    ),
    # shapes
    Refusal(
        "fewer features",
        STREAMED,
        ValueError,
        "X has 2 features, but .* expecting 3",
        X=lambda: np.ones((4, 2)),
    ),
    Refusal(
        "more features",
        STREAMED,
        ValueError,
        "X has 4 features, but .* expecting 3",
        X=lambda: np.ones((4, 4)),
    ),
    Refusal(
        "1-d array",
        DATA + (FIRST,),
        ValueError,
        "Expected 2D array, got 1D array",
        X=lambda: np.ones(3),
    ),
    Refusal(
        "3-d array",
        DATA + (FIRST,),
        ValueError,
        "Found array with dim 3",
        X=lambda: np.ones((4, 3, 1)),
    ),
    Refusal("scalar", DATA + (FIRST,), ValueError, "Expected 2D array, got scalar", X=lambda: 1.0),
    Refusal("None", DATA + (FIRST,), ValueError, "Expected 2D array", X=lambda: None),
    Refusal(
        "empty batch (0 rows)",
        DATA + (FIRST,),
        ValueError,
        r"0 sample\(s\) \(shape=\(0, 3\)\)",
        X=lambda: np.ones((0, 3)),
    ),
    Refusal(
        "no features (0 columns)",
        DATA + (FIRST,),
        ValueError,
        r"0 feature\(s\)",
        X=lambda: np.ones((4, 0)),
    ),
    Refusal(
        "ragged nested list",
        DATA + (FIRST,),
        ValueError,
        "inhomogeneous shape",
        X=lambda: [[1.0, 2.0, 3.0], [1.0]],
    ),
    # types
    Refusal(
        "strings",
        DATA + (FIRST,),
        ValueError,
        "could not convert string to float",
        X=lambda: np.array([["a", "b", "c"]]),
    ),
    Refusal(
        "complex",
        DATA + (FIRST,),
        ValueError,
        "Complex data not supported",
        X=lambda: np.ones((1, 3)) + 1j,
    ),
    Refusal(
        "object (not numbers)",
        DATA + (FIRST,),
        TypeError,
        r"float\(\) argument",
        X=lambda: np.array([[object(), 1.0, 2.0]], dtype=object),
    ),
    Refusal(
        "a string column in a DataFrame",
        DATA,
        ValueError,
        "could not convert string to float: 'x'",
        X=lambda: pd.DataFrame({"a": [1.0], "b": ["x"], "c": [2.0]}),
        frame=True,
    ),
    # feature names (the stream is DataFrames with columns a, b, c)
    Refusal(
        "renamed DataFrame column",
        STREAMED,
        ValueError,
        "feature names should match(.|\n)*unseen at fit time:\n- d(.|\n)*missing:\n- b",
        X=lambda: pd.DataFrame(_good(), columns=["a", "d", "c"]),
        frame=True,
    ),
    Refusal(
        "reordered DataFrame columns",
        STREAMED,
        ValueError,
        "must be in the same order",
        X=lambda: pd.DataFrame(_good(), columns=COLUMNS)[["c", "a", "b"]],
        frame=True,
    ),
    Refusal(
        "extra DataFrame column",
        STREAMED,
        ValueError,
        "unseen at fit time:\n- d",
        X=lambda: pd.DataFrame(_good(), columns=COLUMNS).assign(d=1.0),
        frame=True,
    ),
    Refusal(
        "missing DataFrame column",
        STREAMED,
        ValueError,
        "missing:\n- c",
        X=lambda: pd.DataFrame(_good(), columns=COLUMNS)[["a", "b"]],
        frame=True,
    ),
    # sample weights
    Refusal(
        "negative sample_weight",
        FITS + (FIRST,),
        ValueError,
        "Negative values .*sample_weight",
        sample_weight=lambda: [1.0, -1.0, 1.0, 1.0],
    ),
    Refusal(
        "negative scalar sample_weight",
        FITS,
        ValueError,
        "Negative values .*sample_weight",
        sample_weight=lambda: -2.0,
    ),
    Refusal(
        "NaN sample_weight",
        FITS + (FIRST,),
        ValueError,
        "sample_weight contains NaN or inf",
        sample_weight=lambda: [1.0, np.nan, 1.0, 1.0],
    ),
    Refusal(
        "+inf sample_weight",
        FITS,
        ValueError,
        "sample_weight contains NaN or infinity",
        sample_weight=lambda: [1.0, np.inf, 1.0, 1.0],
    ),
    Refusal(
        "-inf sample_weight",
        FITS,
        ValueError,
        "sample_weight contains NaN or infinity",
        sample_weight=lambda: [1.0, 1.0, -np.inf, 1.0],
    ),
    Refusal(
        "too few sample weights",
        FITS + (FIRST,),
        ValueError,
        r"sample_weight has shape \(2,\), but X has 4 samples",
        sample_weight=lambda: [1.0, 1.0],
    ),
    Refusal(
        "too many sample weights",
        FITS,
        ValueError,
        r"sample_weight has shape \(5,\), but X has 4 samples",
        sample_weight=lambda: np.ones(5),
    ),
    Refusal(
        "2-d sample_weight",
        FITS,
        ValueError,
        r"shape \(4, 1\).*pass a 1-d array",
        sample_weight=lambda: np.ones((4, 1)),
    ),
    Refusal(
        "string sample_weight",
        FITS,
        TypeError,
        "could not convert it to float64",
        sample_weight=lambda: ["a"] * 4,
    ),
    Refusal(
        "complex sample_weight (list)",
        FITS,
        TypeError,
        "sample_weight is complex",
        sample_weight=lambda: [1.0, 1.0, 1j, 1.0],
    ),
    Refusal(
        "complex sample_weight (ndarray)",
        FITS,
        TypeError,
        "sample_weight",
        sample_weight=lambda: np.ones(4) + 1j,
    ),
    Refusal(
        "all sample weights zero (fit)",
        ("fit",),
        ValueError,
        "at least one non-zero",
        sample_weight=lambda: np.zeros(4),
    ),
    # parameters, each refused by fit and partial_fit (also mid-stream, after set_params)
    _param("momentum", 1.0),
    _param("momentum", 1),
    _param("momentum", -0.1),
    _param("momentum", "fast"),
    _param("momentum", float("nan")),
    _param("epsilon", -1e-3),
    _param("epsilon", float("nan")),
    _param("epsilon", float("inf")),
    _param("epsilon", None),
    _param("init", "x"),
    _param("batch_size", 0),
    _param("batch_size", -1),
    _param("batch_size", 1.5),
    _param("n_jobs", "a"),
    _param("n_jobs", 1.5),
    _param("unbiased", "yes"),
    _param("center", None),
    _param("scale", None),
    _param("with_mean", "no"),
    _param("copy", "x"),
    # gamma and beta are read (and checked) when fitting starts: by fit and by
    # the first partial_fit; later partial_fit calls do not use them
    _param("gamma", "a", methods=("fit", FIRST)),
    _param("beta", None, methods=("fit", FIRST)),
    Refusal(
        "gamma of the wrong length",
        ("fit", FIRST),
        ValueError,
        r"gamma must be a scalar or an array of shape \(n_features,\) = \(3,\); got .*\(2,\)",
        params=dict(gamma=[1.0, 2.0]),
    ),
    Refusal(
        "beta of the wrong length",
        ("fit", FIRST),
        ValueError,
        r"beta must be .* \(3,\); got shape \(4,\)",
        params=dict(beta=[0.0] * 4),
    ),
    Refusal(
        "2-d gamma",
        ("fit", FIRST),
        ValueError,
        r"got shape \(3, 1\)",
        params=dict(gamma=np.ones((3, 1))),
    ),
    Refusal(
        "NaN in gamma",
        ("fit", FIRST),
        ValueError,
        "gamma must be finite",
        params=dict(gamma=[1.0, np.nan, 1.0]),
    ),
    Refusal(
        "inf in beta", ("fit", FIRST), ValueError, "beta must be finite", params=dict(beta=np.inf)
    ),
    # sparse input
    Refusal(
        "sparse with with_mean=True",
        ("fit", "partial_fit", FIRST, "transform", "inverse_transform"),
        ValueError,
        "Cannot center sparse matrices.*with_mean=False",
        X=lambda: sp.csr_matrix(_good()),
    ),
    Refusal(
        "sparse with a nonzero beta",
        SPARSE_METHODS,
        ValueError,
        "Cannot add a nonzero beta_ offset to sparse matrices.*center=False",
        X=lambda: sp.csc_array(_good()),
        config=dict(with_mean=False, beta=[0.0, 0.5, 0.0]),
    ),
    Refusal(
        "sparse after a nonzero beta_ was assigned",
        STREAMED,
        ValueError,
        "Cannot add a nonzero beta_ offset",
        X=lambda: sp.csr_matrix(_good()),
        config=SPARSE,
        setup=_set_beta_nonzero,
    ),
    # transforming
    Refusal(
        "inverse_transform with gamma_ == 0",
        ("inverse_transform",),
        ValueError,
        r"Cannot invert the transform: gamma_ is 0 for feature\(s\) \[1\]",
        setup=_set_gamma_zero,
    ),
    Refusal(
        "inverse_transform with gamma_ == 0 (named)",
        ("inverse_transform",),
        ValueError,
        r"gamma_ is 0 for feature\(s\) \['b'\]",
        X=lambda: pd.DataFrame(_good(), columns=COLUMNS),
        frame=True,
        setup=_set_gamma_zero,
    ),
    Refusal("transform before fit", UNFITTED, NotFittedError, "is not fitted yet"),
]


def _wrap(case, X):
    return pd.DataFrame(X, columns=COLUMNS) if case.frame else X


def _head_and_tail(case):
    batches = [_wrap(case, X) for X in _stream(seed=12)]
    return batches[:3], batches[3:]


def _scaler_mid_stream(case, method):
    """A scaler after three good batches (a fresh one for FRESH methods)."""
    scaler = BatchNormScaler(**case.config)
    if method in FRESH:
        return scaler
    head, _ = _head_and_tail(case)
    for X in head:
        scaler.partial_fit(X)
    if case.setup is not None:
        case.setup(scaler)
    return scaler


def _call(scaler, method, case):
    X = case.X()
    w = None if case.sample_weight is None else case.sample_weight()
    name = method.split()[0]
    if name in ("fit", "partial_fit"):
        return getattr(scaler, name)(X, sample_weight=w)
    return getattr(scaler, name)(X)


def _refusal_params():
    for case in REFUSALS:
        marks = ()
        if case.bug:
            marks = (pytest.mark.xfail(strict=True, reason=f"bug: {case.bug}"),)
        for method in case.methods:
            yield pytest.param(case, method, marks=marks, id=f"{case.name} | {method}")


@pytest.mark.parametrize("case, method", list(_refusal_params()))
def test_refused_input_loses_nothing(case, method):
    scaler = _scaler_mid_stream(case, method)
    defaults = {k: scaler.get_params()[k] for k in case.params}
    before = _state(scaler)
    scaler.set_params(**case.params)
    with pytest.raises(case.error, match=case.match):
        _call(scaler, method, case)
    assert_same_state(_state(scaler), before)
    if method in FRESH:
        assert before == {}  # still unfitted

    # the stream goes on exactly as one that never saw the bad input
    scaler.set_params(**defaults)
    reference = _scaler_mid_stream(case, method)
    _, tail = _head_and_tail(case)
    for X in tail:
        scaler.partial_fit(X)
        reference.partial_fit(X)
    assert_same_state(_state(scaler), _state(reference))
    np.testing.assert_array_equal(scaler.transform(tail[-1]), reference.transform(tail[-1]))


def _doc_cell(text: str) -> str:
    """A message as one cell of the table in docs/refusals.md."""
    return text.strip().replace("|", "\\|").replace("\n", "<br>")


def _without_set_order(text: str) -> str:
    """``{'debiased', 'keras'}`` prints in hash order: compare sets as ``{...}``."""
    return re.sub(r"\{[^}]*\}", "{...}", text)


def _raised(case, method):
    """The exception a user sees for ``case`` and ``method``."""
    scaler = _scaler_mid_stream(case, method)
    scaler.set_params(**case.params)
    try:
        _call(scaler, method, case)
    except Exception as exc:  # noqa: BLE001 - the catalogue records whatever is raised
        return exc
    return None


@pytest.mark.parametrize("case", [c for c in REFUSALS if not c.bug], ids=lambda c: c.name)
def test_refusals_doc_shows_the_real_messages(case):
    """docs/refusals.md has a row for every case and method, with the type and
    the first line of the message that the code raises today."""
    doc = (Path(__file__).parent.parent / "docs" / "refusals.md").read_text()
    rows = []  # (methods, exception, message) of the rows of this case
    for line in doc.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0] == case.name:
            rows.append((cells[1].split(", "), cells[2], cells[3]))
    assert rows, f"no row for {case.name!r} in docs/refusals.md"
    for method in case.methods:
        exc = _raised(case, method)
        first_line = _without_set_order(_doc_cell(str(exc).splitlines()[0]))
        assert any(
            method in methods
            and f"`{type(exc).__name__}`" == kind
            and first_line in _without_set_order(message)
            for methods, kind, message in rows
        ), (case.name, method, type(exc).__name__, first_line)


def test_refusal_catalogue_size():
    """Every case has its own name, and docs/refusals.md states the real counts."""
    assert len({case.name for case in REFUSALS}) == len(REFUSALS) >= 60
    pairs = sum(len(case.methods) for case in REFUSALS)
    doc = " ".join((Path(__file__).parent.parent / "docs" / "refusals.md").read_text().split())
    assert f"{len(REFUSALS)} distinct bad inputs are tried, {pairs} input-and-method pairs" in doc


def test_n_jobs_zero_is_refused_by_fit_or_works_everywhere():
    """Whether an n_jobs is valid must not depend on the size of the data."""
    try:
        scaler = BatchNormScaler(n_jobs=0).fit(_good())
    except ValueError:
        return  # refused where parameters are checked: consistent
    big = np.random.default_rng(13).normal(size=(40_000, 3))
    assert big.nbytes > BLOCK_BYTES
    scaler.transform(big)  # accepted by fit: then it must transform any X
    scaler.fit(big)


# -- 6. save and resume -----------------------------------------------------------------

TRUSTED = ["skbn._scaler.BatchNormScaler"]

RESUME_CONFIGS = [
    pytest.param(dict(momentum=None), id="cumulative"),
    pytest.param(dict(momentum=0.9), id="debiased-0.9"),
    pytest.param(dict(momentum=0.9, init="keras"), id="keras-0.9"),
    pytest.param(dict(momentum=None, unbiased=True), id="cumulative-unbiased"),
    pytest.param(dict(momentum=0.99, unbiased=True, init="keras"), id="keras-unbiased"),
    pytest.param(dict(momentum=0.9, gamma=[1.0, 2.0, 0.5], beta=-1.0, epsilon=0.0), id="affine"),
]


def _save_load(scaler, how, path):
    if how == "pickle":
        return pickle.loads(pickle.dumps(scaler))
    if how == "joblib":
        joblib.dump(scaler, path / "scaler.joblib")
        return joblib.load(path / "scaler.joblib")
    sio.dump(scaler, path / "scaler.skops")
    assert sio.get_untrusted_types(file=path / "scaler.skops") == TRUSTED
    return sio.load(path / "scaler.skops", trusted=TRUSTED)


def _resume_stream(data):
    rng = np.random.default_rng(14)
    batches = _stream(seed=15, n_batches=10)
    weights = [None] * len(batches)
    if data == "nan+weights":
        weights = [rng.random(len(X)) * 3 for X in batches]
        weights[2][:] = 0.0  # a batch that updates nothing
    if data == "frame":
        batches = [pd.DataFrame(X, columns=COLUMNS) for X in batches]
    if data == "no-nan":
        batches = [np.nan_to_num(X, nan=1.0) for X in batches]
    return batches, weights


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
@pytest.mark.parametrize("config", RESUME_CONFIGS)
@pytest.mark.parametrize("data", ["no-nan", "nan+weights", "frame"])
def test_saved_mid_stream_resumes_bit_for_bit(how, config, data, tmp_path):
    batches, weights = _resume_stream(data)
    never_stopped = BatchNormScaler(**config)
    saved = BatchNormScaler(**config)
    for X, w in zip(batches[:5], weights[:5], strict=True):
        never_stopped.partial_fit(X, sample_weight=w)
        saved.partial_fit(X, sample_weight=w)
    resumed = _save_load(saved, how, tmp_path)
    assert type(resumed) is BatchNormScaler and resumed is not saved
    assert_same_state(_state(resumed), _state(never_stopped))
    for X, w in zip(batches[5:], weights[5:], strict=True):
        never_stopped.partial_fit(X, sample_weight=w)
        resumed.partial_fit(X, sample_weight=w)
    assert_same_state(_state(resumed), _state(never_stopped))
    assert resumed.get_params() == never_stopped.get_params()
    np.testing.assert_array_equal(
        resumed.transform(batches[-1]), never_stopped.transform(batches[-1])
    )


@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(momentum=np.float64(0.9), epsilon=np.float32(0.01), batch_size=np.int64(3)),
        dict(gamma=np.array([1.0, 2.0, 3.0]), beta=[0.0, 1.0, 2.0], n_jobs=2),
        dict(momentum=None, unbiased=True, with_mean=False, center=False),
    ],
    ids=["default", "numpy-scalars", "array-affine", "sparse-ready"],
)
@pytest.mark.parametrize("how", ["fit", "partial_fit", "fit-frame-weighted", "sparse"])
def test_skops_needs_trust_for_the_scaler_only(config, how, tmp_path):
    """Nothing but skbn's own class needs trust: no NumPy, pandas or private type."""
    X = _stream(seed=16)[0]
    scaler = BatchNormScaler(**config)
    if how == "fit":
        scaler.fit(X)
    elif how == "partial_fit":
        scaler.partial_fit(X).partial_fit(X[:2])
    elif how == "fit-frame-weighted":
        scaler.fit(pd.DataFrame(X, columns=COLUMNS), sample_weight=np.arange(len(X)) % 3)
    else:
        scaler.set_params(with_mean=False, center=False).partial_fit(
            sp.csr_matrix(np.nan_to_num(X, nan=0.0))
        )
    scaler.transform(X if how != "fit-frame-weighted" else pd.DataFrame(X, columns=COLUMNS))
    path = tmp_path / "scaler.skops"
    sio.dump(scaler, path)
    assert sio.get_untrusted_types(file=path) == TRUSTED
    loaded = sio.load(path, trusted=TRUSTED)
    assert_same_state(_state(loaded), _state(scaler))
    # and loading without trusting it is refused
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)


def test_state_carries_a_format_version():
    scaler = BatchNormScaler().fit(_good())
    state = scaler.__getstate__()
    assert isinstance(state["_skbn_format"], int) and state["_skbn_format"] >= 1
    assert "_skbn_format" not in vars(pickle.loads(pickle.dumps(scaler)))


def _restore(state):
    new = BatchNormScaler.__new__(BatchNormScaler)
    new.__setstate__(state)
    return new


@pytest.mark.parametrize("found", [999, 2**31, None], ids=["999", "2**31", "missing"])
def test_unreadable_state_format_raises_a_clear_error(found):
    state = BatchNormScaler().fit(_good()).__getstate__()
    if found is None:
        del state["_skbn_format"]
    else:
        state["_skbn_format"] = found
    with pytest.raises(ValueError, match=rf"state format {found}.*cannot read.*refit"):
        _restore(state)
    # the current format loads
    assert _restore(BatchNormScaler().fit(_good()).__getstate__()).n_features_in_ == 3


@pytest.mark.parametrize("found", [0, -1, "1"])
def test_unknown_older_or_malformed_state_format_raises_a_clear_error(found):
    state = BatchNormScaler().fit(_good()).__getstate__()
    state["_skbn_format"] = found
    with pytest.raises(ValueError, match="state format"):
        _restore(state)


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_file_from_a_newer_format_is_refused_on_load(how, tmp_path, monkeypatch):
    """A file written by a (simulated) future skbn with state format 2."""
    import skbn._scaler

    scaler = BatchNormScaler().fit(_good())
    current = skbn._scaler._STATE_FORMAT
    monkeypatch.setattr(skbn._scaler, "_STATE_FORMAT", current + 1)
    if how == "pickle":
        payload = pickle.dumps(scaler)
    elif how == "joblib":
        joblib.dump(scaler, tmp_path / "s.joblib")
    else:
        sio.dump(scaler, tmp_path / "s.skops")
    monkeypatch.setattr(skbn._scaler, "_STATE_FORMAT", current)
    with pytest.raises(ValueError, match=rf"saved in state format {current + 1}, which"):
        if how == "pickle":
            pickle.loads(payload)
        elif how == "joblib":
            joblib.load(tmp_path / "s.joblib")
        else:
            sio.load(tmp_path / "s.skops", trusted=TRUSTED)


@pytest.mark.parametrize("scale", [2.0**-1000, 2.0**-1074], ids=["2**-1000", "subnormal"])
def test_tiny_weights_are_scale_free(scale):
    """Frequency weights mean the same multiplied by any power of two."""
    X = np.array([[1.5e-20, 1.5], [0.0, 0.0], [3e-20, 3.0]])
    w = np.array([1.0, 1.0, 2.0])
    ref = BatchNormScaler().fit(X, sample_weight=w)
    tiny = BatchNormScaler().fit(X, sample_weight=w * scale)
    np.testing.assert_allclose(tiny.moving_mean_, ref.moving_mean_, rtol=1e-12)
    np.testing.assert_allclose(tiny.moving_var_, ref.moving_var_, rtol=1e-12)


def test_float32_transform_of_a_tiny_spread():
    X = np.array([[2e-39], [0.0]], dtype=np.float32)  # representable in float32
    scaler = BatchNormScaler(epsilon=0.0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = scaler.transform(X)
    np.testing.assert_allclose(out, scaler.transform(X.astype(np.float64)), rtol=1e-6)


def refusals_table() -> str:
    """The table of docs/refusals.md, made by running every case of REFUSALS
    (``python tests/test_reliability.py`` prints it)."""
    lines = ["| Bad input | Method(s) | Exception | Message |", "|---|---|---|---|"]
    for case in REFUSALS:
        rows = {}  # (exception, message) -> methods, so equal outcomes share a row
        for method in case.methods:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                exc = _raised(case, method)
            if exc is not None:
                outcome = (f"`{type(exc).__name__}`", str(exc))
            elif caught:
                outcome = (
                    f"none (accepted, {caught[0].category.__name__})",
                    str(caught[0].message),
                )
            else:
                outcome = ("none (accepted)", "")
            rows.setdefault(outcome, []).append(method)
        for (kind, message), methods in rows.items():
            lines.append(f"| {case.name} | {', '.join(methods)} | {kind} | {_doc_cell(message)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(refusals_table())
