"""skbn.io._direct: appending to a file around the page cache (O_DIRECT)."""

from __future__ import annotations

import errno
import fcntl
import os

import numpy as np
import pytest

from skbn.io import _direct
from skbn.io._direct import ALIGN, DirectWriter


def _chunks(seed: int, n: int, largest: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.bytes(int(size)) for size in rng.integers(0, largest, n)]


def _write_all(path, prefix: bytes, chunks: list[bytes]) -> bytes:
    """Write ``chunks`` after ``prefix``; the file's bytes."""
    writer = _start(path, prefix)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    return path.read_bytes()


def _start(path, prefix: bytes) -> DirectWriter:
    path.write_bytes(prefix)
    writer = DirectWriter.open(str(path), len(prefix))
    if writer is None:  # macOS, Windows, tmpfs before Linux 6.6, ...
        pytest.skip(f"the file system of {path.parent} has no O_DIRECT")
    return writer


@pytest.fixture
def small_stage(monkeypatch):
    """A stage of three blocks, so that a few kilobytes cross it many times."""
    monkeypatch.setattr(_direct, "STAGE_BYTES", 3 * ALIGN)


@pytest.fixture
def pwrites(monkeypatch):
    """Every os.pwrite: (offset, length, whether the descriptor had O_DIRECT)."""
    calls, original = [], os.pwrite

    def spy(fd, data, offset):
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        calls.append((offset, len(data), direct))
        return original(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", spy)
    return calls


@pytest.mark.parametrize("prefix", [0, 1, ALIGN - 1, ALIGN, 3 * ALIGN + 17])
def test_appends_what_it_is_given_in_order(tmp_path, small_stage, pwrites, prefix):
    """Whatever the file's length before and the sizes written, the file ends
    as the bytes before followed by every chunk, in order; every write but
    the last partial block is direct, aligned in offset and length."""
    head = np.random.default_rng(prefix).bytes(prefix)
    chunks = _chunks(prefix, 60, 2 * ALIGN)
    chunks[7:7] = [b"", np.random.default_rng(9).bytes(10 * ALIGN + 5)]  # several stages at once
    writer = _start(tmp_path / "out", head)
    for chunk in chunks:
        writer.write(chunk)
    writer.write(memoryview(bytearray(b"a memoryview")))
    writer.close()
    assert (tmp_path / "out").read_bytes() == head + b"".join(chunks) + b"a memoryview"
    *whole, last = pwrites
    assert whole and all(direct for _, _, direct in whole)
    assert all(offset % ALIGN == 0 and length % ALIGN == 0 for offset, length, _ in whole)
    assert whole[0][0] == prefix - prefix % ALIGN  # the partial block before, written again
    total = prefix + sum(map(len, chunks)) + len(b"a memoryview")
    assert last == (total - total % ALIGN, total % ALIGN, False)
    assert [o for o, _, _ in pwrites] == sorted(o for o, _, _ in pwrites)  # append only


def test_close_with_nothing_written_keeps_the_file(tmp_path, pwrites):
    writer = _start(tmp_path / "out", b"header\n")
    writer.close()
    assert (tmp_path / "out").read_bytes() == b"header\n"
    assert pwrites == [(0, 7, False)]  # the partial block again, through the page cache


def test_no_o_direct_gives_none(tmp_path, monkeypatch):
    """A system without O_DIRECT (macOS, Windows), or a file system that
    refuses it (EINVAL at open): None, and no descriptor left open."""
    (tmp_path / "out").write_bytes(b"x")
    opened = set(os.listdir("/proc/self/fd"))
    with monkeypatch.context() as patch:
        patch.delattr(os, "O_DIRECT")
        assert DirectWriter.open(str(tmp_path / "out"), 1) is None

    def refuse(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return os.open(path, flags, *args)

    with monkeypatch.context() as patch:
        patch.setattr(_direct.os, "open", refuse)
        assert DirectWriter.open(str(tmp_path / "out"), 1) is None
    assert set(os.listdir("/proc/self/fd")) == opened


def test_no_memory_for_the_stage_gives_none(tmp_path, monkeypatch):
    (tmp_path / "out").write_bytes(b"x")
    opened = set(os.listdir("/proc/self/fd"))

    def no_memory(*args):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(_direct.mmap, "mmap", no_memory)
    assert DirectWriter.open(str(tmp_path / "out"), 1) is None
    assert set(os.listdir("/proc/self/fd")) == opened


def test_a_file_shorter_than_said_is_an_error(tmp_path):
    (tmp_path / "out").write_bytes(b"abc")
    opened = set(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="shorter than 10 bytes"):
        DirectWriter.open(str(tmp_path / "out"), 10)
    assert set(os.listdir("/proc/self/fd")) == opened


def test_a_refused_direct_write_goes_on_through_the_page_cache(tmp_path, small_stage, pwrites,
                                                              monkeypatch):  # fmt: skip
    """EINVAL from a direct write (a device with larger blocks): the same
    bytes are written again, and the rest, through the page cache."""
    spy = os.pwrite

    def refuse_direct(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            spy(fd, b"", offset)  # recorded
            raise OSError(errno.EINVAL, "Invalid argument")
        return spy(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", refuse_direct)
    chunks = _chunks(3, 30, 3 * ALIGN)
    assert _write_all(tmp_path / "out", b"head", chunks) == b"head" + b"".join(chunks)
    assert [direct for _, _, direct in pwrites].count(True) == 1  # refused once
    assert not any(direct for _, _, direct in pwrites[1:])


def test_a_short_direct_write_goes_on_through_the_page_cache(tmp_path, small_stage, monkeypatch):
    """A direct write that writes less than asked, not a whole number of
    blocks (as at a file size limit): the rest from where it stopped,
    through the page cache."""
    original, short = os.pwrite, []
    plain = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)

    def once_short(fd, data, offset):
        if not short and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT and len(data) > ALIGN:
            short.append(offset)
            return original(plain, bytes(data[: ALIGN + 100]), offset)
        return original(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", once_short)
    chunks = _chunks(4, 40, 2 * ALIGN)
    assert _write_all(tmp_path / "out", b"", chunks) == b"".join(chunks)
    os.close(plain)
    assert short


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EIO])
def test_a_failed_write_is_raised_and_abort_closes(tmp_path, small_stage, monkeypatch, code):
    writer = _start(tmp_path / "out", b"head")
    fd = writer._fd

    def fail(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "pwrite", fail)
    with pytest.raises(OSError) as info:
        for chunk in _chunks(5, 20, 2 * ALIGN):
            writer.write(chunk)
    assert info.value.errno == code
    writer.abort()
    writer.abort()  # again: nothing
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_close_that_fails_still_closes(tmp_path, monkeypatch):
    writer = _start(tmp_path / "out", b"head")
    fd = writer._fd
    writer.write(b"more")
    monkeypatch.setattr(os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "EIO")))
    with pytest.raises(OSError):
        writer.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_written_blocks_are_not_kept_in_the_page_cache(tmp_path):
    """What O_DIRECT is for: the blocks written directly are not in the page
    cache afterwards (``mincore`` of a mapping of the file), where the same
    bytes written through the page cache are."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    data = np.random.default_rng(6).bytes(64 * ALIGN)

    def cached_pages(path) -> int:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY) as m:
            pages = (ctypes.c_ubyte * (len(data) // mmap.PAGESIZE))()
            base = ctypes.addressof(ctypes.c_char.from_buffer(m))
            status = libc.mincore(ctypes.c_void_p(base), ctypes.c_size_t(len(data)), pages)
            assert status == 0, ctypes.get_errno()
            return sum(page & 1 for page in pages)

    writer = _start(tmp_path / "direct", b"")
    writer.write(data)
    writer.close()
    (tmp_path / "cached").write_bytes(data)
    assert cached_pages(tmp_path / "direct") == 0
    assert cached_pages(tmp_path / "cached") == len(data) // mmap.PAGESIZE
