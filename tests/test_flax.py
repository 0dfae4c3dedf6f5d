"""``to_flax`` / ``from_flax`` against the real ``flax.nnx.BatchNorm``.

Every expected value comes from the Flax module itself: its eval output
(``use_running_average=True``) for ``transform``, its train-mode updates for
the continuation of a stream.  Flax keeps ``mean`` / ``var`` in float32 and
computes the batch statistics in float32 (by default as ``E[x^2] - E[x]^2``),
hence the float32 tolerances (see ``assert_stats_close``).
"""

import itertools
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
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
from flax import nnx
from sklearn.exceptions import NotFittedError

from skbn import BatchNormScaler

DOCS = Path(__file__).resolve().parent.parent / "docs"


def value(variable):
    return np.asarray(variable[...], dtype=np.float64)


def infer(module, X):
    """The eval output (running statistics), as float64 NumPy."""
    return np.asarray(module(jnp.asarray(X), use_running_average=True), dtype=np.float64)


def train_step(module, X, **kwargs):
    """One train-mode call: the module updates its statistics from ``X``."""
    module(jnp.asarray(X), use_running_average=False, **kwargs)


def assert_stats_close(scaler, module, what=""):
    stats_excess(scaler, value(module.mean), value(module.var), what)


@pytest.mark.parametrize("center, scale, with_mean", FLAGS)
def test_to_flax_module_infers_like_transform(center, scale, with_mean):
    scaler = fitted(center, scale, with_mean, momentum=0.9, epsilon=1e-4)
    module = scaler.to_flax()
    assert isinstance(module, nnx.BatchNorm)
    assert module.use_running_average is True and module.axis == -1
    assert (module.momentum, module.epsilon) == (0.9, 1e-4)
    assert (module.use_bias, module.use_scale) == (center, scale)
    assert module.num_features == 4
    assert isinstance(module.mean, nnx.BatchStat) and isinstance(module.var, nnx.BatchStat)
    assert (module.scale is None) == (not scale) and (module.bias is None) == (not center)
    state = nnx.state(module)
    assert sorted(state.keys()) == sorted(["mean", "var"] + ["scale"] * scale + ["bias"] * center)
    # The weights are the scaler's, rounded to float32 (mean 0 when with_mean=False).
    mean = scaler.moving_mean_ if with_mean else np.zeros(4)
    expected = {"mean": mean, "var": scaler.moving_var_, "scale": GAMMA, "bias": BETA}
    for name, want in expected.items():
        variable = getattr(module, name)
        if variable is None:
            continue
        assert variable[...].dtype == jnp.float32, name
        kind = nnx.Param if name in ("scale", "bias") else nnx.BatchStat
        assert isinstance(variable, kind), name
        np.testing.assert_array_equal(value(variable), want.astype(np.float32), err_msg=name)
    X = batches(1, 1, 50, 50)[0]
    assert_float32_close(infer(module, X), scaler.transform(X))
    # The default mode of the exported module is eval: a plain call does not train.
    before = value(module.mean)
    assert_float32_close(np.asarray(module(X), dtype=np.float64), scaler.transform(X))
    np.testing.assert_array_equal(value(module.mean), before)


def test_train_and_eval_switch_the_exported_module():
    scaler = fitted(momentum=0.9)
    module = scaler.to_flax()
    X = batches(2, 1, 30, 30)[0]
    module.train()
    assert module.use_running_average is False
    module(X)  # updates the statistics from this batch
    scaler.set_params(init="keras").partial_fit(X)
    assert_stats_close(scaler, module, "after one train-mode call")
    module.eval()
    assert module.use_running_average is True
    assert_float32_close(np.asarray(module(X), dtype=np.float64), scaler.transform(X))


@pytest.mark.parametrize("param_dtype", [jnp.bfloat16, jnp.float16])
def test_param_dtype_stores_scale_and_bias_statistics_stay_float32(param_dtype):
    scaler = fitted(momentum=0.9)
    module = scaler.to_flax(param_dtype=param_dtype)
    assert module.scale[...].dtype == param_dtype and module.bias[...].dtype == param_dtype
    assert module.mean[...].dtype == jnp.float32 and module.var[...].dtype == jnp.float32
    np.testing.assert_array_equal(value(module.scale), GAMMA.astype(param_dtype))
    X = batches(3, 1, 30, 30)[0]
    # scale and bias rounded to 8 (bfloat16) or 11 (float16) significant bits.
    np.testing.assert_allclose(infer(module, X), scaler.transform(X), rtol=1e-2, atol=2e-2)
    back = BatchNormScaler.from_flax(module)  # the rounded weights, as float64
    np.testing.assert_array_equal(back.gamma_, GAMMA.astype(param_dtype))
    np.testing.assert_array_equal(back.beta_, BETA.astype(param_dtype))
    # The computation dtype: the output is bfloat16 when asked.
    low = scaler.to_flax(dtype=jnp.bfloat16)
    assert low(jnp.asarray(X)).dtype == jnp.bfloat16
    assert low.mean[...].dtype == jnp.float32  # statistics float32, as in Flax


