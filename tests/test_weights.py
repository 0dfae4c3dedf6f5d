"""``get_weights`` / ``set_weights`` (SPEC section 6) and the layer-equivalent arrays.

Keras order ``[gamma, beta, moving_mean, moving_variance]``, gamma left out when
``scale=False`` and beta when ``center=False``.  Every expected value below is
computed here from the scaler's own attributes or from NumPy on the data.
"""

import itertools
import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skbn import BatchNormScaler
from skbn._averaging import averaging_factor
from skbn._weights import complement, warm_count

FLAGS = list(itertools.product([True, False], repeat=2))  # (center, scale)
GAMMA = np.array([2.0, -0.5, 1.5])
BETA = np.array([0.25, 3.0, -1.0])


def data(seed=0, n=40, n_features=3):
    rng = np.random.default_rng(seed)
    return rng.normal([5.0, -2.0, 100.0], [1.0, 3.0, 10.0], size=(n, n_features))


def snapshot(scaler):
    """Every attribute, arrays copied, for an exact before/after comparison."""
    return {
        k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in scaler.__getstate__().items()
    }


def assert_same_state(scaler, before):
    after = scaler.__getstate__()
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert after[key].dtype == value.dtype, key
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        else:
            assert after[key] == value, key


def layer_formula(x, weights, epsilon):
    """A batch-normalization layer at inference, every term present."""
    sd = np.sqrt(weights["moving_variance"] + epsilon)
    return weights["gamma"] * (x - weights["moving_mean"]) / sd + weights["beta"]


@pytest.mark.parametrize("center, scale", FLAGS)
def test_get_weights_keras_order_and_omissions(center, scale):
    scaler = BatchNormScaler(center=center, scale=scale, gamma=GAMMA, beta=BETA).fit(data())
    weights = scaler.get_weights()
    expected = (
        ([scaler.gamma_] if scale else [])
        + ([scaler.beta_] if center else [])
        + [scaler.moving_mean_, scaler.moving_var_]
    )
    assert len(weights) == 2 + center + scale
    for got, want in zip(weights, expected, strict=True):
        assert got.dtype == np.float64 and got.shape == (3,)
        np.testing.assert_array_equal(got, want)
    # New arrays: editing them does not touch the scaler.
    weights[-1][:] = -7.0
    assert np.all(scaler.moving_var_ > 0)


def test_get_weights_needs_a_fitted_scaler():
    with pytest.raises(NotFittedError):
        BatchNormScaler().get_weights()


@pytest.mark.parametrize("center, scale", FLAGS)
def test_set_weights_round_trip_keeps_transform_and_counts(center, scale):
    X = data()
    scaler = BatchNormScaler(center=center, scale=scale, gamma=GAMMA, beta=BETA, batch_size=7)
    scaler.fit(X)
    before = snapshot(scaler)
    expected = scaler.transform(X)
    assert scaler.set_weights(scaler.get_weights()) is scaler
    assert_same_state(scaler, before)
    np.testing.assert_array_equal(scaler.transform(X), expected)


def test_set_weights_on_a_fitted_scaler_replaces_values_and_keeps_counts():
    X = data()
    scaler = BatchNormScaler(momentum=0.9, batch_size=10).fit(X)
    counts = (scaler.n_batches_seen_, scaler.n_samples_seen_, scaler._mean_updates_.copy())
    new = [GAMMA, BETA, np.array([1.0, 2.0, 3.0]), np.array([4.0, 0.0, 0.5])]
    scaler.set_weights(new)
    for got, want in zip(scaler.get_weights(), new, strict=True):
        np.testing.assert_array_equal(got, want)
    assert (scaler.n_batches_seen_, scaler.n_samples_seen_) == counts[:2]
    np.testing.assert_array_equal(scaler._mean_updates_, counts[2])
    # The debiased average goes on from its 4 batches with the new values.
    batch = data(1, n=10)
    alpha = averaging_factor(np.array([5]), 0.9, "debiased")[0]
    scaler.partial_fit(batch)
    np.testing.assert_allclose(
        scaler.moving_mean_, new[2] + alpha * (batch.mean(axis=0) - new[2]), rtol=1e-14
    )


@pytest.mark.parametrize("center, scale", FLAGS)
@pytest.mark.parametrize("with_mean", [True, False])
def test_set_weights_makes_an_unfitted_scaler_usable(center, scale, with_mean):
    mean, var = np.array([1.0, -2.0, 30.0]), np.array([4.0, 0.25, 9.0])
    weights = ([GAMMA] if scale else []) + ([BETA] if center else []) + [mean, var]
    scaler = BatchNormScaler(
        center=center, scale=scale, with_mean=with_mean, gamma=3.0, beta=-1.0, epsilon=0.0
    )
    scaler.set_weights(weights)
    assert scaler.n_features_in_ == 3
    assert scaler.n_samples_seen_ == 0 and scaler.n_batches_seen_ == 0
    np.testing.assert_array_equal(scaler.moving_mean_, mean)
    np.testing.assert_array_equal(scaler.moving_var_, var)
    # gamma_ / beta_ come from the weights, or from the parameters when left out.
    np.testing.assert_array_equal(scaler.gamma_, GAMMA if scale else np.full(3, 3.0))
    np.testing.assert_array_equal(scaler.beta_, BETA if center else np.full(3, -1.0))
    X = data()
    g = GAMMA if scale else 1.0
    b = BETA if center else 0.0
    m = mean if with_mean else 0.0
    np.testing.assert_allclose(scaler.transform(X), g * (X - m) / np.sqrt(var) + b, rtol=1e-14)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-13)
    assert scaler.get_feature_names_out().tolist() == ["x0", "x1", "x2"]


