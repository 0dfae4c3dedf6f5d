"""``to_keras`` / ``from_keras`` against the real ``keras.layers.BatchNormalization``.

Every expected value comes from the Keras layer itself (Keras 3 on the torch
backend, set by ``tests/conftest.py``): ``layer(x, training=False)`` for
``transform``, ``layer(x, training=True)`` for the continuation of a stream.
Keras stores float32 weights and computes in float32, hence the float32
tolerances.
"""

import itertools
import sys

import keras
import numpy as np
import pytest
from bridge_data import (  # the data of the bridges' tests, tests/bridge_data.py
    BETA,
    FLAGS,
    GAMMA,
    assert_float32_close,
    batches,
    fitted,
    stats_excess,
)
from sklearn.exceptions import NotFittedError

from skbn import BatchNormScaler

# Keras's torch backend converts with ``np.array(tensor)``, which this NumPy
# warns about for torch tensors: not skbn's concern (skbn's own reads avoid it).
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
    pytest.mark.usefixtures("one_torch_thread"),  # tests/conftest.py
]


def as_numpy(x):
    """A Keras variable or torch-backend tensor as float64 NumPy."""
    x = getattr(x, "value", x)
    return x.detach().double().numpy()


def infer(layer, X):
    return as_numpy(layer(X.astype(np.float32), training=False))


def test_keras_runs_on_the_torch_backend():
    assert keras.backend.backend() == "torch"


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_to_keras_layer_infers_like_transform(center, scale, with_mean):
    scaler = fitted(center, scale, with_mean, momentum=0.9, epsilon=1e-4)
    layer = scaler.to_keras()
    assert isinstance(layer, keras.layers.BatchNormalization) and layer.built
    assert (layer.momentum, layer.epsilon) == (0.9, 1e-4)
    assert (layer.center, layer.scale) == (center, scale)
    names = [w.name for w in layer.weights]
    assert names == ["gamma"] * scale + ["beta"] * center + ["moving_mean", "moving_variance"]
    assert all(w.dtype == "float32" for w in layer.weights)
    # The weights are the scaler's, rounded to float32 (mean 0 when with_mean=False).
    expected = scaler.get_weights()
    if not with_mean:
        expected[-2] = np.zeros(4)
    for w, want in zip(layer.weights, expected, strict=True):
        np.testing.assert_array_equal(as_numpy(w), want.astype(np.float32))
    X = batches(1, 1, 50, 50)[0]
    assert_float32_close(infer(layer, X), scaler.transform(X))


@pytest.mark.parametrize("center, scale", list(itertools.product([True, False], repeat=2)))
def test_round_trip_scaler_keras_scaler(center, scale):
    scaler = fitted(center, scale, momentum=0.95, init="keras")
    back = BatchNormScaler.from_keras(scaler.to_keras())
    for name in ("momentum", "epsilon", "center", "scale", "unbiased", "init"):
        assert back.get_params()[name] == scaler.get_params()[name], name
    for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))  # Keras keeps float32
    assert back.n_batches_seen_ == 0 and back.n_samples_seen_ == 0
    X = batches(2, 1, 30, 30)[0]
    assert_float32_close(back.transform(X), scaler.transform(X))
    # Both continue the stream alike (the only difference: float32 weights).
    for batch in batches(3, 5):
        scaler.partial_fit(batch)
        back.partial_fit(batch)
    np.testing.assert_allclose(back.moving_mean_, scaler.moving_mean_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.moving_var_, scaler.moving_var_, rtol=1e-6)


@pytest.mark.parametrize("momentum", [0.9, 0.5, 0.0])
def test_from_keras_continues_the_stream_like_the_layer(momentum):
    """A layer trained on some batches, imported, then both fed more batches."""
    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3)
    for batch in batches(4, 10):
        layer(batch, training=True)
    layer.gamma.assign(GAMMA.astype(np.float32))
    layer.beta.assign(BETA.astype(np.float32))
    scaler = BatchNormScaler.from_keras(layer)
    params = scaler.get_params()
    assert (params["momentum"], params["epsilon"]) == (momentum, 1e-3)
    assert params["unbiased"] is False and params["init"] == "keras"
    X = batches(5, 1, 30, 30)[0]
    assert_float32_close(scaler.transform(X), infer(layer, X))
    # Keras computes in float32, its batch variance as E[x^2] - E[x]^2: errors
    # of ~1e-5 of the data's magnitude M (mean) and of M^2 (variance); see
    # _keras_tolerance in test_reference_layers.py.
    for t, batch in enumerate(batches(6, 15)):
        layer(batch, training=True)
        scaler.partial_fit(batch)
        mean, var = as_numpy(layer.moving_mean), as_numpy(layer.moving_variance)
        stats_excess(scaler, mean, var, f"batch {t + 1}")


