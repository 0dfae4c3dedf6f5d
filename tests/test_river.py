"""``skbn.river.RiverBatchNormScaler`` against the real River and the estimator.

Expected values come from :class:`skbn.BatchNormScaler` fed the same batches
(a wide array, NaN where a row lacks a feature), from River's own scalers and
checks, or from the data itself; none is a number printed by skbn.
"""

import copy
import importlib
import math
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from river import checks, compose, datasets, evaluate, linear_model, metrics, preprocessing
from river.checks import common
from sklearn.exceptions import NotFittedError

from skbn import BatchNormScaler
from skbn.river import RiverBatchNormScaler

ROOT = Path(__file__).resolve().parent.parent

PARAMS = [
    {},
    {"momentum": None},
    {"momentum": 0.8, "init": "keras", "unbiased": True},
    {"momentum": 0.5, "epsilon": 0.0, "with_mean": False, "gamma": 2.0, "beta": -1.0},
    {"momentum": 0.9, "center": False, "scale": False},
    {"momentum": "pooled", "with_std": False, "gamma": 3.0},
]


def rows_of(X, features):
    return [dict(zip(features, map(float, r), strict=True)) for r in X]


def wide(rows, features):
    """The rows as one array over ``features``, NaN where a row lacks one."""
    return np.array([[row.get(f, np.nan) for f in features] for row in rows], dtype=float)


def reference(rows, features, batch_size, **params):
    """A BatchNormScaler fed consecutive slices of ``batch_size`` rows."""
    scaler = BatchNormScaler(**params)
    for start in range(0, len(rows) - batch_size + 1, batch_size):
        scaler.partial_fit(wide(rows[start : start + batch_size], features))
    return scaler


def stream(seed, n, features=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 10, len(features))
    spreads = rng.uniform(0.5, 5, len(features))
    return rows_of(offsets + spreads * rng.standard_normal((n, len(features))), features)


def assert_same_stats(model, scaler, rtol=0.0):
    """``model``'s statistics are ``scaler``'s (whose columns are ``model.features``)."""
    features = model.features
    np.testing.assert_allclose(
        [model.moving_mean[f] for f in features], scaler.moving_mean_, rtol=rtol, atol=0
    )
    np.testing.assert_allclose(
        [model.moving_var[f] for f in features], scaler.moving_var_, rtol=rtol, atol=0
    )
    counts = np.broadcast_to(scaler.n_samples_seen_, (len(features),))
    assert [model.n_samples_seen[f] for f in features] == counts.tolist()
    assert model.n_batches_seen == scaler.n_batches_seen_


# -- River's conformance checks --------------------------------------------------


@pytest.mark.parametrize("params", list(RiverBatchNormScaler._unit_test_params()), ids=str)
def test_river_check_estimator(params):
    model = RiverBatchNormScaler(**params)
    assert model._unit_test_skips() == {"check_learn_many_matches_learn_one"}
    checks.check_estimator(model)


@pytest.mark.parametrize("params", list(RiverBatchNormScaler._unit_test_params()), ids=str)
def test_the_skipped_check_fails_because_a_batch_is_not_a_sequence_of_rows(params):
    """learn_many (one batch) and a learn_one loop (a batch per batch_size rows)
    learn different statistics, hence the one entry of _unit_test_skips."""
    with pytest.raises(AssertionError, match="key "):
        common.check_learn_many_matches_learn_one(
            RiverBatchNormScaler(**params), datasets.TrumpApproval().take(200)
        )


def test_it_is_a_river_mini_batch_transformer():
    from river import base

    model = RiverBatchNormScaler()
    assert isinstance(model, base.MiniBatchTransformer)
    assert not model._supervised
    assert model.clone(include_attributes=False)._get_params() == model._get_params()


# -- learn_many: one partial_fit batch ---------------------------------------------


