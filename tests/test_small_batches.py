"""The small-batch paths of ``partial_fit`` and ``transform`` (a C-contiguous
float64 ndarray of at most ``BLOCK_ROWS`` rows) give exactly the bits of the
full path, and hand everything they do not recognise to it.

The full path is reached with the same values in another layout (a
Fortran-ordered copy, or a list), which the fast paths never take.  Every
test runs twice: with the compiled kernels (:mod:`skbn._kernels`), and with
NumPy alone, as skbn runs where it was installed without a C compiler.
"""

import numpy as np
import pytest

import skbn._scaler
from skbn import BatchNormScaler, _affine, _averaging, _stats


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def kernels(request, monkeypatch):
    """The compiled kernels, or none (NumPy does the same work)."""
    if request.param == "numpy":
        monkeypatch.setattr(_stats, "_kernels", None)
        monkeypatch.setattr(_averaging, "_plain_step", None)
        monkeypatch.setattr(_affine, "_affine_map", None)
    return request.param


MODES = [0.9, 0.0, None, "pooled"]


def _batches(rng, n_batches=6, rows=37, features=5):
    offsets = 10.0 ** rng.integers(-3, 6, size=features)
    return [rng.normal(size=(rows, features)) * offsets + offsets for _ in range(n_batches)]


def _fitted(batches, layout, **params):
    scaler = BatchNormScaler(**params)
    for X in batches:
        scaler.partial_fit(layout(X))
    return scaler


def _same_state(a, b):
    for name in ("moving_mean_", "moving_var_", "_samples_per_feature_", "_pooled_var_",
                 "_mean_residual_", "_mean_updates_", "_var_updates_"):  # fmt: skip
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.n_samples_seen_ == b.n_samples_seen_
    assert a.n_batches_seen_ == b.n_batches_seen_


@pytest.mark.parametrize("momentum", MODES)
@pytest.mark.parametrize("init", ["debiased", "keras"])
def test_partial_fit_fast_path_same_bits(momentum, init):
    rng = np.random.default_rng(0)
    batches = _batches(rng)
    fast = _fitted(batches, np.ascontiguousarray, momentum=momentum, init=init)
    full = _fitted(batches, np.asfortranarray, momentum=momentum, init=init)
    listed = _fitted(batches, lambda X: X.tolist(), momentum=momentum, init=init)
    _same_state(fast, full)
    _same_state(fast, listed)


def test_fast_path_is_taken_and_left(monkeypatch):
    """The plain path runs for a plain batch; a constant column, NaN or inf
    send the batch to the full path, which pins, skips or refuses them."""
    taken = []  # what the fast paths returned (None: not taken)

    def recorded(function):
        def record(*args, **kwargs):
            taken.append(function(*args, **kwargs))
            return taken[-1]

        return record

    # the compiled step of the whole update, and the fast moments after it
    monkeypatch.setattr(skbn._scaler, "plain_update", recorded(skbn._scaler.plain_update))
    monkeypatch.setattr(_stats, "plain_block_moments", recorded(_stats.plain_block_moments))
    rng = np.random.default_rng(1)
    scaler = BatchNormScaler(momentum=0.5).partial_fit(rng.normal(size=(8, 3)))
    scaler.partial_fit(rng.normal(size=(8, 3)))
    assert taken and taken[-1] is not None

    X = rng.normal(size=(8, 3))
    X[:, 1] = 0.1  # constant: its variance must be exactly 0, its mean 0.1
    first = rng.normal(size=(8, 3))
    reference = BatchNormScaler(momentum=0.0).partial_fit(first)
    reference.partial_fit(np.asfortranarray(X))
    fitted = BatchNormScaler(momentum=0.0).partial_fit(first)
    taken.clear()
    fitted.partial_fit(X)
    assert taken and all(t is None for t in taken)
    assert fitted.moving_var_[1] == 0.0 and fitted.moving_mean_[1] == 0.1
    np.testing.assert_array_equal(fitted.moving_mean_, reference.moving_mean_)

    X[0, 2] = np.nan
    fitted.partial_fit(X)
    assert taken[-1] is None and fitted._samples_per_feature_[2] == 15 + 8

    before = fitted.moving_mean_.copy()
    X[0, 2] = np.inf
    with pytest.raises(ValueError, match="inf"):
        fitted.partial_fit(X)
    np.testing.assert_array_equal(fitted.moving_mean_, before)