def test_from_keras_learned_affine_survives_refit():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))
    layer.gamma.assign(GAMMA.astype(np.float32))
    layer.beta.assign(BETA.astype(np.float32))
    scaler = BatchNormScaler.from_keras(layer)
    scaler.fit(batches(7, 1, 30, 30)[0])
    np.testing.assert_array_equal(scaler.gamma_, GAMMA.astype(np.float32))
    np.testing.assert_array_equal(scaler.beta_, BETA.astype(np.float32))


def test_from_keras_accepts_axis_one_of_two_d_inputs():
    layer = keras.layers.BatchNormalization(axis=1, center=False)
    layer.build((None, 4))
    scaler = BatchNormScaler.from_keras(layer)
    assert scaler.n_features_in_ == 4 and scaler.get_params()["center"] is False


def test_zero_variance_with_epsilon_zero_is_exported_as_variance_one():
    X = batches(8, 1, 30, 30)[0]
    X[:, 1] = 7.0
    scaler = BatchNormScaler(epsilon=0.0, gamma=GAMMA, beta=BETA).fit(X)
    assert scaler.moving_var_[1] == 0
    layer = scaler.to_keras()
    assert layer.epsilon == 0 and as_numpy(layer.moving_variance)[1] == 1.0
    out = infer(layer, X)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 1], np.float32(BETA[1]))
    assert_float32_close(out, scaler.transform(X))


def test_to_keras_refusals():
    with pytest.raises(NotFittedError):
        BatchNormScaler().to_keras()
    with pytest.raises(ValueError, match=r"momentum=None to Keras.*set_params\(momentum=0.99\)"):
        fitted(momentum=None).to_keras()
    scaler = BatchNormScaler(epsilon=0.0).set_weights(
        [GAMMA, BETA, np.array([0.0, -1e39, 0.0, 0.0]), np.array([1.0, 1.0, 1e-60, 1.0])]
    )
    with pytest.raises(ValueError, match=r"stores float32 weights.*'moving_mean': \[1\].*"
                       r"'moving_variance': \[2\]"):  # fmt: skip
        scaler.to_keras()


def test_momentum_none_exports_after_set_params():
    """The suggested fix keeps the fitted statistics."""
    scaler = fitted(momentum=None)
    layer = scaler.set_params(momentum=0.99).to_keras()
    np.testing.assert_array_equal(as_numpy(layer.moving_mean), scaler.moving_mean_.astype("f4"))


def test_from_keras_refusals():
    with pytest.raises(TypeError, match="expects a keras.layers.BatchNormalization; got Dense"):
        BatchNormScaler.from_keras(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="not built"):
        BatchNormScaler.from_keras(keras.layers.BatchNormalization())
    layer = keras.layers.BatchNormalization(axis=1)
    layer.build((None, 4, 3))
    with pytest.raises(ValueError, match="normalizes axis 1 of 3-d inputs"):
        BatchNormScaler.from_keras(layer)
    layer = keras.layers.BatchNormalization(momentum=1.0)
    layer.build((None, 4))
    with pytest.raises(ValueError, match="momentum=1.0; BatchNormScaler needs a momentum"):
        BatchNormScaler.from_keras(layer)
    layer = keras.layers.BatchNormalization(epsilon=0.0)
    layer.build((None, 4))
    layer.moving_variance.assign(np.array([1.0, 0.0, 1.0, 1.0], dtype=np.float32))
    with pytest.raises(
        ValueError, match=r"epsilon=0 and a moving variance of 0 at feature\(s\) \[1\]"
    ):
        BatchNormScaler.from_keras(layer)


def test_missing_keras_gives_the_install_hint(monkeypatch):
    scaler = fitted()
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError, match=r'pip install "skbn\[keras\]"'):
        scaler.to_keras()
    with pytest.raises(ImportError, match=r'pip install "skbn\[keras\]"'):
        BatchNormScaler.from_keras(object())
