"""The file engine, :mod:`skbn.io`, on real files written by pandas and pyarrow.

Every scaled column is compared with ``StandardScaler`` fitted on the data as
pandas loads it (or, for the streaming modes, with a ``BatchNormScaler`` fed
the same chunks with ``partial_fit``).  Tolerance: ``rtol=1e-12`` with
``atol=1e-12`` (in scaled units) for the pooled statistics, which are
computed by other code than StandardScaler's (different summation order);
every text conversion here is exact (pandas writes floats with ``repr``,
polars and pandas parse and write the shortest round-trip text).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.preprocessing import StandardScaler

import skbn.io._csvout as csvout
import skbn.io._engine as engine
import skbn.io._stream as stream
import skbn.io._text as text
from skbn import BatchNormScaler
from skbn.io import FileError, fit_file, load_scaler, read_model, scale_file

N_ROWS = 1500
NUMERIC = ["id", "x", "big", "count"]
TOL = dict(rtol=1e-12, atol=1e-12)


def _frame(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """Numeric columns (with missing values), strings with commas, quotes and line
    breaks, and booleans between them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, n)
    x[rng.random(n) < 0.05] = np.nan
    count = rng.integers(0, 50, n).astype(float)
    count[rng.random(n) < 0.1] = np.nan
    names = [f'row {i}, "q"\nline' if i % 7 == 0 else f"row {i}" for i in range(n)]
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "name": names,
            "x": x,
            "flag": rng.random(n) < 0.5,
            "big": 1e9 + rng.standard_normal(n),
            "count": count,
        }
    )


def _write(frame: pd.DataFrame, path) -> None:
    path = str(path)
    if path.endswith((".csv", ".csv.gz")):
        frame.to_csv(path, index=False)
    elif path.endswith(".tsv"):
        frame.to_csv(path, index=False, sep="\t")
    elif path.endswith(".parquet"):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=400)
    elif path.endswith(".feather"):
        feather.write_feather(pa.Table.from_pandas(frame, preserve_index=False), path)
    else:  # the standard library's json writes floats exactly (repr)
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        lines = (json.dumps(r, default=lambda v: v.item()) + "\n" for r in records)
        with open(path, "w") as stream:
            stream.writelines(lines)


# Exactly the float each text means: pandas 2.0's default parser is 1 ulp off
# for some 17-digit numbers; pandas 3 parses exactly and deprecates the option.
_EXACT = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _read(path) -> pd.DataFrame:
    path = str(path)
    if path.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, **_EXACT)
    if path.endswith(".tsv"):
        return pd.read_csv(path, sep="\t", **_EXACT)
    if path.endswith((".parquet", ".pq")):
        return pq.read_table(path).to_pandas()
    if path.endswith((".feather", ".arrow")):
        return feather.read_table(path).to_pandas()
    return pd.read_json(path, lines=True)


def _numbers(frame: pd.DataFrame, columns=NUMERIC) -> np.ndarray:
    return frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)


