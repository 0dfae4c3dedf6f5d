"""``to_torch`` / ``from_torch`` against the real ``torch.nn.BatchNorm1d``.

Every expected value comes from running the PyTorch module itself: its
eval-mode output for ``transform``, its train-mode buffer updates for the
continuation of a stream.  In float64 both sides agree to ~1e-10 relative
(the batch moments are summed in different orders; see
``test_reference_layers.py``), in float32 to float32 rounding.
"""

import itertools
import sys

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skbn import BatchNormScaler, _torch

FLAGS = list(itertools.product([True, False], repeat=3))  # center, scale, with_mean
GAMMA = np.array([2.0, -0.5, 1.5, 0.75])
BETA = np.array([0.25, 3.0, -1.0, 0.0])
OFFSET = np.array([-40.0, 5.0, 3.0e3, 0.25])
SPREAD = np.array([0.5, 20.0, 30.0, 1.0e-2])
RTOL = 1e-10

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def batches(seed, n_batches, min_size=2, max_size=40):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min_size, max_size, size=n_batches, endpoint=True)
    return [OFFSET + SPREAD * rng.standard_normal((n, OFFSET.size)) for n in sizes]


def eval_output(module, X):
    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(X).to(module.running_mean.dtype)).double().numpy()


def train_step(module, batch):
    module.train()
    with torch.no_grad():
        module(torch.from_numpy(batch))


def assert_stats_match(scaler, module, what):
    np.testing.assert_allclose(
        scaler.moving_mean_, module.running_mean.numpy(), rtol=RTOL, atol=RTOL, err_msg=what
    )
    np.testing.assert_allclose(
        scaler.moving_var_, module.running_var.numpy(), rtol=RTOL, atol=RTOL, err_msg=what
    )
    assert scaler.n_batches_seen_ == int(module.num_batches_tracked), what


