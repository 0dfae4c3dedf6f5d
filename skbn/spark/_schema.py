"""Which columns of a Spark DataFrame are the features, and their stand-in.

The numeric columns (Spark's ``NumericType``) are the features; every other
column passes through.  :func:`describe` gives the estimator an empty pandas
frame with the features' names and dtype to validate, from the schema only;
``_col`` and ``_feature_fields`` are shared by the rest of :mod:`skbn.spark`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T


def is_collection(X: Any) -> bool:
    """Whether ``X`` is a Spark DataFrame (classic or Spark Connect)."""
    return isinstance(X, DataFrame)


def _quoted(name: str) -> str:
    """``name`` as a column reference, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"


def _col(name: str):
    return F.col(_quoted(name))


def _numeric_fields(schema: T.StructType) -> list:
    return [f for f in schema.fields if isinstance(f.dataType, T.NumericType)]


def _check_unique(names: list) -> None:
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise ValueError(
            f"The Spark DataFrame has more than one column named {repeated}: "
            "rename them (e.g. with withColumnRenamed or an alias after a join)."
        )


def _feature_fields(schema: T.StructType, feature_names=None) -> list:
    """The fields of the features: the numeric columns, or the fitted ones."""
    if feature_names is None:
        fields = _numeric_fields(schema)
        if not fields:
            described = ", ".join(f"{f.name}: {f.dataType.simpleString()}" for f in schema.fields)
            raise ValueError(
                "The Spark DataFrame has no numeric column "
                f"({described or 'no columns at all'}): BatchNormScaler fits the numeric "
                "columns (byte, short, int, long, float, double, decimal) and passes the "
                "others through. Cast the features to a number first, e.g. "
                "df.withColumn('x', df['x'].cast('double'))."
            )
        _check_unique([f.name for f in fields])
        return fields
    by_name: dict = {}
    for field in schema.fields:
        by_name.setdefault(field.name, []).append(field)
    names = [str(n) for n in feature_names]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(
            f"Column(s) {missing}, fitted as features, are missing from the Spark "
            f"DataFrame (it has {list(by_name)}): transform needs every column in "
            "feature_names_in_."
        )
    _check_unique([n for n in names for _ in by_name[n]])
    fields = [by_name[n][0] for n in names]
    wrong = [f for f in fields if not isinstance(f.dataType, T.NumericType)]
    if wrong:
        raise TypeError(
            "Column(s) "
            + ", ".join(f"{f.name!r} ({f.dataType.simpleString()})" for f in wrong)
            + " were fitted as numeric features but are not numeric in this Spark "
            "DataFrame: cast them back to a number, e.g. df['x'].cast('double')."
        )
    return fields


def _dtype(fields: list) -> np.dtype:
    """float32 when every feature is a Spark float, else float64 (as in memory)."""
    if all(isinstance(f.dataType, T.FloatType) for f in fields):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def describe(X: Any, feature_names=None) -> Any:
    """An empty pandas frame standing for the features of ``X`` (schema only).

    Parameters
    ----------
    X : pyspark.sql.DataFrame
        The data; nothing of it is computed.
    feature_names : sequence of str or None
        The fitted names (``transform``): the stand-in holds those columns,
        which must be present and numeric in ``X``.  None: the numeric
        columns of ``X`` (``fit``).
    """
    import pandas as pd

    if not is_collection(X):
        raise TypeError(
            "BatchNormScaler takes a Spark DataFrame as X; got a pyspark "
            f"{type(X).__name__}. Pass the DataFrame itself, e.g. df.select(...)."
        )
    fields = _feature_fields(X.schema, feature_names)
    dtype = _dtype(fields)
    return pd.DataFrame({f.name: np.empty(0, dtype=dtype) for f in fields})