@pytest.mark.parametrize("center, scale", list(itertools.product([True, False], repeat=2)))
def test_round_trip_scaler_flax_scaler(center, scale):
    scaler = fitted(center, scale, momentum=0.95, init="keras", epsilon=1e-5)
    back = BatchNormScaler.from_flax(scaler.to_flax())
    for name in ("momentum", "epsilon", "center", "scale", "unbiased", "init"):
        assert back.get_params()[name] == scaler.get_params()[name], name
    for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))  # Flax keeps float32
    assert back.n_batches_seen_ == 0 and back.n_samples_seen_ == 0
    X = batches(4, 1, 30, 30)[0]
    assert_float32_close(back.transform(X), scaler.transform(X))
    for batch in batches(5, 5):
        scaler.partial_fit(batch)
        back.partial_fit(batch)
    np.testing.assert_allclose(back.moving_mean_, scaler.moving_mean_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.moving_var_, scaler.moving_var_, rtol=1e-6)


@pytest.mark.parametrize("momentum", [0.99, 0.9, 0.5, 0.0])
@pytest.mark.parametrize("use_fast_variance", [True, False])
def test_trained_module_equals_the_scaler_on_a_stream(momentum, use_fast_variance):
    """A fresh ``nnx.BatchNorm(momentum=m)`` trained on a stream, and the scaler."""
    module = nnx.BatchNorm(
        4, momentum=momentum, use_fast_variance=use_fast_variance, rngs=nnx.Rngs(0)
    )
    scaler = BatchNormScaler(momentum=momentum, init="keras", epsilon=module.epsilon)
    for t, batch in enumerate(batches(6, 25)):
        train_step(module, batch)
        scaler.partial_fit(batch)
        assert_stats_close(scaler, module, f"batch {t + 1}")
    X = batches(7, 1, 30, 30)[0]
    assert_float32_close(infer(module, X), scaler.transform(X))


@pytest.mark.parametrize("momentum", [0.9, 0.5, 0.0])
def test_from_flax_mid_stream_continues_like_the_module(momentum):
    module = nnx.BatchNorm(4, momentum=momentum, epsilon=1e-3, rngs=nnx.Rngs(0))
    for batch in batches(8, 10):
        train_step(module, batch)
    module.scale[...] = jnp.asarray(GAMMA, jnp.float32)
    module.bias[...] = jnp.asarray(BETA, jnp.float32)
    scaler = BatchNormScaler.from_flax(module)
    params = scaler.get_params()
    assert (params["momentum"], params["epsilon"]) == (momentum, 1e-3)
    assert params["unbiased"] is False and params["init"] == "keras"
    np.testing.assert_array_equal(scaler.gamma_, GAMMA.astype(np.float32))
    np.testing.assert_array_equal(scaler.moving_var_, value(module.var))
    X = batches(9, 1, 30, 30)[0]
    assert_float32_close(scaler.transform(X), infer(module, X))
    for t, batch in enumerate(batches(10, 15)):
        train_step(module, batch)
        scaler.partial_fit(batch)
        assert_stats_close(scaler, module, f"batch {t + 1} after import")
    assert_float32_close(scaler.transform(X), infer(module, X))


@pytest.mark.parametrize("momentum", [0.9, 0.5])
def test_to_flax_mid_stream_continues_like_the_scaler(momentum):
    scaler = fitted(momentum=momentum, init="keras")
    module = scaler.to_flax()
    module.train()
    for t, batch in enumerate(batches(11, 15)):
        module(jnp.asarray(batch))
        scaler.partial_fit(batch)
        assert_stats_close(scaler, module, f"batch {t + 1} after export")
    module.eval()
    X = batches(12, 1, 30, 30)[0]
    assert_float32_close(infer(module, X), scaler.transform(X))