@pytest.mark.parametrize(
    "params",
    [{}, {"gamma": [2.0, -1.0, 0.5], "beta": [1.0, 0.0, -3.0]}, {"with_mean": False},
     {"with_std": False}, {"center": False, "scale": False}, {"epsilon": 0.0}],
)  # fmt: skip
def test_transform_fast_path_same_bits(params):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(64, 3)) * [1.0, 1e3, 1e-3] + [5.0, -7.0, 1e6]
    X[3, 1] = np.nan
    scaler = BatchNormScaler(momentum=0.9, **params).fit(X)
    for _ in range(2):  # the second call reuses the cached, tiled coefficients
        Y = scaler.transform(X)
        np.testing.assert_array_equal(Y, scaler.transform(np.asfortranarray(X)))
        assert np.isnan(Y[3, 1]) and Y.flags.c_contiguous and not np.shares_memory(X, Y)
        back = scaler.inverse_transform(Y)
        np.testing.assert_array_equal(back, scaler.inverse_transform(np.asfortranarray(Y)))
    other = scaler.transform(X[:7])  # another batch size
    np.testing.assert_array_equal(other, scaler.transform(np.asfortranarray(X[:7])))


def test_transform_fast_path_refuses_inf_and_keeps_copy_semantics():
    rng = np.random.default_rng(3)
    scaler = BatchNormScaler().fit(rng.normal(size=(16, 2)))
    X = rng.normal(size=(16, 2))
    X[5, 1] = -np.inf
    with pytest.raises(ValueError, match="inf"):
        scaler.transform(X)
    X[5, 1] = 0.0
    kept = X.copy()
    scaler.transform(X)
    np.testing.assert_array_equal(X, kept)  # copy=True: X untouched
    Y = scaler.transform(X, copy=False)  # in place: the full path
    assert np.shares_memory(X, Y)


def test_shared_factor_equals_the_array_factor():
    """The cached per-count factors are the bits of averaging_factor itself."""
    counts = np.arange(1, 3 * _averaging._FACTOR_BLOCK)
    for momentum in (0.0, 0.1, 0.99, 1 - 1e-12, None):
        mode = _averaging.mode_of(momentum)
        for init in ("debiased", "keras"):
            expected = _averaging.averaging_factor(counts, momentum, init)
            got = [_averaging._shared_factor(mode, int(t), momentum, init) for t in counts]
            np.testing.assert_array_equal(np.array(got), expected)


def test_uniform_value():
    assert _averaging.uniform_value(np.array([3, 3, 3])) == 3
    assert _averaging.uniform_value(np.array([3, 3, 4])) is None
    assert _averaging.uniform_value(np.array([2.5])) == 2.5
    assert _averaging.uniform_value(np.array([], dtype=float)) is None


def test_plain_affine_matches_the_blocked_kernel():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 4))
    shift, factor, offset = rng.normal(size=4), rng.random(4) + 0.5, rng.normal(size=4)
    for coefs in [(shift, factor, offset), (None, factor, None), (shift, factor, None)]:
        for inverse in (False, True):
            expected = _affine.affine(X, np.empty_like(X), *coefs, inverse=inverse)
            got = _affine.plain_affine(X, *_affine.tiled(coefs, 50), inverse=inverse)
            np.testing.assert_array_equal(got, expected)
    assert not _affine.plain_coefficients(np.full(4, 2.0**1000), factor, None)
    assert not _affine.plain_coefficients(shift.astype(np.float32), factor, None)