@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_learn_many_is_one_partial_fit_and_transform_many_is_transform(params):
    rng = np.random.default_rng(1)
    columns = ["x2", "x0", "x1"]  # the statistics are kept in sorted order
    model = RiverBatchNormScaler(**params)
    scaler = BatchNormScaler(**params)
    for n in (5, 17, 2, 40):
        X = pd.DataFrame(rng.normal(3, 2, (n, 3)), columns=columns)
        model.learn_many(X)
        scaler.partial_fit(X[sorted(columns)].to_numpy())
        assert model.features == sorted(columns)
        assert_same_stats(model, scaler)

    index = pd.Index([f"row{i}" for i in range(6)], name="id")
    X = pd.DataFrame(rng.normal(3, 2, (6, 3)), columns=columns, index=index)
    X["label"] = list("uvwxyz")  # never learned: passes through
    out = model.transform_many(X)
    assert list(out.columns) == list(X.columns) and out.index.equals(X.index)
    expected = scaler.transform(X[sorted(columns)].to_numpy())
    np.testing.assert_array_equal(out[sorted(columns)].to_numpy(), expected)
    assert out["label"].tolist() == list("uvwxyz")


def test_transform_many_int_columns_missing_values_and_absent_features():
    model = RiverBatchNormScaler(epsilon=0.0)
    model.learn_many(pd.DataFrame({"a": [1.0, 2.0, 4.0, 9.0], "b": [0.0, 2.0, np.nan, 1.0]}))
    X = pd.DataFrame({"b": [1, 3], "new": [7, 8]}, index=[10, 20])
    out = model.transform_many(X)
    # b: mean and biased variance of its three values, computed here
    b = np.array([0.0, 2.0, 1.0])
    np.testing.assert_allclose(out["b"], (np.array([1, 3]) - b.mean()) / b.std(), rtol=1e-15)
    assert out["b"].dtype == np.float64
    assert out["new"].tolist() == [7, 8] and out["new"].dtype == X["new"].dtype
    assert list(out.index) == [10, 20]
    assert model.n_samples_seen == {"a": 4, "b": 3}


def test_learn_many_with_a_missing_feature_leaves_its_statistics():
    model = RiverBatchNormScaler(momentum=0.5, init="keras")
    model.learn_many(pd.DataFrame({"a": [1.0, 3.0], "b": [10.0, 30.0]}))
    before = model.moving_mean["b"], model.moving_var["b"]
    model.learn_many(pd.DataFrame({"a": [5.0, 7.0]}))  # b is absent: missing
    assert (model.moving_mean["b"], model.moving_var["b"]) == before
    assert model.moving_mean["a"] == 0.5 * (0.5 * 0.0 + 0.5 * 2.0) + 0.5 * 6.0  # Keras's rule
    assert model.n_samples_seen == {"a": 4, "b": 2} and model.n_batches_seen == 2


def test_empty_frames():
    model = RiverBatchNormScaler()
    model.learn_many(pd.DataFrame({"a": []}, dtype=float))
    assert model.n_batches_seen == 0 and model.features == []
    model.learn_many(pd.DataFrame({"a": [1.0, 2.0]}))
    out = model.transform_many(pd.DataFrame({"a": []}, dtype=float))
    assert out.shape == (0, 1) and list(out.columns) == ["a"]


# -- learn_one: one batch every batch_size rows --------------------------------------


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_learn_one_is_partial_fit_on_consecutive_slices(params, batch_size):
    rows = stream(2, 50)
    model = RiverBatchNormScaler(batch_size=batch_size, **params)
    for i, x in enumerate(rows, 1):
        model.learn_one(x)
        assert model.n_batches_seen == i // batch_size
        assert model.n_buffered == i % batch_size
    scaler = reference(rows, model.features, batch_size, **params)
    assert_same_stats(model, scaler)
    for x in stream(3, 5):
        expected = scaler.transform(wide([x], model.features))[0]
        assert model.transform_one(x) == dict(zip(model.features, expected, strict=True))


def test_transform_one_before_the_first_batch_returns_the_row_unchanged():
    model = RiverBatchNormScaler(batch_size=3)
    x = {"a": 4.0, "b": -2, "c": "text"}
    for _ in range(2):
        model.learn_one({"a": 1.0, "b": 2.0})
        out = model.transform_one(x)
        assert out == x and out is not x
        assert model.transform_many(pd.DataFrame([x])).equals(pd.DataFrame([x]))
    model.learn_one({"a": 1.0, "b": 2.0})  # the third row: the first batch
    assert model.transform_one(x)["a"] != 4.0


