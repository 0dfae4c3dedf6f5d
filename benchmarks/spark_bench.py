#!/usr/bin/env python
"""Fit and transform a cached Spark DataFrame: skbn against Spark ML's StandardScaler.

Run from the repository root (needs the ``spark`` extra and a Java runtime)::

    python benchmarks/spark_bench.py                 # 2,000,000 x 20, local[2]
    python benchmarks/spark_bench.py --rows 1000000  # a quicker run
    python benchmarks/spark_bench.py --markdown      # the report as a markdown table

What is measured, on one cached DataFrame of ``--rows`` rows and 20 double
columns (plus a string key) in a local ``local[2]`` session:

* **fit**: ``BatchNormScaler().fit(df)`` against Spark ML's
  ``StandardScaler(withMean=True)`` fitted on the same 20 columns through a
  ``VectorAssembler`` (the usual way to feed it); also Spark SQL's own column
  aggregates (``avg`` and ``var_pop`` of every column, one job) and
  collecting the data to the driver (``toPandas``) as reference points.
* **transform + write**: ``scaler.transform(df)`` written to Parquet, against
  the fitted Spark ML pipeline (``VectorAssembler`` + ``StandardScalerModel``)
  written to Parquet.

Every call is timed ``--repeat`` times, interleaved (A B C D A B C D ...) so
that a change of load on the machine hits every contender alike; the figure
is the best time.  The targets: fit <= 0.6x Spark ML's, transform + write <=
1.0x.  The script always exits 0: it is a report.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np


def session(memory: str):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("skbn-spark-bench")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", memory)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", default="3g", help="spark.driver.memory")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.sql import functions as F

    from skbn import BatchNormScaler

    spark = session(args.memory)
    names = [f"x{j}" for j in range(args.features)]
    df = spark.range(args.rows, numPartitions=2).select(
        F.concat(F.lit("k"), F.col("id").cast("string")).alias("key"),
        *[(F.randn(seed=j) * (j + 1) + 10.0 * j).alias(name) for j, name in enumerate(names)],
    )
    df = df.cache()
    df.count()  # materialise the cache (not timed)

    assembler = VectorAssembler(inputCols=names, outputCol="features")
    spark_scaler = StandardScaler(
        inputCol="features", outputCol="scaled", withMean=True, withStd=True
    )
    pipeline = Pipeline(stages=[assembler, spark_scaler])
    out_dir = tempfile.mkdtemp(prefix="skbn-spark-bench-")

    def fit_skbn():
        return BatchNormScaler().fit(df)

    def fit_spark_ml():
        return pipeline.fit(df)

    def sql_aggregates():
        aggs = [F.avg(n) for n in names] + [F.var_pop(n) for n in names]
        return df.agg(*aggs).collect()

    def collect():
        return df.select(*names).toPandas()

    scaler, spark_model = fit_skbn(), fit_spark_ml()  # warm-up, and the fitted models

    def write_skbn():
        scaler.transform(df).write.mode("overwrite").parquet(os.path.join(out_dir, "skbn"))

    def write_spark_ml():
        spark_model.transform(df).select("key", "scaled").write.mode("overwrite").parquet(
            os.path.join(out_dir, "spark")
        )

    contenders = {
        "fit: Spark ML StandardScaler (VectorAssembler)": fit_spark_ml,
        "fit: skbn BatchNormScaler": fit_skbn,
        "fit: Spark SQL avg + var_pop of each column": sql_aggregates,
        "fit: collect to the driver (toPandas)": collect,
        "transform + write Parquet: Spark ML": write_spark_ml,
        "transform + write Parquet: skbn": write_skbn,
    }
    times: dict = {name: [] for name in contenders}
    for run in contenders.values():  # warm every path once
        run()
    for _ in range(args.repeat):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    shutil.rmtree(out_dir, ignore_errors=True)
    best = {name: min(ts) for name, ts in times.items()}

    fit_ref = best["fit: Spark ML StandardScaler (VectorAssembler)"]
    write_ref = best["transform + write Parquet: Spark ML"]
    import pyspark

    load = os.getloadavg()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU threads; Python "
        f"{platform.python_version()}, pyspark {pyspark.__version__}, NumPy "
        f"{np.__version__}. {args.rows:,} x {args.features} doubles, cached, local[2]; "
        f"best of {args.repeat}, interleaved. Load average before the report: "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}."
    )
    if args.markdown:
        print("\n| what | seconds | ratio to Spark ML |\n|---|---:|---:|")
    for name, seconds in best.items():
        ref = write_ref if name.startswith("transform") else fit_ref
        if args.markdown:
            print(f"| {name} | {seconds:.2f} | {seconds / ref:.2f} |")
        else:
            print(f"{name:55s} {seconds:8.2f} s  {seconds / ref:6.2f}x")
    fit_ratio = best["fit: skbn BatchNormScaler"] / fit_ref
    write_ratio = best["transform + write Parquet: skbn"] / write_ref
    print(
        f"\nfit: {fit_ratio:.2f}x Spark ML's (target <= 0.6x): "
        f"{'met' if fit_ratio <= 0.6 else 'NOT met'}; transform + write: "
        f"{write_ratio:.2f}x (target <= 1.0x): {'met' if write_ratio <= 1.0 else 'NOT met'}"
    )
    spark.stop()


if __name__ == "__main__":
    main()
