"""The one error type of the file engine, and the helpers that raise it."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["FileError", "one_line", "reading", "require", "writing"]

EXTRA_HINT = 'pip install "skbn[cli]"'
_MAX_MESSAGE = 500


class FileError(Exception):
    """A problem with a file or an option, told in one line.

    Parameters
    ----------
    message : str
        What went wrong and, where it helps, how to fix it.
    status : int, default=1
        The exit status the command line gives it: 2 for a bad command line
        (an option or a suffix), 1 otherwise.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def one_line(text: object) -> str:
    """``text`` on one line, whitespace collapsed, cut to a readable length."""
    line = " ".join(str(text).split())
    if len(line) > _MAX_MESSAGE:
        line = line[: _MAX_MESSAGE - 3] + "..."
    return line


def require(module: str, package: str, purpose: str) -> Any:
    """Import ``module`` of the ``cli`` extra, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise FileError(
            f"{purpose} needs the '{package}' package, which is not installed; "
            f"install the command line's extra: {EXTRA_HINT}"
        ) from None


def _library_errors() -> tuple:
    """The exception types pyarrow and polars raise for bad data or files."""
    found: list = [OSError, ValueError]
    arrow = getattr(sys.modules.get("pyarrow"), "ArrowException", None)
    exceptions = getattr(sys.modules.get("polars"), "exceptions", None)
    found += [arrow] if arrow is not None else []
    for name in ("PolarsError", "PanicException"):
        found += [getattr(exceptions, name)] if hasattr(exceptions, name) else []
    return tuple(found)


_PARSE = re.compile(r"could not parse `(.*?)` as dtype `(\w+)` at column '(.*?)'", re.DOTALL)
_ARROW_PARSE = re.compile(r"In CSV column #(\d+): .*?: invalid value '(.*?)'", re.DOTALL)


def explain(exc: BaseException, names: list | None = None) -> str:
    """A one-line reason for a reader's or writer's exception."""
    message = str(exc)
    found = _PARSE.search(message)
    if found is None and names:
        arrow = _ARROW_PARSE.search(message)
        if arrow and int(arrow.group(1)) < len(names):
            found = (arrow.group(2), "number", names[int(arrow.group(1))])
    if found is not None:
        value, dtype, column = found if isinstance(found, tuple) else found.groups()
        kind = "numbers" if dtype.startswith(("f", "i", "u", "num")) else dtype
        fix = "str" if kind == "numbers" and not dtype.startswith("i") else "float"
        if dtype.startswith("i") and re.fullmatch(r"[-+]?[0-9.eE+-]+", value) is None:
            fix = "str"
        return (
            f"column {column!r} holds {value!r}, which is not a {dtype} value, though its "
            f"type was inferred as {kind} from the first rows; pass --dtype {column}={fix} "
            "to read it as " + ("text (passed through unscaled)" if fix == "str" else "float")
        )
    errno = re.search(r"\[errno (\d+)\]", message, re.IGNORECASE)
    if isinstance(exc, OSError) and (exc.errno or errno):  # pyarrow's own OSErrors
        return os.strerror(exc.errno or int(errno.group(1)))
    first = message.strip().split("\n\n")[0]
    return first.replace("polars", "the reader") if first else type(exc).__name__


@contextlib.contextmanager
def reading(path: str, names: list | None = None) -> Iterator[None]:
    """Turn a reader's exception into a :class:`FileError` naming ``path``."""
    try:
        yield
    except FileError:
        raise
    except _library_errors() as exc:
        raise FileError(f"cannot read {path!r}: {explain(exc, names)}") from None


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Turn a writer's exception into a :class:`FileError` naming ``path``."""
    try:
        yield
    except FileError:
        raise
    except _library_errors() as exc:
        raise FileError(f"cannot write {path!r}: {explain(exc)}") from None
