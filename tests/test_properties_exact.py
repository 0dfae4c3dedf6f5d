"""Property-based tests of the numerical guarantees of issue 11 (hypothesis).

Random widths, columns with offsets up to 1e300 and spreads down to a few
ulps of the offset (or none: constant columns), NaN patterns, and sample
weights spanning 600 decades (1e-300 .. 1e300), fed as one batch or as a
stream, in every averaging mode.  The properties:

* a column's statistics are those of the same column fitted alone (and in
  another memory layout): they depend on that column's values only;
* the statistics are the exact ones (``tests/exact.py``, Fractions) to within
  a few rounding errors of the data: with ``u = eps * max|x|`` over the
  column, the mean within ``K u`` and the variance within what moving every
  datum by ``K u`` can do, ``2 K u R + (K u)^2`` (``R`` the column's range);
* a constant column has mean == its value bit for bit and variance 0, so
  ``transform`` gives exactly 0 there, at every finite magnitude;
* finite data never give an inf or NaN mean; the variance is inf only where
  the exact variance is beyond float64; ``transform`` is finite wherever the
  divisor is.

The examples are derandomized (the same on every run) and few enough that
the file runs in seconds.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from exact import ExactScaler, exact_batch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skbn import BatchNormScaler

EPS = np.finfo(np.float64).eps
FMAX = float(np.finfo(np.float64).max)
K = 16  # "a few rounding errors of the data"
TINY = Fraction(5e-324)  # the spacing of subnormal numbers

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MODES = st.sampled_from(
    [
        dict(momentum="pooled"),
        dict(momentum=None),
        dict(momentum=0.0),
        dict(momentum=0.5, init="debiased"),
        dict(momentum=0.99, init="debiased"),
        dict(momentum=0.9, init="keras"),
        dict(momentum=1 - 1e-9, init="debiased"),
    ]
)


@st.composite
def magnitudes(draw, low=-300, high=300):
    """0, or +-10**e with e uniform in [low, high] (so 1e-300 .. 1e300)."""
    if draw(st.integers(0, 5)) == 0:
        return 0.0
    exponent = draw(st.floats(low, high, allow_nan=False))
    return draw(st.sampled_from([-1.0, 1.0])) * 10.0**exponent


@st.composite
def column_specs(draw):
    """(offset, spread) of one column: spread 0 (constant), a few ulps of the
    offset, or a fraction 1e-15 .. 1 of it (or of 1 when the offset is 0)."""
    offset = draw(magnitudes())
    kind = draw(st.sampled_from(["constant", "ulps", "relative"]))
    if kind == "constant":
        return offset, 0.0
    if kind == "ulps":
        unit = np.spacing(abs(offset)) if offset else 1.0
        return offset, float(draw(st.integers(1, 8))) * unit
    base = abs(offset) if offset else 1.0
    return offset, base * 10.0 ** draw(st.floats(-15, 0))


@st.composite
def batch_weights(draw, rows, decades):
    """Weights of one batch: 0, or 10**e with e in [b, b + decades] for a
    batch exponent b, so the weights of a stream span 1e-300 .. 1e300 and
    those of one batch ``decades`` decades."""
    base = draw(st.floats(-300, 300 - decades))
    w = np.array([10.0 ** draw(st.floats(base, base + decades)) for _ in range(rows)])
    w[draw(hnp.arrays(np.bool_, rows))] = 0.0
    return w


@st.composite
def streams(draw, max_features=5, max_batches=3, weights=True, nan=True, decades=600):
    """(batches, specs): batches of (X, sample_weight); column j is offset_j +
    spread_j * z with small integers z, NaN where the pattern says."""
    specs = [draw(column_specs()) for _ in range(draw(st.integers(1, max_features)))]
    offsets = np.array([o for o, _ in specs])
    spreads = np.array([s for _, s in specs])
    weighted = weights and draw(st.booleans())
    batches = []
    for _ in range(draw(st.integers(1, max_batches))):
        rows = draw(st.integers(1, 10))
        z = draw(hnp.arrays(np.int64, (rows, len(specs)), elements=st.integers(-4, 4)))
        X = offsets + spreads * z
        if nan:
            X[draw(hnp.arrays(np.bool_, X.shape))] = np.nan
        w = None
        if weighted:
            w = draw(batch_weights(rows, decades))
        batches.append((X, w))
    return batches, specs


def _fit(batches, params, columns=None, order="C"):
    scaler = BatchNormScaler(epsilon=0.0, **params)
    for X, w in batches:
        X = X if columns is None else X[:, columns]
        scaler.partial_fit(np.asarray(X, order=order), sample_weight=w)
    return scaler


def _column(batches, j):
    """Column j's values that carry a positive weight, and their weights."""
    values, weights = [], []
    for X, w in batches:
        w = np.ones(len(X)) if w is None else w
        keep = ~np.isnan(X[:, j]) & (w > 0)
        values.extend(X[keep, j])
        weights.extend(w[keep])
    return np.array(values), np.array(weights)


