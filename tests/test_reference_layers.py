"""Differential tests of ``BatchNormScaler`` against the real layers (SPEC section 7).

Every expected number is computed here by running the real
``torch.nn.BatchNorm1d`` or ``keras.layers.BatchNormalization`` on the same
batches that the scaler sees; no reference value is copied into this file.

* PyTorch runs in float64, so its ``running_mean`` / ``running_var`` must agree
  with ``BatchNormScaler(init="keras", unbiased=True)`` to about 1e-10.
* Keras rounds its inputs to float32 and computes, and stores, its moving
  statistics in float32, so it agrees with ``BatchNormScaler(init="keras")``
  only to float32 tolerance (derived at ``_keras_tolerance``).

``tests/conftest.py`` sets ``KERAS_BACKEND=torch`` before Keras is imported.
"""

import keras
import numpy as np
import pytest
import torch

from skbn import BatchNormScaler

# Keras's torch backend converts with ``np.array(tensor)``, and this NumPy warns
# that torch's ``Tensor.__array__`` takes no ``copy`` keyword: not skbn's concern.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

N_FEATURES = 4

# Two kinds of data: standard normal, and data with a nonzero offset and a
# different scale in every feature (scales from 0.01 to 30, with
# |offset| / scale up to 100, so the moving mean is far from its start at 0 and
# the moving variance far from its start at 1).
CENTERED = (np.zeros(N_FEATURES), np.ones(N_FEATURES))
SHIFTED = (np.array([-40.0, 5.0, 3.0e3, 0.25]), np.array([0.5, 20.0, 30.0, 1.0e-2]))
DATA = pytest.mark.parametrize("offset, scale", [CENTERED, SHIFTED], ids=["centered", "shifted"])

# Keras computes the batch variance as E[x^2] - E[x]^2 in float32 (see
# keras/src/backend/torch/nn.py, ``moments``), whose error is about
# eps32 * (offset^2 + scale^2): with |offset| / scale = 100 that would be ~1e-3
# of the variance, a Keras rounding artefact, not a property of the update.  The
# Keras data therefore keeps |offset| / scale <= 2.
KERAS_SHIFTED = (np.array([-1.0, 5.0, 30.0, 0.25]), np.array([0.5, 20.0, 30.0, 0.25]))
KERAS_DATA = pytest.mark.parametrize(
    "offset, scale", [CENTERED, KERAS_SHIFTED], ids=["centered", "shifted"]
)


def batch_stream(seed, n_batches, offset, scale, min_size=2, max_size=64):
    """Batches of random sizes in ``[min_size, max_size]`` whose distribution moves.

    The batch center swings within ``offset +/- scale`` and the spread within
    ``[0.5, 1.5] * scale``, so the moving statistics keep moving instead of
    settling, while ``|x|`` stays of the order of ``magnitude(offset, scale)``.
    """
    rng = np.random.default_rng(seed)
    batches = []
    for t in range(n_batches):
        n = int(rng.integers(min_size, max_size, endpoint=True))
        center = offset + scale * np.sin(0.3 * t)
        spread = scale * (1.0 + 0.5 * np.sin(t))
        batches.append(center + spread * rng.standard_normal((n, offset.size)))
    return batches


def magnitude(offset, scale):
    """Per feature, a bound on the root mean square of ``batch_stream``'s values."""
    return np.abs(offset) + 2.0 * scale


