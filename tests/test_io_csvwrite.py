"""The compiled CSV writer (``skbn.io._csvwrite``) and its driver (``skbn.io._csvout``).

The references are polars' own CSV writer (the same bytes, for every type
the writer formats, nulls and quoting included) and CPython's ``repr`` and
``float`` (David Gay's correctly rounded conversions): each float's text
reads back to the same double, with as few digits as ``repr`` needs.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

from skbn.io import _csvout  # noqa: E402

_csvwrite = pytest.importorskip("skbn.io._csvwrite")
format_rows = _csvwrite.format_rows


def _spec(array, terms=(None, None, None)):
    """The description of one Arrow array for format_rows (as _csvout builds it)."""
    kind = _csvout._kind(array.type)
    buffers = array.buffers()
    validity = buffers[0] if array.null_count else None
    if kind == "s":
        return (kind, buffers[1], buffers[2], validity, array.offset)
    if kind == "v":
        return (kind, buffers[1], tuple(buffers[2:]), validity, array.offset)
    if kind == "f":
        return (kind, buffers[1], validity, array.offset, *terms)
    return (kind, buffers[1], validity, array.offset)


def _rows(arrays, separator=",", terms=None):
    terms = terms or [(None, None, None)] * len(arrays)
    specs = tuple(_spec(a, t) for a, t in zip(arrays, terms, strict=True))
    out = bytearray()
    n = format_rows(specs, len(arrays[0]), ord(separator), out)
    return bytes(out[:n])


def _polars(table, separator=","):
    return pl.from_arrow(table).write_csv(include_header=False, separator=separator).encode()


def _doubles(seed=0, n=100_000):
    """Every kind of double: random bit patterns (subnormals, huge, tiny),
    normal values at every scale, integers, and the layout boundaries."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    scaled = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)
    short = np.round(rng.standard_normal(n) * 1e4) * 10.0 ** rng.integers(-12, 14, n)
    edges = []
    for edge in (1e-5, 1e-4, 1e15, 1e16, 2.0**53, 1.0, 5e-324, 2.2250738585072014e-308):
        edges += [np.nextafter(edge, 0), edge, np.nextafter(edge, np.inf)]
    edges += [0.0, -0.0, np.nan, np.inf, -np.inf, 1.7976931348623157e308, 0.1, 0.3, 100.0]
    edges += [123456789012345.0, 999999999999999.9, 9007199254740993.0, 1e22, 1e23, 12.5]
    values = np.concatenate([bits.view(np.float64), scaled, short, np.array(edges)])
    return np.concatenate([values, -values])


def test_floats_are_polars_bytes():
    x = _doubles()
    assert _rows([pa.array(x)]) == _polars(pa.table({"x": x}))


def test_floats_are_shortest_round_trip():
    x = _doubles(seed=1, n=20_000)
    x = x[np.isfinite(x)]
    texts = _rows([pa.array(x)]).decode().splitlines()

    def digits(text):  # the significant digits, without sign, point or exponent
        mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0").rstrip("0")
        return mantissa or "0"

    for value, text in zip(x.tolist(), texts, strict=True):
        assert float(text) == value and np.signbit(float(text)) == np.signbit(value), text
        assert digits(text) == digits(repr(value)), (text, repr(value))


