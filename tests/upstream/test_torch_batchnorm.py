"""PyTorch's BatchNorm tests, ported to ``BatchNormScaler`` next to the real module.

Source: ``test/test_nn.py`` of pytorch/pytorch (``TestNN`` and
``TestNNDeviceType``): the tests of the running statistics (momentum, the
cumulative average ``momentum=None``, the unbiased running variance,
``num_batches_tracked``), of the eval-mode output and of the buffers' state.
The original names are kept; the CUDA/cuDNN, half-precision, channels-last
and gradient checks are PyTorch's kernels, not statistics, and are not ported.

Every test runs the real ``torch.nn.BatchNorm1d`` (float64) and the scaler
side by side, with the mapping of ``docs/mapping.md``:
``BatchNormScaler(momentum=1 - m, epsilon=eps, unbiased=True, init="keras")``
for ``BatchNorm1d(momentum=m, eps=eps)``; a training step is ``partial_fit``,
the eval-mode output is ``transform``, ``num_batches_tracked`` is
``n_batches_seen_``.  A ``(N, C, L)`` input is the ``(N * L, C)`` batch.
The training-mode output (normalized by the batch's own statistics, biased
variance) is ``BatchNormScaler(momentum="pooled", epsilon=eps)`` fitted on the
batch and applied to it.
"""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

from skbn import BatchNormScaler

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RTOL = 1e-10
EPS = 1e-5  # PyTorch's default eps


def like_torch(momentum=0.1, **params):
    """The scaler that follows BatchNorm1d(momentum=momentum) (docs/mapping.md)."""
    return BatchNormScaler(
        momentum=None if momentum is None else 1 - momentum,
        epsilon=EPS,
        unbiased=True,
        init="keras",
        **params,
    )


def rows(x):
    """The scaler's batch for a BatchNorm1d input: (N, C) as is, (N, C, L) as (N * L, C)."""
    x = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 2:
        return x
    return x.transpose(0, 2, 1).reshape(-1, x.shape[1])


def back(y, like):
    """The scaler's output in the module's layout."""
    if like.ndim == 2:
        return y
    n, c, length = like.shape
    return y.reshape(n, length, c).transpose(0, 2, 1)


def train_output(x, eps=EPS, **params):
    """A training-mode BatchNorm output: the batch normalized by its own statistics."""
    scaler = BatchNormScaler(momentum="pooled", epsilon=eps, **params).fit(rows(x))
    return back(scaler.transform(rows(x)), x)


def assert_same_state(scaler, module, rtol=RTOL):
    assert_allclose(scaler.moving_mean_, module.running_mean.numpy(), rtol=rtol, atol=1e-15)
    assert_allclose(scaler.moving_var_, module.running_var.numpy(), rtol=rtol, atol=1e-15)
    assert scaler.n_batches_seen_ == module.num_batches_tracked.item()


def _snapshot(scaler):
    return scaler.moving_mean_.copy(), scaler.moving_var_.copy(), scaler.n_batches_seen_


