"""Flax's own BatchNorm tests, ported, applied to modules exported by skbn.

Ported from google/flax (Apache License 2.0), commit 18f8f311 (Flax 0.12.8):

* ``tests/linen/linen_test.py``: ``test_batch_norm`` (with and without a
  mask), run on ``linen.BatchNorm`` and on ``nnx.BatchNorm``;
* ``tests/nnx/nn/normalization_test.py``: ``test_nnx_linen_batchnorm_equivalence``
  over ``dtype``, ``param_dtype``, ``use_fast_variance`` and masks;
* ``tests/nnx/module_test.py``: ``test_set_attributes``, ``test_view``;
* ``tests/nnx/integration_test.py``: ``test_shared_modules_pure`` (split /
  merge under ``jax.jit``);
* ``tests/nnx/graph_utils_test.py``: ``test_merge_different_graphdefs_error``.

The test names are the originals, absltest parameters became pytest ones.
Each test keeps Flax's own assertions and runs them where skbn's export takes
the place of a fresh module (a module exported by ``to_flax`` starts from a
fitted scaler's statistics instead of mean 0 and variance 1, so the expected
moving averages start from those), then also holds the scaler against the
module: ``partial_fit`` on the batch the module trained on gives its
statistics, ``transform`` its eval output.  Flax's complex-number tests
(skbn is real-valued) and its ``vmap`` / ``scan`` tests (stacked modules hold
one set of statistics per slice) are not ported.
"""

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx

from skbn import BatchNormScaler


def exported(n_features, *, seed=0, momentum=0.9, epsilon=1e-5, **kwargs):
    """A scaler (init="keras", Flax's rule) fitted on a few batches, and its export."""
    rng = np.random.default_rng(seed)
    scaler = BatchNormScaler(
        momentum=momentum,
        epsilon=epsilon,
        init="keras",
        gamma=rng.uniform(0.5, 2.0, n_features),  # as if learned
        beta=rng.normal(0.0, 1.0, n_features),
    )
    for _ in range(5):
        scaler.partial_fit(rng.normal(0.5, 1.5, size=(16, n_features)))
    return scaler, scaler.to_flax(**kwargs)


def linen_variables(module):
    """An ``nnx.BatchNorm``'s state as ``linen.BatchNorm`` variables."""
    return {
        "params": {"scale": module.scale[...], "bias": module.bias[...]},
        "batch_stats": {"mean": module.mean[...], "var": module.var[...]},
    }


def assert_scaler_matches(scaler, mean, var, what=""):
    """``scaler``'s statistics and Flax's at float32 tolerance (data of magnitude ~2)."""
    np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-5, atol=1e-5, err_msg=what)
    np.testing.assert_allclose(scaler.moving_var_, var, rtol=1e-5, atol=1e-5, err_msg=what)


# -- tests/linen/linen_test.py -------------------------------------------------


@pytest.mark.parametrize("api", ["linen", "nnx"])
@pytest.mark.parametrize("test_mask", [True, False])
def test_batch_norm(test_mask, api):
    rng = jax.random.key(0)
    key1, key2, key3 = jax.random.split(rng, 3)
    x = jax.random.normal(key1, (4, 3, 2))
    if test_mask:
        m = jax.random.randint(key2, (4, 3, 1), minval=0, maxval=2, dtype=jnp.int32).astype(
            jnp.bool_
        )
        x = jnp.where(m, x, jnp.ones_like(x) * jnp.nan)
    else:
        m = None

    scaler, module = exported(2, momentum=0.9)
    start_mean, start_var = np.asarray(module.mean[...]), np.asarray(module.var[...])
    if api == "linen":
        model_cls = linen.BatchNorm(momentum=0.9, use_running_average=False)
        variables = linen_variables(module)  # the export instead of init's
        y, vars_out = model_cls.apply(variables, x, mutable=["batch_stats"], mask=m)
        ema = vars_out["batch_stats"]
        eval_out = linen.BatchNorm(use_running_average=True).apply(variables, x)
    else:
        eval_out = module(x)  # exported in eval mode
        module.train()
        y = module(x, mask=m)
        ema = {"mean": module.mean[...], "var": module.var[...]}
    gamma, beta = scaler.gamma_, scaler.beta_

    # Flax's assertions: the train-mode output is normalized by the batch's own
    # statistics (mean beta and variance gamma^2 with the exported affine).
    mean = y.mean((0, 1), where=m)
    var = y.var((0, 1), where=m)
    np.testing.assert_allclose(mean, beta, atol=1e-4)
    np.testing.assert_allclose(var, gamma**2, rtol=1e-4)
    # ... and the moving averages move from where they were (Flax's test starts
    # them at 0 and 1) by 0.1 of the batch statistics.
    np.testing.assert_allclose(
        ema["mean"], 0.9 * start_mean + 0.1 * x.mean((0, 1), keepdims=False, where=m), atol=1e-4
    )
    np.testing.assert_allclose(
        ema["var"], 0.9 * start_var + 0.1 * x.var((0, 1), keepdims=False, where=m), rtol=1e-4
    )

    # The scaler: eval output before the step, statistics after it (the masked
    # positions are NaN in x, which skbn leaves out of a batch, as mask does).
    X = np.asarray(x, dtype=np.float64).reshape(-1, 2)
    np.testing.assert_allclose(
        np.asarray(eval_out).reshape(-1, 2), scaler.transform(X), rtol=1e-5, atol=1e-5
    )
    scaler.partial_fit(X)
    assert_scaler_matches(scaler, ema["mean"], ema["var"])