def test_affine_map_is_numpys_arithmetic():
    """((x - shift) * factor) + add, each rounded once (no fused multiply-add)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(50_000) * 1e3 + 7
    shift, factor, add = 6.999999999999999, 1 / 3.0000000000000004, -0.1
    expected = (x - shift) * factor + add
    text = _rows([pa.array(x)], terms=[(shift, factor, add)])
    assert np.array_equal(np.array(text.split(), dtype=float), expected)
    only_factor = np.array(_rows([pa.array(x)], terms=[(None, factor, None)]).split(), float)
    assert np.array_equal(only_factor, x * factor)


def _mixed(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ab ,;|\t\"'\r\n#é€x"))
    words = ["".join(rng.choice(alphabet, rng.integers(0, 20))) for _ in range(n)]
    words = [None if i % 17 == 0 else w for i, w in enumerate(words)]
    missing = rng.random(n) < 0.1
    return pa.table(
        {
            "f": pa.array(rng.standard_normal(n), mask=missing),
            "i": pa.array(rng.integers(-(2**63), 2**63 - 1, n, endpoint=True), mask=missing[::-1]),
            "i8": pa.array(rng.integers(-128, 128, n).astype(np.int8)),
            "u": pa.array(rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)),
            "u16": pa.array(rng.integers(0, 2**16, n).astype(np.uint16)),
            "b": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.2),
            "s": pa.array(words, type=pa.large_string()),
            "small": pa.array(words, type=pa.string()),
        }
    )


@pytest.mark.parametrize("separator", [",", "\t", ";", "|"])
def test_every_type_nulls_and_quoting_are_polars_bytes(separator):
    table = _mixed()
    for sliced in (table, table.slice(7, 2000)):  # array offsets, in values and validity bits
        columns = []
        for column in sliced.columns:
            array = column.combine_chunks()
            kind = _csvout._kind(array.type)
            if kind == "i" and not pa.types.is_int64(array.type):
                array = array.cast(pa.int64())
            if kind == "s" and not pa.types.is_large_string(array.type):
                array = array.cast(pa.large_string())
            columns.append(array)
        assert _rows(columns, separator) == _polars(sliced, separator)


def test_string_views_are_polars_bytes():
    """polars' own layout (string_view: short values inline, long ones in
    several data buffers), offset by a slice."""
    words = ["short", "", None, "a much longer value, with a comma", 'q"uote', "x" * 40] * 500
    frame = pl.DataFrame({"s": words})
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    views = table.column(0).combine_chunks()
    if str(views.type) != "string_view":
        pytest.skip("this pyarrow/polars pair does not hand over string views")
    for array in (views, views.slice(3, 2000)):
        expected = _polars(pa.table({"s": array.cast(pa.large_string())}))
        assert _rows([array]) == expected


def test_the_buffer_is_grown_and_reused():
    x = pa.array(np.arange(1000.0))
    out = bytearray(b"z" * 10)
    n = format_rows((_spec(x),), 1000, ord(","), out)
    assert bytes(out[:n]) == _polars(pa.table({"x": x}))
    size = len(out)
    m = format_rows((_spec(x.slice(0, 3)),), 3, ord(","), out)
    assert bytes(out[:m]) == b"0.0\n1.0\n2.0\n" and len(out) == size


def test_threads_format_at_once():
    """The GIL is released while formatting: tables in threads, same bytes."""
    table = _mixed(n=20_000)
    columns = [
        c.combine_chunks().cast(pa.large_string()) if _csvout._kind(c.type) == "s" else
        c.combine_chunks().cast(pa.int64()) if _csvout._kind(c.type) == "i" else c.combine_chunks()
        for c in table.columns
    ]  # fmt: skip
    expected = _rows(columns)
    results = [None] * 4

    def work(k):
        results[k] = _rows(columns)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


@pytest.mark.parametrize(
    "specs, n, separator, error, message",
    [
        ((), 1, 44, ValueError, "no columns"),
        ((("x", b"", None, 0),), 0, 44, ValueError, "kind is one of"),
        ((("f", b"", None, 0),), 0, 44, TypeError, "tuple of 7 items"),
        ((("f", b"\0" * 8, None, 0, None, None, None),), 2, 44, ValueError, "8 bytes, 16"),
        ((("i", b"\0" * 16, b"", 0),), 2, 44, ValueError, "validity buffer holds 0"),
        ((("f", b"\0" * 8, None, -1, None, None, None),), 1, 44, ValueError, "offset"),
        ((("f", b"\0" * 8, None, 0, None, "x", None),), 1, 44, TypeError, "must be real"),
        ((("i", b"\0" * 8, None, 0),), -1, 44, ValueError, "n_rows must be"),
        ((("i", b"\0" * 8, None, 0),), 1, ord('"'), ValueError, "separator"),
        ((("i", b"\0" * 8, None, 0),), 1, 300, ValueError, "separator"),
        ((("s", np.array([0, 5], np.int64).tobytes(), b"abc", None, 0),), 1, 44,
         ValueError, "offsets out of range"),
        ((("s", np.array([3, 1], np.int64).tobytes(), b"abc", None, 0),), 1, 44,
         ValueError, "offsets out of range"),
        ((("v", np.array([20, 0, 0, 0], np.int32).tobytes(), (), None, 0),), 1, 44,
         ValueError, "view out of range"),
        ((("v", np.array([20, 0, 0, 0], np.int32).tobytes(), [], None, 0),), 1, 44,
         TypeError, "are a tuple"),
    ],
)  # fmt: skip
def test_refusals_leave_the_buffer_alone(specs, n, separator, error, message):
    out = bytearray(b"kept")
    with pytest.raises(error, match=message):
        format_rows(specs, n, separator, out)
    assert out == bytearray(b"kept")


def test_can_format_names_what_it_writes():
    schema = pa.schema([("f", pa.float64()), ("s", pa.large_string()), ("b", pa.bool_())])
    assert _csvout.can_format(schema, ",")
    assert _csvout.can_format(schema, "\t")
    for other in (pa.float32(), pa.date32(), pa.decimal128(10, 2), pa.timestamp("s")):
        assert not _csvout.can_format(pa.schema([("x", other)]), ",")
    for separator in ('"', "\n", "é", ",,"):
        assert not _csvout.can_format(schema, separator)


def test_write_rows_keeps_the_order_of_tables_and_batches():
    rng = np.random.default_rng(4)
    tables = []
    for k in range(9):
        x = rng.standard_normal(100 * k + 41)
        batches = [pa.record_batch({"x": x[:40], "n": np.arange(40)}),
                   pa.record_batch({"x": x[40:], "n": np.arange(40, len(x))})]  # fmt: skip
        tables.append(pa.Table.from_batches(batches))
    written, counted = [], []

    class Bar:
        def update(self, n):
            counted.append(n)

    coefficients = (np.array([0.5]), np.array([2.0]), None)
    n = _csvout.write_rows(tables, lambda b: written.append(bytes(b)), ",", ["x"], coefficients,
                           Bar())  # fmt: skip
    whole = pa.concat_tables(tables)
    frame = pl.from_arrow(whole).with_columns((pl.col("x") - 0.5) * 2.0)
    assert b"".join(written) == frame.write_csv(include_header=False).encode()
    assert n == sum(counted) == whole.num_rows


def test_write_rows_passes_a_worker_error_on():
    table = pa.table({"x": np.arange(5.0)})
    bad = pa.Table.from_batches([pa.record_batch({"x": np.arange(3.0)})])
    original = _csvout._columns

    def broken(batch, terms):
        specs = original(batch, terms)
        return specs if batch.num_rows != 3 else (("f", b"", None, 0, None, None, None),)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_csvout, "_columns", broken)
        with pytest.raises(ValueError, match="float64 buffer holds 0 bytes"):
            _csvout.write_rows([table, bad], lambda b: None, ",", ["x"], (None, np.ones(1), None),
                               type("Bar", (), {"update": lambda self, n: None})())  # fmt: skip


def _bar():
    return type("Bar", (), {"update": lambda self, n: None})()


def _tables(n: int) -> list:
    rng = np.random.default_rng(n)
    return [pa.table({"x": rng.standard_normal(50)}) for _ in range(n)]


def _writer_threads() -> list:
    return [t.name for t in threading.enumerate() if t.name == "skbn-csv-write"]


def test_write_rows_writes_in_a_thread_of_its_own():
    names = []
    _csvout.write_rows(_tables(5), lambda b: names.append(threading.current_thread().name), ",",
                       ["x"], (None, np.ones(1), None), _bar())  # fmt: skip
    assert names == ["skbn-csv-write"] * 5
    assert _writer_threads() == []


def test_write_rows_passes_a_write_error_on_and_writes_nothing_more():
    """A failed write (a full disk) is raised in the caller; the batches after
    it are not written."""
    calls = []

    def write(buffer):
        calls.append(bytes(buffer))
        if len(calls) == 4:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        _csvout.write_rows(_tables(40), write, ",", ["x"], (None, np.ones(1), None), _bar())
    assert len(calls) == 4
    assert _writer_threads() == []


def test_a_second_interruption_waits_for_the_write_under_way(monkeypatch):
    """Ctrl-C again while stop() waits: the write under way still ends before
    stop() returns (the caller closes the file next), then it is raised."""
    started, release, done = threading.Event(), threading.Event(), []

    def write(buffer):
        started.set()
        release.wait(5)
        done.append(bytes(buffer))

    writer = _csvout._Writer(write, _bar(), 2)
    future = type("Done", (), {"result": lambda self: 3})()
    buffer = writer.spare()
    buffer[:] = b"abc"
    writer.put(future, buffer, 1)
    assert started.wait(5)
    joins = []
    original = threading.Thread.join

    def join(self, timeout=None):
        joins.append(1)
        if len(joins) == 1:
            threading.Timer(0.2, release.set).start()
            raise KeyboardInterrupt  # the second Ctrl-C, in the first join
        return original(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join)
    with pytest.raises(KeyboardInterrupt):
        writer.stop()
    monkeypatch.undo()
    assert done == [b"abc"] and not writer.is_alive() and len(joins) == 2


def test_write_rows_stopped_midway_writes_nothing_more():
    """Stopped while handing out batches (Ctrl-C, or SIGTERM raised in the
    main thread): the writing thread is gone when write_rows ends, and
    nothing is written after."""
    written = []

    def tables():
        for k, table in enumerate(_tables(30)):
            if k == 12:
                raise KeyboardInterrupt
            yield table

    with pytest.raises(KeyboardInterrupt):
        _csvout.write_rows(tables(), lambda b: written.append(bytes(b)), ",", ["x"],
                           (None, np.ones(1), None), _bar())  # fmt: skip
    assert _writer_threads() == []
    count = len(written)
    assert count <= 12
    time.sleep(0.2)
    assert len(written) == count