def _exact_moving(batches, params, n_features):
    """The exact moving statistics of the stream (tests/exact.py)."""
    if params["momentum"] == "pooled":
        X = np.vstack([X for X, _ in batches])
        ws = [np.ones(len(X)) if w is None else w for X, w in batches]
        stats = exact_batch(X, np.concatenate(ws))
        return [None if s is None else (s[1], s[2]) for s in stats]
    oracle = ExactScaler(n_features, params["momentum"], False, params.get("init", "debiased"))
    seen = [False] * n_features
    for X, w in batches:
        batch = exact_batch(X, w)
        seen = [s or b is not None for s, b in zip(seen, batch, strict=True)]
        oracle.apply(batch)
    return [(oracle.mean[j], oracle.var[j]) if seen[j] else None for j in range(n_features)]


def assert_within_data_rounding(got_mean, got_var, exact_mean, exact_var, values):
    """The float statistics are the exact ones to K rounding errors of the data."""
    u = Fraction(EPS) * Fraction(float(np.max(np.abs(values))))
    spread = Fraction(float(values.max())) - Fraction(float(values.min()))
    mean_err = abs(Fraction(float(got_mean)) - exact_mean)
    assert mean_err <= K * u + K * Fraction(EPS) * abs(exact_mean) + K * TINY, (
        f"mean {got_mean!r} vs exact {float(exact_mean)!r}: error {float(mean_err)!r}, "
        f"u = {float(u)!r}"
    )
    if exact_var > Fraction(FMAX) * (1 - Fraction(1, 10**9)):
        # beyond float64 (or at its edge): inf is the right answer, or the top
        assert np.isinf(got_var) or Fraction(float(got_var)) >= exact_var * (
            1 - Fraction(1, 10**9)
        )
        return
    assert np.isfinite(got_var), (got_var, float(exact_var))
    var_err = abs(Fraction(float(got_var)) - exact_var)
    # (plus a few subnormal spacings: a variance below 2.2e-308 is rounded to them)
    bound = 2 * K * u * spread + (K * u) ** 2 + K * Fraction(EPS) * exact_var + K * TINY
    assert var_err <= bound, (
        f"var {got_var!r} vs exact {float(exact_var)!r}: error {float(var_err)!r}, "
        f"bound {float(bound)!r}"
    )


@SETTINGS
@given(data=streams(), params=MODES, unbiased=st.booleans())
def test_a_column_alone_has_the_statistics_it_has_among_others(data, params, unbiased):
    batches, specs = data
    params = dict(params, unbiased=unbiased)
    together = _fit(batches, params)
    fortran = _fit(batches, params, order="F")
    np.testing.assert_array_equal(fortran.moving_mean_, together.moving_mean_)
    np.testing.assert_array_equal(fortran.moving_var_, together.moving_var_)
    for j in range(len(specs)):
        alone = _fit(batches, params, columns=[j])
        np.testing.assert_array_equal(alone.moving_mean_, together.moving_mean_[[j]])
        np.testing.assert_array_equal(alone.moving_var_, together.moving_var_[[j]])
        np.testing.assert_array_equal(
            np.broadcast_to(alone.n_samples_seen_, (1,)),
            np.broadcast_to(together.n_samples_seen_, (len(specs),))[[j]],
        )


@SETTINGS
@given(data=streams(), params=MODES)
def test_statistics_are_exact_to_a_few_rounding_errors_of_the_data(data, params):
    batches, specs = data
    scaler = _fit(batches, params)
    exact = _exact_moving(batches, params, len(specs))
    for j, stats in enumerate(exact):
        values, _ = _column(batches, j)
        if stats is None:  # never a value of positive weight: never updated
            assert values.size == 0
            continue
        if values.size == 0:  # (keras init: the starting values, moved by nothing)
            continue
        assert_within_data_rounding(
            scaler.moving_mean_[j], scaler.moving_var_[j], stats[0], stats[1], values
        )


SPARSE_FORMATS = st.sampled_from([sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array])


@SETTINGS
@given(data=streams(), params=MODES, fmt=SPARSE_FORMATS, duplicates=st.booleans())
def test_the_sparse_path_is_exact_too(data, params, fmt, duplicates):
    """CSR/CSC input (with_mean=False), canonical or with duplicate entries
    (which SciPy sums), against the same oracle: the values are the matrix's."""
    batches, specs = data
    scaler = BatchNormScaler(epsilon=0.0, with_mean=False, **params)
    for X, w in batches:
        M = fmt(X)
        if duplicates:  # every stored entry split in two halves: the same matrix
            coo = sp.coo_matrix(X)
            halves = np.concatenate([coo.data / 2, coo.data - coo.data / 2])
            M = fmt(
                sp.coo_matrix((halves, (np.tile(coo.row, 2), np.tile(coo.col, 2))), shape=X.shape)
            )
            np.testing.assert_array_equal(M.toarray(), fmt(X).toarray())
        scaler.partial_fit(M, sample_weight=w)
    exact = _exact_moving(batches, params, len(specs))
    for j, stats in enumerate(exact):
        values, _ = _column(batches, j)
        if stats is None or values.size == 0:
            continue
        assert_within_data_rounding(
            scaler.moving_mean_[j], scaler.moving_var_[j], stats[0], stats[1], values
        )