def test_transform_one_keys_order_missing_and_unknown_values():
    model = RiverBatchNormScaler(batch_size=2, epsilon=0.0)
    model.learn_one({"a": 1.0, "b": 10.0})
    model.learn_one({"a": 3.0, "b": 30.0})
    x = {"z": "kept", "b": 40.0, "a": None, "w": 5}
    out = model.transform_one(x)
    assert list(out) == list(x)  # same keys, same order
    assert out["z"] == "kept" and out["w"] == 5
    assert math.isnan(out["a"])
    assert out["b"] == (40.0 - 20.0) / 10.0  # the batch's mean and biased std, by hand
    assert x == {"z": "kept", "b": 40.0, "a": None, "w": 5}


# -- features come and go -------------------------------------------------------------


def changing_stream(seed, n=120):
    """Rows whose features appear, vanish and are missing now and then."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, x in enumerate(stream(seed, n, features=("a", "b", "c", "d", 7))):
        if i < 30:
            x.pop("c")  # c appears after 30 rows
        if i < 55:
            x.pop(7)  # 7 appears later still
        if 60 <= i < 90:
            x.pop("b")  # b is away for 30 rows
        if i >= 100:
            x.pop("a")  # a disappears
        for f in list(x):
            if rng.random() < 0.1:
                del x[f]  # missing now and then
        keys = list(x)
        rng.shuffle(keys)
        rows.append({f: x[f] for f in keys})
    return rows


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_features_come_and_go_as_missing_values_of_one_scaler(params, batch_size):
    rows = changing_stream(4)
    model = RiverBatchNormScaler(batch_size=batch_size, **params)
    for x in rows:
        model.learn_one(x)
    assert set(model.features) == {"a", "b", "c", "d", 7}
    # One scaler over every feature from the start, NaN where a row lacks one:
    # a feature first seen later starts its own statistics there.
    scaler = reference(rows, model.features, batch_size, **params)
    assert_same_stats(model, scaler, rtol=1e-13)
    for x in changing_stream(5, 20):
        out = model.transform_one(x)
        scaled = scaler.transform(wide([x], model.features))[0]
        expected = dict(zip(model.features, scaled, strict=True))
        assert list(out) == list(x)
        np.testing.assert_allclose([out[f] for f in x], [expected[f] for f in x], rtol=1e-13)


def test_features_come_and_go_through_learn_many():
    rng = np.random.default_rng(6)
    model = RiverBatchNormScaler(momentum=0.7)
    batches = [
        pd.DataFrame(rng.normal(size=(9, 2)), columns=["b", "a"]),
        pd.DataFrame(rng.normal(size=(5, 3)), columns=["c", "a", "b"]),
        pd.DataFrame(rng.normal(size=(7, 1)), columns=["c"]),
        pd.DataFrame(rng.normal(size=(4, 2)), columns=["d", "b"]),
    ]
    for X in batches:
        model.learn_many(X)
    assert model.features == ["a", "b", "c", "d"]  # each batch's new ones, sorted
    scaler = BatchNormScaler(momentum=0.7)
    for X in batches:
        scaler.partial_fit(X.reindex(columns=model.features).to_numpy())
    assert_same_stats(model, scaler, rtol=1e-13)
    X = pd.DataFrame(rng.normal(size=(3, 4)), columns=["d", "c", "b", "a"])
    np.testing.assert_allclose(
        model.transform_many(X)[model.features].to_numpy(),
        scaler.transform(X[model.features].to_numpy()),
        rtol=1e-13,
    )


def test_a_feature_only_ever_missing_is_not_learned():
    model = RiverBatchNormScaler(batch_size=2)
    model.learn_one({"a": 1.0, "b": None})
    model.learn_one({"a": 2.0, "b": math.nan})
    assert model.features == ["a"]
    assert model.transform_one({"a": 1.5, "b": 3.0})["b"] == 3.0


def test_the_order_of_keys_never_matters():
    rows = changing_stream(7)
    rng = np.random.default_rng(8)
    shuffled = []
    for x in rows:
        keys = list(x)
        rng.shuffle(keys)
        shuffled.append({f: x[f] for f in keys})
    one, other = RiverBatchNormScaler(batch_size=8), RiverBatchNormScaler(batch_size=8)
    for x, y in zip(rows, shuffled, strict=True):
        one.learn_one(x)
        other.learn_one(y)
    X = pd.DataFrame(rows[:10])
    one.learn_many(X)
    other.learn_many(X[X.columns[::-1]])
    assert one.features == other.features
    assert (one.moving_mean, one.moving_var) == (other.moving_mean, other.moving_var)
    for x, y in zip(rows, shuffled, strict=True):
        assert one.transform_one(x) == other.transform_one(y)


# -- inputs are copied, never kept -------------------------------------------------


def test_inputs_are_copied_never_aliased():
    model = RiverBatchNormScaler(batch_size=3)
    x = {"a": 1.0, "b": 2.0}
    model.learn_one(x)
    state = pickle.dumps(model)
    x["a"] = 1e9
    del x["b"]
    assert pickle.dumps(model) == state
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 5.0]})
    model.learn_many(X)
    state = pickle.dumps(model)
    X.iloc[0, 0] = 1e9
    assert pickle.dumps(model) == state

    out = model.transform_many(X)
    out.iloc[:, :] = 0.0
    assert X.iloc[0, 0] == 1e9
    X.iloc[1, 1] = -7.0
    assert (out.to_numpy() == 0.0).all()
    assert pickle.dumps(model) == state


def test_pickle_mid_buffer_continues_identically():
    rows = changing_stream(9)
    model = RiverBatchNormScaler(batch_size=16)
    for x in rows[:70]:
        model.learn_one(x)
    assert model.n_buffered == 70 % 16
    restored = pickle.loads(pickle.dumps(model))
    for x in rows[70:]:
        model.learn_one(x)
        restored.learn_one(x)
    assert (model.moving_mean, model.moving_var) == (restored.moving_mean, restored.moving_var)


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
        ({"gamma": [1.0, 2.0]}, "gamma must be a finite number"),
        ({"beta": math.inf}, "beta must be a finite number"),
        ({"momentum": 1.0}, "momentum"),
        ({"init": "zeros"}, "init"),
        ({"epsilon": -1.0}, "epsilon"),
    ],
)
def test_wrong_parameters_are_refused_at_construction(params, match):
    with pytest.raises(ValueError, match=match):
        RiverBatchNormScaler(**params)


def test_wrong_values_are_refused_before_anything_is_learned():
    model = RiverBatchNormScaler(batch_size=2)
    model.learn_one({"a": 1.0})
    state = pickle.dumps(model)
    with pytest.raises(ValueError, match=r"Feature\(s\) \['b'\] hold \+/-inf"):
        model.learn_one({"a": 2.0, "b": -math.inf})
    with pytest.raises(TypeError, match="Feature 'a' has the value 'x' .* numbers only"):
        model.learn_one({"a": "x"})
    with pytest.raises(ValueError, match=r"Feature\(s\) \['b'\] hold \+/-inf"):
        model.learn_many(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, math.inf]}))
    with pytest.raises(TypeError, match="numbers only"):
        model.learn_many(pd.DataFrame({"a": ["u", "v"]}))
    with pytest.raises(TypeError, match="takes a pandas DataFrame"):
        model.learn_many(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"must be unique; \['a'\] repeat"):
        model.learn_many(pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]))
    with pytest.raises(ValueError, match=r"must be unique"):
        model.transform_many(pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]))
    assert pickle.dumps(model) == state


def test_missing_river_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "river", None)
    monkeypatch.delitem(sys.modules, "skbn.river")
    with pytest.raises(ImportError, match=r'pip install "skbn\[river\]"'):
        importlib.import_module("skbn.river")


def test_the_core_does_not_import_the_bridge():
    import subprocess

    code = "import sys, skbn; print([m for m in ('skbn.river', 'river') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- River pipelines -------------------------------------------------------------------


def test_in_a_pipeline_learn_one_predict_one():
    pipeline = RiverBatchNormScaler(batch_size=8) | linear_model.LogisticRegression()
    scaler, model = RiverBatchNormScaler(batch_size=8), linear_model.LogisticRegression()
    for x, y in datasets.Phishing().take(300):
        expected = model.predict_proba_one(scaler.transform_one(x))
        assert pipeline.predict_proba_one(x) == expected
        scaler.learn_one(x)  # River's order: update the transformer, then transform
        model.learn_one(scaler.transform_one(x), y)
        pipeline.learn_one(x, y)
    assert pipeline["RiverBatchNormScaler"].moving_mean == scaler.moving_mean


def test_in_a_pipeline_it_scales_as_river_does():
    """Progressive validation on Phishing: scaling as River's StandardScaler
    does, far better than without a scaler."""

    def accuracy(model):
        return evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy()).get()

    raw = accuracy(linear_model.LogisticRegression())
    river = accuracy(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    ours = accuracy(RiverBatchNormScaler() | linear_model.LogisticRegression())
    assert ours > raw + 0.1
    assert abs(ours - river) < 0.02


def test_features_that_hardly_vary_within_a_batch_suit_batch_statistics_badly():
    """TrumpApproval's features (a date, polls that change now and then) have a
    tiny within-batch variance: the regression after the transformer diverges,
    where River's all-time StandardScaler keeps it sound (docs/interop.md)."""

    def mae(scaler):
        model = scaler | linear_model.LinearRegression()
        return evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE()).get()

    river = mae(preprocessing.StandardScaler())
    assert river < 5.0
    assert mae(RiverBatchNormScaler()) > 1e3 * river


