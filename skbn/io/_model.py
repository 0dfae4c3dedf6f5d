"""Model files: load and save a fitted scaler with skops, and read one without it.

:func:`read_model` reads a skops archive (a zip file of ``schema.json`` and
``.npy`` arrays) with the standard library and NumPy only: it never imports
skops or scikit-learn and never builds an object from the file, so looking at
a model is fast and safe.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from typing import Any

import numpy as np

from ._atomic import Workspace
from ._errors import FileError, require

__all__ = ["ModelSummary", "load_scaler", "read_model", "save_scaler"]

#: The only type a model file may hold beyond what skops trusts by default.
TRUSTED_TYPE = "skbn._scaler.BatchNormScaler"


def _scaler_class():
    from .._scaler import BatchNormScaler

    return BatchNormScaler


def load_scaler(path: str | os.PathLike):
    """Load a fitted :class:`~skbn.BatchNormScaler` saved with skops.

    Only ``skbn._scaler.BatchNormScaler`` is trusted beyond the types skops
    trusts by default; a file holding any other type is refused unloaded.

    Parameters
    ----------
    path : str or path-like
        A file written by ``skbn scale --save``, :func:`save_scaler` or
        ``skops.io.dump``.

    Returns
    -------
    scaler : BatchNormScaler
        The fitted scaler.

    Raises
    ------
    FileError
        If the file is missing, unreadable, holds an untrusted type, or holds
        anything but a fitted ``BatchNormScaler``.
    """
    sio = require("skops.io", "skops", "loading a model file")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileError(f"model file {path!r} not found")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a skops file"
        raise FileError(f"cannot read model file {path!r}: not a skops file ({exc})") from None
    others = sorted(set(untrusted) - {TRUSTED_TYPE})
    if others:
        raise FileError(
            f"refusing to load model file {path!r}: it holds type(s) skbn does not "
            f"trust ({', '.join(others)}); only a skbn BatchNormScaler saved with "
            "'skbn scale --save' or skops.io.dump can be loaded"
        )
    try:
        obj = sio.load(path, trusted=[TRUSTED_TYPE])
    except Exception as exc:  # noqa: BLE001
        raise FileError(f"cannot load model file {path!r}: {exc}") from None
    if not isinstance(obj, _scaler_class()):
        raise FileError(
            f"model file {path!r} holds a {type(obj).__module__}.{type(obj).__qualname__}, "
            "not a skbn BatchNormScaler"
        )
    if not hasattr(obj, "n_features_in_"):
        raise FileError(f"model file {path!r} holds a BatchNormScaler that was never fitted")
    return obj


def save_scaler(scaler, path: str | os.PathLike) -> None:
    """Write ``scaler`` to ``path`` with ``skops.io.dump``, atomically.

    Parameters
    ----------
    scaler : BatchNormScaler
        A fitted scaler.
    path : str or path-like
        Where to write it; an existing file is replaced only once the new
        one is complete.
    """
    with Workspace() as work:
        dump_scaler(scaler, os.fspath(path), work)


def dump_scaler(scaler, path: str, work: Workspace) -> None:
    """Write ``scaler`` to a temporary file of ``work`` that becomes ``path``."""
    sio = require("skops.io", "skops", "saving a model file (--save)")
    try:
        sio.dump(scaler, work.output(path))
    except FileError:
        raise
    except Exception as exc:  # noqa: BLE001 - skops reports its own failures
        raise FileError(f"cannot write model file {path!r}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """What a skops file of a :class:`~skbn.BatchNormScaler` holds.

    Attributes
    ----------
    params : dict
        The constructor parameters, by name.
    fitted : dict
        Fitted attributes that are not arrays (counters), by name.
    arrays : dict of str to ndarray
        Fitted arrays (``moving_mean_``, ``moving_var_``, ``gamma_``,
        ``beta_``, per-feature counters), by name.
    feature_names : list of str
        ``feature_names_in_``, or ``x0``, ``x1``, ... when the scaler was
        fitted on an unnamed array.
    """

    params: dict
    fitted: dict
    arrays: dict
    feature_names: list


class _Archive:
    """Decodes the nodes of a skops ``schema.json`` into plain values."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def value(self, node: dict) -> Any:
        loader = node.get("__loader__")
        content = node.get("content")
        if loader == "JsonNode":
            return json.loads(content)
        if loader == "NdArrayNode":
            return self.array(node)
        if loader in ("ListNode", "TupleNode"):
            return [self.value(item) for item in content]
        if loader == "DictNode":
            return {key: self.value(item) for key, item in content.items()}
        if loader == "NoneType" or node.get("__class__") == "NoneType":
            return None
        return f"<{node.get('__module__')}.{node.get('__class__')}>"

    def array(self, node: dict) -> np.ndarray:
        if node.get("type") == "json":
            values = [self.value(item) for item in node["content"]]
            return np.asarray(values, dtype=object).reshape(self.value(node["shape"]))
        with self.archive.open(node["file"]) as stream:
            return np.load(stream, allow_pickle=False)


def read_model(path: str | os.PathLike) -> ModelSummary:
    """Read a saved scaler's parameters and statistics without loading it.

    Parameters
    ----------
    path : str or path-like
        A skops file holding a fitted ``BatchNormScaler``.

    Returns
    -------
    summary : ModelSummary

    Raises
    ------
    FileError
        If the file is missing, not a skops archive, or holds anything but a
        fitted ``BatchNormScaler``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileError(f"model file {path!r} not found")
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
            top = schema.get("content", {})
            held = f"{schema.get('__module__')}.{schema.get('__class__')}"
            if held != TRUSTED_TYPE or top.get("__loader__") != "DictNode":
                raise FileError(f"model file {path!r} holds a {held}, not a skbn BatchNormScaler")
            decoder = _Archive(archive)
            values = {name: decoder.value(node) for name, node in top["content"].items()}
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise FileError(f"cannot read model file {path!r}: not a skops file ({exc})") from None
    return _summary(values, path)


def _summary(values: dict, path: str) -> ModelSummary:
    if "n_features_in_" not in values:
        raise FileError(f"model file {path!r} holds a BatchNormScaler that was never fitted")
    n = int(values["n_features_in_"])
    params, fitted, arrays = {}, {}, {}
    for name, value in values.items():
        if name.startswith("_") or name == "feature_names_in_":
            continue
        if not name.endswith("_"):
            params[name] = value
        elif isinstance(value, np.ndarray) and value.shape == (n,):
            arrays[name] = value
        else:
            fitted[name] = value
    names = values.get("feature_names_in_")
    names = [f"x{j}" for j in range(n)] if names is None else [str(v) for v in names]
    return ModelSummary(dict(sorted(params.items())), fitted, arrays, names)