def assert_close(actual, desired, *, rtol, atol, what):
    """``|actual - desired| <= atol + rtol * |desired|``, ``atol`` per feature."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, what
    excess = np.abs(actual - desired) - (atol + rtol * np.abs(desired))
    assert np.all(excess <= 0), (
        f"{what}: skbn {actual.tolist()} vs reference {desired.tolist()}, "
        f"|difference| {np.abs(actual - desired).tolist()}"
    )


def test_keras_runs_on_the_torch_backend():
    assert keras.backend.backend() == "torch"


# -- PyTorch BatchNorm1d, float64 ------------------------------------------------

# Both sides compute the same quantities in float64, in different orders: the
# batch mean and variance differ by a few ulps (eps64 ~ 2.2e-16) of the data's
# magnitude (and its square), which the moving averages carry along without
# growing.  1e-10 (SPEC section 7) leaves a wide margin over rounding, and is
# far below any formula error (m / (m - 1) with m <= 64 is 1.6% or more).
TORCH_RTOL = 1e-10


def _torch_atol(offset, scale):
    size = magnitude(offset, scale)
    return TORCH_RTOL * size, TORCH_RTOL * size**2


def make_torch_bn(momentum, epsilon=1e-3, n_features=N_FEATURES):
    """The PyTorch layer that ``BatchNormScaler(momentum=momentum)`` follows."""
    return torch.nn.BatchNorm1d(
        n_features,
        eps=epsilon,
        momentum=None if momentum is None else 1.0 - momentum,
        affine=True,
        dtype=torch.float64,
    )


def torch_train_step(module, batch):
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float64)))


def assert_matches_torch(scaler, module, offset, scale, what):
    atol_mean, atol_var = _torch_atol(offset, scale)
    assert_close(
        scaler.moving_mean_,
        module.running_mean.numpy(),
        rtol=TORCH_RTOL,
        atol=atol_mean,
        what=f"{what}: moving_mean_ vs running_mean",
    )
    assert_close(
        scaler.moving_var_,
        module.running_var.numpy(),
        rtol=TORCH_RTOL,
        atol=atol_var,
        what=f"{what}: moving_var_ vs running_var",
    )
    assert scaler.n_batches_seen_ == int(module.num_batches_tracked), what


@DATA
@pytest.mark.parametrize("momentum", [0.9, 0.99, 0.5, 0.0, None])
def test_running_stats_match_torch_batchnorm1d(momentum, offset, scale):
    """``init="keras", unbiased=True`` is ``BatchNorm1d(momentum=1 - momentum)``.

    ``momentum=None`` is PyTorch's cumulative moving average on both sides.
    Checked after every batch of a stream of random sizes 2..64.
    """
    module = make_torch_bn(momentum)
    scaler = BatchNormScaler(momentum=momentum, init="keras", unbiased=True)
    batches = batch_stream(0, 40, offset, scale)
    for t, batch in enumerate(batches):
        torch_train_step(module, batch)
        scaler.partial_fit(batch)
        assert_matches_torch(scaler, module, offset, scale, f"batch {t + 1}")
    assert scaler.n_samples_seen_ == sum(len(batch) for batch in batches)


@pytest.mark.parametrize("momentum", [0.9, None])
def test_fit_with_batch_size_matches_torch_on_the_slices(momentum):
    """``fit(X)`` with ``batch_size`` is PyTorch fed the consecutive slices of ``X``."""
    offset, scale = SHIFTED
    X = batch_stream(1, 1, offset, scale, min_size=203, max_size=203)[0]
    batch_size = 25  # 8 slices of 25 and a last one of 3 (PyTorch needs >= 2)
    module = make_torch_bn(momentum)
    for start in range(0, len(X), batch_size):
        torch_train_step(module, X[start : start + batch_size])
    scaler = BatchNormScaler(
        momentum=momentum, init="keras", unbiased=True, batch_size=batch_size
    ).fit(X)
    assert scaler.n_batches_seen_ == 9
    assert_matches_torch(scaler, module, offset, scale, "fit(batch_size=25)")


@pytest.mark.parametrize("momentum", [0.9, None])
def test_frequency_weights_match_torch_on_repeated_rows(momentum):
    """An integer ``sample_weight`` is that many copies of the row, zero included.

    With ``unbiased=True`` the Bessel factor uses ``m = sum(w)``, the number of
    rows PyTorch sees once the rows are repeated.
    """
    offset, scale = SHIFTED
    rng = np.random.default_rng(2)
    module = make_torch_bn(momentum)
    scaler = BatchNormScaler(momentum=momentum, init="keras", unbiased=True)
    for t, batch in enumerate(batch_stream(3, 25, offset, scale)):
        w = rng.integers(0, 4, size=len(batch))
        w[:2] = 1  # PyTorch needs at least two rows
        torch_train_step(module, np.repeat(batch, w, axis=0))
        scaler.partial_fit(batch, sample_weight=w.astype(np.float64))
        assert_matches_torch(scaler, module, offset, scale, f"weighted batch {t + 1}")


@pytest.mark.parametrize("epsilon", [1e-3, 1e-5, 0.0])
@pytest.mark.parametrize("affine", ["default", "arrays"])
def test_transform_matches_torch_eval_output(epsilon, affine):
    """``transform`` is the eval-mode output of the PyTorch layer, in float64."""
    offset, scale = SHIFTED
    if affine == "default":
        gamma, beta = 1.0, 0.0
    else:
        gamma, beta = np.array([2.5, -0.5, 0.0, 1e-3]), np.array([-1.0, 3.0, 7.5, 0.0])
    module = make_torch_bn(0.9)  # PyTorch trains only with eps > 0; eps is not used there
    scaler = BatchNormScaler(
        momentum=0.9, epsilon=epsilon, init="keras", unbiased=True, gamma=gamma, beta=beta
    )
    for batch in batch_stream(4, 30, offset, scale):
        torch_train_step(module, batch)
        scaler.partial_fit(batch)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(scaler.gamma_))
        module.bias.copy_(torch.tensor(scaler.beta_))
    module.eps = epsilon
    module.eval()
    X = batch_stream(5, 1, offset, scale, min_size=100, max_size=100)[0]
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).numpy()
    # Outputs are O(|gamma| * |x - mean| / sd + |beta|); the statistics differ
    # by ~1e-10 relative, so the outputs differ by ~1e-10 of that size.
    size = np.abs(scaler.gamma_) * 10.0 + np.abs(scaler.beta_) + 1.0
    Xt = scaler.transform(X)
    assert Xt.dtype == np.float64
    assert_close(Xt, expected, rtol=1e-10, atol=1e-10 * size, what="transform vs eval")


# -- Keras BatchNormalization, float32 -------------------------------------------


def _keras_tolerance(offset, scale):
    """Per-feature ``(rtol, atol_mean, atol_var)`` for Keras's float32 statistics.

    With eps32 = 2^-23 ~ 1.2e-7: Keras's batch mean is off by a few eps32 of
    the data's magnitude ``M`` (``magnitude``, the root mean square of x), and
    its E[x^2] - E[x]^2 batch variance by a few eps32 of ``M^2``, however small
    the variance (two nearly equal rows give a large relative error).  Each
    float32 update ``moving * momentum + batch * (1 - momentum)`` adds ~eps32
    of the moving value, and earlier errors shrink by ``momentum`` per step, so
    at most 1 / (1 - momentum) <= 100 of them add up (and, being of both
    signs, they mostly cancel).  1e-5 (~80 eps32) of those magnitudes bounds
    all of this (the observed worst case is ~2% of it), while a wrong formula
    (a missing or extra m / (m - 1), a wrong momentum) is off by 1e-3 or more.
    """
    rtol = 1e-5
    size = magnitude(offset, scale)
    return rtol, rtol * size, rtol * size**2


def keras_weight(x):
    """A Keras variable or tensor as a float64 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def keras_train_step(layer, batch32):
    layer(batch32, training=True)