def test_in_a_pipeline_learn_many_predict_many():
    data = list(datasets.TrumpApproval().take(200))
    X = pd.DataFrame([x for x, _ in data])
    y = pd.Series([y for _, y in data])
    pipeline = compose.Pipeline(RiverBatchNormScaler(), linear_model.LinearRegression())
    scaler, model = RiverBatchNormScaler(), linear_model.LinearRegression()
    for start in range(0, 200, 50):
        Xb, yb = X[start : start + 50], y[start : start + 50]
        pipeline.learn_many(Xb, yb)
        scaler.learn_many(Xb)
        model.learn_many(scaler.transform_many(Xb), yb)
    predicted = pipeline.predict_many(X)
    assert predicted.index.equals(X.index)
    np.testing.assert_array_equal(predicted, model.predict_many(scaler.transform_many(X)))
    assert np.isfinite(predicted).all()
    assert pipeline["RiverBatchNormScaler"].n_batches_seen == 4


# -- to scikit-learn and back ------------------------------------------------------------


@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_to_sklearn_continues_exactly(params):
    rows = stream(10, 64)
    model = RiverBatchNormScaler(batch_size=16, **params)
    for x in rows[:48]:
        model.learn_one(x)
    scaler = model.to_sklearn()
    assert model.features == ["a", "b", "c"] and not hasattr(scaler, "feature_names_in_")
    assert scaler.n_batches_seen_ == 3 and scaler.get_params()["momentum"] == model.momentum
    X = pd.DataFrame(rows[:5])
    np.testing.assert_array_equal(scaler.transform(X.to_numpy()), model.transform_many(X))
    for x in rows[48:]:
        model.learn_one(x)
    scaler.partial_fit(pd.DataFrame(rows[48:]).to_numpy())
    assert_same_stats(model, scaler)
    assert model.n_batches_seen == 4  # the copy is independent


