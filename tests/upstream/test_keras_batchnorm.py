"""Keras's BatchNormalization tests, ported to ``BatchNormScaler`` next to the real layer.

Source: ``keras/src/layers/normalization/batch_normalization_test.py`` of
keras-team/keras: the tests of the moving statistics (momentum, masks, the
trainable flag), of the inference output and of the weights.  The original
names are kept; the renorm, regularizer, serialization and float16-autocast
tests are about training features the scaler does not have
(``docs/mapping.md``: "training-time features of the layer, no part of its
statistics") and are not ported.

Every test runs the real ``keras.layers.BatchNormalization`` (the torch
backend, set by ``tests/conftest.py``; the layer computes in float32) and the
scaler side by side with ``init="keras"``, ``unbiased=False`` and the layer's
``momentum`` and ``epsilon``: a ``training=True`` call is ``partial_fit`` on
the ``(N * ..., C)`` rows of the input, ``training=False`` is ``transform``.
A Keras mask is a NaN in the scaler's rows (a missing value).  The
training-mode output (the batch normalized by its own statistics) is
``BatchNormScaler(momentum="pooled", epsilon=...)`` fitted on the batch.
"""

import keras
import numpy as np
import pytest
from keras import layers
from numpy.testing import assert_allclose, assert_array_equal

from skbn import BatchNormScaler

# Keras's torch backend converts with ``np.array(tensor)`` (in get_weights,
# its layer calls), which this NumPy warns about: not skbn's concern.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
    pytest.mark.usefixtures("one_torch_thread"),  # tests/conftest.py
]

RTOL32 = 2e-5  # the layer computes in float32


def to_numpy(x):
    if isinstance(x, keras.Variable):
        x = x.value
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def like_keras(momentum=0.99, epsilon=1e-3, **params):
    """The scaler that follows BatchNormalization(momentum, epsilon) (docs/mapping.md)."""
    return BatchNormScaler(momentum=momentum, epsilon=epsilon, init="keras", **params)


def rows(x, axis=-1, mask=None):
    """The scaler's (N * ..., C) batch of an input normalized along ``axis``.

    ``mask`` (Keras's, of shape ``x.shape[:-1]``) marks the kept positions;
    the others become NaN.
    """
    x = np.array(to_numpy(x))
    if mask is not None:
        keep = np.broadcast_to(np.asarray(mask, dtype=bool)[..., None], x.shape)
        x[~keep] = np.nan
    x = np.moveaxis(x, axis, -1)
    return x.reshape(-1, x.shape[-1])


def back(y, shape, axis=-1):
    """The scaler's rows in the layer's layout."""
    moved = list(shape)
    moved.append(moved.pop(axis))
    return np.moveaxis(y.reshape(moved), -1, axis)


def train_output(x, axis=-1, epsilon=1e-3):
    """A training-mode output: the batch normalized by its own (biased) statistics."""
    X = rows(x, axis)
    scaler = BatchNormScaler(momentum="pooled", epsilon=epsilon).fit(X)
    return back(scaler.transform(X), np.shape(x), axis)


def assert_same_state(scaler, layer, rtol=RTOL32):
    mean, var = to_numpy(layer.moving_mean), to_numpy(layer.moving_variance)
    scale = max(1.0, np.abs(mean).max())
    assert_allclose(scaler.moving_mean_, mean, rtol=rtol, atol=rtol * scale)
    assert_allclose(scaler.moving_var_, var, rtol=rtol, atol=rtol * scale**2)


def test_bn_basics():
    # (the original runs Keras's generic layer test; the port checks what the
    # scaler maps: the weights, in Keras's order, with and without center/scale)
    x = np.random.default_rng(0).normal(size=(2, 3))
    for center, scale, n_trainable in [(True, True, 2), (False, False, 0)]:
        layer = layers.BatchNormalization(center=center, scale=scale)
        out = layer(x, training=True)
        assert tuple(out.shape) == (2, 3)
        assert len(layer.trainable_weights) == n_trainable
        assert len(layer.non_trainable_weights) == 2
        scaler = like_keras(center=center, scale=scale).partial_fit(x)
        ours = scaler.get_weights()
        theirs = layer.get_weights()
        assert len(ours) == len(theirs) == n_trainable + 2
        for a, b in zip(ours, theirs, strict=True):
            assert_allclose(a, b, rtol=RTOL32, atol=1e-6)
        assert_allclose(train_output(x), to_numpy(out), rtol=RTOL32, atol=1e-5)