# -- tests/nnx/nn/normalization_test.py ----------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
@pytest.mark.parametrize("param_dtype", [jnp.float32, jnp.float16])
@pytest.mark.parametrize("use_fast_variance", [True, False])
@pytest.mark.parametrize("mask", [None, np.array([True, False, True, False, True])])
def test_nnx_linen_batchnorm_equivalence(
    dtype: tp.Any,
    param_dtype: tp.Any,
    use_fast_variance: bool,
    mask: np.ndarray | None,
):
    scaler, norm_layer = exported(5, dtype=dtype, param_dtype=param_dtype)
    assert norm_layer.scale[...].dtype == param_dtype
    assert norm_layer.mean[...].dtype == jnp.float32  # statistics stay float32
    exported_stats = linen_variables(norm_layer)["batch_stats"]

    class NNXModel(nnx.Module):
        def __init__(self, dtype, param_dtype, use_fast_variance, rngs):
            # The exported module in place of nnx.BatchNorm(5, ...), set up as the
            # original test sets its fresh one.
            norm_layer.use_running_average = False
            norm_layer.use_fast_variance = use_fast_variance
            norm_layer.promote_dtype = lambda x, **kwargs: x  # ensure same behavior as Linen
            self.norm_layer = norm_layer
            self.linear = nnx.Linear(5, 4, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

        def __call__(self, x, *, mask=None):
            x = self.norm_layer(x, mask=mask)
            x = self.linear(x)
            return x

    class LinenModel(linen.Module):
        dtype: tp.Any | None = None
        param_dtype: tp.Any = jnp.float32
        use_fast_variance: bool = True

        def setup(self):
            self.norm_layer = linen.BatchNorm(
                use_running_average=False,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                use_fast_variance=use_fast_variance,
                epsilon=norm_layer.epsilon,
                momentum=norm_layer.momentum,
            )
            self.linear = linen.Dense(4, dtype=self.dtype, param_dtype=self.param_dtype)

        def __call__(self, x, *, mask=None):
            x = self.norm_layer(x, mask=mask)
            x = self.linear(x)
            return x

    rngs = nnx.Rngs(42)
    x = jax.random.normal(jax.random.key(0), (10, 5))

    linen_model = LinenModel(
        dtype=dtype, param_dtype=param_dtype, use_fast_variance=use_fast_variance
    )
    variables: dict = linen_model.init(jax.random.key(1), x)
    # The exported statistics and affine weights in the Linen model too.
    variables["params"]["norm_layer"] = linen_variables(norm_layer)["params"]
    variables["batch_stats"]["norm_layer"] = dict(exported_stats)

    nnx_model = NNXModel(
        dtype=dtype, param_dtype=param_dtype, use_fast_variance=use_fast_variance, rngs=rngs
    )
    nnx_model.linear.kernel[...] = variables["params"]["linear"]["kernel"]
    nnx_model.linear.bias[...] = variables["params"]["linear"]["bias"]

    linen_out, updates = linen_model.apply(variables, x, mask=mask, mutable=["batch_stats"])
    variables.update(updates)
    nnx_out = nnx_model(x, mask=mask)
    np.testing.assert_array_equal(linen_out, nnx_out)
    # Compare BatchNorm parameters
    np.testing.assert_array_equal(
        variables["params"]["norm_layer"]["scale"], nnx_model.norm_layer.scale[...]
    )
    np.testing.assert_array_equal(
        variables["params"]["norm_layer"]["bias"], nnx_model.norm_layer.bias[...]
    )
    np.testing.assert_array_equal(
        variables["batch_stats"]["norm_layer"]["mean"], nnx_model.norm_layer.mean[...]
    )
    np.testing.assert_array_equal(
        variables["batch_stats"]["norm_layer"]["var"], nnx_model.norm_layer.var[...]
    )

    # The scaler fed the same batch.  Flax's mask here leaves out whole
    # features; a feature without a value gets NaN statistics in Flax, while
    # skbn leaves the statistics of an all-missing feature where they were.
    keep = np.ones(5, bool) if mask is None else mask
    X = np.where(keep, np.asarray(x, dtype=np.float64), np.nan)
    before = scaler.moving_mean_.copy(), scaler.moving_var_.copy()
    scaler.partial_fit(X)
    mean, var = np.asarray(norm_layer.mean[...]), np.asarray(norm_layer.var[...])
    assert np.all(np.isnan(mean[~keep])) and np.all(np.isnan(var[~keep]))
    np.testing.assert_array_equal(scaler.moving_mean_[~keep], before[0][~keep])
    np.testing.assert_array_equal(scaler.moving_var_[~keep], before[1][~keep])
    assert_scaler_matches(scaler, np.where(keep, mean, scaler.moving_mean_),
                          np.where(keep, var, scaler.moving_var_))  # fmt: skip


# -- tests/nnx/module_test.py --------------------------------------------------


def test_set_attributes():
    class Block(nnx.Module):
        def __init__(self, din, dout, *, rngs: nnx.Rngs):
            self.linear = nnx.Linear(din, dout, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, deterministic=False)
            self.batch_norm = exported(10)[1]  # eval mode, use_running_average=True
            self.batch_norm.use_running_average = False  # as the original's fresh one

    block = Block(2, 5, rngs=nnx.Rngs(0))
    assert block.dropout.deterministic == False  # noqa: E712 (Flax's assertions)
    assert block.batch_norm.use_running_average == False  # noqa: E712

    block.set_attributes(deterministic=True, use_running_average=True)
    assert block.dropout.deterministic == True  # noqa: E712
    assert block.batch_norm.use_running_average == True  # noqa: E712

    block = Block(2, 5, rngs=nnx.Rngs(0))
    block.set_attributes(nnx.Dropout, deterministic=True)
    # Only the dropout will be modified
    assert block.dropout.deterministic == True  # noqa: E712
    assert block.batch_norm.use_running_average == False  # noqa: E712

    # And an exported module in eval mode is switched like any other.
    scaler, module = exported(10)
    x = np.random.default_rng(1).normal(size=(8, 10))
    before = np.asarray(module.mean[...])
    module.set_attributes(use_running_average=True)
    module(x)
    np.testing.assert_array_equal(module.mean[...], before)
    module.set_attributes(use_running_average=False)
    module(x)
    scaler.partial_fit(x)
    assert_scaler_matches(scaler, module.mean[...], module.var[...])


@pytest.mark.parametrize("graph", [True, False])
def test_view(graph):
    class Block(nnx.Module):
        def __init__(self, din, dout, *, rngs: nnx.Rngs):
            self.linear = nnx.Linear(din, dout, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, deterministic=False, rngs=rngs)
            self.batch_norm = exported(10)[1]
            self.batch_norm.use_running_average = False  # as the original's fresh one

    block = Block(2, 5, rngs=nnx.Rngs(0))
    assert block.dropout.deterministic == False  # noqa: E712 (Flax's assertions)
    assert block.batch_norm.use_running_average == False  # noqa: E712

    new_block = nnx.view(block, deterministic=True, use_running_average=True, graph=graph)
    assert new_block.dropout.deterministic == True  # noqa: E712
    assert new_block.batch_norm.use_running_average == True  # noqa: E712
    assert new_block.linear.kernel is block.linear.kernel
    assert new_block.batch_norm.mean is block.batch_norm.mean

    block = Block(2, 5, rngs=nnx.Rngs(0))
    new_block = nnx.view(block, only=nnx.Dropout, deterministic=True, graph=graph)
    assert new_block.dropout.deterministic == True  # noqa: E712
    assert new_block.batch_norm.use_running_average == False  # noqa: E712

    # A train-mode view of an exported (eval-mode) module trains its statistics.
    scaler, module = exported(10)
    training = nnx.view(module, use_running_average=False, graph=graph)
    assert module.use_running_average is True
    x = np.random.default_rng(2).normal(size=(8, 10))
    training(x)
    scaler.partial_fit(x)
    assert_scaler_matches(scaler, module.mean[...], module.var[...])


# -- tests/nnx/integration_test.py ---------------------------------------------


def test_shared_modules_pure():
    scalers = []

    class Block(nnx.Module):
        def __init__(self, linear: nnx.Linear, *, rngs: nnx.Rngs):
            self.linear = linear
            scaler, self.bn = exported(2, seed=len(scalers))  # in place of nnx.BatchNorm(2)
            scalers.append(scaler)

        def __call__(self, x):
            x = self.linear(x)
            x = self.bn(x)
            return nnx.relu(x)

    class Model(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs):
            shared = nnx.Linear(2, 2, rngs=rngs)
            self.block1 = Block(shared, rngs=rngs)
            self.block2 = Block(shared, rngs=rngs)

        def __call__(self, x):
            x = self.block1(x)
            x = self.block2(x)
            return x

    @jax.jit
    def train_step(state: nnx.State, graphdef: nnx.GraphDef[Model], x, y):
        model = nnx.merge(graphdef, state)
        model.set_attributes(use_running_average=False, graph=True)

        @nnx.compat.grad
        def loss_fn(model: Model):
            y_pred = model(x)
            return jnp.mean((y - y_pred) ** 2)

        grads = loss_fn(model)
        nnx.update(
            model,
            jax.tree.map(lambda w, g: w - 0.1 * g, nnx.compat.state(model, nnx.Param), grads),
        )

        return nnx.compat.split(model)

    graphdef: nnx.GraphDef[Model]
    graphdef, state = nnx.compat.split(Model(rngs=nnx.Rngs(0)))

    rng = np.random.default_rng(3)
    x = rng.uniform(size=(4, 2))
    y = rng.uniform(size=(4, 2))

    for _i in range(3):
        # What each BatchNorm sees in this step, from the parameters before it
        # (float64): the shared linear layer's output, and for block 2 the
        # linear layer applied to block 1's train-mode output.
        before = nnx.merge(graphdef, state)
        kernel = np.asarray(before.block1.linear.kernel[...], dtype=np.float64)
        bias = np.asarray(before.block1.linear.bias[...], dtype=np.float64)
        h1 = x @ kernel + bias
        bn1 = before.block1.bn
        out1 = (h1 - h1.mean(0)) / np.sqrt(h1.var(0) + bn1.epsilon)
        out1 = np.asarray(bn1.scale[...]) * out1 + np.asarray(bn1.bias[...])
        h2 = np.maximum(out1, 0) @ kernel + bias
        scalers[0].partial_fit(h1)
        scalers[1].partial_fit(h2)
        graphdef, state = train_step(state, graphdef, x, y)

    model = nnx.merge(graphdef, state)

    assert model.block1.linear.bias is not None
    assert model.block2.linear.bias is not None
    assert model.block1.linear.kernel is model.block2.linear.kernel
    assert model.block1.linear.bias is model.block2.linear.bias
    assert model.block1.bn is not model.block2.bn

    # Each exported BatchNorm trained under jit as its scaler did, and imports back.
    for scaler, bn in zip(scalers, [model.block1.bn, model.block2.bn], strict=True):
        mean, var = np.asarray(bn.mean[...]), np.asarray(bn.var[...])
        assert_scaler_matches(scaler, mean, var, "after three jitted steps")
        back = BatchNormScaler.from_flax(bn)
        np.testing.assert_array_equal(back.moving_mean_, mean)
        np.testing.assert_array_equal(back.gamma_, np.asarray(bn.scale[...]))


# -- tests/nnx/graph_utils_test.py ---------------------------------------------


def test_merge_different_graphdefs_error():
    model1 = exported(2, momentum=0.9)[1]
    model2 = exported(2, momentum=0.5)[1]  # other settings: another graph
    state1 = nnx.unpack(model1)
    state2 = nnx.unpack(model2)

    with pytest.raises(ValueError, match="GraphDef must be the same"):
        nnx.merge(state1, state2)

    # Exports with the same settings share a graphdef: one's with the other's state.
    model3 = exported(2, seed=1, momentum=0.9)[1]
    merged = nnx.merge(nnx.graphdef(model1), nnx.state(model3))
    np.testing.assert_array_equal(merged.mean[...], model3.mean[...])