@KERAS_DATA
@pytest.mark.parametrize("momentum", [0.99, 0.9, 0.5, 0.0])
def test_moving_stats_match_keras_batchnormalization(momentum, offset, scale):
    """``init="keras", unbiased=False`` is ``keras.layers.BatchNormalization``.

    The scaler gets the float32-rounded batches that Keras computes with;
    compared after every batch of a stream of random sizes 1..64 (Keras takes
    a batch of one row: its variance is 0).
    """
    rtol, atol_mean, atol_var = _keras_tolerance(offset, scale)
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3)
    scaler = BatchNormScaler(momentum=momentum, init="keras", unbiased=False)
    for t, batch in enumerate(batch_stream(6, 40, offset, scale, min_size=1)):
        batch32 = batch.astype(np.float32)
        keras_train_step(layer, batch32)
        scaler.partial_fit(batch32.astype(np.float64))
        assert_close(
            scaler.moving_mean_,
            keras_weight(layer.moving_mean),
            rtol=rtol,
            atol=atol_mean,
            what=f"batch {t + 1}: moving_mean_ vs moving_mean",
        )
        assert_close(
            scaler.moving_var_,
            keras_weight(layer.moving_variance),
            rtol=rtol,
            atol=atol_var,
            what=f"batch {t + 1}: moving_var_ vs moving_variance",
        )