@pytest.mark.parametrize("params", PARAMS, ids=str)
def test_from_sklearn_continues_exactly(params):
    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(2, 3, (40, 3)), columns=["u", "w", "v"])
    scaler = BatchNormScaler(batch_size=10, **params).fit(X)
    model = RiverBatchNormScaler.from_sklearn(scaler)
    assert model.features == ["u", "w", "v"] and model.batch_size == 10
    assert_same_stats(model, scaler)
    np.testing.assert_array_equal(model.transform_many(X).to_numpy(), scaler.transform(X))
    more = pd.DataFrame(rng.normal(2, 3, (7, 3)), columns=["u", "w", "v"])
    model.learn_many(more)
    kept = copy.deepcopy(scaler)
    scaler.partial_fit(more)
    assert_same_stats(model, scaler)
    back = model.to_sklearn()  # one generation: the scaler, names and all
    assert list(back.feature_names_in_) == ["u", "w", "v"]
    np.testing.assert_array_equal(back.transform(more), scaler.transform(more))
    # and a feature it did not know starts its own statistics
    model.learn_many(more.assign(new=np.arange(7.0)))
    alone = BatchNormScaler(**params).partial_fit(np.arange(7.0).reshape(-1, 1))
    assert model.moving_mean["new"] == alone.moving_mean_[0]
    assert model.moving_var["new"] == alone.moving_var_[0]
    assert kept.n_batches_seen_ == 4  # the scaler given was not touched


