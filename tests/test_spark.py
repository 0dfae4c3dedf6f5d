"""Spark DataFrames give what the collected data gives; the Spark ML stage.

Every fitted state is compared with the in-memory estimator fed the collected
pandas frame (to 1e-12 relative; nulls are NaN there), and with scikit-learn's
``StandardScaler`` and Spark ML's own ``StandardScaler`` where they compute
the same thing.  The Spark ML stage is checked the way PySpark checks its own
stages (``pyspark/ml/tests/test_feature.py``, ``test_persistence.py`` and the
``StandardScaler`` docstring, ported).  One local Spark session (two cores,
no UI, loopback only) serves the whole module.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StandardScaler as SparkStandardScaler
from pyspark.ml.feature import VectorAssembler, VectorSizeHint
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import DenseVector, SparseVector, Vectors, VectorUDT
from pyspark.ml.param import Params
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWriter
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler
from skbn.spark import BatchNormScalerSpark, BatchNormScalerSparkModel

RTOL = 1e-12
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def spark():
    """A local session: two cores, no UI, loopback only, small driver memory."""
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors' Python: this one
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("skbn-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# -- data -----------------------------------------------------------------------------


def _table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Keys, labels and features of several Spark types, with missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 50.0, 1e-3] + [0.0, -7.0, 3.0]
    x[rng.random((n, 3)) < 0.05] = np.nan
    big = 1e9 + rng.normal(size=n)  # far from 0: needs the exact merge
    count = rng.integers(0, 100, size=n).astype(float)
    count[rng.random(n) < 0.1] = np.nan  # null ints
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "name": [f"row{i}" for i in range(n)],
            "x0": x[:, 0],
            "x1": x[:, 1],
            "flag": rng.random(n) < 0.5,
            "x2": x[:, 2],
            "big": big,
            "count": count,
        }
    )


SCHEMA = (
    "id long, name string, x0 double, x1 double, flag boolean, x2 double, big double, count int"
)
FEATURES = ["id", "x0", "x1", "x2", "big", "count"]


def _rows(pdf: pd.DataFrame) -> list:
    """pandas rows as Python values, NaN in x0 and count as Spark nulls, NaN
    kept as NaN in x1 (both are missing values)."""
    rows = []
    for rec in pdf.itertuples(index=False):
        d = rec._asdict()
        for key in ("x0", "count"):
            if np.isnan(d[key]):
                d[key] = None
        d["count"] = None if d["count"] is None else int(d["count"])
        rows.append(tuple(d[c] for c in pdf.columns))
    return rows


@pytest.fixture(scope="module")
def table(spark):
    """(Spark DataFrame in 5 cached partitions, the same rows collected)."""
    pdf = _table()
    sdf = spark.createDataFrame(_rows(pdf), SCHEMA).repartition(5).cache()
    collected = sdf.toPandas()
    return sdf, collected


def _features(collected: pd.DataFrame) -> pd.DataFrame:
    """The collected numeric columns, as the in-memory estimator sees them."""
    return collected[FEATURES].astype(np.float64)


def assert_same_state(spark_fit: BatchNormScaler, memory_fit: BatchNormScaler) -> None:
    np.testing.assert_allclose(spark_fit.moving_mean_, memory_fit.moving_mean_, rtol=RTOL)
    np.testing.assert_allclose(spark_fit.moving_var_, memory_fit.moving_var_, rtol=RTOL)
    np.testing.assert_array_equal(spark_fit.n_samples_seen_, memory_fit.n_samples_seen_)
    assert spark_fit.n_batches_seen_ == memory_fit.n_batches_seen_
    assert list(spark_fit.feature_names_in_) == list(memory_fit.feature_names_in_)


# -- point 1: fit on a Spark DataFrame = fit on the collected data ------------------


@pytest.mark.parametrize(
    "params",
    [
        {"momentum": None},
        {"momentum": "pooled"},
        {"momentum": "pooled", "unbiased": True},
        {"momentum": None, "batch_size": 257},
        {"momentum": 0.9, "batch_size": 400},
        {"momentum": 0.5, "init": "keras", "unbiased": True, "batch_size": 999},
        {"momentum": "pooled", "batch_size": 1000},
    ],
)
def test_fit_equals_fit_of_collected_data(table, params):
    sdf, collected = table
    fitted = BatchNormScaler(**params).fit(sdf)
    expected = BatchNormScaler(**params).fit(_features(collected))
    assert_same_state(fitted, expected)
    assert list(fitted.feature_names_in_) == FEATURES  # strings and booleans left out


def test_pooled_fit_equals_standard_scaler(table):
    sdf, collected = table
    fitted = BatchNormScaler(momentum="pooled", epsilon=0.0).fit(sdf)
    reference = StandardScaler().fit(_features(collected))
    np.testing.assert_allclose(fitted.mean_, reference.mean_, rtol=RTOL)
    np.testing.assert_allclose(fitted.var_, reference.var_, rtol=RTOL)
    np.testing.assert_array_equal(fitted.n_samples_seen_, reference.n_samples_seen_)
    out = fitted.transform(sdf).select(*FEATURES).toPandas().to_numpy()
    # Both means are exact to rounding, but one ulp of a mean near 1e9 is
    # 1.2e-7 before the division: allow that much on each side.
    ulp = 4 * np.finfo(np.float64).eps * np.abs(reference.mean_) / reference.scale_
    expected = reference.transform(_features(collected))
    assert np.all((np.abs(out - expected) <= RTOL * np.abs(expected) + ulp) | np.isnan(expected))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))


def test_sql_chunks_and_constant_columns(spark):
    """Partitions of several 65,536-row chunks; constant columns stay exact."""
    sdf = spark.range(160_000, numPartitions=2).select(
        (F.randn(seed=1) * 3.0 + 1.0).alias("a"),
        (F.rand(seed=2) * 100.0).alias("b"),
        F.lit(0.1).alias("c"),
        F.when(F.col("id") % 5 == 0, None).otherwise(F.col("id") % 7).alias("d"),
        (F.randn(seed=3) + 1e6).alias("e"),  # offset: the Arrow path
    )
    sdf = sdf.cache()
    collected = sdf.toPandas().astype(np.float64)
    for params in ({"momentum": "pooled"}, {"momentum": None, "unbiased": True}):
        fitted = BatchNormScaler(**params).fit(sdf)
        assert_same_state(fitted, BatchNormScaler(**params).fit(collected))
        assert fitted.moving_mean_[2] == 0.1 and fitted.moving_var_[2] == 0.0
    sdf.unpersist()


def test_many_arrow_batches_per_partition(spark, table):
    """Partitions streamed in small Arrow batches: merged exactly all the same."""
    sdf, collected = table
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        fitted = BatchNormScaler(momentum="pooled").fit(sdf)
        batched = BatchNormScaler(momentum=0.8, batch_size=123).fit(sdf)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert_same_state(fitted, BatchNormScaler(momentum="pooled").fit(_features(collected)))
    expected = BatchNormScaler(momentum=0.8, batch_size=123).fit(_features(collected))
    assert_same_state(batched, expected)


def test_partial_fit_streams_dataframes(table):
    sdf, collected = table
    first, second = sdf.where("id % 3 = 0"), sdf.where("id % 3 != 0")
    streamed = BatchNormScaler(momentum=0.7).partial_fit(first).partial_fit(second)
    memory = BatchNormScaler(momentum=0.7)
    memory.partial_fit(_features(first.toPandas())).partial_fit(_features(second.toPandas()))
    assert_same_state(streamed, memory)


def test_scalar_weight_and_refused_weights(table):
    sdf, collected = table
    weighted = BatchNormScaler(momentum="pooled").fit(sdf, sample_weight=2.5)
    expected = BatchNormScaler(momentum="pooled").fit(_features(collected), sample_weight=2.5)
    assert_same_state(weighted, expected)
    # weights in a one-column Spark DataFrame for an in-memory X: collected
    weights = sdf.select((F.col("id") % 7).cast("double").alias("w"))
    in_memory_x = BatchNormScaler().fit(_features(collected), sample_weight=weights)
    assert_same_state(
        in_memory_x, BatchNormScaler().fit(_features(collected), sample_weight=collected["id"] % 7)
    )
    scaler = BatchNormScaler()
    with pytest.raises(TypeError, match="sample_weight for a Spark DataFrame"):
        scaler.fit(sdf, sample_weight=np.ones(len(collected)))
    with pytest.raises(ValueError, match="at least one non-zero"):
        scaler.fit(sdf, sample_weight=0.0)
    assert not hasattr(scaler, "moving_mean_")


def test_float_columns_stay_float(spark):
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 2.0, size=(500, 2)).astype(np.float32)
    rows = [(int(i), float(a), float(b)) for i, (a, b) in enumerate(values)]
    sdf = spark.createDataFrame(rows, "key string, a float, b float").coalesce(1)
    scaler = BatchNormScaler().fit(sdf)
    memory = BatchNormScaler().fit(pd.DataFrame(values, columns=["a", "b"]))
    assert_same_state(scaler, memory)
    out = scaler.transform(sdf)
    assert [f.dataType for f in out.schema.fields[1:]] == [T.FloatType(), T.FloatType()]
    got = out.select("a", "b").toPandas().to_numpy()
    expected = memory.transform(pd.DataFrame(values, columns=["a", "b"]))
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # the same float32 arithmetic


def test_every_numeric_spark_type_is_a_feature(spark):
    rows = [
        (1, 2, 3, 4.5, "1.25", True, "a"),
        (-7, 20, None, 0.25, "-3.50", False, "b"),
        (12, -2, 30, None, "10.00", None, "c"),
    ]
    schema = "b byte, s short, l long, f float, d string, flag boolean, name string"
    sdf = spark.createDataFrame(rows, schema).withColumn("d", F.col("d").cast("decimal(10,2)"))
    scaler = BatchNormScaler(momentum="pooled").fit(sdf)
    assert list(scaler.feature_names_in_) == ["b", "s", "l", "f", "d"]
    collected = sdf.toPandas()[["b", "s", "l", "f", "d"]].astype(np.float64)
    assert_same_state(scaler, BatchNormScaler(momentum="pooled").fit(collected))
    out = scaler.transform(sdf)
    assert [f.dataType for f in out.schema.fields[:5]] == [T.DoubleType()] * 5
    got = out.toPandas()[["b", "s", "l", "f", "d"]].to_numpy()
    np.testing.assert_allclose(got, scaler.transform(collected), rtol=RTOL)


# -- point 2: transform is lazy, keeps columns, order and nulls -------------------------


def test_transform_is_lazy_and_equals_in_memory(spark, table):
    sdf, collected = table
    scaler = BatchNormScaler(momentum=0.9, batch_size=500).fit(sdf)
    sc = spark.sparkContext
    sc.setJobGroup("skbn-lazy", "transform must not run a job")
    try:
        out = scaler.transform(sdf)
        back = scaler.inverse_transform(out)
        assert sc.statusTracker().getJobIdsForGroup("skbn-lazy") == []
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert out.columns == sdf.columns and back.columns == sdf.columns
    types = {f.name: f.dataType for f in out.schema.fields}
    assert all(types[c] == T.DoubleType() for c in FEATURES)
    assert types["name"] == T.StringType() and types["flag"] == T.BooleanType()

    result = out.toPandas()
    expected = scaler.transform(_features(collected))
    np.testing.assert_allclose(result[FEATURES].to_numpy(), expected, rtol=RTOL)
    pd.testing.assert_series_equal(result["name"], collected["name"])
    pd.testing.assert_series_equal(result["flag"], collected["flag"])

    rows = out.select("x0", "x1").collect()
    source = sdf.select("x0", "x1").collect()
    for got, was in zip(rows, source, strict=True):
        assert (got.x0 is None) == (was.x0 is None)  # null stays null, never NaN
        assert np.isnan(got.x1) == np.isnan(was.x1)  # NaN stays NaN

    restored = back.toPandas()
    inverse = scaler.inverse_transform(pd.DataFrame(expected, columns=FEATURES))
    np.testing.assert_allclose(restored[FEATURES].to_numpy(), inverse, rtol=RTOL)


def test_fit_on_selection_transforms_whole_table(table):
    sdf, collected = table
    scaler = BatchNormScaler().fit(sdf.select("x1", "x0"))
    assert list(scaler.feature_names_in_) == ["x1", "x0"]
    out = scaler.transform(sdf)
    assert out.columns == sdf.columns
    result = out.toPandas()
    expected = scaler.transform(collected[["x1", "x0"]])
    np.testing.assert_allclose(result[["x1", "x0"]].to_numpy(), expected, rtol=RTOL)
    for untouched in ("id", "name", "x2", "big", "count"):
        pd.testing.assert_series_equal(result[untouched], collected[untouched])


def test_set_output_pandas_collects_the_features(table):
    sdf, collected = table
    scaler = BatchNormScaler().set_output(transform="pandas").fit(sdf.select("x0", "x1"))
    out = scaler.transform(sdf.select("x0", "x1"))
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["x0", "x1"]
    expected = scaler.transform(collected[["x0", "x1"]])
    np.testing.assert_allclose(out.to_numpy(), expected.to_numpy(), rtol=RTOL)


# -- point 6: bad input, clear errors, scaler unchanged ------------------------------


@pytest.fixture(scope="module")
def fitted(spark):
    sdf = spark.createDataFrame([(1.0, 2.0, "a"), (3.0, 5.0, "b")], "u double, v double, s string")
    return BatchNormScaler().fit(sdf), sdf


def _state(scaler):
    return scaler.moving_mean_.copy(), scaler.moving_var_.copy(), scaler.n_batches_seen_


def test_bad_dataframes_are_refused_and_leave_the_scaler_unchanged(spark, fitted):
    scaler, sdf = fitted
    before = _state(scaler)
    strings = spark.createDataFrame([("a", True)], "s string, b boolean")
    with pytest.raises(ValueError, match=r"no numeric column \(s: string, b: boolean\)"):
        scaler.fit(strings)
    with pytest.raises(ValueError, match="0 sample"):
        scaler.fit(sdf.where("u > 100"))
    nulls = spark.createDataFrame([(1.0, None), (2.0, None)], "u double, v double")
    with pytest.raises(ValueError, match=r"Column\(s\) \['v'\] hold no value"):
        scaler.fit(nulls)
    infinite = spark.createDataFrame([(1.0, float("inf")), (2.0, 1.0)], "u double, v double")
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \['v'\]"):
        scaler.fit(infinite)
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \['v'\]"):
        scaler.partial_fit(infinite)
    after = _state(scaler)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_transform_refuses_missing_or_retyped_columns(spark, fitted):
    scaler, sdf = fitted
    with pytest.raises(ValueError, match=r"(?s)\['v'\].*missing|missing.*- v"):
        scaler.transform(sdf.drop("v"))
    with pytest.raises(TypeError, match=r"'v' \(string\)"):
        scaler.transform(sdf.withColumn("v", F.col("v").cast("string")))
    with pytest.raises(TypeError, match="Spark DataFrame as X; got a pyspark Column"):
        scaler.fit(F.col("u"))


def test_infinity_at_transform_fails_when_computed(spark, fitted):
    scaler, _ = fitted
    bad = spark.createDataFrame([(1.0, float("-inf"), "a")], "u double, v double, s string")
    out = scaler.transform(bad)  # lazy: nothing computed yet
    with pytest.raises(Exception, match=r"infinity in feature\(s\) \['v'\]"):
        out.collect()


# -- point 3: the Spark ML stage, PySpark's own checks ported -------------------------


@pytest.fixture(scope="module")
def vectors(spark):
    """Dense and sparse vectors mixed, one null vector, with a label."""
    rng = np.random.default_rng(2)
    dense = rng.normal(size=(60, 3)) * [1.0, 10.0, 0.1] + [5.0, 0.0, -1.0]
    rows = []
    for i, row in enumerate(dense):
        if i % 4 == 0:
            vec = SparseVector(3, {0: float(row[0])})  # zeros elsewhere
            dense[i, 1:] = 0.0
        else:
            vec = DenseVector(row)
        rows.append((float(i % 2), vec))
    rows.append((1.0, None))
    schema = T.StructType(
        [T.StructField("label", T.DoubleType()), T.StructField("features", VectorUDT())]
    )
    sdf = spark.createDataFrame(rows, schema).repartition(3).cache()
    collected = np.array(
        [np.full(3, np.nan) if r.features is None else r.features.toArray() for r in sdf.collect()]
    )
    return sdf, collected


def test_params_like_spark_stages():
    """Ported from test_feature.py::test_binarizer."""
    b0 = BatchNormScalerSpark()
    assert all(not b0.isSet(p) for p in b0.params)
    assert b0.hasDefault(b0.withMean) and b0.getWithMean() is True
    assert b0.getEpsilon() == 1e-3 and b0.getMomentum() == 0.99
    assert b0.getInit() == "debiased" and b0.getBatchSize() is None
    b0.setParams(inputCol="input", outputCol="output").setEpsilon(0.5)
    assert not all(b0.isSet(p) for p in b0.params)
    assert b0.getEpsilon() == 0.5
    assert b0.getInputCol() == "input" and b0.getOutputCol() == "output"
    assert b0.setInputCol("in") is b0 and b0.setMomentum("pooled") is b0

    b0c = b0.copy({b0.epsilon: 2.0})
    assert b0c.uid == b0.uid
    assert b0c.params == b0.params
    assert b0c.getEpsilon() == 2.0

    b1 = BatchNormScalerSpark(epsilon=2.0, inputCol="input", outputCol="output", withMean=False)
    assert b1.uid != b0.uid
    assert b1.getEpsilon() == 2.0 and b1.getWithMean() is False
    assert b1.getInputCol() == "input" and b1.getOutputCol() == "output"
    assert BatchNormScalerSpark(momentum=None).getMomentum() is None
    with pytest.raises(TypeError, match="momentum"):
        BatchNormScalerSpark(momentum="often")
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['withMeans'\]"):
        b0.setParams(withMeans=True)
    # the estimator's defaults are BatchNormScaler's, not Spark's StandardScaler's
    defaults = BatchNormScaler().get_params()
    assert b1.getOrDefault("withStd") == defaults["with_std"]
    assert BatchNormScalerSpark().getGamma() == defaults["gamma"]
    json.dumps({p.name: v for p, v in b0.extractParamMap().items()})  # JSON values


def test_model_inherits_uid_and_params(vectors):
    """Ported from test_feature.py::test_idf: fit(dataset, paramMap)."""
    sdf, _ = vectors
    est = BatchNormScalerSpark(inputCol="features", momentum="pooled")
    model = est.fit(sdf, {est.outputCol: "scaled"})
    assert model.uid == est.uid, "Model should inherit the UID from its parent estimator."
    assert model.getOutputCol() == "scaled" and model.getMomentum() == "pooled"
    assert all(p.parent == model.uid for p in model.params)
    assert model.transform(sdf).head().scaled is not None
    assert model.scaler.n_features_in_ == 3
    other = model.copy({model.outputCol: "other", model.withMean: False})
    assert other.uid == model.uid and other.getWithMean() is False and model.getWithMean()
    row = other.transform(sdf).where(F.col("features").isNotNull()).head()
    expected = row.features.toArray() / np.sqrt(model.variance.toArray() + 1e-3)
    np.testing.assert_allclose(row.other.toArray(), expected, rtol=RTOL)


def test_stage_docstring_example(spark, tmp_path):
    """Ported from Spark ML StandardScaler's docstring."""
    df = spark.createDataFrame([(Vectors.dense([0.0]),), (Vectors.dense([2.0]),)], ["a"])
    scaler = BatchNormScalerSpark(epsilon=0.0, momentum="pooled")
    assert scaler.setInputCol("a") is scaler
    assert scaler.setOutputCol("scaled") is scaler
    model = scaler.fit(df)
    assert model.getInputCol() == "a"
    assert model.setOutputCol("output") is model
    assert model.mean == DenseVector([1.0])
    assert model.variance == DenseVector([1.0])  # the biased variance of (0, 2)
    assert model.transform(df).collect()[1].output == DenseVector([1.0])
    path = str(tmp_path / "scaler")
    scaler.save(path)
    loaded = BatchNormScalerSpark.load(path)
    assert loaded.getWithMean() == scaler.getWithMean()
    assert loaded.getEpsilon() == scaler.getEpsilon()
    model_path = str(tmp_path / "scaler-model")
    model.save(model_path)
    loaded_model = BatchNormScalerSparkModel.load(model_path)
    assert loaded_model.mean == model.mean and loaded_model.variance == model.variance
    assert loaded_model.uid == model.uid
    assert loaded_model.transform(df).take(1) == model.transform(df).take(1)