def test_guarded_divisor_is_exported_as_variance_one_and_comes_back():
    X = batches(13, 1, 30, 30)[0]
    X[:, 1] = 7.0
    scaler = BatchNormScaler(epsilon=0.0, gamma=GAMMA, beta=BETA, momentum=0.9).fit(X)
    assert scaler.moving_var_[1] == 0
    module = scaler.to_flax()
    assert module.epsilon == 0 and value(module.var)[1] == 1.0
    out = infer(module, X)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 1], np.float32(BETA[1]))
    assert_float32_close(out, scaler.transform(X))
    back = BatchNormScaler.from_flax(module)
    assert back.moving_var_[1] == 1.0  # the variance the export gave it
    np.testing.assert_array_equal(back.moving_var_, value(module.var))
    assert_float32_close(back.transform(X), scaler.transform(X))


def test_exports_share_a_graphdef_and_update_carries_the_state():
    a, b = fitted(momentum=0.9), fitted(momentum=0.9)
    b.partial_fit(batches(14, 1, 30, 30)[0] * 2)
    ma, mb = a.to_flax(), b.to_flax()
    assert nnx.graphdef(ma) == nnx.graphdef(mb)
    nnx.update(ma, nnx.state(mb))
    X = batches(15, 1, 30, 30)[0]
    assert_float32_close(infer(ma, X), b.transform(X))
    # Other settings are another graph.
    assert nnx.graphdef(fitted(momentum=0.5).to_flax()) != nnx.graphdef(ma)


def test_split_merge_and_train_under_jit():
    scaler = fitted(momentum=0.9, init="keras")
    graphdef, state = nnx.split(scaler.to_flax())

    @jax.jit
    def step(state, x):
        module = nnx.merge(graphdef, state)
        module.train()
        module(x)
        return nnx.state(module)

    @jax.jit
    def infer_pure(state, x):
        return nnx.merge(graphdef, state)(x)

    @nnx.jit
    def step_in_place(module, x):
        module(x, use_running_average=False)

    stream = batches(16, 12, 32, 32)  # one shape: one compilation
    for batch in stream[:6]:
        state = step(state, jnp.asarray(batch))
        scaler.partial_fit(batch)
    module = nnx.merge(graphdef, state)
    assert module.use_running_average is True  # train() inside jit changed a copy
    assert_stats_close(scaler, module, "after jitted steps")
    X = stream[-1]
    assert_float32_close(np.asarray(infer_pure(state, X), np.float64), scaler.transform(X))
    for batch in stream[6:]:
        step_in_place(module, jnp.asarray(batch))
        scaler.partial_fit(batch)
    assert_stats_close(scaler, module, "after nnx.jit steps")
    back = BatchNormScaler.from_flax(module)
    assert_float32_close(back.transform(X), scaler.transform(X))