def _assert_unchanged(scaler, snapshot):
    assert_array_equal(scaler.moving_mean_, snapshot[0])
    assert_array_equal(scaler.moving_var_, snapshot[1])
    assert scaler.n_batches_seen_ == snapshot[2]


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, None])
def test_batchnorm_update_stats(momentum):
    # (TestNNDeviceType's _test_batchnorm_update_stats: a training pass moves
    # the buffers and num_batches_tracked by one, an eval pass changes nothing;
    # it runs momentum 0.1 on one batch, the port a stream for several momenta,
    # None being the cumulative average.  Not found in the revision of
    # test_nn.py read for this port, which may have dropped it.)
    module = nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    scaler = like_torch(momentum) if momentum != 1.0 else None
    if momentum == 1.0:
        # Documented difference: PyTorch's momentum=1 (keep only the last
        # batch) is skbn's momentum=0; skbn's momentum=1 (never move) is refused.
        scaler = like_torch(None).set_params(momentum=0.0)
        with pytest.raises(ValueError, match="momentum"):
            like_torch(0.0).partial_fit(np.ones((2, 3)))

    gen = torch.Generator().manual_seed(0)
    for step in range(6):
        data = torch.rand(4 + step, 3, generator=gen, dtype=torch.float64) * (step + 1)

        # training pass
        old_running_mean = module.running_mean.clone()
        old_running_var = module.running_var.clone()
        old_num_batches_tracked = module.num_batches_tracked.clone()
        module.train()
        out = module(data)
        scaler.partial_fit(data.numpy())
        assert not torch.equal(old_running_mean, module.running_mean)
        assert not torch.equal(old_running_var, module.running_var)
        assert old_num_batches_tracked + 1 == module.num_batches_tracked
        assert_same_state(scaler, module)
        assert_allclose(out.detach().numpy(), train_output(data), rtol=RTOL, atol=1e-12)

        # eval pass
        module.eval()
        old_running_mean = module.running_mean.clone()
        old_running_var = module.running_var.clone()
        old_num_batches_tracked = module.num_batches_tracked.clone()
        before = _snapshot(scaler)
        out = module(data)
        ours = scaler.transform(data.numpy())
        assert torch.equal(old_running_mean, module.running_mean)
        assert torch.equal(old_running_var, module.running_var)
        assert torch.equal(old_num_batches_tracked, module.num_batches_tracked)
        _assert_unchanged(scaler, before)
        assert_allclose(ours, out.detach().numpy(), rtol=RTOL, atol=1e-12)

    # the running variance is built from the unbiased batch variances
    last = data.numpy()
    if momentum is None:
        # the cumulative average of the six batches' statistics
        gen = torch.Generator().manual_seed(0)
        batches = [
            torch.rand(4 + s, 3, generator=gen, dtype=torch.float64).numpy() * (s + 1)
            for s in range(6)
        ]
        assert_allclose(
            scaler.moving_var_, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0)
        )
    elif momentum == 1.0:
        assert_allclose(scaler.moving_var_, last.var(axis=0, ddof=1), rtol=1e-12)


def test_batchnorm_simple_average():
    module = nn.BatchNorm1d(3, momentum=None, dtype=torch.float64)
    zeros = torch.zeros(3, dtype=torch.float64)
    ones = torch.ones(3, dtype=torch.float64)
    assert torch.equal(module.running_mean, zeros)
    assert torch.equal(module.running_var, ones)

    gen = torch.Generator().manual_seed(1)
    data1 = torch.rand(4, 3, generator=gen, dtype=torch.float64)
    data2 = torch.rand(4, 3, generator=gen, dtype=torch.float64)

    # 1st pass
    res1 = module(data1)
    running_mean1 = module.running_mean.clone()
    running_var1 = module.running_var.clone()
    assert not torch.equal(running_mean1, zeros)
    assert not torch.equal(running_var1, ones)
    scaler1 = like_torch(None).partial_fit(data1.numpy())
    assert_same_state(scaler1, module)
    assert_allclose(res1.detach().numpy(), train_output(data1), rtol=RTOL, atol=1e-12)

    # reset stats (the scaler: fit forgets everything first)
    module.reset_running_stats()
    assert torch.equal(module.running_mean, zeros)
    assert torch.equal(module.running_var, ones)

    # 2nd pass
    res2 = module(data2)
    running_mean2 = module.running_mean.clone()
    running_var2 = module.running_var.clone()
    assert not torch.equal(running_mean2, zeros)
    assert not torch.equal(running_var2, ones)
    scaler2 = like_torch(None).fit(data2.numpy())
    assert_same_state(scaler2, module)

    # reset stats
    module.reset_running_stats()
    assert torch.equal(module.running_mean, zeros)
    assert torch.equal(module.running_var, ones)

    # 3rd (combined) pass
    res3 = module(data1)
    res4 = module(data2)
    assert torch.equal(res3, res1)
    assert torch.equal(res4, res2)
    assert_allclose(module.running_mean, (running_mean1 + running_mean2) / 2, rtol=1e-12)
    assert_allclose(module.running_var, (running_var1 + running_var2) / 2, rtol=1e-12)

    scaler = like_torch(None).partial_fit(data1.numpy()).partial_fit(data2.numpy())
    assert_same_state(scaler, module)
    assert_allclose(scaler.moving_mean_, (scaler1.moving_mean_ + scaler2.moving_mean_) / 2)
    assert_allclose(scaler.moving_var_, (scaler1.moving_var_ + scaler2.moving_var_) / 2)