@pytest.mark.parametrize("epsilon", [1e-3, 1e-5])
def test_transform_matches_keras_inference_output(epsilon):
    """``transform`` is ``layer(x, training=False)``, with non-trivial gamma and beta."""
    offset, scale = KERAS_SHIFTED
    rtol, _, _ = _keras_tolerance(offset, scale)
    layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=epsilon)
    scaler = BatchNormScaler(momentum=0.9, epsilon=epsilon, init="keras")
    for batch in batch_stream(7, 30, offset, scale):
        batch32 = batch.astype(np.float32)
        keras_train_step(layer, batch32)
        scaler.partial_fit(batch32)
    layer.gamma.assign(np.array([2.5, -0.5, 0.0, 1e-3], dtype=np.float32))
    layer.beta.assign(np.array([-1.0, 3.0, 7.5, 0.0], dtype=np.float32))
    scaler.gamma_ = keras_weight(layer.gamma)
    scaler.beta_ = keras_weight(layer.beta)

    X32 = batch_stream(8, 1, offset, scale, min_size=100, max_size=100)[0].astype(np.float32)
    expected = keras_weight(layer(X32, training=False))
    # y = gamma (x - mean) / sd + beta with |x - mean| / sd up to ~10 here: the
    # statistics' errors of ``_keras_tolerance`` (1e-5 M in the mean, 1e-5 M^2
    # in the variance) move y by at most ~1e-5 |gamma| (M / sd + 10 M^2 / sd^2),
    # and float32 arithmetic adds a few eps32 of |y|.
    sd = np.sqrt(keras_weight(layer.moving_variance) + epsilon)
    M = magnitude(offset, scale)
    size = np.abs(scaler.gamma_) * (10.0 + M / sd + 10.0 * M**2 / sd**2) + np.abs(scaler.beta_)
    Xt = scaler.transform(X32)
    assert Xt.dtype == np.float32
    assert_close(Xt, expected, rtol=rtol, atol=rtol * size, what="transform vs inference")

    # With the layer's own float32 statistics loaded, only float32 rounding in
    # the two affine maps is left: a few eps32 of |gamma| * 10 + |beta|.
    scaler.moving_mean_ = keras_weight(layer.moving_mean)
    scaler.moving_var_ = keras_weight(layer.moving_variance)
    size = np.abs(scaler.gamma_) * 10.0 + np.abs(scaler.beta_)
    assert_close(scaler.transform(X32), expected, rtol=1e-6, atol=1e-6 * size, what="same weights")


def test_debiased_init_starts_at_the_first_batch_and_converges_to_keras():
    """The default ``init="debiased"`` differs from Keras early, not in the long run.

    Writing ``b_k`` for the batch statistics and ``S_0`` for the start (mean 0,
    variance 1), the Keras update gives after ``t`` batches::

        K_t = m^t S_0 + sum_k (1 - m) m^(t - k) b_k

    and ``init="debiased"`` divides the same sum by its weight
    ``W_t = 1 - m^t``, so ``D_t = sum_k (1 - m) m^(t - k) b_k / (1 - m^t)`` and

        K_t = m^t S_0 + (1 - m^t) D_t,   i.e.  K_t - D_t = m^t (S_0 - D_t).

    So ``D_1 = b_1`` exactly while ``K_1 = m S_0 + (1 - m) b_1``, and the gap
    shrinks as ``m^t``: with m = 0.5, 0.5^40 ~ 1e-12, far below float32.
    """
    momentum = 0.5
    offset, scale = KERAS_SHIFTED
    rtol, atol_mean, atol_var = _keras_tolerance(offset, scale)
    layer = keras.layers.BatchNormalization(momentum=momentum)
    scaler = BatchNormScaler(momentum=momentum)  # init="debiased", unbiased=False
    for t, batch in enumerate(batch_stream(9, 40, offset, scale), start=1):
        batch64 = batch.astype(np.float32).astype(np.float64)
        keras_train_step(layer, batch64.astype(np.float32))
        scaler.partial_fit(batch64)
        keras_mean = keras_weight(layer.moving_mean)
        keras_var = keras_weight(layer.moving_variance)
        if t == 1:
            # The first batch's statistics, exactly (up to the summation order).
            np.testing.assert_allclose(scaler.moving_mean_, batch64.mean(axis=0), rtol=1e-14)
            np.testing.assert_allclose(scaler.moving_var_, batch64.var(axis=0), rtol=1e-13)
        if t <= 3:
            # Keras is still pulled towards its start: far from the scaler.
            assert np.all(np.abs(keras_mean - scaler.moving_mean_) > 0.05 * np.abs(offset))
            assert np.all(np.abs(keras_var - scaler.moving_var_) > 0.05 * scale**2)
        # The identity K_t = m^t S_0 + (1 - m^t) D_t, against the real layer.
        weight = momentum**t
        assert_close(
            weight * 0.0 + (1.0 - weight) * scaler.moving_mean_,
            keras_mean,
            rtol=rtol,
            atol=atol_mean,
            what=f"batch {t}: mean identity",
        )
        assert_close(
            weight * 1.0 + (1.0 - weight) * scaler.moving_var_,
            keras_var,
            rtol=rtol,
            atol=atol_var,
            what=f"batch {t}: variance identity",
        )
    # After 40 batches the debiased statistics are the Keras ones themselves.
    assert_close(scaler.moving_mean_, keras_mean, rtol=rtol, atol=atol_mean, what="mean, t=40")
    assert_close(scaler.moving_var_, keras_var, rtol=rtol, atol=atol_var, what="var, t=40")