def test_stage_equals_in_memory_and_spark_standard_scaler(vectors):
    sdf, collected = vectors
    model = BatchNormScalerSpark(
        inputCol="features", outputCol="out", momentum="pooled", unbiased=True, epsilon=0.0
    ).fit(sdf)
    memory = BatchNormScaler(momentum="pooled", unbiased=True, epsilon=0.0).fit(collected)
    np.testing.assert_allclose(model.mean.toArray(), memory.moving_mean_, rtol=RTOL)
    np.testing.assert_allclose(model.variance.toArray(), memory.moving_var_, rtol=RTOL)

    present = sdf.where(F.col("features").isNotNull())
    spark_model = SparkStandardScaler(
        inputCol="features", outputCol="spark", withMean=True, withStd=True
    ).fit(present)
    np.testing.assert_allclose(model.mean.toArray(), spark_model.mean.toArray(), rtol=RTOL)
    std = np.sqrt(model.variance.toArray())
    np.testing.assert_allclose(std, spark_model.std.toArray(), rtol=RTOL)

    # (Spark's own model fails on a null vector: compared on the others)
    both = spark_model.transform(model.transform(present)).select("out", "spark").collect()
    for row in both:
        assert isinstance(row.out, DenseVector)
        np.testing.assert_allclose(row.out.toArray(), row.spark.toArray(), rtol=RTOL, atol=1e-15)
    rows = model.transform(sdf).select("features", "out").collect()
    assert all((r.out is None) == (r.features is None) for r in rows)  # null stays null
    got = np.array([np.full(3, np.nan) if r.out is None else r.out.toArray() for r in rows])
    np.testing.assert_allclose(got, memory.transform(collected), rtol=RTOL)


