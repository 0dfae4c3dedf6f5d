"""ONNX export of :class:`~skbn.BatchNormScaler` through skl2onnx.

Importing this module registers a converter with skl2onnx::

    import skbn.onnx  # noqa: F401  (registers the converter)
    from skl2onnx import to_onnx

    onx = to_onnx(pipeline, X[:1].astype(np.float32))

after which ``skl2onnx.to_onnx`` converts a fitted ``BatchNormScaler``, alone
or inside a ``Pipeline`` / ``ColumnTransformer``, and onnxruntime reproduces
:meth:`~skbn.BatchNormScaler.transform`.  It needs the ``onnx`` extra
(``pip install "skbn[onnx]"``).

The graph is the transform itself, per feature ``j``::

    y = (x - shift_j) * factor_j + offset_j

    shift  = moving_mean_                                (Sub; left out if with_mean=False)
    factor = gamma_ / sqrt(moving_var_ + epsilon)        (Mul; gamma_ = 1 if scale=False,
                                                          divisor 1 where var + epsilon = 0)
    offset = beta_                                       (Add; left out if center=False)

with the coefficients computed in float64 by the scaler, exactly as
``transform`` computes them, and stored as initializers of the input's type:

* ``tensor(float)`` input (and ``tensor(int64)``, cast to float first):
  float32 coefficients and float32 arithmetic, which is what ``transform``
  does with float32 data, so the result is ``transform(X.astype(np.float32))``
  (and the float64 transform to float32 rounding);
* ``tensor(double)`` input: float64 coefficients, the float64 ``transform``.

NaN stays NaN (Sub, Mul and Add propagate it).  Every combination of
``center``, ``scale`` and ``with_mean`` converts; nothing is refused.  A
coefficient beyond the float32 range becomes +/-inf in a float graph.  For
the shift and offset that is what the float32 ``transform`` does too; for the
factor (``moving_var_ + epsilon`` below about 1e-77) it is not: ``transform``
then maps float32 data in float64, while the float graph gives +/-inf or NaN
for that feature.  Convert such a scaler with a ``tensor(double)`` input.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

try:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType
    from skl2onnx.common.utils import (
        check_input_and_output_numbers,
        check_input_and_output_types,
    )
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError(
        'skbn.onnx needs skl2onnx, onnx and onnxruntime: pip install "skbn[onnx]"'
    ) from exc

from ._scaler import BatchNormScaler

__all__ = [
    "ALIAS",
    "calculate_batchnorm_scaler_output_shapes",
    "convert_batchnorm_scaler",
    "register",
]

#: The name under which skl2onnx knows ``BatchNormScaler``.
ALIAS = "SkbnBatchNormScaler"


def _is_double(operator) -> bool:
    return all(isinstance(v.type, DoubleTensorType) for v in operator.inputs)


def calculate_batchnorm_scaler_output_shapes(operator) -> None:
    """skl2onnx shape calculator: ``[N, C_1], ..., [N, C_k] -> [N, n_features_in_]``.

    The inputs (float, double or int64 tensors, concatenated along the
    feature axis) must add up to ``n_features_in_`` features when their
    widths are known.  The output is a double tensor when every input is
    one, a float tensor otherwise.
    """
    check_input_and_output_numbers(operator, input_count_range=[1, None], output_count_range=1)
    check_input_and_output_types(
        operator,
        good_input_types=[FloatTensorType, DoubleTensorType, Int64TensorType],
        good_output_types=[FloatTensorType, DoubleTensorType],
    )
    if len({v.get_first_dimension() for v in operator.inputs}) > 1:
        raise RuntimeError("BatchNormScaler: every input must have the same number of rows.")
    scaler = operator.raw_operator
    check_is_fitted(scaler)
    widths = [v.get_second_dimension() for v in operator.inputs]
    if all(isinstance(c, numbers.Integral) for c in widths):
        if sum(widths) != scaler.n_features_in_:
            raise RuntimeError(
                f"BatchNormScaler was fitted on {scaler.n_features_in_} features, but "
                f"the ONNX inputs have {sum(widths)} ({widths})."
            )
    n_rows = operator.inputs[0].get_first_dimension()
    out_type = DoubleTensorType if _is_double(operator) else FloatTensorType
    operator.outputs[0].type = out_type([n_rows, scaler.n_features_in_])


def convert_batchnorm_scaler(scope, operator, container) -> None:
    """skl2onnx converter: ``Sub``, ``Mul`` and ``Add`` nodes with the coefficients.

    See the module docstring for the graph and its precision.
    """
    scaler = operator.raw_operator
    check_is_fitted(scaler)
    if _is_double(operator):
        dtype, proto, main_type = np.float64, onnx_proto.TensorProto.DOUBLE, DoubleTensorType
    else:
        dtype, proto, main_type = np.float32, onnx_proto.TensorProto.FLOAT, FloatTensorType
    current = concatenate_variables(scope, operator.inputs, container, main_type=main_type)
    shift, factor, offset = scaler._coefficients()  # exactly what transform uses
    steps = [("Sub", "shift", shift), ("Mul", "factor", factor), ("Add", "offset", offset)]
    steps = [step for step in steps if step[2] is not None]
    n_features = scaler.n_features_in_
    for i, (op_type, what, values) in enumerate(steps):
        coef = scope.get_unique_variable_name(f"bn_{what}")
        with np.errstate(over="ignore"):  # beyond float32: inf (see the module docstring)
            values = np.broadcast_to(np.asarray(values, dtype=np.float64), (n_features,))
            values = values.astype(dtype)
        container.add_initializer(coef, proto, [n_features], values)
        last = i == len(steps) - 1
        out = operator.outputs[0].full_name if last else scope.get_unique_variable_name(what)
        container.add_node(
            op_type, [current, coef], out, name=scope.get_unique_operator_name(f"BN{op_type}")
        )
        current = out


def register() -> None:
    """Register (again) the converter with skl2onnx; done when importing this module."""
    update_registered_converter(
        BatchNormScaler,
        ALIAS,
        calculate_batchnorm_scaler_output_shapes,
        convert_batchnorm_scaler,
    )


register()
