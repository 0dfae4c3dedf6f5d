"""The pure statistics functions of ``skbn._stats`` against exact arithmetic."""

from fractions import Fraction

import numpy as np
import pytest
from exact import assert_close_to_exact, exact_batch

from skbn import _averaging, _blocks, _stats


def _exact_columns(X, w=None):
    stats = exact_batch(X, w)
    return [s[0] for s in stats], [s[1] for s in stats], [s[2] for s in stats]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_nan", [False, True])
def test_block_moments_match_exact(weighted, with_nan):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(37, 4)) * [1, 10, 1e-3, 5] + [0, -3, 1e4, 7]
    if with_nan:
        X[rng.random(X.shape) < 0.2] = np.nan
    w = rng.integers(0, 4, size=37).astype(float) if weighted else None
    got = _stats.block_moments(X, w)
    m, mu, s2 = _exact_columns(X, w)
    assert_close_to_exact(got.weight, m, 0)
    assert_close_to_exact(got.mean, mu, 1e-14)
    assert_close_to_exact(got.var, s2, 1e-12)


def test_block_moments_empty_column_is_zero_weight():
    X = np.array([[1.0, np.nan], [2.0, np.nan]])
    got = _stats.block_moments(X)
    assert got.weight.tolist() == [2.0, 0.0]
    assert got.mean[1] == 0.0 and got.var[1] == 0.0


def test_merge_equals_whole_exactly_in_theory():
    rng = np.random.default_rng(1)
    X = rng.normal(3, 2, size=(50, 3))
    w = rng.random(50)
    a = _stats.block_moments(X[:20], w[:20])
    b = _stats.block_moments(X[20:], w[20:])
    merged = _stats.merge_moments(a, b)
    m, mu, s2 = _exact_columns(X, w)
    assert_close_to_exact(merged.weight, m, 1e-15)
    assert_close_to_exact(merged.mean, mu, 1e-14)
    assert_close_to_exact(merged.var, s2, 1e-12)


def test_merge_with_empty_side_returns_other_side():
    one = _stats.Moments(np.array([3.0, 0.0]), np.array([1.5, 0.0]), np.array([2.0, 0.0]))
    empty = _stats.Moments(np.array([0.0, 2.0]), np.array([0.0, 4.0]), np.array([0.0, 1.0]))
    merged = _stats.merge_moments(one, empty)
    assert merged.mean.tolist() == [1.5, 4.0]
    assert merged.var.tolist() == [2.0, 1.0]


def test_dense_moments_many_blocks_match_exact():
    rng = np.random.default_rng(2)
    X = rng.normal(1e6, 1.0, size=(301, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    w = rng.random(301)
    got = _stats.dense_moments(X, w, block_rows=16)  # 16 rows a block
    m, mu, s2 = _exact_columns(X, w)
    assert_close_to_exact(got.mean, mu, 1e-15)
    assert_close_to_exact(got.var, s2, 1e-9)


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1])
def test_dense_moments_same_bits_for_every_n_jobs_and_layout(n_jobs):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 7))
    reference = _stats.dense_moments(X, block_rows=73)
    for data in (X, np.asfortranarray(X), np.repeat(X, 2, axis=1)[:, ::2]):
        got = _stats.dense_moments(data, n_jobs=n_jobs, block_rows=73)
        for a, b in zip(got, reference, strict=True):
            np.testing.assert_array_equal(a, b)


def test_huge_values_do_not_overflow():
    # Sums of these values overflow float64; their mean and variance do not.
    X = np.array([[1.7e308], [1.6e308], [1.5e308], [-1.0e308]])
    got = _stats.block_moments(X)
    m, mu, s2 = _exact_columns(X)
    assert np.isfinite(got.mean).all()
    assert_close_to_exact(got.mean, mu, 1e-15)
    assert s2[0] > Fraction(np.finfo(np.float64).max)  # not representable:
    assert got.var[0] == np.inf
    Y = np.full((1000, 1), 1.2e154) + np.arange(1000)[:, None] * 1e151
    got = _stats.dense_moments(Y, block_rows=100)
    m, mu, s2 = _exact_columns(Y)
    assert_close_to_exact(got.mean, mu, 1e-14)
    assert_close_to_exact(got.var, s2, 1e-10)


def test_constant_column_has_exactly_zero_variance():
    X = np.full((999, 2), 0.1)
    X[:, 1] = 1e9 + 0.3
    w = np.random.default_rng(4).random(999)
    for weights in (None, w):
        got = _stats.dense_moments(X, weights, block_rows=100)
        assert got.var.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("momentum", [0.0, 0.1, 0.5, 0.9, 0.99, 0.999999])
def test_debiased_first_step_is_exactly_one(momentum):
    assert _averaging.averaging_factor(np.array([1]), momentum)[0] == 1.0


def test_debiased_factor_matches_weight_recurrence():
    momentum = 0.9
    W, m = Fraction(0), Fraction(momentum)
    for t in range(1, 60):
        W = m * W + (1 - m)
        expected = (1 - m) / W
        got = _averaging.averaging_factor(np.array([t]), momentum)[0]
        assert abs(Fraction(got) - expected) <= Fraction(1e-13) * expected


def test_cumulative_and_keras_factors():
    t = np.arange(1, 6)
    assert _averaging.averaging_factor(t, None).tolist() == [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5]
    assert _averaging.averaging_factor(t, 0.75, "keras").tolist() == [0.25] * 5


def test_move_toward_alpha_one_takes_batch_value_exactly():
    S = np.array([1e20, -3.0])
    b = np.array([1.0, 0.1])
    assert _averaging.move_toward(S, b, np.array([1.0, 1.0])).tolist() == [1.0, 0.1]


def test_move_toward_does_not_overflow():
    S = np.array([-1.5e308])
    b = np.array([1.5e308])
    out = _averaging.move_toward(S, b, np.array([0.5]))
    assert np.isfinite(out).all() and abs(out[0]) < 1e300


def test_unbiased_variance():
    moments = _stats.Moments(np.array([4.0, 1.0, 0.5]), np.zeros(3), np.array([3.0, 0.0, 0.0]))
    out = _stats.unbiased_variance(moments)
    assert out[0] == 4.0 and np.isnan(out[1:]).all()


def test_row_blocks_cover_rows_once():
    blocks = _blocks.row_blocks(1001, 13, block_bytes=8 * 13 * 64)
    covered = np.concatenate([np.arange(1001)[b] for b in blocks])
    np.testing.assert_array_equal(covered, np.arange(1001))
    assert all(b.stop - b.start == 64 for b in blocks[:-1])


def test_overlapping_blas_limits_hold_until_the_last_leaves():
    # The limit is process-wide: a call that leaves while another is still
    # inside must not lift it, and the last to leave restores the original.
    import threading

    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    inside, leave = threading.Event(), threading.Event()

    def second():
        with _blocks.single_threaded_blas():
            inside.set()
            leave.wait()

    thread = threading.Thread(target=second)
    with _blocks.single_threaded_blas():
        thread.start()
        inside.wait()
        leave.set()
        thread.join()  # the second call has left; this one is still inside
        assert set(blas_threads()) == {1}
        assert _blocks._blas_users == 1
    assert blas_threads() == before
    assert _blocks._blas_users == 0