def test_from_sklearn_of_keras_style_weights_and_unnamed_columns():
    scaler = BatchNormScaler(momentum=0.9, epsilon=0.0).set_weights(
        [np.array([2.0, 0.5]), np.array([1.0, -1.0]), np.array([3.0, 4.0]), np.array([4.0, 1.0])]
    )
    model = RiverBatchNormScaler.from_sklearn(scaler)
    assert model.features == [0, 1] and model.batch_size == 32
    assert model.transform_one({0: 5.0, 1: 4.0, "x": 1}) == {0: 3.0, 1: -1.0, "x": 1}
    named = RiverBatchNormScaler.from_sklearn(scaler, features=["p", "q"], batch_size=4)
    assert named.transform_one({"q": 6.0}) == {"q": 0.5 * 2.0 - 1.0}
    with pytest.raises(ValueError, match="name each of the scaler's 2 columns once"):
        RiverBatchNormScaler.from_sklearn(scaler, features=["p", "p"])
    with pytest.raises(NotFittedError):
        RiverBatchNormScaler.from_sklearn(BatchNormScaler())
    with pytest.raises(TypeError, match="takes a BatchNormScaler"):
        RiverBatchNormScaler.from_sklearn(preprocessing.StandardScaler())


def test_to_sklearn_over_several_generations_keeps_the_statistics():
    rows = changing_stream(12)
    model = RiverBatchNormScaler(batch_size=8, momentum=0.9)
    for x in rows:
        model.learn_one(x)
    scaler = model.to_sklearn()
    assert scaler.n_features_in_ == 5 and not hasattr(scaler, "feature_names_in_")  # 7 is no str
    np.testing.assert_array_equal(scaler.moving_mean_, list(model.moving_mean.values()))
    np.testing.assert_array_equal(scaler.moving_var_, list(model.moving_var.values()))
    X = wide(rows[:10], model.features)
    frame = pd.DataFrame(X, columns=model.features)
    np.testing.assert_array_equal(scaler.transform(X), model.transform_many(frame).to_numpy())
    # joined with set_weights: a settled average that has counted no data
    assert scaler.n_batches_seen_ == 0 and scaler.n_samples_seen_ == 0


def test_to_sklearn_before_the_first_batch_is_unfitted():
    model = RiverBatchNormScaler(momentum=0.5, epsilon=0.1)
    scaler = model.to_sklearn()
    assert scaler.get_params()["momentum"] == 0.5 and scaler.get_params()["epsilon"] == 0.1
    with pytest.raises(NotFittedError):
        scaler.transform([[1.0]])


# -- where River's own scalers mean the same -------------------------------------------


@pytest.mark.parametrize(
    "params", [{"momentum": None}, {"momentum": 0.99}, {"momentum": 0.3, "unbiased": False}]
)
def test_one_batch_is_rivers_standard_scaler(params):
    """One batch with init="debiased" (or momentum=None) holds the exact mean and
    biased variance, as River's StandardScaler does row by row."""
    rows = stream(13, 64)
    river = preprocessing.StandardScaler()
    for x in rows:
        river.learn_one(x)
    ours = RiverBatchNormScaler(epsilon=0.0, batch_size=64, **params)
    for x in rows:
        ours.learn_one(x)
    for name, mean in river.means.items():
        assert ours.moving_mean[name] == pytest.approx(mean, rel=1e-12)
        assert ours.moving_var[name] == pytest.approx(river.vars[name], rel=1e-12)
    for x in stream(14, 5):
        ours_x, river_x = ours.transform_one(x), river.transform_one(x)
        assert ours_x == pytest.approx(river_x, rel=1e-11)


