"""The Keras interop checks, run in a process of their own on one Keras backend.

Keras picks its backend once, when it is first imported (``KERAS_BACKEND``),
and the test process runs Keras on torch (``tests/conftest.py``), so
``tests/test_keras_backends.py`` runs this script once per other backend::

    KERAS_BACKEND=jax python tests/keras_backend_checks.py results.json

Every check runs (a failure does not stop the others) and the results go to
``results.json`` as a list of ``{"name", "ok", "detail"}``; ``detail`` is the
traceback of a failure, or what was measured.  Every expected value comes from
the Keras layer on that backend: ``layer(x, training=False)`` for
``transform``, ``layer(x, training=True)`` for the continuation of a stream.
Importing this module runs nothing (pytest imports it for its doctests).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
from bridge_data import (  # tests/bridge_data.py, next to this script
    BETA,
    FLAGS,
    GAMMA,
    assert_float32_close,
    batches,
    fitted,
    stats_excess,
)


def as_numpy(x):
    import keras

    return np.array(keras.ops.convert_to_numpy(getattr(x, "value", x)), dtype=np.float64)


def infer(layer, X):
    return as_numpy(layer(X.astype(np.float32), training=False))


def layer_excess(scaler, layer, what):
    return stats_excess(scaler, as_numpy(layer.moving_mean), as_numpy(layer.moving_variance), what)


# -- the checks ----------------------------------------------------------------


def check_backend(backend):
    import keras

    assert keras.backend.backend() == backend, keras.backend.backend()
    return f"keras {keras.__version__} on {backend}"


def check_eval_output_equals_transform(backend):
    import keras

    for center, scale, with_mean in FLAGS:
        what = f"center={center}, scale={scale}, with_mean={with_mean}"
        scaler = fitted(center, scale, with_mean, momentum=0.9, epsilon=1e-4)
        layer = scaler.to_keras()
        assert isinstance(layer, keras.layers.BatchNormalization) and layer.built, what
        assert (layer.momentum, layer.epsilon, layer.center, layer.scale) == (
            0.9, 1e-4, center, scale
        ), what  # fmt: skip
        expected = scaler.get_weights()
        if not with_mean:
            expected[-2] = np.zeros(4)
        for w, want in zip(layer.weights, expected, strict=True):
            assert keras.backend.standardize_dtype(w.dtype) == "float32", what
            np.testing.assert_array_equal(as_numpy(w), want.astype(np.float32), err_msg=what)
        X = batches(1, 1, 50, 50)[0]
        assert_float32_close(infer(layer, X), scaler.transform(X), what)
    return f"{len(FLAGS)} combinations of center, scale, with_mean"


def check_round_trip_recovers_the_statistics(backend):
    from skbn import BatchNormScaler

    for center, scale in itertools.product([True, False], repeat=2):
        what = f"center={center}, scale={scale}"
        scaler = fitted(center, scale, momentum=0.95, init="keras")
        back = BatchNormScaler.from_keras(scaler.to_keras())
        for name in ("momentum", "epsilon", "center", "scale", "unbiased", "init"):
            assert back.get_params()[name] == scaler.get_params()[name], (what, name)
        for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=what)
        X = batches(2, 1, 30, 30)[0]
        assert_float32_close(back.transform(X), scaler.transform(X), what)
        for batch in batches(3, 5):
            scaler.partial_fit(batch)
            back.partial_fit(batch)
        np.testing.assert_allclose(back.moving_mean_, scaler.moving_mean_, 1e-6, 1e-6)
        np.testing.assert_allclose(back.moving_var_, scaler.moving_var_, 1e-6)
    return "4 combinations of center, scale"


def check_get_weights_and_set_weights(backend):
    import keras

    from skbn import BatchNormScaler

    scaler = fitted(center=False, momentum=0.9)
    layer = keras.layers.BatchNormalization(center=False, momentum=0.9, epsilon=scaler.epsilon)
    layer.build((None, 4))
    layer.set_weights(scaler.get_weights())
    X = batches(4, 1, 30, 30)[0]
    assert_float32_close(infer(layer, X), scaler.transform(X))
    back = BatchNormScaler(center=False, epsilon=scaler.epsilon).set_weights(layer.get_weights())
    for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    return "layer.set_weights(scaler.get_weights()) and back"


def check_sequential_saves_and_reloads(backend):
    import keras

    from skbn import BatchNormScaler

    scaler = fitted(momentum=0.9, init="keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), scaler.to_keras(), keras.layers.Dense(3, activation="tanh")]
    )
    X = batches(5, 1, 30, 30)[0]
    before = as_numpy(model.predict(X, verbose=0))
    bn = model.layers[0]
    assert_float32_close(infer(bn, X), scaler.transform(X))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
    after = as_numpy(loaded.predict(X, verbose=0))
    np.testing.assert_array_equal(after, before)
    reloaded = loaded.layers[0]
    assert isinstance(reloaded, keras.layers.BatchNormalization)
    back = BatchNormScaler.from_keras(reloaded)
    for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    assert_float32_close(back.transform(X), scaler.transform(X))
    return "predictions equal after model.save / keras.models.load_model"


def check_trained_layer_equals_the_scaler(backend):
    """A fresh layer trained on a stream and the scaler (init="keras") fed the same."""
    import keras

    from skbn import BatchNormScaler

    worst = 0.0
    for momentum in (0.99, 0.9, 0.5, 0.0):
        layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3)
        scaler = BatchNormScaler(momentum=momentum, epsilon=1e-3, init="keras")
        for t, batch in enumerate(batches(6, 20)):
            layer(batch, training=True)
            scaler.partial_fit(batch)
            worst = max(worst, layer_excess(scaler, layer, f"momentum={momentum}, batch {t}"))
        X = batches(7, 1, 30, 30)[0]
        assert_float32_close(infer(layer, X), scaler.transform(X), f"momentum={momentum}")
    return f"worst deviation {worst:.3g} of the tolerance"


def check_from_keras_continues_like_the_layer(backend):
    import keras

    from skbn import BatchNormScaler

    worst = 0.0
    for momentum in (0.9, 0.5):
        layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3)
        for batch in batches(8, 10):
            layer(batch, training=True)
        layer.gamma.assign(GAMMA.astype(np.float32))
        layer.beta.assign(BETA.astype(np.float32))
        scaler = BatchNormScaler.from_keras(layer)
        X = batches(9, 1, 30, 30)[0]
        assert_float32_close(scaler.transform(X), infer(layer, X))
        for t, batch in enumerate(batches(10, 15)):
            layer(batch, training=True)
            scaler.partial_fit(batch)
            worst = max(worst, layer_excess(scaler, layer, f"momentum={momentum}, batch {t}"))
    return f"worst deviation {worst:.3g} of the tolerance"


def check_to_keras_continues_like_the_scaler(backend):
    worst = 0.0
    for momentum in (0.9, 0.5):
        scaler = fitted(momentum=momentum, init="keras")
        layer = scaler.to_keras()
        for t, batch in enumerate(batches(11, 15)):
            layer(batch, training=True)
            scaler.partial_fit(batch)
            worst = max(worst, layer_excess(scaler, layer, f"momentum={momentum}, batch {t}"))
        X = batches(12, 1, 30, 30)[0]
        assert_float32_close(infer(layer, X), scaler.transform(X))
    return f"worst deviation {worst:.3g} of the tolerance"


def check_refusals(backend):
    import keras

    from skbn import BatchNormScaler

    try:
        fitted(momentum=None).to_keras()
    except ValueError as exc:
        assert "momentum=None to Keras" in str(exc), exc
    else:
        raise AssertionError("to_keras accepted momentum=None")
    layer = keras.layers.BatchNormalization(epsilon=0.0)
    layer.build((None, 4))
    layer.moving_variance.assign(np.array([1.0, 0.0, 1.0, 1.0], dtype=np.float32))
    try:
        BatchNormScaler.from_keras(layer)
    except ValueError as exc:
        assert "epsilon=0 and a moving variance of 0 at feature(s) [1]" in str(exc), exc
    else:
        raise AssertionError("from_keras accepted a zero divisor")
    return "momentum=None export, zero divisor import"


CHECKS = [
    check_backend,
    check_eval_output_equals_transform,
    check_round_trip_recovers_the_statistics,
    check_get_weights_and_set_weights,
    check_sequential_saves_and_reloads,
    check_trained_layer_equals_the_scaler,
    check_from_keras_continues_like_the_layer,
    check_to_keras_continues_like_the_scaler,
    check_refusals,
]
NAMES = [check.__name__.removeprefix("check_") for check in CHECKS]


def main(out: str) -> None:
    backend = os.environ["KERAS_BACKEND"]
    results = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            detail, ok = check(backend), True
        except Exception:
            detail, ok = traceback.format_exc(), False
        results.append({"name": name, "ok": ok, "detail": detail})
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
