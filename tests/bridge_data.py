"""Data and tolerances shared by the tests of the layer bridges.

``tests/test_flax.py`` and ``tests/keras_backend_checks.py`` (which runs in a
process of its own per Keras backend) feed the same batches to a scaler and to
a real layer, whose statistics are float32.
"""

import itertools

import numpy as np

from skbn import BatchNormScaler

FLAGS = list(itertools.product([True, False], repeat=3))  # center, scale, with_mean
GAMMA = np.array([2.0, -0.5, 1.5, 0.75])
BETA = np.array([0.25, 3.0, -1.0, 0.0])
OFFSET = np.array([-1.0, 5.0, 30.0, 0.25])
SPREAD = np.array([0.5, 20.0, 30.0, 0.25])
# The data's magnitude: float32 batch moments err by ~1e-7 M (mean) and, as
# E[x^2] - E[x]^2, ~1e-7 M^2 (variance); the tolerances are 1e-5 of that.
M = np.abs(OFFSET) + 2 * SPREAD


def batches(seed, n_batches, min_size=2, max_size=40):
    """Float32 batches of random sizes in ``[min_size, max_size]``."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min_size, max_size, size=n_batches, endpoint=True)
    return [
        (OFFSET + SPREAD * rng.standard_normal((n, OFFSET.size))).astype(np.float32) for n in sizes
    ]


def fitted(center=True, scale=True, with_mean=True, **params):
    """A scaler with ``GAMMA`` / ``BETA`` fitted on ten batches."""
    scaler = BatchNormScaler(
        center=center, scale=scale, with_mean=with_mean, gamma=GAMMA, beta=BETA, **params
    )
    for batch in batches(0, 10):
        scaler.partial_fit(batch)
    return scaler


def assert_float32_close(actual, desired, what=""):
    """float32 rounding of values of magnitude up to ~|gamma| * 10 + |beta|."""
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-5, err_msg=what)


def stats_excess(scaler, mean, var, what=""):
    """How far a layer's ``mean`` / ``var`` are from the scaler's statistics, as
    a fraction of the float32 tolerance; asserts that it is at most 1."""
    worst = 0.0
    for ours, theirs, atol in [
        (scaler.moving_mean_, mean, 1e-5 * M),
        (scaler.moving_var_, var, 1e-5 * M**2),
    ]:
        ratio = np.abs(ours - theirs) / (atol + 1e-5 * np.abs(theirs))
        assert np.all(ratio <= 1), f"{what}: {ours} vs the layer's {theirs}"
        worst = max(worst, float(ratio.max()))
    return worst