def test_momentum_none_over_batches_misses_the_spread_of_the_batch_means():
    """With momentum=None and equally full batches the mean is River's all-time
    mean, and River's variance is ours plus the variance of the batch means (the
    law of total variance)."""
    rows = stream(15, 80)
    river = preprocessing.StandardScaler()
    ours = RiverBatchNormScaler(momentum=None, batch_size=8)
    for x in rows:
        river.learn_one(x)
        ours.learn_one(x)
    batch_means = wide(rows, ["a", "b", "c"]).reshape(10, 8, 3).mean(axis=1)
    for j, name in enumerate(["a", "b", "c"]):
        assert ours.moving_mean[name] == pytest.approx(river.means[name], rel=1e-12)
        spread = batch_means[:, j].var()
        assert spread > 0.01 * river.vars[name]
        assert ours.moving_var[name] + spread == pytest.approx(river.vars[name], rel=1e-12)


def test_adaptive_standard_scaler_same_mean_recursion_but_a_per_row_variance():
    """One row per batch, init="keras", momentum = 1 - fading_factor: the means
    follow River's EWMean recursion (which starts from the first row, not from
    0, so they differ by momentum**t * x_1); the variance of a one-row batch
    is 0, so ours decays as momentum**t where River's stays at the data's."""
    fading = 0.3
    rows = stream(16, 40)
    river = preprocessing.AdaptiveStandardScaler(fading_factor=fading)
    ours = RiverBatchNormScaler(batch_size=1, momentum=1 - fading, init="keras")
    for t, x in enumerate(rows, 1):
        river.learn_one(x)
        ours.learn_one(x)
        for name in x:
            start = (1 - fading) ** t * rows[0][name]
            gap = river.means[name].get() - ours.moving_mean[name]
            assert gap == pytest.approx(start, rel=1e-9, abs=1e-12 * abs(rows[0][name]))
            assert ours.moving_var[name] == pytest.approx((1 - fading) ** t, rel=1e-12)
    data_var = wide(rows, ["a", "b", "c"]).var(axis=0)
    for j, name in enumerate(["a", "b", "c"]):
        assert river.vars[name].get() > 0.2 * data_var[j]
        assert ours.moving_var[name] < 1e-5


@pytest.mark.parametrize("batch_size", [1, 5, 16])
def test_pooled_is_rivers_standard_scaler_at_every_batch(batch_size):
    rows = stream(17, 80)
    river = preprocessing.StandardScaler()
    ours = RiverBatchNormScaler(momentum="pooled", epsilon=0.0, batch_size=batch_size)
    for i, x in enumerate(rows, 1):
        river.learn_one(x)
        ours.learn_one(x)
        if i % batch_size == 0:
            for name in x:
                assert ours.moving_mean[name] == pytest.approx(river.means[name], rel=1e-10)
                assert ours.moving_var[name] == pytest.approx(river.vars[name], rel=1e-9)
    x = stream(18, 1)[0]
    assert ours.transform_one(x) == pytest.approx(river.transform_one(x), rel=1e-9)


# -- the documentation ---------------------------------------------------------------


def test_the_interop_page_river_example_runs():
    text = (ROOT / "docs" / "interop.md").read_text(encoding="utf-8")
    section = re.search(r"^## River\n(.*?)(?=^## |\Z)", text, flags=re.DOTALL | re.MULTILINE)
    assert section, "docs/interop.md has no River section"
    blocks = re.findall(r"^```python\n(.*?)^```", section.group(1), flags=re.DOTALL | re.MULTILINE)
    assert blocks
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/interop.md, River block {i + 1}", "exec"), {})


def test_api_page_lists_the_bridge():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("api*.rst")))
    assert re.search(r"module:: skbn\.river(.|\n)*RiverBatchNormScaler", text)


def test_all_is_the_public_class():
    import skbn.river

    assert skbn.river.__all__ == ["RiverBatchNormScaler"]
    assert skbn.river.RiverBatchNormScaler is RiverBatchNormScaler
