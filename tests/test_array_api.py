"""Array API inputs: PyTorch tensors and array_api_strict arrays (CUDA where present).

Every result is compared with the NumPy path on the same data, which the rest
of the suite holds against exact arithmetic, PyTorch and Keras.
"""

import array_api_strict
import numpy as np
import pytest
import sklearn
import torch
from sklearn.utils._array_api import (
    _convert_to_numpy,
    get_namespace_and_device,
    move_estimator_to,
)

from skbn import BatchNormScaler

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _torch(device):
    def make(a, dtype):
        return torch.asarray(a, dtype=getattr(torch, dtype), device=device)

    return make


def _strict(a, dtype):
    return array_api_strict.asarray(a, dtype=getattr(array_api_strict, dtype))


NAMESPACES = [
    pytest.param(_torch(d), id=f"torch-{d}", marks=[pytest.mark.cuda] if d == "cuda" else [])
    for d in DEVICES
] + [pytest.param(_strict, id="array_api_strict")]

TOLERANCE = {"float64": 1e-12, "float32": 2e-6}


@pytest.fixture(autouse=True)
def _dispatch():
    with sklearn.config_context(array_api_dispatch=True):
        yield


def to_numpy(a):
    if isinstance(a, (int, float)):
        return np.asarray(a)
    xp, _, _ = get_namespace_and_device(a)
    return _convert_to_numpy(a, xp)


def _stream(seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for size in (5, 17, 1, 9, 30):
        X = rng.normal(size=(size, 3)) * [1.0, 50.0, 0.01] + [3.0, -20.0, 1e3]
        X[rng.random(X.shape) < 0.2] = np.nan
        batches.append((X, rng.integers(0, 3, size).astype(float)))
    return batches


MODES = [
    dict(),
    dict(momentum=None, unbiased=True),
    dict(init="keras", momentum=0.5),
    dict(momentum=0.0, unbiased=True),
]


@pytest.mark.parametrize("make", NAMESPACES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("params", MODES)
@pytest.mark.parametrize("weighted", [False, True])
def test_stream_matches_numpy(make, dtype, params, weighted):
    ours = BatchNormScaler(**params)
    ref = BatchNormScaler(**params)
    for X, w in _stream():
        X = X.astype(dtype)
        ours.partial_fit(make(X, dtype), sample_weight=make(w, dtype) if weighted else None)
        with sklearn.config_context(array_api_dispatch=False):
            ref.partial_fit(X, sample_weight=w if weighted else None)
    rtol = TOLERANCE[dtype]
    for name in ("moving_mean_", "moving_var_", "n_samples_seen_"):
        np.testing.assert_allclose(
            to_numpy(getattr(ours, name)), getattr(ref, name), rtol=rtol, err_msg=name
        )
    assert ours.n_batches_seen_ == ref.n_batches_seen_


@pytest.mark.parametrize("make", NAMESPACES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_outputs_and_attributes_stay_in_namespace_and_device(make, dtype):
    X_np = np.vstack([b for b, _ in _stream()]).astype(dtype)
    X = make(X_np, dtype)
    xp, _, device = get_namespace_and_device(X)
    scaler = BatchNormScaler(gamma=[1.0, 2.0, 0.5], beta=0.25, batch_size=8).fit(X)
    for name in ("moving_mean_", "moving_var_", "gamma_", "beta_"):
        a_xp, _, a_device = get_namespace_and_device(getattr(scaler, name))
        assert a_xp == xp and str(a_device) == str(device), name
    out = scaler.transform(X)
    o_xp, _, o_device = get_namespace_and_device(out)
    assert o_xp == xp and str(o_device) == str(device) and out.dtype == X.dtype
    with sklearn.config_context(array_api_dispatch=False):
        ref = BatchNormScaler(gamma=[1.0, 2.0, 0.5], beta=0.25, batch_size=8).fit(X_np)
        expected = ref.transform(X_np)
    got = to_numpy(out)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(X_np))
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    back = to_numpy(scaler.inverse_transform(out))
    np.testing.assert_allclose(back, X_np, rtol=10 * TOLERANCE[dtype], atol=1e-3)


@pytest.mark.parametrize("make", NAMESPACES)
def test_infinite_values_refused_and_state_kept(make):
    scaler = BatchNormScaler().partial_fit(make(np.ones((3, 2)), "float64"))
    before = to_numpy(scaler.moving_mean_).copy(), scaler.n_batches_seen_
    bad = np.ones((2, 2))
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \[1\]"):
        scaler.partial_fit(make(bad, "float64"))
    np.testing.assert_array_equal(to_numpy(scaler.moving_mean_), before[0])
    assert scaler.n_batches_seen_ == before[1]
    with pytest.raises(ValueError, match="infinity"):
        scaler.transform(make(bad, "float64"))


@pytest.mark.parametrize("make", NAMESPACES)
def test_other_namespace_refused_until_moved(make):
    X_np = np.random.default_rng(1).normal(size=(20, 3))
    scaler = BatchNormScaler().fit(make(X_np, "float64"))
    with pytest.raises(ValueError, match="must use the same namespace"):
        scaler.transform(X_np)
    with pytest.raises(ValueError, match="must use the same namespace"):
        scaler.partial_fit(X_np)
    # the documented way across: move the fitted arrays to the other namespace
    moved = move_estimator_to(scaler, np, None)
    assert isinstance(moved.moving_mean_, np.ndarray)
    with sklearn.config_context(array_api_dispatch=False):
        np.testing.assert_allclose(
            moved.transform(X_np), BatchNormScaler().fit(X_np).transform(X_np), rtol=1e-12
        )
        moved.partial_fit(X_np)  # and the stream goes on in NumPy


def test_float32_only_device_accumulates_in_float32(monkeypatch):
    """Devices without float64 (such as Apple's MPS) keep the statistics in float32."""
    from skbn import _array_api

    monkeypatch.setattr(_array_api, "stats_dtype", lambda xp, device: xp.float32)
    X = torch.asarray(np.random.default_rng(2).normal(size=(50, 2)), dtype=torch.float32)
    scaler = BatchNormScaler().fit(X)
    assert scaler.moving_mean_.dtype == torch.float32
    ref = np.asarray(X, dtype=np.float64)
    np.testing.assert_allclose(scaler.moving_var_.numpy(), ref.var(axis=0), rtol=1e-5)
