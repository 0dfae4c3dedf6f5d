"""``transform`` and ``inverse_transform`` of a Spark DataFrame: column expressions.

Lazy: one ``select`` of column expressions, the features mapped, the other
columns as they are; no Spark job runs until an action.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import functions as F

from .._collections import float64_coefficients
from .._validation import infinite_error
from ._schema import _col, _feature_fields


def _literal(value: float, spark_type: str):
    return F.lit(float(value)).cast(spark_type)


def _affine_column(c, j: int, coefficients: tuple, inverse: bool, spark_type: str):
    """``(x - shift) * factor + offset`` (or its inverse) of one column."""
    shift, factor, offset = (
        None if a is None else _literal(a[j], spark_type) for a in coefficients
    )
    if inverse:
        shift, offset = offset, shift
    out = c if shift is None else c - shift
    out = out / factor if inverse else out * factor
    return out if offset is None else out + offset


def _expression_type(dtype: np.dtype, factor: np.ndarray) -> tuple:
    """The Spark type the map is computed in, and the type of the result."""
    if np.dtype(dtype) != np.float32:
        return "double", "double"
    with np.errstate(over="ignore"):
        fits = np.isfinite(np.asarray(factor, dtype=np.float32)).all()
    return ("float" if fits else "double"), "float"


def transform(
    X: Any,
    coefficients: tuple,
    *,
    dtype: np.dtype,
    inverse: bool = False,
    feature_names: Any = None,
    materialize: bool = False,
) -> Any:
    """Lazy affine map (``transform`` or ``inverse_transform``) of a Spark DataFrame.

    Returns a DataFrame with the columns of ``X`` in the same order: the
    features mapped (double, or float when all features are float), the
    other columns as they are.  No Spark job runs.  Computing a row that
    holds +/-inf in a feature fails with the in-memory message.  With
    ``materialize`` (``set_output`` asked for an in-memory container), the
    mapped features are collected as a pandas DataFrame.
    """
    fields = _feature_fields(X.schema, feature_names)
    shift, factor, offset = float64_coefficients(coefficients)
    work, result = _expression_type(dtype, factor)
    index = {f.name: j for j, f in enumerate(fields)}
    names = [f.name for f in fields]
    columns = []
    for field in X.schema.fields:
        j = index.get(field.name)
        if j is None:
            columns.append(_col(field.name))
            continue
        c = _col(field.name).cast(work)
        mapped = _affine_column(c, j, (shift, factor, offset), inverse, work).cast(result)
        message = str(infinite_error([j], names))
        guarded = F.when(F.abs(c) == F.lit(float("inf")), F.raise_error(F.lit(message)))
        columns.append(guarded.otherwise(mapped).alias(field.name))
    out = X.select(*columns)
    if materialize:
        return out.select(*[_col(n) for n in names]).toPandas()
    return out