def test_stage_batches_equal_in_memory_batches(vectors):
    sdf, collected = vectors
    model = BatchNormScalerSpark(inputCol="features", outputCol="o", momentum=0.6, batchSize=7)
    model = model.fit(sdf)
    memory = BatchNormScaler(momentum=0.6, batch_size=7).fit(collected)
    np.testing.assert_allclose(model.mean.toArray(), memory.moving_mean_, rtol=RTOL)
    np.testing.assert_allclose(model.variance.toArray(), memory.moving_var_, rtol=RTOL)
    assert model.scaler.n_batches_seen_ == memory.n_batches_seen_


def _compare_params(m1, m2, param):
    """Ported from test_persistence.py: same value and parent for ``param``."""
    if m1.isDefined(param):
        v1, v2 = m1.getOrDefault(param), m2.getOrDefault(m2.getParam(param.name))
        if isinstance(v1, Params):
            _compare_pipelines(v1, v2)
        else:
            assert v1 == v2
        assert param.parent == m2.getParam(param.name).parent
    else:
        assert not m2.isDefined(m2.getParam(param.name))


def _compare_pipelines(m1, m2):
    """Ported from test_persistence.py: uid, type and params of two stages."""
    assert m1.uid == m2.uid
    assert type(m1) is type(m2)
    if isinstance(m1, Pipeline):
        assert len(m1.getStages()) == len(m2.getStages())
        for s1, s2 in zip(m1.getStages(), m2.getStages(), strict=True):
            _compare_pipelines(s1, s2)
    elif isinstance(m1, PipelineModel):
        assert len(m1.stages) == len(m2.stages)
        for s1, s2 in zip(m1.stages, m2.stages, strict=True):
            _compare_pipelines(s1, s2)
    else:
        assert len(m1.params) == len(m2.params)
        for p in m1.params:
            _compare_params(m1, m2, p)