INPUTS = ["in.csv", "in.tsv", "in.csv.gz", "in.parquet", "in.feather", "in.ndjson"]
OUTPUTS = ["csv", "tsv", "csv.gz", "parquet", "arrow", "ndjson"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("io")
    for name in INPUTS:
        _write(_frame(), root / name)
    return root


@pytest.fixture(scope="module")
def expected(data):
    source = _read(data / "in.csv")
    return source, StandardScaler().fit_transform(_numbers(source))


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path, monkeypatch):
    """Scratch files of the engine go to a folder of the test, checked empty after."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("target", OUTPUTS)
@pytest.mark.parametrize("source", INPUTS)
def test_every_format_to_every_format(data, expected, tmp_path, source, target):
    frame, scaled = expected
    result = scale_file(data / source, tmp_path / f"out.{target}")
    assert result.columns == tuple(NUMERIC) and result.n_rows == N_ROWS
    out = _read(tmp_path / f"out.{target}")
    assert list(out.columns) == list(frame.columns)
    assert_allclose(_numbers(out), scaled, **TOL)
    assert_array_equal(out[NUMERIC].isna().to_numpy(), frame[NUMERIC].isna().to_numpy())
    assert out["name"].tolist() == frame["name"].tolist()
    assert out["flag"].tolist() == frame["flag"].tolist()
    assert_allclose(result.mean, np.nanmean(_numbers(frame), axis=0), rtol=1e-12)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".skbn-tmp")]


def test_binary_round_trip_is_exact(data, tmp_path):
    """Parquet -> Arrow -> Parquet: the same float64 values, bit for bit."""
    scale_file(data / "in.parquet", tmp_path / "a.parquet")
    scale_file(data / "in.feather", tmp_path / "b.arrow")
    a, b = pq.read_table(tmp_path / "a.parquet"), feather.read_table(tmp_path / "b.arrow")
    for name in NUMERIC:
        assert a.column(name).equals(b.column(name))


@pytest.mark.parametrize("cache_bytes", [0, 1 << 30], ids=["ipc-file", "memory"])
def test_pass_two_reads_the_cache_across_small_pieces(
    data, expected, tmp_path, monkeypatch, cache_bytes
):
    # Pieces of 1 KiB: quoted line breaks and quotes fall on every boundary.
    monkeypatch.setattr(text, "PIECE_BYTES", 1024)
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", cache_bytes)
    frame, scaled = expected
    scale_file(data / "in.csv", tmp_path / "out.parquet")
    out = _read(tmp_path / "out.parquet")
    assert_allclose(_numbers(out), scaled, **TOL)
    assert out["name"].tolist() == frame["name"].tolist()


def _reference(X: np.ndarray, chunk: int, **params) -> tuple:
    scaler = BatchNormScaler(**params)
    for start in range(0, X.shape[0], chunk):
        scaler.partial_fit(X[start : start + chunk])
    return scaler, scaler.transform(X)


@pytest.mark.parametrize(
    "params",
    [dict(momentum=None), dict(momentum=0.9), dict(momentum=0.8, unbiased=True, init="keras")],
    ids=["none", "0.9", "0.8-unbiased-keras"],
)
@pytest.mark.parametrize("source", ["in.csv", "in.parquet"])
def test_streaming_modes_cut_exact_chunks(data, expected, tmp_path, monkeypatch, params, source):
    """Each chunk of --chunksize rows is one mini-batch, whatever the pieces read
    (text pieces of 3000 bytes, Parquet row groups of 400 rows)."""
    monkeypatch.setattr(text, "PIECE_BYTES", 3000)
    frame, _ = expected
    result = scale_file(data / source, tmp_path / "out.csv", chunksize=128, **params)
    reference, scaled = _reference(_numbers(frame), 128, **params)
    assert result.n_batches == reference.n_batches_seen_ == 12
    assert_allclose(_numbers(_read(tmp_path / "out.csv")), scaled, rtol=1e-12, atol=0)
    assert_allclose(result.scaler.moving_var_, reference.moving_var_, rtol=1e-12)


def test_pooled_save_load_and_inverse(data, expected, tmp_path):
    frame, scaled = expected
    model = tmp_path / "m.skops"
    scale_file(data / "in.parquet", tmp_path / "out.parquet", save=model)
    scaler = load_scaler(model)
    exact = StandardScaler().fit(_numbers(frame))
    assert scaler.momentum == "pooled" and scaler.epsilon == 0
    assert list(scaler.feature_names_in_) == NUMERIC
    assert_allclose(scaler.moving_mean_, exact.mean_, rtol=1e-12)
    assert_allclose(scaler.moving_var_, exact.var_, rtol=1e-12)
    # --load applies the same map; --inverse undoes it.
    scale_file(data / "in.csv", tmp_path / "again.csv", load=model)
    assert_allclose(_numbers(_read(tmp_path / "again.csv")), scaled, **TOL)
    scale_file(tmp_path / "out.parquet", tmp_path / "back.csv", load=model, inverse=True)
    back = _read(tmp_path / "back.csv")
    assert_allclose(_numbers(back), _numbers(frame), rtol=1e-9)
    assert back["name"].tolist() == frame["name"].tolist()


def test_pooled_unbiased_and_epsilon(data, expected, tmp_path):
    frame, _ = expected
    X = _numbers(frame)
    scale_file(data / "in.csv", tmp_path / "u.csv", unbiased=True, epsilon=0.5)
    std = np.sqrt(np.nanvar(X, axis=0, ddof=1) + 0.5)
    assert_allclose(_numbers(_read(tmp_path / "u.csv")), (X - np.nanmean(X, 0)) / std, **TOL)


def test_fit_file(data, expected):
    frame, _ = expected
    scaler = fit_file(data / "in.ndjson", exclude=["id"])
    exact = StandardScaler().fit(_numbers(frame, NUMERIC[1:]))
    assert list(scaler.feature_names_in_) == NUMERIC[1:]
    assert_allclose(scaler.moving_mean_, exact.mean_, rtol=1e-12)
    assert_allclose(scaler.moving_var_, exact.var_, rtol=1e-12)


def test_read_model_matches_the_loaded_scaler(data, tmp_path):
    model = tmp_path / "m.skops"
    scale_file(data / "in.csv", tmp_path / "o.csv", momentum=None, chunksize=100, save=model)
    summary, scaler = read_model(model), load_scaler(model)
    assert summary.feature_names == NUMERIC
    assert summary.params == {k: v for k, v in sorted(scaler.get_params().items())}
    for name in ["moving_mean_", "moving_var_", "gamma_", "beta_"]:
        assert_array_equal(summary.arrays[name], getattr(scaler, name))
    assert summary.fitted["n_batches_seen_"] == 15


# -- columns and types ---------------------------------------------------------------


def test_columns_exclude_and_order(data, expected, tmp_path):
    frame, _ = expected
    scale_file(data / "in.csv", tmp_path / "out.csv", columns=["count", "x"], exclude=["count"])
    raw_in = pd.read_csv(data / "in.csv", dtype=str, keep_default_na=False)
    raw_out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(raw_out.columns) == list(raw_in.columns)
    for name in ["id", "big", "count", "name"]:  # passed through as the same text
        assert raw_out[name].tolist() == raw_in[name].tolist(), name
    x = StandardScaler().fit_transform(_numbers(frame, ["x"]))
    assert_allclose(_numbers(_read(tmp_path / "out.csv"), ["x"]), x, **TOL)


def _late_text_file(path, bad_value: str) -> None:
    rows = ["id,x,s"] + [f"{i},{i * 0.5},t{i}" for i in range(20_000)]
    rows.append(f"20000,{bad_value},end")
    path.write_text("\n".join(rows) + "\n")


def test_numeric_column_with_late_text_fails_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "PIECE_BYTES", 4096)
    _late_text_file(tmp_path / "late.csv", "oops")
    with pytest.raises(FileError) as info:
        scale_file(tmp_path / "late.csv", tmp_path / "out.csv")
    message = str(info.value)
    assert "'x'" in message and "'oops'" in message and "--dtype x=str" in message
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.csv", "scratch"]
    # With --dtype the column is text, passed through; the others are scaled.
    scale_file(tmp_path / "late.csv", tmp_path / "out.csv", dtypes={"x": "str"})
    out = pd.read_csv(tmp_path / "out.csv", dtype={"x": str})
    assert out["x"].iloc[-1] == "oops" and out["x"].iloc[3] == "1.5"
    ids = np.arange(20_001.0)
    assert_allclose(out["id"], (ids - ids.mean()) / ids.std(), **TOL)


@pytest.mark.parametrize("bad_piece", [1, 2, 5])
def test_pieces_parsed_two_at_a_time_keep_their_order_and_errors(tmp_path, monkeypatch, bad_piece):
    """Pieces are parsed PARSE_AHEAD at a time: the batches come in file
    order, a bad piece fails the run at its place (after the pieces before
    it), and no parsing thread is left behind either way."""
    monkeypatch.setattr(text, "PIECE_BYTES", 4096)
    rows = [f"{i:05d},{i * 0.5:08.1f}" for i in range(3000)]  # 15 bytes a line
    lines_per_piece = 4096 // 15
    good = tmp_path / "good.csv"
    good.write_text("id,x\n" + "\n".join(rows) + "\n")
    source = text.TextSource(str(good), engine.detect_format(str(good), None, "INPUT"), {}, "g")
    ids = np.concatenate([t.column("id").to_numpy() for t in source.batches()])
    assert_array_equal(ids, np.arange(3000))
    rows[bad_piece * lines_per_piece + 3] = "00007,oops0000"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,x\n" + "\n".join(rows) + "\n")
    source = text.TextSource(str(bad), engine.detect_format(str(bad), None, "INPUT"), {}, "b")
    source.set_float(["x"])
    seen = []
    with pytest.raises(FileError, match="'oops0000'"):
        for table in source.batches():
            seen.append(table.num_rows)
    assert 0 < sum(seen) <= bad_piece * lines_per_piece + 3
    threading_leftovers = [t for t in threading.enumerate() if t.name == "skbn-parse"]
    for t in threading_leftovers:
        t.join(5)
    assert not any(t.is_alive() for t in threading_leftovers)


def test_passthrough_integer_with_late_float_says_dtype_float(tmp_path):
    rows = ["id,x"] + [f"{i},{i * 0.5}" for i in range(20_000)] + ["2.5,1.0"]
    (tmp_path / "late.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(FileError, match="--dtype id=float"):
        scale_file(tmp_path / "late.csv", tmp_path / "out.csv", exclude=["id"])
    scale_file(tmp_path / "late.csv", tmp_path / "o.csv", exclude=["id"], dtypes={"id": "float"})
    assert pd.read_csv(tmp_path / "o.csv")["id"].iloc[-1] == 2.5


def test_dtype_arrow_names_and_refusals(data, tmp_path):
    scale_file(data / "in.parquet", tmp_path / "o.parquet", dtypes={"count": "string"})
    out = pq.read_table(tmp_path / "o.parquet")
    assert pa.types.is_string(out.schema.field("count").type) or pa.types.is_large_string(
        out.schema.field("count").type
    )
    with pytest.raises(FileError, match="unknown type 'decimal9'"):
        scale_file(data / "in.csv", tmp_path / "o.csv", dtypes={"x": "decimal9"})
    with pytest.raises(FileError, match="no column 'nope'"):
        scale_file(data / "in.csv", tmp_path / "o.csv", dtypes={"nope": "int"})


# -- text output size -------------------------------------------------------------------


def test_float_precision_keeps_csv_near_its_input_size(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.normal(50.0, 10.0, (5000, 6))
    lines = ["a,b,c,d,e,f"] + [",".join(f"{v:.6g}" for v in row) for row in values]
    (tmp_path / "six.csv").write_text("\n".join(lines) + "\n")
    source = pd.read_csv(tmp_path / "six.csv").to_numpy()
    exact = StandardScaler().fit_transform(source)
    scale_file(tmp_path / "six.csv", tmp_path / "p7.csv", float_precision=7)
    size_in = os.path.getsize(tmp_path / "six.csv")
    assert os.path.getsize(tmp_path / "p7.csv") <= 1.6 * size_in
    assert_allclose(pd.read_csv(tmp_path / "p7.csv").to_numpy(), exact, rtol=5e-7, atol=5e-7)
    # The default writes the shortest text that reads back to the same float64.
    scale_file(tmp_path / "six.csv", tmp_path / "full.csv")
    assert_allclose(pd.read_csv(tmp_path / "full.csv").to_numpy(), exact, **TOL)


def test_compressed_output_is_gzip(data, tmp_path):
    scale_file(data / "in.parquet", tmp_path / "o.csv.gz")
    with gzip.open(tmp_path / "o.csv.gz", "rt") as stream:
        assert stream.readline().strip() == "id,name,x,flag,big,count"


@pytest.mark.parametrize("codec", ["zst", "bz2", "lz4"])
def test_other_codecs_both_ways(data, expected, tmp_path, codec):
    frame, scaled = expected
    scale_file(data / "in.parquet", tmp_path / f"o.tsv.{codec}")
    name = {"zst": "zstd", "bz2": "bz2", "lz4": "lz4"}[codec]
    with pa.CompressedInputStream(pa.OSFile(str(tmp_path / f"o.tsv.{codec}")), name) as raw:
        out = pd.read_csv(raw, sep="\t")
    assert_allclose(_numbers(out), scaled, **TOL)
    # Read back by skbn with the format given explicitly (no suffix to go by).
    os.rename(tmp_path / f"o.tsv.{codec}", tmp_path / "blob")
    scale_file(tmp_path / "blob", tmp_path / "again.parquet", input_format=f"tsv.{codec}")
    again = StandardScaler().fit_transform(_numbers(out))
    assert_allclose(_numbers(_read(tmp_path / "again.parquet")), again, **TOL)


# -- nothing half-written --------------------------------------------------------------


def test_failure_in_pass_two_leaves_nothing(data, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", 0)  # an IPC cache file on disk
    (tmp_path / "out.csv").write_text("old\n")
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    original = engine.replace_values
    monkeypatch.setattr(engine, "replace_values", failing)
    monkeypatch.setattr(stream, "BATCH_ROWS", 256)
    monkeypatch.setattr(text, "PIECE_BYTES", 4096)
    with pytest.raises(KeyboardInterrupt):
        scale_file(data / "in.csv", tmp_path / "out.csv", save=tmp_path / "m.skops")
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "scratch"]
    assert (tmp_path / "out.csv").read_text() == "old\n"


def test_unwritable_directory(data):
    with pytest.raises(FileError, match=r"cannot write '/sys/out.csv'"):
        scale_file(data / "in.csv", "/sys/out.csv")


@pytest.mark.parametrize(
    "args, needle",
    [
        (dict(columns=["name"]), "column 'name' is text, not numeric"),
        (dict(exclude=["zz"]), "--exclude: "),
        (dict(inverse=True), "--inverse needs --load"),
        (dict(momentum=1.5), "momentum must be"),
        (dict(float_precision=0), "float_precision must be"),
        (dict(output_format="xlsx"), "unknown format 'xlsx'"),
        (dict(delimiter=";"), None),
    ],
)
def test_option_errors(data, tmp_path, args, needle):
    if needle is None:  # --delimiter on a Parquet input is refused
        with pytest.raises(FileError, match="--delimiter applies to CSV"):
            scale_file(data / "in.parquet", tmp_path / "o.csv", **args)
        return
    with pytest.raises(FileError, match=needle):
        scale_file(data / "in.csv", tmp_path / "o.csv", **args)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("cache_bytes", [0, 1 << 40], ids=["ipc-files", "memory"])
@pytest.mark.parametrize("target", ["csv", "tsv", "ndjson", "arrow", "parquet"])
@pytest.mark.parametrize("digits", [None, 7])
def test_sink_pass_writes_what_the_table_pass_writes(
    data, tmp_path, monkeypatch, target, digits, cache_bytes
):
    """Pass 2 by the compiled CSV writer (CSV and TSV, not rounded), in
    polars' streaming engine, or mapping and writing one table at a time
    (the route of progress bars, compressed text and loaded models): the
    same file contents, with the cache in files or in memory."""
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", cache_bytes)
    monkeypatch.setattr(text, "PIECE_BYTES", 16384)  # several cache files
    digits = None if target in ("arrow", "parquet") else digits
    compiled = target in ("csv", "tsv") and digits is None
    ran = {"compiled": [], "sink": []}
    original_rows, original_sink = engine.write_rows, engine._sink_pass
    monkeypatch.setattr(
        engine, "write_rows", lambda *a: ran["compiled"].append(1) or original_rows(*a)
    )
    monkeypatch.setattr(
        engine, "_sink_pass", lambda *a: ran["sink"].append(original_sink(*a)) or ran["sink"][-1]
    )
    outputs = {}
    for route in ("first", "sink", "table"):
        if route == "sink":
            monkeypatch.setattr(engine, "_compiled_csv", lambda *a: None)
        if route == "table":
            monkeypatch.setattr(engine, "_sink_pass", lambda *a: False)
        outputs[route] = tmp_path / f"{route}.{target}"
        scale_file(data / "in.csv", outputs[route], float_precision=digits)
    # the compiled writer where it applies, else polars' streaming engine
    assert ran == (
        {"compiled": [1], "sink": [True]} if compiled else {"compiled": [], "sink": [True, True]}
    )
    for route in ("sink", "table"):
        if target in ("csv", "tsv", "ndjson"):
            assert outputs[route].read_bytes() == outputs["first"].read_bytes(), route
        else:
            a, b = _read(outputs[route]), _read(outputs["first"])
            assert list(a.columns) == list(b.columns)
            for name in a.columns:
                assert a[name].equals(b[name]), name


@pytest.mark.parametrize("how", ["no-extension", "date-column", "gzip", "progress"])
def test_compiled_csv_route_and_its_fallbacks_write_the_same_bytes(
    data, tmp_path, monkeypatch, how
):
    """Without the extension, or with a column type the compiled writer does
    not format (a date), pass 2 falls back to polars; a compressed output and
    a progress bar take the compiled route too.  The bytes are the same."""
    dtypes = {"when": "date32"} if how == "date-column" else None
    source = data / "in.csv"
    if how == "date-column":
        lines = (data / "in.csv").read_text().splitlines()
        rows = [lines[0] + ",when"] + [
            f"{line},2024-01-0{1 + i % 9}" for i, line in enumerate(lines[1:])
        ]
        source = tmp_path / "dated.csv"
        source.write_text("\n".join(rows) + "\n")
    suffix = "csv.gz" if how == "gzip" else "csv"
    reference = tmp_path / f"reference.{suffix}"
    monkeypatch.setattr(engine, "_compiled_csv", lambda *a: None)
    monkeypatch.setattr(engine, "_sink_pass", lambda *a: False)
    scale_file(source, reference, dtypes=dtypes)
    monkeypatch.undo()
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", 0)
    ran = []
    original = engine.write_rows
    monkeypatch.setattr(engine, "write_rows", lambda *a: ran.append(1) or original(*a))
    if how == "no-extension":
        monkeypatch.setattr(csvout, "_csvwrite", None)
    out = tmp_path / f"out.{suffix}"
    scale_file(source, out, dtypes=dtypes, progress=how == "progress")
    assert ran == ([1] if how in ("gzip", "progress") else [])
    read = gzip.decompress if how == "gzip" else (lambda b: b)
    assert read(out.read_bytes()) == read(reference.read_bytes())


def test_failure_in_the_compiled_pass_leaves_nothing(data, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", 0)
    monkeypatch.setattr(text, "PIECE_BYTES", 4096)
    (tmp_path / "out.csv").write_text("old\n")
    formatted = []
    original = csvout._columns

    def failing(batch, terms):
        formatted.append(batch.num_rows)
        if len(formatted) == 3:
            raise KeyboardInterrupt
        return original(batch, terms)

    monkeypatch.setattr(csvout, "_columns", failing)
    with pytest.raises(KeyboardInterrupt):
        scale_file(data / "in.csv", tmp_path / "out.csv")
    assert len(formatted) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "scratch"]
    assert (tmp_path / "out.csv").read_text() == "old\n"


def test_failure_in_the_sink_pass_leaves_nothing(data, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "_compiled_csv", lambda *a: None)  # polars writes the CSV
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", 1 << 40)  # polars reads it from Python
    monkeypatch.setattr(engine, "_SINK_ROWS", 64)
    (tmp_path / "out.csv").write_text("old\n")
    handed = []
    original = stream.Cache.tables

    def failing(self, group=True, release=False):
        for table in original(self, group, release):
            handed.append(table.num_rows)
            if len(handed) == 3:
                raise KeyboardInterrupt
            yield table

    monkeypatch.setattr(stream.Cache, "tables", failing)
    monkeypatch.setattr(text, "PIECE_BYTES", 4096)
    # polars passes the interrupt on (2.x) or wraps it in its own error (1.x)
    with pytest.raises((KeyboardInterrupt, FileError)):
        scale_file(data / "in.csv", tmp_path / "out.csv")
    assert len(handed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "scratch"]
    assert (tmp_path / "out.csv").read_text() == "old\n"


@pytest.mark.parametrize("route", ["sink", "compiled"])
def test_a_lost_cache_file_fails_pass_two_and_leaves_nothing(data, tmp_path, monkeypatch, route):
    """The cache in files, read by polars itself or mapped by the compiled
    writer's driver: a file gone before pass 2 (removed by someone else)
    fails the run with one error, and nothing is left."""
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", 0)
    monkeypatch.setattr(text, "PIECE_BYTES", 4096)

    def lose_one(cache):
        assert len(cache.paths) > 2
        if os.path.exists(cache.paths[1]):
            os.remove(cache.paths[1])

    if route == "sink":
        monkeypatch.setattr(engine, "_compiled_csv", lambda *a: None)
        sink = engine._sink_pass
        monkeypatch.setattr(engine, "_sink_pass", lambda c, *a: (lose_one(c), sink(c, *a))[1])
        message = r"cannot write .*out\.csv.*No such file.*skbn-cache"
    else:
        tables = stream.Cache.tables
        monkeypatch.setattr(
            stream.Cache, "tables", lambda c, *a, **k: (lose_one(c), tables(c, *a, **k))[1]
        )
        message = r"cannot read 'the pass-1 cache .*skbn-cache.*No such file"
    (tmp_path / "out.csv").write_text("old\n")
    with pytest.raises(FileError, match=message):
        scale_file(data / "in.csv", tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "scratch"]
    assert (tmp_path / "out.csv").read_text() == "old\n"


@pytest.mark.parametrize("cache_bytes", [0, 1 << 40], ids=["ipc-files", "memory"])
@pytest.mark.parametrize("target", ["csv", "parquet"])
@pytest.mark.parametrize("negative_zero", [False, True])
def test_sink_pass_edge_cases_match_the_table_pass(
    tmp_path, monkeypatch, cache_bytes, target, negative_zero
):
    """Column names that look like polars patterns, --float-precision with a
    binary output, a date column, and a column of -0.0 (whose mean -0.0
    polars would mishandle: that run is left to the table pass): the
    streaming pass 2 writes what the table pass writes."""
    monkeypatch.setattr(engine, "MEMORY_CACHE_BYTES", cache_bytes)
    z = "-0.0" if negative_zero else "{}"
    rows = ["a,^a$,*,z,d"] + [
        f"{i},{i * 0.5},{i % 7},{z.format(i * 0.25)},2024-01-0{1 + i % 9}" for i in range(50)
    ]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    ran = []
    original = engine._sink_pass
    monkeypatch.setattr(engine, "_sink_pass", lambda *a: ran.append(original(*a)) or ran[-1])
    outputs = {}
    for route in ("sink", "table"):
        if route == "table":
            monkeypatch.setattr(engine, "_sink_pass", lambda *a: False)
        out = tmp_path / f"{route}.{target}"
        scale_file(tmp_path / "in.csv", out, exclude=["a"], float_precision=3,
                   dtypes={"d": "date32"})  # fmt: skip
        outputs[route] = _read(out)
    assert ran == [not negative_zero]
    sunk, tabled = outputs["sink"], outputs["table"]
    assert list(sunk.columns) == list(tabled.columns) == ["a", "^a$", "*", "z", "d"]
    for name in sunk.columns:
        assert sunk[name].equals(tabled[name]), name
    assert sunk["a"].tolist() == list(range(50))  # excluded, not scaled
    assert np.signbit(sunk["z"].to_numpy()).sum() == (0 if negative_zero else 25)
    if target == "parquet":  # --float-precision is for text outputs only
        assert_allclose(sunk["^a$"].std(ddof=0), 1.0, rtol=1e-12)
        assert pq.read_schema(tmp_path / "sink.parquet").field("d").type == pa.date32()


# -- the moments of a chunk ------------------------------------------------------------


def test_chunk_moments_are_exact_to_a_rounding_per_column(monkeypatch):
    """One compiled call per column of the chunk: the mean (with its
    residual) and the variance of the values present against exact
    arithmetic; an infinite value names its column; without the kernels,
    the core's dense moments."""
    from fractions import Fraction

    import skbn._stats as stats

    rng = np.random.default_rng(7)
    columns = rng.standard_normal((4, 6000)) * [[1], [1e-3], [1e4], [0]] + [[0], [1e6], [3], [7]]
    columns[1, rng.random(6000) < 0.05] = np.nan
    X = columns.T
    got = engine._chunk_moments_of(list(columns))
    for j, column in enumerate(columns):
        present = [Fraction(x) for x in column if not np.isnan(x)]
        mean = sum(present) / len(present)
        var = sum((x - mean) ** 2 for x in present) / len(present)
        assert got.weight[j] == len(present)
        assert abs(Fraction(got.mean[j]) + Fraction(got.residual[j]) - mean) <= abs(mean) * 2**-100
        assert abs(Fraction(got.var[j]) - var) <= var * 2**-51
    bad = X.copy()
    bad[17, 2] = -np.inf
    with pytest.raises(stats.InfiniteValueError) as info:
        engine._chunk_moments_of(list(bad.T))
    assert info.value.columns.tolist() == [2]
    monkeypatch.setattr(stats, "_kernels", None)
    fallback = engine._chunk_moments_of(list(columns))
    expected = stats.dense_moments(X)
    for a, b in zip(fallback, expected, strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("output", ["out.csv", "-"])
def test_a_large_csv_output_is_written_around_the_page_cache(data, direct_tmp_path, monkeypatch,
                                                             output, direct):  # fmt: skip
    """Past RELEASE_BYTES, the compiled pass hands what it wrote to the disk,
    lets the page cache drop it (posix_fadvise DONTNEED) and writes the rest
    with O_DIRECT; where O_DIRECT is not to be had (asked once), it releases
    again every RELEASE_BYTES, from where the last release ended.  Not a file copied to
    stdout at the end (read back).  The same bytes in every case."""
    import skbn.io._direct as direct_io
    import skbn.io._formats as formats

    tmp_path = direct_tmp_path
    expected = tmp_path / "expected.csv"
    scale_file(data / "in.csv", expected)  # small: through the page cache only
    monkeypatch.setattr(formats, "RELEASE_BYTES", 4096)
    calls, opened = [], []
    monkeypatch.setattr(
        os, "posix_fadvise", lambda fd, start, n, advice: calls.append((start, n, advice)),
        raising=False,
    )  # fmt: skip
    original = direct_io.DirectWriter.open

    def open_direct(path, end):
        opened.append(end)
        return original(path, end) if direct else None

    monkeypatch.setattr(direct_io.DirectWriter, "open", open_direct)
    target = tmp_path / "out.csv"
    if output == "-":
        monkeypatch.setattr("sys.stdout", open(target, "w"))  # noqa: SIM115 - closed below
    scale_file(data / "in.csv", str(target) if output != "-" else "-")
    if output == "-":
        sys.stdout.close()
        assert calls == opened == []
        assert target.read_bytes() == expected.read_bytes()
        return
    assert target.read_bytes() == expected.read_bytes()
    size = target.stat().st_size
    starts = [start for start, _, _ in calls]
    assert starts[0] == 0 and starts[-1] < size
    assert {n for _, n, _ in calls} == {0} and {a for _, _, a in calls} == {os.POSIX_FADV_DONTNEED}
    if direct:  # once, then O_DIRECT to the end
        assert len(calls) == len(opened) == 1 and 4096 <= opened[0] < size
    else:
        assert len(starts) >= 2 and len(opened) == 1  # asked once
        assert all(b - a >= 4096 for a, b in zip(starts, starts[1:], strict=False))  # 4096 more


def _cut_by_hand(data: bytes, end: int, quoted: bool) -> int:
    """The end of the last line break in data[:end] outside quotes, byte by byte."""
    inside, cut = False, 0
    for position in range(end):
        if quoted and data[position] == ord('"'):
            inside = not inside
        elif data[position] == ord("\n") and not inside:
            cut = position + 1
    return cut


@pytest.mark.parametrize("seed", range(6))
def test_a_piece_is_cut_after_its_last_line_break_outside_quotes(seed, monkeypatch):
    """_cut against a byte-by-byte scan, with no quote at all, quotes only past
    the end, quoted line breaks and escaped quotes, counted in small blocks."""
    monkeypatch.setattr(text, "_COUNT_BLOCK", 7)
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b'ab,\n"' if seed % 3 else b"ab,\n", np.uint8)
    weights = np.array([5, 5, 2, 1, 1][: len(alphabet)], float)
    data = bytearray(rng.choice(alphabet, 400, p=weights / weights.sum()).tobytes())
    if seed == 5:  # a quote only past the end looked at
        data = bytearray(b"ab,c\nde\n" * 20 + b'"x\n"')
    for end in range(0, len(data) + 1, 3):
        for quoted in (True, False):
            assert text._cut(data, end, quoted) == _cut_by_hand(bytes(data), end, quoted)