@pytest.mark.parametrize("axis", (-1, 1))
@pytest.mark.parametrize("input_shape", ((5, 2, 3), (5, 3, 3, 2)))
@pytest.mark.parametrize("moving_mean_initializer", ("zeros", "ones"))
@pytest.mark.parametrize("moving_variance_initializer", ("zeros", "ones"))
def test_correctness(axis, input_shape, moving_mean_initializer, moving_variance_initializer):
    # Training
    layer = layers.BatchNormalization(
        axis=axis,
        momentum=0,
        moving_mean_initializer=moving_mean_initializer,
        moving_variance_initializer=moving_variance_initializer,
    )
    # the scaler starts at zeros/ones (init="keras"); with momentum 0 the start
    # is forgotten by the first batch, so every initializer pair compares
    scaler = like_keras(momentum=0.0)
    # Random data centered on 5.0, variance 10.0
    x = np.random.default_rng(4).normal(loc=5.0, scale=10.0, size=input_shape)
    out = x
    for _ in range(3):
        scaler.partial_fit(rows(out, axis))
        out = layer(out, training=True)
        assert_same_state(scaler, layer)

    # Assert the normalization is correct.
    broadcast_shape = [1] * len(input_shape)
    broadcast_shape[axis] = input_shape[axis]
    out = to_numpy(out)
    out = out - np.reshape(to_numpy(layer.beta), broadcast_shape)
    out = out / np.reshape(to_numpy(layer.gamma), broadcast_shape)

    reduction_axes = list(range(len(input_shape)))
    del reduction_axes[axis]
    reduction_axes = tuple(reduction_axes)
    assert_allclose(np.mean(out, axis=reduction_axes), 0.0, atol=1e-3)
    assert_allclose(np.std(out, axis=reduction_axes), 1.0, atol=1e-3)
    assert_allclose(to_numpy(layer.moving_mean), 0.0, atol=1e-3)
    assert_allclose(to_numpy(layer.moving_variance), 1.0, atol=1e-3)
    assert_allclose(scaler.moving_mean_, 0.0, atol=1e-3)
    assert_allclose(scaler.moving_var_, 1.0, atol=1e-3)

    # Inference done before training shouldn't match.
    inference_out = to_numpy(layer(x, training=False))
    ours_inference = back(scaler.transform(rows(x, axis)), input_shape, axis)
    assert_allclose(ours_inference, inference_out, rtol=RTOL32, atol=1e-4)
    training_out = to_numpy(layer(x, training=True))
    scaler.partial_fit(rows(x, axis))
    assert not np.allclose(inference_out, training_out)
    assert_allclose(train_output(x, axis), training_out, rtol=RTOL32, atol=1e-4)

    # Since momentum is zero, inference after training should match.
    training_out = to_numpy(layer(x, training=True))
    inference_out = to_numpy(layer(x, training=False))
    assert_allclose(inference_out, training_out, rtol=1e-5, atol=1e-5)
    ours_inference = back(scaler.transform(rows(x, axis)), input_shape, axis)
    assert_allclose(ours_inference, training_out, rtol=RTOL32, atol=1e-4)

    # Masked result with no training should not differ (inference uses no
    # statistics of the batch, the scaler's transform takes no mask)
    x[:, 1, :] = 0.0
    unmasked_out = to_numpy(layer(x, training=False))
    masked = layers.Masking()(x)
    masked_out = to_numpy(layer(masked, training=False))
    assert_allclose(unmasked_out, masked_out, rtol=1e-6, atol=1e-6)

    # Masked result should differ from unmasked result
    mask = np.any(x != 0.0, axis=-1)  # what Masking() computes
    masked_out = to_numpy(layer(masked, training=True))
    assert not np.allclose(unmasked_out, masked_out)
    # the masked training step: the moments of the kept positions, which the
    # scaler learns from rows where the masked positions are NaN
    before = scaler.moving_mean_.copy(), scaler.moving_var_.copy()
    masked_rows = rows(x, axis, mask)
    scaler.partial_fit(masked_rows)
    # Documented difference (docs/refusals.md, "Accepted on purpose"): with
    # axis=1 the mask hides all of channel 1; the scaler does not update a
    # feature with no value, Keras takes the empty channel's moments as 0.
    empty = np.all(np.isnan(masked_rows), axis=0)
    assert np.any(empty) == (axis == 1)
    assert_array_equal(to_numpy(layer.moving_mean)[empty], 0.0)
    assert_array_equal(to_numpy(layer.moving_variance)[empty], 0.0)
    assert_array_equal(scaler.moving_mean_[empty], before[0][empty])
    assert_array_equal(scaler.moving_var_[empty], before[1][empty])
    mean, var = to_numpy(layer.moving_mean), to_numpy(layer.moving_variance)
    assert_allclose(scaler.moving_mean_[~empty], mean[~empty], rtol=RTOL32, atol=1e-4)
    assert_allclose(scaler.moving_var_[~empty], var[~empty], rtol=RTOL32, atol=1e-3)


