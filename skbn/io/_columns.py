"""Which columns of a file are scaled, their values, and the maps that scale them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ._errors import FileError
from ._formats import pyarrow

__all__ = ["choose_columns", "column_values", "match_loaded", "replace_values"]


def _is_numeric(arrow_type) -> bool:
    types = pyarrow().types
    return (
        types.is_integer(arrow_type)
        or types.is_floating(arrow_type)
        or (types.is_decimal(arrow_type))
    )


def describe_type(arrow_type) -> str:
    """An Arrow type in words: ``text`` for the string types, else its name."""
    types = pyarrow().types
    if types.is_string(arrow_type) or types.is_large_string(arrow_type):
        return "text"
    return "text" if str(arrow_type) == "string_view" else str(arrow_type)


def _missing(names: Sequence[str], schema, name: str, option: str) -> None:
    for column in names:
        if column not in schema.names:
            raise FileError(
                f"{option}: {name!r} has no column {column!r} "
                f"(its columns: {', '.join(schema.names)})",
                status=2,
            )


def choose_columns(
    schema,
    name: str,
    columns: Sequence[str] | None,
    exclude: Sequence[str] | None,
    index_columns=(),
) -> list[str]:
    """The columns to scale, in file order (or in the order of ``columns``)."""
    names = schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FileError(f"{name!r} has duplicate column names: {', '.join(dupes)}")
    excluded = set(exclude or ())
    _missing(sorted(excluded), schema, name, "--exclude")
    numeric = {f.name for f in schema if _is_numeric(f.type)}
    if columns is None:
        chosen = [n for n in names if n in numeric and n not in excluded]
        chosen = [n for n in chosen if n not in index_columns]
        if not chosen:
            described = ", ".join(f"{f.name} ({describe_type(f.type)})" for f in schema)
            raise FileError(f"{name!r} has no numeric column to scale (its columns: {described})")
        return chosen
    _missing(columns, schema, name, "--columns")
    for column in columns:
        if column not in numeric:
            raise FileError(
                f"--columns: column {column!r} is {describe_type(schema.field(column).type)}, "
                "not numeric; "
                "only integer, floating-point and decimal columns can be scaled "
                f"(or read it as a number with --dtype {column}=float)",
                status=2,
            )
    chosen = [n for n in columns if n not in excluded]
    if not chosen:
        raise FileError("--exclude leaves none of the --columns to scale", status=2)
    return chosen


def match_loaded(scaler, features: list[str], path: str, *, explicit: bool) -> list[str]:
    """The chosen columns in the loaded scaler's feature order, or a clear error."""
    names = getattr(scaler, "feature_names_in_", None)
    option = "--columns" if explicit else "the numeric columns"
    if names is None:
        if scaler.n_features_in_ != len(features):
            raise FileError(
                f"the scaler in {path!r} was fitted on {scaler.n_features_in_} unnamed "
                f"features, but {option} of the input are {len(features)}: "
                f"{', '.join(features)}"
            )
        return features
    names = [str(n) for n in names]
    if set(names) != set(features) or len(names) != len(features):
        missing = [n for n in names if n not in features]
        extra = [n for n in features if n not in names]
        detail = []
        if missing:
            detail.append(f"not chosen from the input: {', '.join(missing)}")
        if extra:
            detail.append(f"chosen but unknown to the scaler: {', '.join(extra)}")
        raise FileError(
            f"the scaler in {path!r} was fitted on columns {', '.join(names)}, which do "
            f"not match {option} of the input ({'; '.join(detail)}); name the scaler's "
            "columns with --columns"
        )
    return names


def _valid(chunk) -> np.ndarray:
    """The validity of an Arrow array as a bool vector (read from its bitmap)."""
    n, offset = len(chunk), chunk.offset
    bitmap = chunk.buffers()[0]
    if bitmap is None or chunk.null_count == 0:
        return np.ones(n, dtype=bool)
    bits = np.frombuffer(bitmap, dtype=np.uint8)
    return np.unpackbits(bits, count=offset + n, bitorder="little")[offset:].astype(bool)