def test_pipeline_persistence(table, tmp_path):
    """Ported from test_persistence.py::test_pipeline_persistence."""
    sdf, collected = table
    assembler = VectorAssembler(inputCols=["x1", "x2", "big"], outputCol="v", handleInvalid="keep")
    stage = BatchNormScalerSpark(inputCol="v", outputCol="scaled", momentum=0.9, batchSize=600)
    pipeline = Pipeline(stages=[assembler, stage])
    model = pipeline.fit(sdf)

    pipeline.save(str(tmp_path / "pipeline"))
    _compare_pipelines(pipeline, Pipeline.load(str(tmp_path / "pipeline")))
    model.save(str(tmp_path / "pipeline-model"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline-model"))
    _compare_pipelines(model, loaded)

    fitted = loaded.stages[1].scaler
    memory = BatchNormScaler(momentum=0.9, batch_size=600).fit(collected[["x1", "x2", "big"]])
    np.testing.assert_allclose(fitted.moving_mean_, memory.moving_mean_, rtol=RTOL)
    np.testing.assert_allclose(fitted.moving_var_, memory.moving_var_, rtol=RTOL)
    out = loaded.transform(sdf).select(vector_to_array("scaled").alias("a")).toPandas()
    np.testing.assert_allclose(
        np.stack(out["a"].to_numpy()),
        memory.transform(collected[["x1", "x2", "big"]]),
        rtol=RTOL,
    )


def test_default_read_write(spark, tmp_path):
    """Ported from test_persistence.py::test_default_read_write(_default_params)."""
    est = BatchNormScalerSpark()
    est.setEpsilon(0.25).setParams(momentum=None, inputCol="features")
    writer = DefaultParamsWriter(est)
    path = str(tmp_path / "est")
    writer.save(path)
    loaded = DefaultParamsReadable.read().load(path)
    assert loaded.uid == est.uid
    assert loaded.extractParamMap() == est.extractParamMap()
    assert loaded.isSet(loaded.epsilon) and not loaded.isSet(loaded.withMean)
    assert loaded.hasDefault(loaded.withMean)
    est.setEpsilon(0.5)
    writer.overwrite().save(path)
    assert DefaultParamsReadable.read().load(path).extractParamMap() == est.extractParamMap()


def test_stage_refuses_bad_vectors(spark, vectors):
    sdf, _ = vectors
    model = BatchNormScalerSpark(inputCol="features", outputCol="o").fit(sdf)
    before = model.mean
    mixed = spark.createDataFrame(
        [(Vectors.dense([1.0, 2.0]),), (Vectors.dense([1.0, 2.0, 3.0]),)], ["features"]
    )
    with pytest.raises(ValueError, match=r"Column 'features' holds 1 vector\(s\) whose size"):
        BatchNormScalerSpark(inputCol="features").fit(
            mixed.orderBy(F.size(vector_to_array("features")))
        )
    short = spark.createDataFrame([(Vectors.dense([1.0, 2.0]),)], ["features"])
    hinted = VectorSizeHint(inputCol="features", size=2).transform(short)
    with pytest.raises(ValueError, match=r"'features' holds vectors of size 2.*fitted on 3"):
        model.transform(hinted)
    out = model.transform(short)  # size unknown until the rows are read
    with pytest.raises(Exception, match="whose size is not 3"):
        out.collect()
    with pytest.raises(TypeError, match="must hold vectors"):
        BatchNormScalerSpark(inputCol="label").fit(sdf)
    with pytest.raises(ValueError, match="holds no vector"):
        BatchNormScalerSpark(inputCol="features").fit(sdf.where(F.col("features").isNull()))
    assert model.mean == before


# -- the documentation page runs ----------------------------------------------------


def test_spark_page_code_runs(spark):
    text = (ROOT / "docs" / "spark.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/spark.md, python block {i + 1}", "exec"), namespace)