def test_input_fully_masked():
    norm = layers.BatchNormalization(scale=False, center=False)
    x = np.zeros((4, 5))
    mask = np.zeros((4,), dtype=np.float32)
    y = norm(x, mask=mask, training=True)
    assert_allclose(to_numpy(y), np.zeros_like(x), atol=1e-6)

    # Documented difference (docs/refusals.md, "Accepted on purpose"): a batch
    # in which a feature has no value does not update it; Keras moves its
    # moving variance toward 0 (0.99 * 1 + 0.01 * 0), as if the empty batch
    # had variance 0.
    assert_allclose(to_numpy(norm.moving_variance), np.full(5, 0.99), rtol=1e-6)
    scaler = like_keras(center=False, scale=False)
    scaler.partial_fit(np.full((4, 5), 1.0), sample_weight=np.zeros(4))  # the start: 0 and 1
    before = scaler.moving_mean_.copy(), scaler.moving_var_.copy()
    scaler.partial_fit(rows(x, mask=mask))
    assert_array_equal(scaler.moving_mean_, before[0])
    assert_array_equal(scaler.moving_var_, before[1])
    assert_array_equal(scaler.moving_var_, np.ones(5))
    assert scaler.n_batches_seen_ == 2


@pytest.mark.parametrize("mask_value", (0.0, 0.1, 1))
def test_bachnorm_ignore_masked_values(mask_value):
    # (the original trains a Model with fit(), eagerly and compiled, for 5
    # epochs of one batch; the moving statistics only see the layer's
    # training calls, so the port makes those 5 calls directly)
    padded_data = np.array(
        [
            [
                [1, 5],
                [2, 5],
                [mask_value, mask_value],
                [mask_value, mask_value],
            ]
            for _ in range(10)
        ],
        dtype="float32",
    )

    masked = layers.Masking(mask_value=mask_value)(padded_data)
    layer = layers.BatchNormalization(momentum=0.0)
    mask = np.any(padded_data != mask_value, axis=-1)
    scaler = like_keras(momentum=0.0)
    for _ in range(5):
        layer(masked, training=True)
        scaler.partial_fit(rows(padded_data, mask=mask))
    assert_allclose(to_numpy(layer.moving_mean), [1.5, 5.0], rtol=1e-6)
    assert_allclose(to_numpy(layer.moving_variance), [0.25, 0.0], rtol=1e-6, atol=1e-6)
    # the scaler: exactly (small binary fractions; a constant column has
    # variance 0 exactly)
    assert_array_equal(scaler.moving_mean_, [1.5, 5.0])
    assert_array_equal(scaler.moving_var_, [0.25, 0.0])