@pytest.mark.parametrize("init", ["debiased", "keras"])
@pytest.mark.parametrize("momentum", [0.99, 0.9, 0.5])
def test_after_set_weights_partial_fit_moves_like_a_layer(init, momentum):
    """Loaded statistics are a settled average: the next batch moves them by
    ``1 - momentum``, as a Keras layer holding them would, whatever ``init``."""
    mean, var = np.array([1.0, -2.0, 30.0]), np.array([4.0, 0.25, 9.0])
    scaler = BatchNormScaler(momentum=momentum, init=init).set_weights([GAMMA, BETA, mean, var])
    for t, batch in enumerate([data(1, n=8), data(2, n=5)]):
        scaler.partial_fit(batch)
        mean = momentum * mean + (1 - momentum) * batch.mean(axis=0)
        var = momentum * var + (1 - momentum) * batch.var(axis=0)
        np.testing.assert_allclose(scaler.moving_mean_, mean, rtol=1e-13)
        np.testing.assert_allclose(scaler.moving_var_, var, rtol=1e-13)
        assert scaler.n_batches_seen_ == t + 1
    assert scaler.n_samples_seen_ == 13


def test_after_set_weights_momentum_none_counts_the_weights_as_one_batch():
    mean, var = np.array([1.0, -2.0, 30.0]), np.array([4.0, 0.25, 9.0])
    scaler = BatchNormScaler(momentum=None, unbiased=True)
    scaler.set_weights([GAMMA, BETA, mean, var])
    batches = [data(1, n=8), data(2, n=5)]
    for batch in batches:
        scaler.partial_fit(batch)
    means = [mean] + [b.mean(axis=0) for b in batches]
    variances = [var] + [b.var(axis=0, ddof=1) for b in batches]
    np.testing.assert_allclose(scaler.moving_mean_, np.mean(means, axis=0), rtol=1e-13)
    np.testing.assert_allclose(scaler.moving_var_, np.mean(variances, axis=0), rtol=1e-13)


def test_momentum_zero_after_set_weights_takes_the_batch():
    scaler = BatchNormScaler(momentum=0.0).set_weights([GAMMA, BETA, np.ones(3), np.ones(3)])
    batch = data(1)
    scaler.partial_fit(batch)
    np.testing.assert_allclose(scaler.moving_mean_, batch.mean(axis=0), rtol=1e-14)


def test_set_weights_gives_a_feature_no_batch_updated_a_settled_count():
    """A feature that was all NaN so far takes the loaded value as a settled one."""
    X = data()
    X[:, 1] = np.nan
    scaler = BatchNormScaler(momentum=0.9).fit(X)
    assert scaler._mean_updates_[1] == 0
    loaded = np.array([1.0, 7.0, 3.0])
    scaler.set_weights([scaler.gamma_, scaler.beta_, loaded, scaler.moving_var_])
    batch = data(3, n=6)
    scaler.partial_fit(batch)
    assert scaler.moving_mean_[1] == pytest.approx(0.9 * 7.0 + 0.1 * batch[:, 1].mean(), rel=1e-14)


def test_set_weights_state_survives_pickle_and_continues_identically():
    scaler = BatchNormScaler(momentum=0.9).set_weights([GAMMA, BETA, np.ones(3), np.ones(3)])
    clone = pickle.loads(pickle.dumps(scaler))
    for s in (scaler, clone):
        s.partial_fit(data(4, n=9))
    np.testing.assert_array_equal(clone.moving_var_, scaler.moving_var_)


def test_fit_after_set_weights_forgets_them():
    X = data()
    scaler = BatchNormScaler(epsilon=0.0).set_weights([GAMMA, BETA, np.ones(3), np.ones(3)])
    scaler.fit(X)
    np.testing.assert_allclose(scaler.moving_mean_, X.mean(axis=0), rtol=1e-14)
    np.testing.assert_array_equal(scaler.gamma_, np.ones(3))


