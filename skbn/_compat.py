"""Shims for the oldest releases skbn supports; nothing else lives here.

Each shim names the release it serves and when it can go: delete it (and
call the plain function at its call sites) once the floor in
``pyproject.toml`` passes that release.  The floor environment of ``.ci/run``
(``constraints/floor.txt``) is what proves they are still needed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["astype", "copy"]

#: NumPy 2.0 added the Array API functions ``np.astype`` and ``np.asarray(copy=...)``.
NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def astype(xp, x, dtype):
    """``xp.astype(x, dtype)``.

    Serves NumPy < 2.0, which has the method ``x.astype`` but no function
    ``np.astype``.  Can go when the numpy floor reaches 2.0.
    """
    if xp is np and not NUMPY_2:
        return np.asarray(x).astype(dtype)
    return xp.astype(x, dtype)


def copy(xp, x):
    """``xp.asarray(x, copy=True)``: a copy of ``x`` in the namespace ``xp``.

    Serves NumPy < 2.0, whose ``np.asarray`` takes no ``copy`` argument.
    Can go when the numpy floor reaches 2.0.
    """
    if xp is np and not NUMPY_2:
        return np.array(x, copy=True)
    return xp.asarray(x, copy=True)