def test_trainable_behavior():
    layer = layers.BatchNormalization(axis=-1, momentum=0.8, epsilon=1e-7)
    layer.build((1, 4, 4, 3))
    layer.trainable = False
    assert len(layer.weights) == 4
    assert len(layer.trainable_weights) == 0
    assert len(layer.non_trainable_weights) == 4

    # Random data centered on 5.0, variance 10.0
    x = np.random.default_rng(5).normal(loc=5.0, scale=10.0, size=(200, 4, 4, 3))

    # a frozen layer infers even in a training call: the scaler's transform
    # with the same (starting) statistics
    out = to_numpy(layer(x, training=True))
    assert_allclose(out, x, rtol=1e-6, atol=1e-5)
    scaler = BatchNormScaler.from_keras(layer)
    assert_array_equal(scaler.moving_mean_, np.zeros(3))
    assert_array_equal(scaler.moving_var_, np.ones(3))
    assert_allclose(back(scaler.transform(rows(x)), x.shape), out, rtol=1e-6, atol=1e-5)
    assert scaler.momentum == pytest.approx(0.8) and scaler.epsilon == pytest.approx(1e-7)

    layer.trainable = True
    assert len(layer.weights) == 4
    assert len(layer.trainable_weights) == 2
    assert len(layer.non_trainable_weights) == 2

    for _ in range(10):
        out = layer(x, training=True)
        scaler.partial_fit(rows(x))
    assert_same_state(scaler, layer)

    out = to_numpy(out)
    assert_allclose(train_output(x, epsilon=1e-7), out, rtol=RTOL32, atol=1e-5)
    out = out - np.reshape(to_numpy(layer.beta), (1, 1, 1, 3))
    out = out / np.reshape(to_numpy(layer.gamma), (1, 1, 1, 3))

    assert_allclose(np.mean(out, axis=(0, 1, 2)), 0.0, atol=1e-3)
    assert_allclose(np.std(out, axis=(0, 1, 2)), 1.0, atol=1e-3)


def test_masked_broadcast_normalization():
    input_shape = (1, 2, 3, 4)
    mask_shape = (1, 2, 1)
    x = np.ones(input_shape)
    mask = np.ones(mask_shape)

    layer = layers.BatchNormalization(axis=-1, momentum=0.0, epsilon=1e-3)

    y = to_numpy(layer(x, training=True, mask=mask))

    mean_y = np.mean(y, axis=(0, 1, 2))

    assert_allclose(mean_y, np.zeros((4,)), atol=1e-6)
    assert_allclose(y, np.zeros_like(y), atol=1e-6)

    assert_allclose(to_numpy(layer.moving_mean), np.ones((4,)), atol=1e-6)
    assert_allclose(to_numpy(layer.moving_variance), np.zeros((4,)), atol=1e-6)

    # the scaler: a constant batch is exact (mean 1, variance 0, output 0)
    scaler = like_keras(momentum=0.0).partial_fit(rows(x, mask=np.broadcast_to(mask, (1, 2, 3))))
    assert_array_equal(scaler.moving_mean_, np.ones(4))
    assert_array_equal(scaler.moving_var_, np.zeros(4))
    assert_array_equal(train_output(x), np.zeros(input_shape))
    assert_array_equal(scaler.transform(rows(x)), np.zeros((6, 4)))


def test_invalid_momentum():
    # (upstream Keras now refuses these in the constructor; the Keras installed
    # here, 3.15, predates that check, so only the scaler's refusal is asserted)
    for momentum in (-0.1, 1.5):
        with pytest.raises(ValueError, match="momentum"):
            like_keras(momentum=momentum).partial_fit(np.ones((2, 2)))
    # Boundary values are accepted.
    layers.BatchNormalization(momentum=0.0)
    layers.BatchNormalization(momentum=1.0)
    like_keras(momentum=0.0).partial_fit(np.ones((2, 2)))
    # Documented difference (docs/refusals.md): momentum=1 (statistics that
    # never move) is refused by the scaler.
    with pytest.raises(ValueError, match="momentum"):
        like_keras(momentum=1.0).partial_fit(np.ones((2, 2)))
