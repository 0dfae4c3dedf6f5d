"""``BatchNormScaler``: the update of SPEC section 3, transform, state and errors."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from exact import ExactScaler, assert_close_to_exact
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler

MODES = [
    dict(momentum=0.9, init="debiased"),
    dict(momentum=0.9, init="keras"),
    dict(momentum=None),
    dict(momentum=0.0),
    dict(momentum=0.5, init="keras"),
]


def _state(scaler):
    """Every attribute of a scaler, arrays copied, for bit-for-bit comparison."""
    return {
        k: (v.copy() if isinstance(v, np.ndarray) else v)
        for k, v in scaler.__getstate__().items()
        if k.endswith("_")
    }


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, key
            np.testing.assert_array_equal(x, y, err_msg=key, strict=True)
        else:
            assert type(x) is type(y) and x == y, key


def _stream(seed=0, n_features=3, with_nan=False):
    rng = np.random.default_rng(seed)
    batches = []
    for size in rng.integers(1, 30, size=8):
        X = rng.normal(size=(size, n_features)) * [1, 100, 0.01] + [5, -50, 1e3]
        if with_nan:
            X[rng.random(X.shape) < 0.25] = np.nan
        batches.append(X)
    return batches


# -- the update, against exact arithmetic ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("with_nan", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_stream_matches_exact_update(mode, unbiased, with_nan, weighted):
    rng = np.random.default_rng(42)
    scaler = BatchNormScaler(unbiased=unbiased, **mode)
    exact = ExactScaler(3, unbiased=unbiased, **mode)
    for X in _stream(with_nan=with_nan):
        w = rng.integers(0, 3, size=len(X)).astype(float) if weighted else None
        scaler.partial_fit(X, sample_weight=w)
        exact.partial_fit(X, w)
        assert_close_to_exact(scaler.moving_mean_, exact.mean, 1e-12, atol=1e-300)
        assert_close_to_exact(scaler.moving_var_, exact.var, 1e-10, atol=1e-300)


def test_constant_batches_by_hand():
    # Batches of constant 2, 4, 8: batch means 2, 4, 8 and variances 0.
    batches = [np.full((3, 1), c) for c in (2.0, 4.0, 8.0)]
    cumulative = BatchNormScaler(momentum=None)
    keras = BatchNormScaler(momentum=0.5, init="keras")
    debiased = BatchNormScaler(momentum=0.5)
    for X in batches:
        for s in (cumulative, keras, debiased):
            s.partial_fit(X)
    assert cumulative.moving_mean_[0] == pytest.approx(14 / 3, rel=1e-15)
    assert cumulative.moving_var_[0] == 0.0
    # keras: 0 -> 1 -> 2.5 -> 5.25; variance 1 -> 0.5 -> 0.25 -> 0.125
    assert keras.moving_mean_[0] == 5.25
    assert keras.moving_var_[0] == 0.125
    # debiased: the Keras average started at 0, divided by W_3 = 1 - 0.5^3:
    # (0.125 * 2 + 0.25 * 4 + 0.5 * 8) / 0.875 = 6
    assert debiased.moving_mean_[0] == pytest.approx(6.0, rel=1e-15)
    assert debiased.moving_var_[0] == 0.0


def test_two_batches_by_hand():
    a = np.array([[0.0], [2.0]])  # mean 1, biased var 1, unbiased var 2
    b = np.array([[4.0], [8.0], [12.0]])  # mean 8, biased var 32/3, unbiased var 16
    s = BatchNormScaler(momentum=0.75, init="keras", unbiased=True).partial_fit(a).partial_fit(b)
    assert s.moving_mean_[0] == pytest.approx(0.75 * (0.25 * 1) + 0.25 * 8)
    assert s.moving_var_[0] == pytest.approx(0.75 * (0.75 * 1 + 0.25 * 2) + 0.25 * 16)
    s = BatchNormScaler(momentum=None).partial_fit(a).partial_fit(b)
    assert s.moving_mean_[0] == 4.5
    assert s.moving_var_[0] == pytest.approx((1 + 32 / 3) / 2)


def test_single_row_batch_with_unbiased_updates_mean_only():
    s = BatchNormScaler(momentum=0.9, unbiased=True)
    s.partial_fit([[3.0, 1.0]])
    assert s.moving_mean_.tolist() == [3.0, 1.0]  # debiased: first batch exactly
    assert s.moving_var_.tolist() == [1.0, 1.0]  # untouched starting value
    s.partial_fit([[1.0, 1.0], [5.0, 3.0]])  # unbiased variances 8 and 2
    # The variance's own counter is at its first update: taken exactly.
    assert s.moving_var_.tolist() == [8.0, 2.0]
    # The mean is at its second update: alpha = 0.1 / 0.19.
    alpha = 0.1 / (1 - 0.9**2)
    assert s.moving_mean_ == pytest.approx([3 + alpha * (3 - 3), 1 + alpha * (2 - 1)])


def test_all_nan_column_leaves_feature_untouched():
    s = BatchNormScaler(momentum=0.5).partial_fit([[1.0, 2.0], [3.0, 4.0]])
    before_mean, before_var = s.moving_mean_.copy(), s.moving_var_.copy()
    s.partial_fit([[np.nan, 10.0], [np.nan, 20.0]])
    assert s.moving_mean_[0] == before_mean[0]
    assert s.moving_var_[0] == before_var[0]
    assert s.moving_mean_[1] != before_mean[1]
    np.testing.assert_array_equal(s.n_samples_seen_, [2, 4])
    assert s.n_samples_seen_.dtype == np.int64


def test_zero_weights():
    s = BatchNormScaler(momentum=0.5)
    s.partial_fit([[1.0], [100.0], [3.0]], sample_weight=[1, 0, 1])
    assert s.moving_mean_[0] == 2.0 and s.moving_var_[0] == 1.0
    assert s.n_samples_seen_ == 2.0 and isinstance(s.n_samples_seen_, float)
    # A batch of zero weights updates nothing but is counted as a batch.
    before = _state(s)
    s.partial_fit([[7.0], [9.0]], sample_weight=[0, 0])
    after = _state(s)
    assert after.pop("n_batches_seen_") == before.pop("n_batches_seen_") + 1
    assert_same_state(before, after)
    with pytest.raises(ValueError, match="weight.*zero"):
        BatchNormScaler().fit([[1.0], [2.0]], sample_weight=[0, 0])


def test_momentum_zero_is_last_batch():
    s = BatchNormScaler(momentum=0.0, init="keras")
    for X in _stream():
        s.partial_fit(X)
    last = _stream()[-1]
    np.testing.assert_array_equal(s.moving_mean_, BatchNormScaler().fit(last).moving_mean_)
    np.testing.assert_array_equal(s.moving_var_, BatchNormScaler().fit(last).moving_var_)


def test_unfitted_statistic_holds_starting_value():
    s = BatchNormScaler(unbiased=True).partial_fit([[np.nan, 1.0]])
    assert s.moving_mean_.tolist() == [0.0, 1.0]
    assert s.moving_var_.tolist() == [1.0, 1.0]


# -- fit ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_fit_with_batch_size_is_partial_fit_over_slices(batch_size):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 4))
    w = rng.random(150)
    fitted = BatchNormScaler(batch_size=batch_size, momentum=0.8).fit(X, sample_weight=w)
    manual = BatchNormScaler(momentum=0.8)
    for start in range(0, 150, batch_size):
        manual.partial_fit(
            X[start : start + batch_size], sample_weight=w[start : start + batch_size]
        )
    assert_same_state(_state(fitted), _state(manual))
    assert fitted.n_batches_seen_ == -(-150 // batch_size)


def test_fit_forgets_previous_stream():
    X = np.random.default_rng(6).normal(size=(40, 2))
    s = BatchNormScaler().partial_fit(X * 100).partial_fit(X + 5)
    s.gamma_ = np.array([3.0, 4.0])
    assert_same_state(_state(s.fit(X)), _state(BatchNormScaler().fit(X)))


def test_debiased_one_batch_is_exact_mean_and_variance():
    X = np.random.default_rng(7).normal(3, 2, size=(100, 3))
    s = BatchNormScaler().fit(X)
    np.testing.assert_allclose(s.moving_mean_, X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(s.moving_var_, X.var(axis=0), rtol=1e-13)


# -- StandardScaler equivalence ----------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_epsilon_zero_equals_standard_scaler(weighted, dtype):
    rng = np.random.default_rng(8)
    X = (rng.normal(size=(200, 5)) * [1, 10, 0.1, 1, 1] + [0, 5, -3, 0, 0]).astype(dtype)
    X[:, 3] = 4.2  # constant feature
    X[:, 4] = 0.0  # constant zero feature
    w = rng.random(200) * 3 if weighted else None
    ours = BatchNormScaler(epsilon=0).fit(X, sample_weight=w)
    ref = StandardScaler().fit(X, sample_weight=w)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=rtol)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=rtol, atol=1e-12)
    assert ours.n_samples_seen_ == pytest.approx(ref.n_samples_seen_)
    Xt = ours.transform(X)
    assert Xt.dtype == dtype
    np.testing.assert_allclose(Xt, ref.transform(X), rtol=rtol, atol=10 * rtol)
    np.testing.assert_allclose(ours.inverse_transform(Xt), X, rtol=rtol, atol=10 * rtol)


def test_nan_counts_like_standard_scaler():
    X = np.random.default_rng(9).normal(size=(30, 3))
    X[::4, 1] = np.nan
    ours = BatchNormScaler(epsilon=0).fit(X)
    ref = StandardScaler().fit(X)
    np.testing.assert_array_equal(ours.n_samples_seen_, ref.n_samples_seen_)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=1e-13)
    out = ours.transform(X)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(X))
    np.testing.assert_allclose(out, ref.transform(X), rtol=1e-12, atol=1e-14)


# -- transform ---------------------------------------------------------------------


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("with_mean", [True, False])
def test_transform_formula(center, scale, with_mean):
    rng = np.random.default_rng(10)
    X = rng.normal(2, 3, size=(50, 3))
    gamma, beta = np.array([0.5, -2.0, 3.0]), np.array([1.0, 0.0, -4.0])
    s = BatchNormScaler(
        center=center, scale=scale, with_mean=with_mean, gamma=gamma, beta=beta, epsilon=0.01
    ).fit(X)
    expected = X - X.mean(axis=0) if with_mean else X.copy()
    expected = expected / np.sqrt(X.var(axis=0) + 0.01)
    if scale:
        expected = expected * gamma
    if center:
        expected = expected + beta
    np.testing.assert_allclose(s.transform(X), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X, rtol=1e-12)


def test_zero_variance_with_zero_epsilon_divides_by_one():
    s = BatchNormScaler(epsilon=0.0).fit([[5.0, 1.0], [5.0, 3.0]])
    assert s.moving_var_[0] == 0.0
    np.testing.assert_array_equal(s.transform([[7.0, 2.0]]), [[2.0, 0.0]])


def test_inverse_transform_refuses_zero_gamma_and_names_features():
    X = pd.DataFrame({"age": [1.0, 2.0, 3.0], "km": [3.0, 5.0, 9.0]})
    s = BatchNormScaler(gamma=[1.0, 0.0]).fit(X)
    with pytest.raises(ValueError, match=r"gamma_ is 0 for feature\(s\) \['km'\]"):
        s.inverse_transform(X)
    # with scale=False gamma_ is unused, so inversion is fine
    s = BatchNormScaler(gamma=0.0, scale=False).set_output(transform="pandas").fit(X)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X)


def test_gamma_and_beta_are_kept_by_partial_fit_and_assignable():
    s = BatchNormScaler(gamma=[2.0, 3.0], beta=-1.0).partial_fit([[1.0, 2.0], [3.0, 5.0]])
    np.testing.assert_array_equal(s.gamma_, [2.0, 3.0])
    np.testing.assert_array_equal(s.beta_, [-1.0, -1.0])
    s.partial_fit([[9.0, 9.0]])
    np.testing.assert_array_equal(s.gamma_, [2.0, 3.0])
    s.gamma_ = np.array([1.0, 1.0])
    s.beta_ = np.array([0.0, 10.0])
    out = s.transform([[s.moving_mean_[0], s.moving_mean_[1]]])
    np.testing.assert_allclose(out, [[0.0, 10.0]])


def test_mean_and_var_are_read_only_aliases():
    s = BatchNormScaler().fit([[1.0], [2.0]])
    assert s.mean_ is s.moving_mean_ and s.var_ is s.moving_var_
    with pytest.raises(AttributeError):
        s.mean_ = np.zeros(1)
    with pytest.raises(AttributeError):
        BatchNormScaler().mean_  # noqa: B018


def test_transform_before_fit_raises():
    with pytest.raises(NotFittedError):
        BatchNormScaler().transform([[1.0]])


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_results_identical_for_every_n_jobs(n_jobs):
    X = np.random.default_rng(11).normal(size=(20000, 9))
    ref = BatchNormScaler(batch_size=5000).fit(X)
    got = BatchNormScaler(batch_size=5000, n_jobs=n_jobs).fit(X)
    assert_same_state(_state(ref), _state(got))
    np.testing.assert_array_equal(ref.transform(X), got.transform(X))


def test_input_not_modified_and_float32_preserved():
    X = np.random.default_rng(12).normal(size=(10, 2)).astype(np.float32)
    original = X.copy()
    s = BatchNormScaler().fit(X)
    assert s.moving_mean_.dtype == np.float64
    out = s.transform(X)
    assert out.dtype == np.float32 and out is not X
    np.testing.assert_array_equal(X, original)
    assert s.inverse_transform(out).dtype == np.float32


# -- bad input: a clear error, and nothing lost ------------------------------------


def _bad_inputs():
    good = np.ones((4, 3))
    inf = good.copy()
    inf[1, 2] = np.inf
    ninf = good.copy()
    ninf[0, 0] = -np.inf
    return [
        ("inf", dict(X=inf), ValueError, r"infinity in feature\(s\) \[2\]"),
        ("-inf", dict(X=ninf), ValueError, r"infinity in feature\(s\) \[0\]"),
        ("too few features", dict(X=np.ones((4, 2))), ValueError, "3 features"),
        ("1-d", dict(X=np.ones(3)), ValueError, "Expected 2D array"),
        ("3-d", dict(X=np.ones((2, 3, 1))), ValueError, "dim 3"),
        ("strings", dict(X=np.array([["a", "b", "c"]])), ValueError, "convert"),
        ("complex", dict(X=good + 1j), ValueError, "Complex data not supported"),
        ("object", dict(X=np.array([[object(), 1, 2]], dtype=object)), TypeError, "float"),
        ("empty", dict(X=np.ones((0, 3))), ValueError, "0 sample"),
        ("negative weight", dict(X=good, sample_weight=[1, -1, 1, 1]), ValueError, "Negative"),
        ("nan weight", dict(X=good, sample_weight=[1, np.nan, 1, 1]), ValueError, "NaN"),
        ("inf weight", dict(X=good, sample_weight=[1, np.inf, 1, 1]), ValueError, "infinity"),
        ("short weight", dict(X=good, sample_weight=[1, 1]), ValueError, r"shape \(4,\)"),
        ("2-d weight", dict(X=good, sample_weight=np.ones((4, 1))), ValueError, "1-d"),
        ("string weight", dict(X=good, sample_weight=["a"] * 4), TypeError, "sample_weight"),
    ]


@pytest.mark.parametrize(
    "case, kwargs, error, message", _bad_inputs(), ids=[c[0] for c in _bad_inputs()]
)
def test_bad_batch_raises_and_leaves_state_unchanged(case, kwargs, error, message):
    s = BatchNormScaler(momentum=0.9)
    for X in _stream(n_features=3, with_nan=True)[:3]:
        s.partial_fit(X)
    before = _state(s)
    with pytest.raises(error, match=message):
        s.partial_fit(**kwargs)
    assert_same_state(before, _state(s))
    # and the stream goes on as if the bad batch had never come
    ref = BatchNormScaler(momentum=0.9)
    for X in _stream(n_features=3, with_nan=True)[:3]:
        ref.partial_fit(X)
    last = np.arange(6.0).reshape(2, 3)
    assert_same_state(_state(s.partial_fit(last)), _state(ref.partial_fit(last)))


def test_renamed_columns_raise_and_leave_state_unchanged():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 5.0]})
    s = BatchNormScaler().partial_fit(df)
    before = _state(s)
    with pytest.raises(ValueError, match="feature names"):
        s.partial_fit(df.rename(columns={"b": "c"}))
    assert_same_state(before, _state(s))


def test_bad_gamma_length_raises_at_fit():
    with pytest.raises(ValueError, match=r"gamma must be a scalar or an array of shape"):
        BatchNormScaler(gamma=[1.0, 2.0]).fit(np.ones((3, 3)))
    s = BatchNormScaler(beta=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"beta .* \(3,\); got shape \(4,\)"):
        s.partial_fit(np.ones((3, 3)))
    assert not hasattr(s, "n_features_in_")  # a failed first batch leaves it unfitted


@pytest.mark.parametrize(
    "params",
    [
        dict(momentum=1.0),
        dict(momentum=-0.1),
        dict(momentum="fast"),
        dict(epsilon=-1e-3),
        dict(init="zeros"),
        dict(batch_size=0),
        dict(batch_size=2.5),
        dict(unbiased="yes"),
        dict(n_jobs=1.5),
    ],
)
def test_invalid_parameters_raise(params):
    s = BatchNormScaler().partial_fit(np.ones((2, 2)))
    before = _state(s)
    s.set_params(**params)
    with pytest.raises(ValueError, match="parameter of BatchNormScaler must be"):
        s.partial_fit(np.ones((2, 2)))
    assert_same_state(before, _state(s))


def test_pickle_mid_stream_resumes_bit_for_bit():
    batches = _stream(with_nan=True)
    s = BatchNormScaler(momentum=0.7, unbiased=True)
    for X in batches[:4]:
        s.partial_fit(X)
    resumed = pickle.loads(pickle.dumps(s))
    for X in batches[4:]:
        s.partial_fit(X)
        resumed.partial_fit(X)
    assert_same_state(_state(s), _state(resumed))


def test_no_warnings_on_ordinary_use():
    X = np.random.default_rng(13).normal(size=(20, 3))
    X[0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BatchNormScaler(unbiased=True, batch_size=3).fit(X).transform(X)