@pytest.mark.parametrize("ndim", [2, 3])
def test_batchnorm_eval(ndim):
    # (the original also compares the gradients of the two passes; the scaler
    # has none)
    module = nn.BatchNorm1d(3, dtype=torch.float64)
    module.eval()
    scaler = BatchNormScaler.from_torch(module)
    assert_same_state(scaler, module)

    gen = torch.Generator().manual_seed(2)
    data = torch.rand([3] * ndim, generator=gen, dtype=torch.float64)

    # 1st pass
    res1 = module(data)
    ours1 = back(scaler.transform(rows(data)), data)
    # 2nd pass
    res2 = module(data)
    ours2 = back(scaler.transform(rows(data)), data)
    assert torch.equal(res1, res2)
    assert_array_equal(ours1, ours2)
    assert_allclose(ours1, res1.detach().numpy(), rtol=RTOL, atol=1e-12)

    # the same after training steps (the eval output uses the running statistics)
    module.train()
    scaler = like_torch()
    for _ in range(3):
        batch = torch.rand([4] + [3] * (ndim - 1), generator=gen, dtype=torch.float64) * 5 + 2
        module(batch)
        scaler.partial_fit(rows(batch))
    module.eval()
    assert_same_state(scaler, module)
    assert_allclose(
        back(scaler.transform(rows(data)), data), module(data).detach().numpy(), rtol=RTOL
    )

    # track_running_stats=False: train and eval both normalize by the batch
    module = nn.BatchNorm1d(3, track_running_stats=False, dtype=torch.float64)

    data = torch.rand(4, 3, generator=gen, dtype=torch.float64)

    # 1st pass
    res1 = module(data)
    # set eval
    module.eval()
    # 2nd pass
    res2 = module(data)
    assert torch.equal(res1, res2)
    assert_allclose(train_output(data), res1.detach().numpy(), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_batchnorm_affine(ndim):
    # Compare affine against no-op weights and bias
    module = nn.BatchNorm1d(3, affine=False, dtype=torch.float64)
    module_affine = nn.BatchNorm1d(3, affine=True, dtype=torch.float64)
    with torch.no_grad():
        module_affine.weight.fill_(1.0)
        module_affine.bias.zero_()

    gen = torch.Generator().manual_seed(3)
    data = torch.rand([3] * ndim, generator=gen, dtype=torch.float64)

    # With weights all ones and bias all zeros
    res1 = module_affine(data)
    # Without any weights or bias
    res2 = module(data)
    assert torch.equal(res1, res2)

    # the scaler: center/scale with gamma 1 and beta 0, and without them
    ours1 = train_output(data, center=True, scale=True, gamma=1.0, beta=0.0)
    ours2 = train_output(data, center=False, scale=False)
    assert_array_equal(ours1, ours2)
    assert_allclose(ours1, res1.detach().numpy(), rtol=RTOL, atol=1e-12)

    # the running statistics and eval outputs of both agree with the scaler's
    for m, params in [(module_affine, {}), (module, dict(center=False, scale=False))]:
        scaler = like_torch(**params).partial_fit(rows(data))
        assert_same_state(scaler, m)
        m.eval()
        assert_allclose(
            back(scaler.transform(rows(data)), data), m(data).detach().numpy(), rtol=RTOL
        )
        assert_same_state(BatchNormScaler.from_torch(m), m)


def test_BatchNorm_empty():
    mod = torch.nn.BatchNorm2d(3, dtype=torch.float64)
    inp = torch.randn(0, 3, 2, 2, dtype=torch.float64)
    out = mod(inp)
    assert out.shape == inp.shape

    assert torch.equal(mod.running_mean, torch.tensor([0.0, 0, 0], dtype=torch.float64))
    assert torch.equal(mod.running_var, torch.tensor([1.0, 1, 1], dtype=torch.float64))

    # Documented difference (docs/refusals.md): the scaler refuses an empty
    # batch with a ValueError, and, like the module, keeps its statistics.
    scaler = BatchNormScaler.from_torch(nn.BatchNorm1d(3, dtype=torch.float64))
    before = _snapshot(scaler)
    empty = inp.numpy().transpose(0, 2, 3, 1).reshape(-1, 3)
    with pytest.raises(ValueError, match="0 sample"):
        scaler.partial_fit(empty)
    _assert_unchanged(scaler, before)
    assert_allclose(scaler.moving_mean_, mod.running_mean.numpy())
    assert_allclose(scaler.moving_var_, mod.running_var.numpy())


def test_batch_norm_update_stats():
    input = torch.rand(0, 1, dtype=torch.float64)
    running_mean = torch.rand(1, dtype=torch.float64)
    running_var = torch.rand(1, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="input tensor must have at least one element"):
        torch.batch_norm_update_stats(
            input=input, momentum=0.0, running_mean=running_mean, running_var=running_var
        )
    # the scaler refuses it too (a ValueError, docs/refusals.md), changing nothing
    scaler = like_torch(1.0).partial_fit(np.array([[0.25], [0.75]]))
    before = _snapshot(scaler)
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        scaler.partial_fit(input.numpy())
    _assert_unchanged(scaler, before)


def test_batchnorm_buffer_update_when_stats_are_not_tracked():
    input_size = (32, 4)
    # Instantiate BN with buffers that are not None
    bn = nn.BatchNorm1d(input_size[1], track_running_stats=True, dtype=torch.float64)
    scaler = BatchNormScaler.from_torch(bn)
    # Use buffers for normalization but don't update them
    bn.track_running_stats = False
    # (a module that tracks no statistics has none to export: refused)
    with pytest.raises(ValueError, match="track_running_stats=False"):
        BatchNormScaler.from_torch(bn)
    # Store initial values
    num_batches = bn.num_batches_tracked.clone()
    running_mean = bn.running_mean.clone()
    running_var = bn.running_var.clone()
    # Forward random tensor
    x = torch.rand(input_size, dtype=torch.float64)
    out = bn(x)
    # Ensure none of the buffers has been updated
    assert torch.equal(num_batches, bn.num_batches_tracked)
    assert torch.equal(running_mean, bn.running_mean)
    assert torch.equal(running_var, bn.running_var)

    # The scaler's only update is partial_fit/fit: transform and
    # inverse_transform never touch the statistics; the output without
    # updates is the batch normalized by its own statistics.
    before = _snapshot(scaler)
    scaler.transform(x.numpy())
    scaler.inverse_transform(x.numpy())
    _assert_unchanged(scaler, before)
    assert_allclose(train_output(x), out.detach().numpy(), rtol=RTOL, atol=1e-12)


def test_batchnorm_load_state_dict():
    bn = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    assert bn.state_dict()["num_batches_tracked"] == torch.tensor(0)

    bn.num_batches_tracked = torch.tensor(10)
    assert bn.state_dict()["num_batches_tracked"] == torch.tensor(10)

    empty_dict = OrderedDict()
    bn.load_state_dict(empty_dict, strict=False)
    assert bn.state_dict()["num_batches_tracked"] == torch.tensor(10)

    # num_batches_tracked is n_batches_seen_, both ways
    scaler = BatchNormScaler.from_torch(bn)
    assert scaler.n_batches_seen_ == 10
    exported = scaler.to_torch(dtype=torch.float64)
    assert exported.state_dict()["num_batches_tracked"] == torch.tensor(10)
    exported.load_state_dict(empty_dict, strict=False)
    assert exported.state_dict()["num_batches_tracked"] == torch.tensor(10)
    # and both count on from there
    bn.train()
    exported.train()
    x = torch.rand(5, 3, dtype=torch.float64)
    bn(x)
    exported(x)
    scaler.partial_fit(x.numpy())
    assert scaler.n_batches_seen_ == bn.num_batches_tracked.item() == 11
    assert exported.num_batches_tracked.item() == 11
    assert_same_state(scaler, bn)


def test_batchnorm_raises_error_if_less_than_one_value_per_channel():
    x = torch.rand(10, dtype=torch.float64)[None, :, None]
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(10, dtype=torch.float64)(x)
    # Documented difference (BatchNormScaler docstring, ``unbiased``): one
    # value per feature is accepted; it updates the mean, not the unbiased
    # variance, which m / (m - 1) leaves undefined.
    scaler = like_torch()
    scaler.partial_fit(rows(x))
    assert_allclose(scaler.moving_mean_, 0.1 * x.numpy().ravel(), rtol=1e-12)
    assert_array_equal(scaler.moving_var_, np.ones(10))
    assert scaler.n_batches_seen_ == 1