def test_state_saved_and_loaded_without_orbax(tmp_path):
    scaler = fitted(momentum=0.9, center=False)
    module = scaler.to_flax()
    pure = nnx.to_pure_dict(nnx.state(module))
    np.savez(tmp_path / "bn.npz", **{k: np.asarray(v) for k, v in pure.items()})
    with np.load(tmp_path / "bn.npz") as saved:
        loaded = {k: saved[k] for k in saved.files}
    assert sorted(loaded) == ["mean", "scale", "var"]
    # A module of the same settings, created abstractly (no arrays), then filled.
    abstract = nnx.eval_shape(
        lambda: nnx.BatchNorm(
            4, use_running_average=True, momentum=0.9, epsilon=scaler.epsilon,
            use_bias=False, rngs=nnx.Rngs(0),
        )
    )  # fmt: skip
    graphdef, state = nnx.split(abstract)
    nnx.replace_by_pure_dict(state, loaded)
    restored = nnx.merge(graphdef, state)
    X = batches(17, 1, 30, 30)[0]
    np.testing.assert_array_equal(infer(restored, X), infer(module, X))
    back = BatchNormScaler.from_flax(restored)
    for got, want in zip(back.get_weights(), scaler.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_mask_is_partial_fit_of_the_unmasked_values():
    """Flax's ``mask`` leaves values out of the batch statistics; NaN does in skbn."""
    module = nnx.BatchNorm(4, momentum=0.8, rngs=nnx.Rngs(0))
    scaler = BatchNormScaler(momentum=0.8, init="keras")
    rng = np.random.default_rng(18)
    for t, batch in enumerate(batches(18, 10, 8, 30)):
        mask = rng.random(batch.shape) < 0.7
        mask[:2] = True  # at least two values per feature
        if t % 2:
            mask[:] = mask[:, :1]  # whole rows
        train_step(module, batch, mask=jnp.asarray(mask))
        scaler.partial_fit(np.where(mask, batch, np.nan))
        assert_stats_close(scaler, module, f"batch {t + 1}")


def test_to_flax_refusals():
    with pytest.raises(NotFittedError):
        BatchNormScaler().to_flax()
    for momentum in (None, "pooled"):
        scaler = fitted(momentum=None)
        scaler.momentum = momentum  # as set_params would, after fitting
        with pytest.raises(
            ValueError,
            match=rf"momentum={re.escape(repr(momentum))} to Flax.*no cumulative or pooled "
            r"average.*float momentum.*set_params\(momentum=0.99\)",
        ):
            scaler.to_flax()
    scaler = BatchNormScaler(epsilon=0.0).set_weights(
        [GAMMA, BETA, np.array([0.0, -1e39, 0.0, 0.0]), np.array([1.0, 1.0, 1e-60, 1.0])]
    )
    with pytest.raises(ValueError, match=r"stores moving_mean as float32, moving_variance as "
                       r"float32 and computes in float32.*'moving_mean': \[1\].*"
                       r"'moving_variance': \[2\]"):  # fmt: skip
        scaler.to_flax()
    scaler = BatchNormScaler(gamma=np.array([1.0, 1e5, 1.0, 1.0])).fit(batches(19, 1)[0])
    with pytest.raises(ValueError, match=r"stores gamma as float16.*'gamma': \[1\]"):
        scaler.to_flax(param_dtype=jnp.float16)


def test_momentum_none_exports_after_set_params():
    """The suggested fix keeps the fitted statistics."""
    scaler = fitted(momentum=None)
    module = scaler.set_params(momentum=0.99).to_flax()
    np.testing.assert_array_equal(value(module.mean), scaler.moving_mean_.astype("f4"))


def test_from_flax_accepts_axis_one():
    module = nnx.BatchNorm(4, axis=1, use_scale=False, rngs=nnx.Rngs(0))
    scaler = BatchNormScaler.from_flax(module)
    assert scaler.n_features_in_ == 4 and scaler.get_params()["scale"] is False


def test_from_flax_learned_affine_survives_refit():
    module = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
    module.scale[...] = jnp.asarray(GAMMA, jnp.float32)
    module.bias[...] = jnp.asarray(BETA, jnp.float32)
    scaler = BatchNormScaler.from_flax(module)
    scaler.fit(batches(20, 1, 30, 30)[0])
    np.testing.assert_array_equal(scaler.gamma_, GAMMA.astype(np.float32))
    np.testing.assert_array_equal(scaler.beta_, BETA.astype(np.float32))


def test_from_flax_refusals():
    with pytest.raises(TypeError, match="expects a flax.nnx.BatchNorm; got Linear"):
        BatchNormScaler.from_flax(nnx.Linear(4, 4, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="normalizes axis 0; .*axis=-1 or axis=1"):
        BatchNormScaler.from_flax(nnx.BatchNorm(4, axis=0, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="momentum=1.0; BatchNormScaler needs a momentum"):
        BatchNormScaler.from_flax(nnx.BatchNorm(4, momentum=1.0, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="epsilon=-1.0; it must be >= 0"):
        BatchNormScaler.from_flax(nnx.BatchNorm(4, epsilon=-1.0, rngs=nnx.Rngs(0)))
    module = nnx.BatchNorm(4, epsilon=0.0, rngs=nnx.Rngs(0))
    module.var[...] = jnp.asarray([1.0, 0.0, 1.0, 1.0], jnp.float32)
    with pytest.raises(
        ValueError, match=r"epsilon=0 and a moving variance of 0 at feature\(s\) \[1\]"
    ):
        BatchNormScaler.from_flax(module)
    module = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
    module.mean[...] = jnp.asarray([0.0, 0.0, np.nan, 0.0], jnp.float32)
    with pytest.raises(ValueError, match=r"'moving_mean' holds NaN or infinity at .*\[2\]"):
        BatchNormScaler.from_flax(module)

    @nnx.vmap(in_axes=0, out_axes=0)
    def stacked(rngs):
        return nnx.BatchNorm(4, rngs=rngs)

    with pytest.raises(ValueError, match=r"of shape \(4,\).*nnx.vmap or nnx.scan"):
        BatchNormScaler.from_flax(stacked(nnx.Rngs(0).split(3)))


def test_missing_flax_gives_the_install_hint(monkeypatch):
    scaler = fitted()
    monkeypatch.setitem(sys.modules, "flax", None)
    with pytest.raises(ImportError, match=r'pip install "skbn\[flax\]"'):
        scaler.to_flax()
    with pytest.raises(ImportError, match=r'pip install "skbn\[flax\]"'):
        BatchNormScaler.from_flax(object())


def test_the_flax_example_of_the_interop_page_runs():
    text = (DOCS / "interop.md").read_text()
    section = text.split("\n## Flax")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the Flax section has a python example"
    for code in blocks:
        exec(compile(code, "interop.md (Flax)", "exec"), {})
