"""The Spark ML stage: :class:`BatchNormScalerSpark` and its fitted model.

The ``Estimator`` fits with the engine of :mod:`skbn.spark._arrow` in
vector mode; the ``Model`` maps a vector column with column expressions and
saves its fitted statistics beside the DefaultParams metadata.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .._validation import infinite_error
from ._arrow import _frame_moments
from ._params import _BatchNormScalerParams, _SetterMixin


class BatchNormScalerSpark(
    _SetterMixin,
    Estimator,
    _BatchNormScalerParams,
    DefaultParamsReadable,
    DefaultParamsWritable,
):
    """:class:`~skbn.BatchNormScaler` as a Spark ML ``Estimator`` on a vector column.

    Behaves like Spark ML's ``StandardScaler`` (``inputCol``/``outputCol``,
    vectors in, dense vectors out) with the moving statistics of
    ``BatchNormScaler``, whose parameters are its params in camelCase, with
    its defaults (``withMean=True``, ``epsilon=1e-3``, ``momentum=0.99``,
    ...).  Dense and sparse vectors may be mixed; a null vector is missing
    and stays null.  ``fit`` runs on the executors (the engine of
    ``BatchNormScaler.fit`` on a Spark DataFrame) and returns a
    :class:`BatchNormScalerSparkModel`.

    Example (``spark`` a SparkSession)::

        from pyspark.ml.linalg import Vectors
        df = spark.createDataFrame([(Vectors.dense([0.0]),), (Vectors.dense([2.0]),)], ["a"])
        model = BatchNormScalerSpark(inputCol="a", outputCol="scaled", epsilon=0.0).fit(df)
        model.mean, model.variance            # (DenseVector([1.0]), DenseVector([1.0]))
        model.transform(df).collect()[1].scaled  # DenseVector([1.0])
    """

    _input_kwargs: dict

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str | None = None,
        outputCol: str | None = None,
        withMean: bool = True,
        withStd: bool = True,
        epsilon: float = 1e-3,
        momentum: Any = 0.99,
        unbiased: bool = False,
        init: str = "debiased",
        center: bool = True,
        scale: bool = True,
        gamma: Any = 1.0,
        beta: Any = 0.0,
        batchSize: int | None = None,
    ):
        super().__init__()
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, **params: Any) -> BatchNormScalerSpark:
        """Sets the params given (the names of the constructor's arguments)."""
        unknown = sorted(set(params) - {p.name for p in self.params})
        if unknown:
            raise TypeError(f"setParams() got unexpected keyword argument(s) {unknown}")
        return self._set(**params)

    def setMomentum(self, value: Any) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`momentum`."""
        return self._set(momentum=value)

    def setUnbiased(self, value: bool) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`unbiased`."""
        return self._set(unbiased=value)

    def setInit(self, value: str) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`init`."""
        return self._set(init=value)

    def setGamma(self, value: Any) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`gamma`."""
        return self._set(gamma=value)

    def setBeta(self, value: Any) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`beta`."""
        return self._set(beta=value)

    def setBatchSize(self, value: int | None) -> BatchNormScalerSpark:
        """Sets the value of :py:attr:`batchSize`."""
        return self._set(batchSize=value)

    def _fit(self, dataset: DataFrame) -> BatchNormScalerSparkModel:
        from .._scaler import BatchNormScaler

        scaler = BatchNormScaler(**self._scaler_params())
        scaler._check_params()  # bad values refused before any Spark job
        name = self.getInputCol()
        values = self._input_array(dataset)
        size = self._vector_size_hint(dataset)
        if size is None:
            first = dataset.select(F.size(values)).where(values.isNotNull()).first()
            if first is None:
                raise ValueError(
                    f"Input column {name!r} holds no vector (the DataFrame is empty or "
                    "every vector is null): there is nothing to fit."
                )
            size = int(first[0])
        if size < 1:
            raise ValueError(f"The vectors of column {name!r} are empty (size 0).")
        batches = _frame_moments(
            dataset.select(values.alias("v")),
            [name],
            weight=None,
            batch_size=scaler.batch_size,
            vector_size=size,
        )
        if batches.n_rows == 0 or not batches.moments:
            raise ValueError(
                f"Found 0 sample(s) in column {name!r} while a minimum of 1 is "
                "required: there is nothing to fit."
            )
        scaler._fit_moments(batches.moments, n_features=size)
        model = BatchNormScalerSparkModel()
        model._resetUid(self.uid)
        model._scaler = scaler
        return self._copyValues(model)


class BatchNormScalerSparkModel(
    _SetterMixin, Model, _BatchNormScalerParams, MLReadable, MLWritable
):
    """The fitted :class:`BatchNormScalerSpark`: scales ``inputCol`` into ``outputCol``.

    ``transform`` is lazy (column expressions, no Spark job); null vectors
    stay null, a vector of the wrong size fails (at once when the column's
    metadata gives its size, else when the row is computed).  ``withMean``,
    ``withStd``, ``epsilon``, ``center`` and ``scale`` may be changed on the
    model; they apply to later transforms.  Saved and loaded with its fitted
    statistics (``save``/``load``, also inside a ``Pipeline``).
    """

    def __init__(self):
        super().__init__()
        self._scaler = None

    @property
    def scaler(self):
        """The fitted :class:`~skbn.BatchNormScaler` (its own parameters)."""
        return self._scaler

    def _fitted(self):
        if self._scaler is None:
            raise ValueError("This BatchNormScalerSparkModel holds no fitted scaler.")
        current = copy.copy(self._scaler)
        keys = ("with_mean", "with_std", "epsilon", "center", "scale")
        params = self._scaler_params()
        return current.set_params(**{k: params[k] for k in keys})

    @property
    def mean(self):
        """The moving mean, as a DenseVector."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._fitted().moving_mean_)

    @property
    def variance(self):
        """The moving variance, as a DenseVector."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self._fitted().moving_var_)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from pyspark.ml.functions import array_to_vector

        scaler = self._fitted()
        name = self.getInputCol()
        values = self._input_array(dataset)
        n = scaler.n_features_in_
        size = self._vector_size_hint(dataset)
        if size is not None and size != n:
            raise ValueError(
                f"Column {name!r} holds vectors of size {size}, but the model was fitted "
                f"on {n} features."
            )
        shift, factor, offset = scaler._coefficients()
        coefficients = [
            None if c is None else F.array(*[F.lit(float(v)) for v in c])
            for c in (shift, factor, offset)
        ]
        infinite = str(infinite_error([0], None, type(scaler).__name__)).replace(
            "feature(s) [0]", f"column {name!r}"
        )

        def one(x, i):
            s, f, o = (None if c is None else c[i] for c in coefficients)
            y = x if s is None else x - s
            y = y * f
            y = y if o is None else y + o
            return F.when(
                F.abs(x) == F.lit(float("inf")), F.raise_error(F.lit(infinite))
            ).otherwise(y)

        wrong = (
            f"Column {name!r} holds a vector whose size is not {n}, the number of "
            "features the model was fitted on."
        )
        mapped = (
            F.when(values.isNull(), F.lit(None))
            .when(F.size(values) != n, F.raise_error(F.lit(wrong)))
            .otherwise(F.transform(values, one))
        )
        vector = F.when(values.isNull(), F.lit(None)).otherwise(array_to_vector(mapped))
        return dataset.withColumn(self.getOutputCol(), vector)

    def write(self) -> MLWriter:
        """A writer that saves the params and the fitted statistics."""
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        """A reader that loads a saved model."""
        return _ModelReader(cls)


# -- saving the model: DefaultParams metadata with the fitted statistics -------


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"ndarray", "dtype"}:
        return np.array(value["ndarray"], dtype=np.dtype(value["dtype"]))
    return value


class _ModelWriter(MLWriter):
    def __init__(self, instance: BatchNormScalerSparkModel):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        state = self.instance._scaler.__getstate__()
        extra = {"skbnScaler": {k: _to_json(v) for k, v in state.items()}}
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extra)


class _ModelReader(MLReader):
    def __init__(self, cls: type):
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> BatchNormScalerSparkModel:
        from .._scaler import BatchNormScaler

        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        scaler = BatchNormScaler.__new__(BatchNormScaler)
        scaler.__setstate__({k: _from_json(v) for k, v in metadata["skbnScaler"].items()})
        instance._scaler = scaler
        return instance