def _chunk_values(chunk) -> np.ndarray:
    n, offset = len(chunk), chunk.offset
    values = np.frombuffer(chunk.buffers()[1], dtype=np.float64, count=offset + n)[offset:]
    if chunk.null_count:
        values = np.where(_valid(chunk), values, np.nan)
    return values


def column_values(column) -> np.ndarray:
    """A float64 column (chunked or not) as a NumPy vector, nulls as NaN.

    Read from the Arrow buffers (no copy for one chunk without nulls):
    pyarrow's own ``to_numpy`` of a chunked array imports pandas.
    """
    chunks = getattr(column, "chunks", [column])
    if len(chunks) == 1:
        return _chunk_values(chunks[0])
    if not chunks:
        return np.empty(0)
    return np.concatenate([_chunk_values(chunk) for chunk in chunks])


def affine_map(coefs: tuple):
    """A column mapper ``(x - shift) * factor + offset`` from per-column coefficients.

    ``coefs`` is ``(shift, factor, offset)``, arrays of one value per column
    (``None`` leaves a term out), the order of operations that of the core's
    affine map.
    """
    shift, factor, offset = coefs

    def apply(values: list) -> list:
        out = []
        for j, x in enumerate(values):
            y = np.multiply(x, factor[j]) if shift is None else np.subtract(x, shift[j])
            if shift is not None:
                np.multiply(y, factor[j], out=y)
            out.append(y if offset is None else np.add(y, offset[j], out=y))
        return out

    apply.coefficients = coefs  # the same map in another engine (polars)
    return apply


def scaler_map(scaler, inverse: bool):
    """A column mapper that runs ``scaler.transform`` (or its inverse) on the columns."""
    method = scaler.inverse_transform if inverse else scaler.transform

    def apply(values: list) -> list:
        with warnings.catch_warnings():  # the columns are in the scaler's order
            warnings.filterwarnings("ignore", "X does not have valid feature names")
            Y = method(np.column_stack(values))
        return [Y[:, j] for j in range(Y.shape[1])]

    return apply


def replace_values(table, features: Sequence[str], mapper, check: bool, first_row: int):
    """``table`` with its ``features`` columns replaced by ``mapper`` of their values.

    ``mapper`` takes and returns a list of float64 vectors (missing values as
    NaN, missing again in the result).  Each record batch of ``table`` is
    mapped on its own, so the result has the same chunks in every column (a
    writer handed columns chunked differently copies them all).  With
    ``check``, an infinite value raises a :class:`FileError` naming its row
    (``first_row`` is the number of data rows before ``table``).
    """
    pa = pyarrow()
    batches = []
    for batch in table.to_batches():
        columns = [batch.column(name) for name in features]
        values = [_chunk_values(column) for column in columns]
        if check:
            for name, x in zip(features, values, strict=True):
                _check_finite(x, name, first_row)
        arrays = list(batch.columns)
        for name, column, y in zip(features, columns, mapper(values), strict=True):
            arrays[batch.schema.get_field_index(name)] = float_array(y, column)
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=batch.schema))
        first_row += batch.num_rows
    return pa.Table.from_batches(batches, schema=table.schema)


def float_array(values: np.ndarray, like):
    """A float64 Arrow array of ``values``, null where ``like`` is null.

    Built from buffers (no copy of ``values``): ``pyarrow.array`` would
    import pandas.
    """
    pa = pyarrow()
    values = np.ascontiguousarray(values, dtype=np.float64)
    validity = None
    if like.null_count:
        valid = np.concatenate([_valid(c) for c in getattr(like, "chunks", [like])])
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    buffers = [validity, pa.py_buffer(values)]
    return pa.Array.from_buffers(pa.float64(), len(values), buffers, null_count=like.null_count)


def _check_finite(values: np.ndarray, name: str, first_row: int) -> None:
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(np.dot(values, values)) or values.size == 0:
            return
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        raise infinite_error(name, first_row + int(infinite[0]))


def infinite_error(name: str, row: int) -> FileError:
    """The error for an infinite value of column ``name`` at 0-based data ``row``."""
    return FileError(
        f"column {name!r} holds an infinite value (data row {row + 1}); skbn scale "
        "accepts missing values (left missing) but not +/-inf: replace them first"
    )