def fitted(center=True, scale=True, with_mean=True, **params):
    scaler = BatchNormScaler(
        center=center, scale=scale, with_mean=with_mean, gamma=GAMMA, beta=BETA, **params
    )
    for batch in batches(0, 12):
        scaler.partial_fit(batch)
    return scaler


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_to_torch_eval_output_is_transform(center, scale, with_mean):
    scaler = fitted(center, scale, with_mean)
    X = batches(1, 1, 50, 50)[0]
    module = scaler.to_torch(dtype=torch.float64)
    assert not module.training
    np.testing.assert_allclose(eval_output(module, X), scaler.transform(X), rtol=1e-12, atol=1e-9)
    # float32 (the default dtype): float32 rounding of x ~ 3e3 and of the weights.
    module32 = scaler.to_torch()
    assert module32.running_mean.dtype == torch.float32
    expected = scaler.transform(X.astype(np.float32))
    np.testing.assert_allclose(eval_output(module32, X), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_to_torch_module_attributes(center, scale, with_mean):
    scaler = fitted(center, scale, with_mean, momentum=0.9, epsilon=1e-4)
    module = scaler.to_torch(dtype=torch.float64)
    assert isinstance(module, torch.nn.BatchNorm1d)
    assert module.num_features == 4 and module.track_running_stats
    assert module.momentum == 0.1 and module.eps == 1e-4
    assert int(module.num_batches_tracked) == scaler.n_batches_seen_ == 12
    assert module.affine == (center or scale)
    mean = scaler.moving_mean_ if with_mean else np.zeros(4)
    np.testing.assert_array_equal(module.running_mean.numpy(), mean)
    np.testing.assert_array_equal(module.running_var.numpy(), scaler.moving_var_)
    if scale:
        np.testing.assert_array_equal(module.weight.detach().numpy(), GAMMA)
        assert module.weight.requires_grad
    elif center:  # PyTorch cannot drop the weight alone: 1, frozen
        np.testing.assert_array_equal(module.weight.detach().numpy(), np.ones(4))
        assert not module.weight.requires_grad
    if center:
        np.testing.assert_array_equal(module.bias.detach().numpy(), BETA)
        assert module.bias.requires_grad
    else:
        assert module.bias is None


@pytest.mark.parametrize(
    "momentum, expected", [(0.99, 0.01), (0.9, 0.1), (0.0, 1.0), (None, None)]
)
def test_to_torch_momentum_is_one_minus_momentum(momentum, expected):
    module = fitted(momentum=momentum).to_torch()
    assert module.momentum == expected


def test_to_torch_without_the_bias_option_freezes_a_zero_bias(monkeypatch):
    """PyTorch releases without ``bias=False`` get a bias of 0 that training leaves alone."""
    monkeypatch.setattr(_torch, "_has_bias_option", lambda torch: False)
    scaler = fitted(center=False, scale=True)
    module = scaler.to_torch(dtype=torch.float64)
    assert not module.bias.requires_grad
    np.testing.assert_array_equal(module.bias.detach().numpy(), np.zeros(4))
    X = batches(2, 1, 20, 20)[0]
    np.testing.assert_allclose(eval_output(module, X), scaler.transform(X), rtol=1e-12)
    back = BatchNormScaler.from_torch(module)
    assert back.get_params()["center"] is False


@pytest.mark.parametrize("center, scale", list(itertools.product([True, False], repeat=2)))
@pytest.mark.parametrize("momentum", [0.9, 0.99, 0.5, None])
def test_round_trip_scaler_torch_scaler(center, scale, momentum):
    scaler = fitted(center, scale, momentum=momentum, unbiased=True, init="keras")
    back = BatchNormScaler.from_torch(scaler.to_torch(dtype=torch.float64))
    for name in ("momentum", "epsilon", "center", "scale", "unbiased", "init"):
        assert back.get_params()[name] == scaler.get_params()[name], name
    for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert back.n_batches_seen_ == scaler.n_batches_seen_
    X = batches(3, 1, 30, 30)[0]
    np.testing.assert_array_equal(back.transform(X), scaler.transform(X))
    # ... and both continue the stream identically.
    for batch in batches(4, 5):
        scaler.partial_fit(batch)
        back.partial_fit(batch)
    np.testing.assert_allclose(back.moving_mean_, scaler.moving_mean_, rtol=1e-15)
    np.testing.assert_allclose(back.moving_var_, scaler.moving_var_, rtol=1e-15)


def test_round_trip_with_mean_false_is_equivalent():
    """``with_mean=False`` comes back as a scaler that subtracts a mean of 0."""
    scaler = fitted(with_mean=False)
    back = BatchNormScaler.from_torch(scaler.to_torch(dtype=torch.float64))
    np.testing.assert_array_equal(back.moving_mean_, np.zeros(4))
    X = batches(5, 1, 30, 30)[0]
    np.testing.assert_allclose(back.transform(X), scaler.transform(X), rtol=1e-15)


@pytest.mark.parametrize("torch_momentum", [0.1, 0.5, 1.0, None])
def test_from_torch_continues_the_stream_like_the_module(torch_momentum):
    """A module trained on some batches, imported, then both fed more batches:
    ``partial_fit`` updates the statistics as the module does in train mode,
    ``momentum=None`` (alpha = 1 / (num_batches_tracked + 1)) included."""
    module = torch.nn.BatchNorm1d(4, momentum=torch_momentum, dtype=torch.float64)
    for batch in batches(6, 15):
        train_step(module, batch)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(GAMMA))
        module.bias.copy_(torch.from_numpy(BETA))
    scaler = BatchNormScaler.from_torch(module)
    assert scaler.get_params()["unbiased"] is True
    assert scaler.get_params()["init"] == "keras"
    assert scaler.n_batches_seen_ == 15 and scaler.n_samples_seen_ == 0
    X = batches(7, 1, 30, 30)[0]
    np.testing.assert_allclose(scaler.transform(X), eval_output(module, X), rtol=1e-12, atol=1e-9)
    for t, batch in enumerate(batches(8, 20)):
        train_step(module, batch)
        scaler.partial_fit(batch)
        assert_stats_match(scaler, module, f"batch {t + 1} after import")
    np.testing.assert_allclose(scaler.transform(X), eval_output(module, X), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("momentum", [0.9, None])
def test_to_torch_module_continues_the_stream_like_the_scaler(momentum):
    scaler = fitted(momentum=momentum, unbiased=True, init="keras")
    module = scaler.to_torch(dtype=torch.float64)
    for t, batch in enumerate(batches(9, 20)):
        train_step(module, batch)
        scaler.partial_fit(batch)
        assert_stats_match(scaler, module, f"batch {t + 1} after export")


def test_weights_loaded_into_a_momentum_none_scaler_count_as_one_batch_in_torch():
    """``set_weights`` makes the loaded statistics one batch of the average;
    the export's ``num_batches_tracked`` says so, so PyTorch continues alike."""
    scaler = BatchNormScaler(momentum=None, unbiased=True)
    scaler.set_weights([GAMMA, BETA, OFFSET, SPREAD**2])
    module = scaler.to_torch(dtype=torch.float64)
    assert int(module.num_batches_tracked) == 1
    for batch in batches(10, 5):
        train_step(module, batch)
        scaler.partial_fit(batch)
    np.testing.assert_allclose(scaler.moving_mean_, module.running_mean.numpy(), rtol=RTOL)
    np.testing.assert_allclose(scaler.moving_var_, module.running_var.numpy(), rtol=RTOL)


def test_from_torch_float32_module_and_learned_affine_survive_refit():
    module = torch.nn.BatchNorm1d(4)  # float32, momentum 0.1, eps 1e-5
    for batch in batches(11, 5):
        train_step(module, batch.astype(np.float32))
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(GAMMA))
        module.bias.copy_(torch.from_numpy(BETA))
    scaler = BatchNormScaler.from_torch(module)
    assert scaler.get_params()["momentum"] == 0.9 and scaler.epsilon == 1e-5
    assert scaler.moving_mean_.dtype == np.float64
    np.testing.assert_array_equal(scaler.moving_mean_, module.running_mean.double().numpy())
    # gamma and beta are also the parameters: a refit (a Pipeline's fit) keeps them.
    scaler.fit(batches(12, 1, 30, 30)[0])
    np.testing.assert_array_equal(scaler.gamma_, GAMMA.astype(np.float32))
    np.testing.assert_array_equal(scaler.beta_, BETA.astype(np.float32))


