"""The parameters of :class:`~skbn.BatchNormScaler` as Spark ML params.

The params (camelCase, with the estimator's defaults), their getters and the
setters shared by :class:`~skbn.spark.BatchNormScalerSpark` and
:class:`~skbn.spark.BatchNormScalerSparkModel`, and the input column read as
``array<double>``.
"""

from __future__ import annotations

from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ._schema import _col


def _to_momentum(value: Any) -> Any:
    if value is None or value == "pooled":
        return value
    return TypeConverters.toFloat(value)


def _to_float_or_list(value: Any) -> Any:
    if TypeConverters._is_numeric(value):
        return float(value)
    return TypeConverters.toListFloat(value)


def _to_optional_int(value: Any) -> Any:
    return None if value is None else TypeConverters.toInt(value)


#: Spark ML param name -> BatchNormScaler parameter.
_PARAM_NAMES = {
    "withMean": "with_mean",
    "withStd": "with_std",
    "epsilon": "epsilon",
    "momentum": "momentum",
    "unbiased": "unbiased",
    "init": "init",
    "center": "center",
    "scale": "scale",
    "gamma": "gamma",
    "beta": "beta",
    "batchSize": "batch_size",
}


def _scaler_defaults() -> dict:
    from .._scaler import BatchNormScaler

    defaults = BatchNormScaler().get_params()
    return {name: defaults[key] for name, key in _PARAM_NAMES.items()}


class _BatchNormScalerParams(HasInputCol, HasOutputCol):
    """The parameters of :class:`~skbn.BatchNormScaler` as Spark ML params
    (camelCase), with its defaults."""

    withMean = Param(
        Params._dummy(), "withMean", "subtract the moving mean",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    withStd = Param(
        Params._dummy(), "withStd", "divide by sqrt(moving variance + epsilon)",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    epsilon = Param(
        Params._dummy(), "epsilon", "added to the moving variance (>= 0)",
        typeConverter=TypeConverters.toFloat,
    )  # fmt: skip
    momentum = Param(
        Params._dummy(), "momentum",
        "weight of the old estimate in [0, 1), None (average of the batch "
        "statistics) or 'pooled' (exact statistics of all rows)",
        typeConverter=_to_momentum,
    )  # fmt: skip
    unbiased = Param(
        Params._dummy(), "unbiased", "multiply each batch variance by m / (m - 1)",
        typeConverter=TypeConverters.toBoolean,
    )  # fmt: skip
    init = Param(
        Params._dummy(), "init", "how the moving statistics start: 'debiased' or 'keras'",
        typeConverter=TypeConverters.toString,
    )  # fmt: skip
    center = Param(Params._dummy(), "center", "add beta", typeConverter=TypeConverters.toBoolean)
    scale = Param(
        Params._dummy(), "scale", "multiply by gamma", typeConverter=TypeConverters.toBoolean
    )
    gamma = Param(
        Params._dummy(), "gamma", "starting gamma: a number or one per feature",
        typeConverter=_to_float_or_list,
    )  # fmt: skip
    beta = Param(
        Params._dummy(), "beta", "starting beta: a number or one per feature",
        typeConverter=_to_float_or_list,
    )  # fmt: skip
    batchSize = Param(
        Params._dummy(), "batchSize",
        "fit in consecutive batches of this many rows (None: one batch)",
        typeConverter=_to_optional_int,
    )  # fmt: skip

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(**_scaler_defaults())

    def getWithMean(self) -> bool:
        """Gets the value of withMean or its default value."""
        return self.getOrDefault(self.withMean)

    def getWithStd(self) -> bool:
        """Gets the value of withStd or its default value."""
        return self.getOrDefault(self.withStd)

    def getEpsilon(self) -> float:
        """Gets the value of epsilon or its default value."""
        return self.getOrDefault(self.epsilon)

    def getMomentum(self) -> Any:
        """Gets the value of momentum or its default value."""
        return self.getOrDefault(self.momentum)

    def getUnbiased(self) -> bool:
        """Gets the value of unbiased or its default value."""
        return self.getOrDefault(self.unbiased)

    def getInit(self) -> str:
        """Gets the value of init or its default value."""
        return self.getOrDefault(self.init)

    def getCenter(self) -> bool:
        """Gets the value of center or its default value."""
        return self.getOrDefault(self.center)

    def getScale(self) -> bool:
        """Gets the value of scale or its default value."""
        return self.getOrDefault(self.scale)

    def getGamma(self) -> Any:
        """Gets the value of gamma or its default value."""
        return self.getOrDefault(self.gamma)

    def getBeta(self) -> Any:
        """Gets the value of beta or its default value."""
        return self.getOrDefault(self.beta)

    def getBatchSize(self) -> Any:
        """Gets the value of batchSize or its default value."""
        return self.getOrDefault(self.batchSize)

    def _scaler_params(self) -> dict:
        """The BatchNormScaler parameters these params stand for."""
        return {key: self.getOrDefault(name) for name, key in _PARAM_NAMES.items()}

    def _vector_size_hint(self, dataset: DataFrame) -> int | None:
        """The size of the input vectors recorded in the column's ML metadata."""
        attrs = dataset.schema[self.getInputCol()].metadata.get("ml_attr", {})
        size = attrs.get("num_attrs")
        return None if size is None else int(size)

    def _input_array(self, dataset: DataFrame):
        """The input column as array<double>, refused unless it holds vectors."""
        from pyspark.ml.functions import vector_to_array
        from pyspark.ml.linalg import VectorUDT

        name = self.getInputCol()
        if name not in dataset.columns:
            raise ValueError(
                f"Input column {name!r} is not in the DataFrame (columns: {dataset.columns})."
            )
        data_type = dataset.schema[name].dataType
        if isinstance(data_type, VectorUDT):  # (vector_to_array refuses null)
            return F.when(_col(name).isNotNull(), vector_to_array(_col(name), "float64"))
        if isinstance(data_type, T.ArrayType) and isinstance(data_type.elementType, T.NumericType):
            return _col(name).cast("array<double>")
        raise TypeError(
            f"Input column {name!r} must hold vectors (pyspark.ml.linalg.Vector) or "
            f"arrays of numbers; it is {data_type.simpleString()}. Assemble the "
            "features first, e.g. with VectorAssembler."
        )


class _SetterMixin:
    def setInputCol(self, value: str):
        """Sets the value of :py:attr:`inputCol`."""
        return self._set(inputCol=value)

    def setOutputCol(self, value: str):
        """Sets the value of :py:attr:`outputCol`."""
        return self._set(outputCol=value)

    def setWithMean(self, value: bool):
        """Sets the value of :py:attr:`withMean`."""
        return self._set(withMean=value)

    def setWithStd(self, value: bool):
        """Sets the value of :py:attr:`withStd`."""
        return self._set(withStd=value)

    def setEpsilon(self, value: float):
        """Sets the value of :py:attr:`epsilon`."""
        return self._set(epsilon=value)

    def setCenter(self, value: bool):
        """Sets the value of :py:attr:`center`."""
        return self._set(center=value)

    def setScale(self, value: bool):
        """Sets the value of :py:attr:`scale`."""
        return self._set(scale=value)