@pytest.mark.parametrize("tiny, huge", [(1e-124, 1e200), (5e-324, 1.0), (1e-300, 1e300)])
@pytest.mark.parametrize("momentum", ["pooled", None, 0.0, 0.99])
def test_a_tiny_weight_beside_a_huge_one_counts(tiny, huge, momentum):
    """Every positive weight counts, however small beside the others (issue 11,
    point 3): the only value of feature 0 has the tiny weight, 324 to 600
    decades below the other row's (a rescaling by the largest weight of the
    batch would underflow it to 0 and leave feature 0 untouched)."""
    X = np.array([[-1.0, 5.0], [np.nan, 7.0]])
    scaler = BatchNormScaler(epsilon=0.0, momentum=momentum).fit(X, sample_weight=[tiny, huge])
    assert scaler.moving_mean_[0] == -1.0
    assert scaler.moving_var_[0] == 0.0
    assert scaler.n_samples_seen_[0] == tiny


@SETTINGS
@given(
    data=streams(max_features=1),
    params=MODES.filter(lambda p: p.get("init") != "keras"),
    value=magnitudes(-323, 308).filter(np.isfinite),
    width=st.integers(1, 4),
)
def test_a_constant_column_is_exact(data, params, value, width):
    """Every value equal (NaN aside): mean == value bit for bit, variance 0,
    divisor 1 (epsilon=0), transform exactly 0; next to any other columns.
    (init="keras" starts at mean 0 and only moves toward the value.)"""
    batches, _ = data
    const = []
    for X, w in batches:
        C = np.where(np.isnan(X), np.nan, value)
        const.append((np.hstack([C] * width + [X]), w))
    scaler = _fit(const, params)
    seen = _column(const, 0)[0].size > 0
    for j in range(width):
        if not seen:
            assert (scaler.moving_mean_[j], scaler.moving_var_[j]) == (0.0, 1.0)
            continue
        assert scaler.moving_mean_[j] == value, (scaler.moving_mean_[j], value)
        assert scaler.moving_var_[j] == 0.0
        assert scaler.scale_[j] == 1.0
    if seen:
        X = const[-1][0]
        Y = scaler.transform(X)
        keep = ~np.isnan(X[:, :width])
        assert np.all(Y[:, :width][keep] == 0.0)


HUGE = st.just(0.0) | st.builds(
    lambda sign, v: sign * v, st.sampled_from([-1.0, 1.0]), st.floats(1e300, FMAX)
)


def _huge_stream(X, params, weights, data):
    w = None
    if weights:
        w = data.draw(hnp.arrays(np.float64, len(X), elements=st.floats(1e-3, 1e3)))
    half = len(X) // 2 or 1
    batches = [(X[:half], None if w is None else w[:half])]
    if len(X) > half:
        batches.append((X[half:], None if w is None else w[half:]))
    return batches


HUGE_MATRICES = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 12), st.integers(1, 3)), elements=HUGE
)


@SETTINGS
@given(X=HUGE_MATRICES, params=MODES, weights=st.booleans(), data=st.data())
def test_finite_data_never_give_an_infinite_mean(X, params, weights, data):
    """Values up to +-float64 max: the mean is finite and never NaN; the
    variance is inf only where the exact one is beyond float64."""
    batches = _huge_stream(X, params, weights, data)
    scaler = _fit(batches, params)
    assert np.all(np.isfinite(scaler.moving_mean_))
    assert not np.any(np.isnan(scaler.moving_var_))
    exact = _exact_moving(batches, params, X.shape[1])
    top = Fraction(FMAX)
    for j, (_, exact_var) in enumerate(exact):
        if np.isinf(scaler.moving_var_[j]):
            assert exact_var > top * (1 - Fraction(1, 10**9)), float(exact_var)
        elif exact_var < top * (1 - Fraction(1, 10**9)):
            assert np.isfinite(scaler.moving_var_[j])


@settings(SETTINGS, report_multiple_bugs=False)
@given(X=HUGE_MATRICES, params=MODES, weights=st.booleans(), data=st.data())
def test_transform_of_finite_data_is_finite_where_the_divisor_is(X, params, weights, data):
    """Issue 11, point 2: transform of finite data with a finite divisor is
    finite (the divisor of an infinite variance is not 1)."""
    scaler = _fit(_huge_stream(X, params, weights, data), params)
    Y = scaler.transform(X)
    finite = np.isfinite(scaler.scale_)
    assert np.all(np.isfinite(Y[:, finite]))
    assert np.all(scaler.scale_[np.isinf(scaler.moving_var_)] != 1.0)