GOOD = [GAMMA, BETA, np.zeros(3), np.ones(3)]
BAD_WEIGHTS = [
    (GOOD[:3], ValueError, r"Expected 4 weight arrays \['gamma', 'beta', 'moving_mean', "
     r"'moving_variance'\].*got 3"),
    (GOOD + [np.ones(3)], ValueError, "Expected 4 weight arrays.*got 5"),
    ([GAMMA, BETA, np.zeros(3), np.ones(4)], ValueError,
     r"Expected every weight of shape \(3,\).*got shape \(4,\) for 'moving_variance'"),
    ([GAMMA, BETA, np.zeros((1, 3)), np.ones(3)], ValueError,
     r"'moving_mean' must be a 1-d array.*got shape \(1, 3\)"),
    ([GAMMA, BETA, np.zeros(3), np.array([1.0, np.nan, 1.0])], ValueError,
     r"'moving_variance' holds NaN or infinity at feature\(s\) \[1\]"),
    ([GAMMA, np.array([0.0, np.inf, 0.0]), np.zeros(3), np.ones(3)], ValueError,
     "'beta' holds NaN or infinity"),
    ([GAMMA, BETA, np.zeros(3), np.array([1.0, 1.0, -1.0])], ValueError,
     r"'moving_variance' is negative at feature\(s\) \[2\]"),
    ([GAMMA, BETA, np.zeros(3), ["a", "b", "c"]], TypeError,
     "'moving_variance' could not be converted"),
    ("gamma", TypeError, "weights must be a list of arrays"),
    (np.float64(1.0), TypeError, "weights must be a list of arrays"),
]  # fmt: skip


@pytest.mark.parametrize("weights, error, match", BAD_WEIGHTS)
@pytest.mark.parametrize("fitted", [True, False])
def test_set_weights_errors_leave_the_scaler_untouched(weights, error, match, fitted):
    scaler = BatchNormScaler(momentum=0.9)
    if fitted:
        scaler.fit(data())
    before = snapshot(scaler)
    with pytest.raises(error, match=match):
        scaler.set_weights(weights)
    assert_same_state(scaler, before)


def test_set_weights_error_names_the_fitted_width():
    scaler = BatchNormScaler().fit(data())
    before = snapshot(scaler)
    with pytest.raises(ValueError, match=r"shape \(3,\) \(this scaler was fitted on 3 features\)"):
        scaler.set_weights([np.ones(2)] * 4)
    assert_same_state(scaler, before)


def test_set_weights_expected_count_follows_center_and_scale():
    scaler = BatchNormScaler(center=False, scale=False)
    with pytest.raises(ValueError, match=r"Expected 2 weight arrays \['moving_mean', "):
        scaler.set_weights(GOOD)
    assert not hasattr(scaler, "n_features_in_")


def test_set_weights_unfitted_bad_parameter_leaves_it_unfitted():
    """gamma comes from the parameter when scale=False; a wrong one is refused."""
    scaler = BatchNormScaler(scale=False, gamma=[1.0, 2.0])
    before = snapshot(scaler)
    with pytest.raises(ValueError, match="gamma must be a scalar or an array of shape"):
        scaler.set_weights([BETA, np.zeros(3), np.ones(3)])
    assert_same_state(scaler, before)
    scaler = BatchNormScaler(momentum=1.5)
    with pytest.raises(ValueError, match="momentum"):
        scaler.set_weights(GOOD)
    assert not hasattr(scaler, "n_features_in_")


def test_set_weights_refuses_empty_weights():
    with pytest.raises(ValueError, match="at least one feature"):
        BatchNormScaler().set_weights([np.array([])] * 4)


@pytest.mark.parametrize("momentum", [0.0, 1e-300, 0.3, 0.5, 0.9, 0.99, 0.999999, 1 - 2**-53])
def test_warm_count_makes_the_debiased_step_the_keras_step(momentum):
    t = warm_count(momentum)
    assert averaging_factor(np.array([t]), momentum, "debiased")[0] == 1.0 - momentum
    assert t < np.iinfo(np.int64).max // 2
    assert warm_count(None) == 1


@pytest.mark.parametrize("value", [0.0, 0.1, 0.01, 0.3, 0.5, 0.9, 0.99, 0.999, 1.0])
def test_complement_round_trips_and_is_exact(value):
    assert complement(complement(value)) == value
    assert complement(value) == pytest.approx(1.0 - value, abs=1e-16)


@pytest.mark.parametrize("center, scale", FLAGS)
@pytest.mark.parametrize("with_mean", [True, False])
@pytest.mark.parametrize("epsilon", [0.0, 1e-3])
def test_layer_arrays_give_the_transform(center, scale, with_mean, epsilon):
    """A layer with every term present, fed ``layer_arrays``, is ``transform``:
    neutral gamma/beta, mean 0 for ``with_mean=False``, variance 1 where the
    scaler divides by 1 (a constant feature with ``epsilon=0``)."""
    X = data()
    X[:, 2] = 4.0  # constant: variance 0
    scaler = BatchNormScaler(
        center=center, scale=scale, with_mean=with_mean, epsilon=epsilon, gamma=GAMMA, beta=BETA
    ).fit(X)
    assert scaler.moving_var_[2] == 0
    arrays = scaler._export().arrays
    assert arrays["moving_variance"][2] == (1.0 if epsilon == 0 else 0.0)
    Xt = scaler.transform(X)
    assert np.all(np.isfinite(Xt))
    np.testing.assert_allclose(layer_formula(X, arrays, epsilon), Xt, rtol=1e-12, atol=1e-12)
