"""ONNX export through skl2onnx, checked with onnxruntime (SPEC section 6).

``import skbn.onnx`` registers the converter; ``skl2onnx.to_onnx`` then converts
a ``BatchNormScaler`` alone or inside a ``Pipeline``, and onnxruntime must
reproduce ``transform`` (float graph: float32 rounding; double graph: float64).
"""

import importlib
import itertools
import sys

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import skbn.onnx  # noqa: F401  (registers the converter)
from skbn import BatchNormScaler

FLAGS = list(itertools.product([True, False], repeat=3))  # center, scale, with_mean
GAMMA = np.array([2.0, -0.5, 1.5, 0.75])
BETA = np.array([0.25, 3.0, -1.0, 0.0])


def data(seed=0, n=60):
    rng = np.random.default_rng(seed)
    X = rng.normal([5.0, -2.0, 100.0, 0.0], [1.0, 3.0, 10.0, 0.1], size=(n, 4))
    y = (X[:, 0] - 5.0 + 0.3 * (X[:, 1] + 2.0) > 0).astype(np.int64)
    return X, y


def run(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: X}
    return session.run(None, feeds)


def scaler_for(center, scale, with_mean, **params):
    return BatchNormScaler(
        center=center, scale=scale, with_mean=with_mean, gamma=GAMMA, beta=BETA, **params
    )


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_pipeline_with_every_center_scale_with_mean(center, scale, with_mean):
    X, y = data()
    pipe = Pipeline(
        [("bn", scaler_for(center, scale, with_mean, batch_size=16)), ("lr", LogisticRegression())]
    ).fit(X, y)
    X32 = data(1)[0].astype(np.float32)
    onx = to_onnx(pipe, X32[:1], options={LogisticRegression: {"zipmap": False}})
    labels, probabilities = run(onx, X32)
    expected = pipe.predict_proba(X32)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, pipe.predict(X32))
    # The scaler's own output, through a Pipeline holding only it.
    step = Pipeline([("bn", pipe.named_steps["bn"])])
    (out,) = run(to_onnx(step, X32[:1]), X32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, step.transform(X32), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, step.transform(X32.astype(np.float64)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_double_input_reproduces_the_float64_transform(center, scale, with_mean):
    X, _ = data()
    scaler = scaler_for(center, scale, with_mean, epsilon=0.0).fit(X)
    X_new = data(2)[0]
    onx = to_onnx(scaler, X_new[:1])
    types = [v.type.tensor_type.elem_type for v in (onx.graph.input[0], onx.graph.output[0])]
    assert types == [11, 11]  # tensor(double) in and out
    (out,) = run(onx, X_new)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, scaler.transform(X_new), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_graph_uses_only_sub_mul_add(center, scale, with_mean):
    X, _ = data()
    onx = to_onnx(scaler_for(center, scale, with_mean).fit(X), X[:1].astype(np.float32))
    ops = [node.op_type for node in onx.graph.node]
    assert ops == ["Sub"] * with_mean + ["Mul"] + ["Add"] * center
    assert all(init.data_type == 1 for init in onx.graph.initializer)  # float32


def test_nan_stays_nan_and_constant_features_divide_by_one():
    X, _ = data()
    X[:, 3] = 2.5  # constant; epsilon=0: divided by 1, as transform does
    X[5, 1] = np.nan
    scaler = BatchNormScaler(epsilon=0.0, gamma=GAMMA, beta=BETA).fit(X)
    X32 = X.astype(np.float32)
    (out,) = run(to_onnx(scaler, X32[:1]), X32)
    assert np.isnan(out[5, 1]) and np.isnan(out).sum() == 1
    np.testing.assert_allclose(out, scaler.transform(X32), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[:, 3], np.float32(BETA[3]))


def test_int64_input_is_cast_to_float():
    X = np.random.default_rng(3).integers(-50, 50, size=(40, 4))
    scaler = BatchNormScaler().fit(X)
    onx = to_onnx(scaler, initial_types=[("X", Int64TensorType([None, 4]))])
    (out,) = run(onx, X.astype(np.int64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, scaler.transform(X), rtol=1e-5, atol=1e-5)


def test_several_inputs_are_concatenated():
    """Inside a ColumnTransformer the scaler gets its columns as one tensor."""
    X, _ = data()
    ct = ColumnTransformer([("bn", BatchNormScaler(gamma=2.0), [0, 2])]).fit(X)
    X32 = X.astype(np.float32)
    (out,) = run(to_onnx(ct, X32[:1]), X32)
    np.testing.assert_allclose(out, ct.transform(X32), rtol=1e-6, atol=1e-6)


def test_errors():
    X, _ = data()
    with pytest.raises(NotFittedError):
        to_onnx(BatchNormScaler(), X[:1].astype(np.float32))
    scaler = BatchNormScaler().fit(X)
    with pytest.raises(RuntimeError, match="fitted on 4 features, but the ONNX inputs have 3"):
        to_onnx(scaler, initial_types=[("X", FloatTensorType([None, 3]))])


def test_missing_skl2onnx_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    monkeypatch.delitem(sys.modules, "skbn.onnx")
    with pytest.raises(ImportError, match=r'pip install "skbn\[onnx\]"'):
        importlib.import_module("skbn.onnx")
