"""Appending to a large file around the page cache (``O_DIRECT``).

A large text OUTPUT is written once and not read back, so its pages are of
no use in the page cache; writing them there is most of the cost of writing
(the kernel's copy into newly allocated pages), and they pile up dirty until
the kernel writes them back.  :class:`DirectWriter` copies what it is given
into an aligned buffer and writes whole aligned blocks straight to the
device with ``O_DIRECT``; the last, partial block goes through the page cache
at :meth:`~DirectWriter.close`.  Where the system or the file system has no
``O_DIRECT`` (macOS, Windows, some file systems), :meth:`DirectWriter.open`
says so and the caller writes as before.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os

__all__ = ["ALIGN", "DirectWriter"]

#: Alignment of every direct write: its file offset, length and buffer
#: address (a multiple of every common logical block size).
ALIGN = 4096

#: Bytes gathered before a direct write.
STAGE_BYTES = 8 << 20


class DirectWriter:
    """Appends to a file from byte ``end`` on, with ``O_DIRECT``.

    ``tail`` holds the file's bytes from ``end - end % ALIGN`` to ``end``
    (its last partial block, which the first direct write writes again,
    whole).  Open it with :meth:`open`; write with :meth:`write`; end with
    :meth:`close` (or :meth:`abort` after a failure).  An ``OSError`` of a
    write (a full disk, ``ulimit -f``) is raised as such.  If a direct write is
    refused (``EINVAL``: an alignment the device does not accept), the rest is
    written through the page cache, at the same offsets.
    """

    def __init__(self, fd: int, end: int, tail: bytes) -> None:
        self._fd = fd
        self._position = end - len(tail)  # file offset of the buffer's first byte
        self._size = STAGE_BYTES
        self._stage = mmap.mmap(-1, self._size)  # page-aligned
        self._view = memoryview(self._stage)
        self._view[: len(tail)] = tail
        self._filled = len(tail)
        self._direct = True

    @classmethod
    def open(cls, path: str, end: int) -> DirectWriter | None:
        """A writer appending to the file ``path`` (``end`` bytes long), or
        None where the system or the file system has no ``O_DIRECT``."""
        flag = getattr(os, "O_DIRECT", None)
        if flag is None:
            return None
        try:
            fd = os.open(path, os.O_WRONLY | flag)
        except OSError:  # EINVAL: a file system without direct writes
            return None
        try:
            with open(path, "rb") as file:
                start = end - end % ALIGN
                file.seek(start)
                tail = file.read(end - start)
            if len(tail) != end - start:
                raise OSError(f"{path!r} is shorter than {end} bytes")
        except BaseException:
            os.close(fd)
            raise
        try:
            return cls(fd, end, tail)
        except (MemoryError, OSError):  # no memory for the stage: the page cache, then
            os.close(fd)
            return None

    def write(self, data) -> None:
        """Append ``data`` (any bytes-like object)."""
        with memoryview(data) as source:
            done, size = 0, len(source)
            while done < size:
                n = min(size - done, self._size - self._filled)
                self._view[self._filled : self._filled + n] = source[done : done + n]
                self._filled += n
                done += n
                if self._filled == self._size:
                    self._flush()

    def _flush(self) -> None:
        """Write the whole blocks gathered; keep the partial one."""
        whole = self._filled - self._filled % ALIGN
        done = 0
        while done < whole:
            done += self._pwrite(self._view[done:whole], self._position + done)
        self._position += whole
        rest = self._filled - whole
        self._view[:rest] = self._view[whole : self._filled]
        self._filled = rest

    def _pwrite(self, data: memoryview, offset: int) -> int:
        try:
            n = os.pwrite(self._fd, data, offset)
        except OSError as exc:
            if not (self._direct and exc.errno == errno.EINVAL):  # refused as direct
                raise
            self._buffered()
            return 0
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # nothing more was written
        if self._direct and n % ALIGN:
            self._buffered()  # the next offset is not aligned any more
        return n

    def _buffered(self) -> None:
        """Write the rest through the page cache."""
        import fcntl  # POSIX only, as O_DIRECT is

        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        self._direct = False

    def close(self) -> None:
        """Write what is left (its last partial block through the page cache)
        and close the file."""
        try:
            self._flush()
            if self._filled:
                if self._direct:
                    self._buffered()
                done = 0
                while done < self._filled:
                    done += self._pwrite(self._view[done : self._filled], self._position + done)
        finally:
            self.abort()

    def abort(self) -> None:
        """Close the file, writing nothing more."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        os.close(fd)
        # A view of the stage may live on in a traceback: then the mapping
        # goes with the last reference to it.
        with contextlib.suppress(BufferError):
            self._view.release()
            self._stage.close()