def test_affine_false_module_is_a_scaler_without_center_and_scale():
    module = torch.nn.BatchNorm1d(4, affine=False, dtype=torch.float64)
    for batch in batches(13, 4):
        train_step(module, batch)
    scaler = BatchNormScaler.from_torch(module)
    params = scaler.get_params()
    assert params["center"] is False and params["scale"] is False
    X = batches(14, 1, 10, 10)[0]
    np.testing.assert_allclose(scaler.transform(X), eval_output(module, X), rtol=1e-12, atol=1e-9)
    assert len(scaler.get_weights()) == 2


def test_zero_variance_with_epsilon_zero_is_exported_as_variance_one():
    """skbn divides a constant feature by 1 (epsilon=0); the export's
    running_var of 1 does the same, where 0 would give NaN."""
    X = batches(15, 1, 30, 30)[0]
    X[:, 1] = 7.0
    scaler = BatchNormScaler(epsilon=0.0, gamma=GAMMA, beta=BETA).fit(X)
    assert scaler.moving_var_[1] == 0
    for dtype in (torch.float64, torch.float32):
        module = scaler.to_torch(dtype=dtype)
        assert module.eps == 0 and float(module.running_var[1]) == 1.0
        out = eval_output(module, X)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out[:, 1], BETA[1])
        np.testing.assert_allclose(out, scaler.transform(X), rtol=1e-5, atol=1e-4)


def test_to_torch_refuses_what_float32_cannot_hold():
    """A mean beyond float32's range, and a variance that rounds to 0 in
    float32 where epsilon=0 (the module would divide by 0), are refused."""
    scaler = BatchNormScaler(epsilon=0.0).set_weights(
        [GAMMA, BETA, np.array([0.0, 1e39, 0.0, 0.0]), np.array([1.0, 1.0, 1e-60, 1.0])]
    )
    with pytest.raises(ValueError, match=r"float32 BatchNorm1d.*'moving_mean': \[1\].*"
                       r"'moving_variance': \[2\].*dtype=torch.float64"):  # fmt: skip
        scaler.to_torch(dtype=torch.float32)
    module = scaler.to_torch(dtype=torch.float64)  # float64 holds them
    X = np.array([[1.0, 0.0, 1e-30, 2.0]])
    np.testing.assert_allclose(eval_output(module, X), scaler.transform(X), rtol=1e-12)


def test_to_torch_argument_errors():
    with pytest.raises(NotFittedError):
        BatchNormScaler().to_torch()
    with pytest.raises(TypeError, match="floating torch.dtype"):
        fitted().to_torch(dtype=torch.int64)
    with pytest.raises(TypeError, match="floating torch.dtype"):
        fitted().to_torch(dtype="float32")


def test_from_torch_refusals():
    with pytest.raises(TypeError, match="expects a torch.nn.BatchNorm1d; got BatchNorm2d"):
        BatchNormScaler.from_torch(torch.nn.BatchNorm2d(4))
    with pytest.raises(TypeError, match="got Linear"):
        BatchNormScaler.from_torch(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        BatchNormScaler.from_torch(torch.nn.BatchNorm1d(4, track_running_stats=False))
    with pytest.raises(ValueError, match="has not been run yet"):
        BatchNormScaler.from_torch(torch.nn.LazyBatchNorm1d())
    for momentum in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=f"momentum={momentum}; BatchNormScaler needs"):
            BatchNormScaler.from_torch(torch.nn.BatchNorm1d(4, momentum=momentum))
    with pytest.raises(ValueError, match="eps=-1"):
        BatchNormScaler.from_torch(torch.nn.BatchNorm1d(4, eps=-1.0))
    module = torch.nn.BatchNorm1d(4, eps=0.0)
    module.running_var[2] = 0.0
    with pytest.raises(
        ValueError, match=r"epsilon=0 and a moving variance of 0 at feature\(s\) \[2\]"
    ):
        BatchNormScaler.from_torch(module)
    module = torch.nn.BatchNorm1d(4)
    module.running_mean[0] = float("nan")
    with pytest.raises(ValueError, match="'moving_mean' holds NaN"):
        BatchNormScaler.from_torch(module)


def test_lazy_module_after_a_batch_is_imported():
    module = torch.nn.LazyBatchNorm1d(dtype=torch.float64)
    train_step(module, batches(16, 1, 10, 10)[0])
    scaler = BatchNormScaler.from_torch(module)
    assert scaler.n_features_in_ == 4 and scaler.n_batches_seen_ == 1


def test_missing_torch_gives_the_install_hint(monkeypatch):
    scaler = fitted()
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "skbn\[torch\]"'):
        scaler.to_torch()
    with pytest.raises(ImportError, match=r'pip install "skbn\[torch\]"'):
        BatchNormScaler.from_torch(object())
