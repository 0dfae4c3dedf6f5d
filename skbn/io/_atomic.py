"""Temporary files that become outputs only when a run completes.

Every output is written to a temporary file beside its target and moved over
it with one :func:`os.replace` when the whole run has succeeded; output to
stdout is written to a temporary file too and copied to stdout at the end.
Scratch files (the pass-1 cache) live in the temporary
directory.  Whatever ends the run early (an exception, Ctrl-C, or SIGTERM or
SIGHUP with :func:`signals_as_exceptions`), every temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator

from ._errors import FileError

__all__ = ["Interrupted", "Workspace", "signals_as_exceptions"]

TEMP_SUFFIX = ".skbn-tmp"
STDOUT = "-"


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Interrupted`; SIGXFSZ is ignored.

    So a terminated run unwinds through the ``finally`` blocks that remove its
    temporary files, and a write beyond ``ulimit -f`` fails with ``EFBIG``
    (an error the run reports) instead of killing the process.  Only in the
    main thread; elsewhere this does nothing.
    """
    wanted = {signal.SIGTERM: _raise, signal.SIGHUP: _raise, signal.SIGXFSZ: signal.SIG_IGN}
    previous = {}
    try:
        for signum, handler in wanted.items():
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Workspace:
    """The temporary files of one run.

    Use it as a context manager: :meth:`output` files replace their targets
    when the block ends normally, and every temporary file is removed however
    it ends.
    """

    def __init__(self) -> None:
        self._outputs: list[tuple[str, str]] = []
        # The scratch files live in one private directory, removed whole at
        # the end: a file created there is removed even if a signal arrives
        # between its creation and its registration.
        self._directory: str | None = None
        self._count = 0

    def output(self, target: str) -> str:
        """A temporary path that becomes ``target`` (``"-"``: stdout) on success."""
        if target == STDOUT:
            path = self.scratch("stdout")
            with open(path, "wb"):
                pass
        else:
            directory = os.path.dirname(os.path.abspath(target))
            path = self._mkstemp(target, directory, f".{os.path.basename(target)}.")
        self._outputs.append((path, target))
        return path

    def scratch(self, name: str) -> str:
        """A new path in this run's directory in the temporary directory
        (the file is not created), removed at the end."""
        if self._directory is None:
            parent = tempfile.gettempdir()
            try:
                self._directory = tempfile.mkdtemp(prefix="skbn-", dir=parent)
            except OSError as exc:
                raise FileError(
                    f"cannot write a temporary file in {parent!r}: {exc.strerror or exc}"
                ) from None
        self._count += 1
        return os.path.join(self._directory, f"skbn-{name}-{self._count}{TEMP_SUFFIX}")

    def _mkstemp(self, what: str, directory: str, prefix: str) -> str:
        if not os.path.isdir(directory):
            raise FileError(f"cannot write {what!r}: directory {directory!r} does not exist")
        try:
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=directory)
        except OSError as exc:
            raise FileError(f"cannot write {what!r}: {exc.strerror or exc}") from None
        os.close(fd)
        return path

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._remove([path for path, _ in self._outputs])
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)

    def _commit(self) -> None:
        mask = os.umask(0)
        os.umask(mask)
        for path, target in self._outputs:
            try:
                if target == STDOUT:
                    sys.stdout.flush()
                    with open(path, "rb") as source:
                        shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
                    sys.stdout.buffer.flush()
                    continue
                os.chmod(path, 0o666 & ~mask)  # mkstemp's 0600 -> the usual mode
                os.replace(path, target)
            except BrokenPipeError:  # the reader of stdout left (`| head`): not an error
                raise
            except OSError as exc:
                what = "stdout" if target == STDOUT else repr(target)
                raise FileError(f"cannot write {what}: {exc.strerror or exc}") from None

    @staticmethod
    def _remove(paths: list) -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                os.remove(path)
