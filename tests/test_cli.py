"""The ``skbn`` command line, run as a user runs it.

The success paths run ``python -m skbn ...`` in a child process on real CSV
and Parquet files written with pandas and pyarrow, and compare what it wrote
with a :class:`~skbn.BatchNormScaler` fed the same chunks in this process.
Starting Python with scikit-learn takes a second or more, so the child
processes are all started up front by the ``runs`` fixture, side by side,
and each test waits for the ones it checks.  The error cases run through
:func:`skbn.cli.main` (the function the ``skbn`` console script and
``python -m skbn`` call) in this process, and one of them also in a child
process, for its exit status and the absence of a traceback there.

Tolerances.  Parquet stores float64 exactly, so its scaled columns must
equal the in-process ones to ``rtol=1e-12`` (they are computed by the same
code from the same numbers; the margin only allows for a different
summation order).  A CSV stores numbers as text, but every conversion here
is exact: pandas writes floats with ``repr`` (the shortest text that reads
back to the same float64), pyarrow and pandas parse decimal text correctly
rounded, and pyarrow writes its output with the shortest round-trip text as
well.  So the CSV outputs are held to the same ``rtol=1e-12``, with no
allowance for text.

The engine itself (formats, columns, types, pooled statistics) is tested in
``test_io.py``; here are the command's own concerns: options, messages, exit
statuses, stdin/stdout, signals, file-size limits, what it imports, and the
documented examples.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import io
import json
import os
import pty
import re
import resource
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from numpy.testing import assert_allclose, assert_array_equal

import skbn
from skbn import BatchNormScaler
from skbn.cli import TRUSTED_TYPE, load_scaler, main

N_ROWS = 1000
CHUNK = 128  # 7 chunks of 128 rows and one of 104
NUMERIC = ["id", "x", "count", "y"]  # the numeric columns, in file order
RTOL = 1e-12
# The parameters of the --save run, as options and as BatchNormScaler arguments.
SAVE_OPTIONS = ["--momentum", "0.8", "--unbiased", "--init", "keras", "--epsilon", "0.01"]
SAVE_PARAMS = dict(momentum=0.8, unbiased=True, init="keras", epsilon=0.01)


# -- the data --------------------------------------------------------------------


def _table(seed: int = 0) -> pa.Table:
    """Numeric columns (with nulls), and string, bool and date columns between them."""
    rng = np.random.default_rng(seed)
    names = [f"row {i}" + (", with a comma" if i % 7 == 0 else "") for i in range(N_ROWS)]
    return pa.table(
        {
            "id": pa.array(np.arange(N_ROWS), pa.int64()),
            "name": pa.array(names),
            "x": pa.array(rng.normal(1e3, 5.0, N_ROWS), mask=rng.random(N_ROWS) < 0.05),
            "flag": pa.array(rng.random(N_ROWS) < 0.5),
            "count": pa.array(rng.integers(0, 50, N_ROWS), mask=rng.random(N_ROWS) < 0.1),
            "day": pa.array(
                np.datetime64("2024-01-01") + np.arange(N_ROWS) % 366, type=pa.date32()
            ),
            "y": pa.array(rng.standard_normal(N_ROWS) * 1e-3 - 2.0, type=pa.float32()),
        }
    )


def _csv_frame(path) -> pd.DataFrame:
    """A CSV file as pandas reads it, rounded correctly.

    pandas 3 rounds correctly by default (and deprecates ``float_precision``);
    pandas 2's default parser is off by an ulp now and then, its
    ``"round_trip"`` parser is not (the branch can go with a pandas 3 floor).
    """
    if int(pd.__version__.split(".")[0]) < 3:
        return pd.read_csv(path, float_precision="round_trip")
    return pd.read_csv(path)


def _numbers(frame: pd.DataFrame, columns) -> np.ndarray:
    return frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)


def _arrow_numbers(table: pa.Table, columns) -> np.ndarray:
    return np.column_stack(
        [table.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False) for c in columns]
    )


def _reference(X: np.ndarray, chunk: int = CHUNK, **params) -> tuple[BatchNormScaler, np.ndarray]:
    """``BatchNormScaler(**params)`` fed ``X`` in chunks of ``chunk`` rows, and its transform."""
    scaler = BatchNormScaler(**params)
    for start in range(0, X.shape[0], chunk):
        scaler.partial_fit(X[start : start + chunk])
    return scaler, scaler.transform(X)


# -- the child processes --------------------------------------------------------------


def _run(command: str, cwd) -> subprocess.CompletedProcess:
    """``python -m skbn COMMAND`` (split as a shell would) in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k != "SKBN_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "skbn", *shlex.split(command)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _run_with_terminal(command: str, cwd) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; return the status and what it showed."""
    controller, terminal = pty.openpty()
    # A terminal 100 columns wide (a fresh pseudo-terminal has no size).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "skbn", *shlex.split(command)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=terminal,
        )
    finally:
        os.close(terminal)
    shown = bytearray()
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(controller)
    return child.wait(timeout=120), shown.decode(errors="replace")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The input files: one table as CSV (pandas) and as Parquet (pyarrow)."""
    root = tmp_path_factory.mktemp("cli")
    table = _table()
    table.to_pandas().to_csv(root / "in.csv", index=False)
    pq.write_table(table, root / "in.parquet", row_group_size=300)
    # Three chunks of 100 rows: the third holds an infinity.
    bad = pd.DataFrame({"a": np.arange(300.0), "b": np.ones(300)})
    bad.loc[250, "a"] = np.inf
    bad.to_csv(root / "inf.csv", index=False)
    sio.dump(BatchNormScaler().fit(bad.iloc[:100]), root / "ab.skops")
    (root / "old").mkdir()
    (root / "old" / "out.csv").write_text("old content\n")
    return root


@pytest.fixture(scope="module")
def runs(files):
    """Start every child process of this module at once; tests wait on the results."""
    root = files

    def save_load_inspect():
        options = " ".join(SAVE_OPTIONS)
        saved = _run(
            f"scale in.parquet out_saved.parquet --chunksize {CHUNK} {options} --save model.skops",
            cwd=root,
        )
        with ThreadPoolExecutor(max_workers=2) as pool:
            loaded = pool.submit(
                _run, "scale in.parquet out_loaded.csv --load model.skops --chunksize 300", root
            )
            inspected = pool.submit(_run, "inspect model.skops", root)
            return saved, loaded.result(), inspected.result()

    jobs = {
        "save_load_inspect": save_load_inspect,
        "csv": lambda: _run_with_terminal(
            f"scale in.csv out.csv --chunksize {CHUNK} --momentum 0.9", cwd=root
        ),
        "columns": lambda: _run_with_terminal(
            f"scale in.csv out_columns.pq --chunksize {CHUNK} --columns 'y, x' "
            "--momentum none --unbiased --no-progress",
            cwd=root,
        ),
        "demo": lambda: _run("demo", cwd=root),
        "core_import": lambda: subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, skbn; print('skbn.cli' in sys.modules); import skbn.cli; "
                "print(sorted(m for m in ('tqdm', 'skops') if m in sys.modules))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ),
        "error_midway": lambda: _run(
            "scale inf.csv old/out.csv --load ab.skops --chunksize 100", cwd=root
        ),
    }
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        yield {name: future.result for name, future in futures.items()}


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warning, no progress bar off a terminal
    return result


# -- scale: results ------------------------------------------------------------------


def test_scale_csv_to_csv(runs, files):
    status, shown = runs["csv"]()
    assert status == 0, shown
    source = _csv_frame(files / "in.csv")
    out = _csv_frame(files / "out.csv")
    _, expected = _reference(_numbers(source, NUMERIC), momentum=0.9)
    assert list(out.columns) == list(source.columns)
    assert_allclose(_numbers(out, NUMERIC), expected, rtol=RTOL, atol=0)
    # Missing values stay missing; passthrough columns are untouched.
    assert_array_equal(out[NUMERIC].isna().to_numpy(), source[NUMERIC].isna().to_numpy())
    assert source["x"].isna().sum() > 0 and source["count"].isna().sum() > 0
    for column in ["name", "flag", "day"]:
        assert_array_equal(out[column].to_numpy(), source[column].to_numpy())
    assert out["name"][7] == "row 7, with a comma"


def test_progress_bar_on_a_terminal_only(runs):
    # stderr on a terminal: a bar for each pass, then a summary.
    status, shown = runs["csv"]()
    assert status == 0, shown
    assert "pass 1/2: fit" in shown and "pass 2/2: transform" in shown and "100%" in shown
    assert "skbn: scaled 4 column(s) of 1,000 rows (fitted on 8 batches)" in shown
    # --no-progress on a terminal: nothing.
    status, shown = runs["columns"]()
    assert status == 0, shown
    assert shown == ""
    # stderr not a terminal (the other runs): nothing either, see _ok.
    saved, _, _ = runs["save_load_inspect"]()
    _ok(saved)


def test_scale_parquet_to_parquet(runs, files):
    saved, _, _ = runs["save_load_inspect"]()
    _ok(saved)
    source = pq.read_table(files / "in.parquet")
    out = pq.read_table(files / "out_saved.parquet")
    _, expected = _reference(_arrow_numbers(source, NUMERIC), **SAVE_PARAMS)
    assert out.column_names == source.column_names
    for field in out.schema:
        if field.name in NUMERIC:
            assert field.type == pa.float64()
            assert_array_equal(
                out.column(field.name).is_null().to_numpy(zero_copy_only=False),
                source.column(field.name).is_null().to_numpy(zero_copy_only=False),
            )
        else:  # same type, same values, same place
            assert field.type == source.schema.field(field.name).type
            assert out.column(field.name).equals(source.column(field.name))
    assert_allclose(_arrow_numbers(out, NUMERIC), expected, rtol=RTOL, atol=0)


def test_scale_csv_to_parquet_named_columns(runs, files):
    status, shown = runs["columns"]()
    assert status == 0, shown
    source = _csv_frame(files / "in.csv")
    out = pq.read_table(files / "out_columns.pq")
    _, expected = _reference(_numbers(source, ["y", "x"]), momentum=None, unbiased=True)
    assert out.column_names == list(source.columns)
    assert_allclose(_arrow_numbers(out, ["y", "x"]), expected, rtol=RTOL, atol=0)
    # The numeric columns not named pass through with the type read from the CSV.
    assert out.schema.field("id").type == pa.int64()
    assert_array_equal(out.column("id").to_numpy(), source["id"].to_numpy())
    assert_array_equal(_arrow_numbers(out, ["count"]), _numbers(source, ["count"]))


def test_save_load_and_inspect(runs, files):
    saved, loaded, inspected = runs["save_load_inspect"]()
    _ok(saved)
    _ok(loaded)
    _ok(inspected)
    source = pq.read_table(files / "in.parquet")
    reference, _ = _reference(_arrow_numbers(source, NUMERIC), **SAVE_PARAMS)

    model = load_scaler(files / "model.skops")
    assert sio.get_untrusted_types(file=files / "model.skops") == [TRUSTED_TYPE]
    assert model.get_params() == reference.get_params()
    assert list(model.feature_names_in_) == NUMERIC
    assert model.n_batches_seen_ == reference.n_batches_seen_ == 8
    for name in ["moving_mean_", "moving_var_", "gamma_", "beta_"]:
        assert_allclose(getattr(model, name), getattr(reference, name), rtol=RTOL)
    assert_array_equal(model.n_samples_seen_, reference.n_samples_seen_)

    # --load: no fitting pass, the saved statistics applied (Parquet in, CSV out).
    out = _csv_frame(files / "out_loaded.csv")
    expected = reference.transform(_arrow_numbers(source, NUMERIC))
    assert list(out.columns) == source.column_names
    assert_allclose(_numbers(out, NUMERIC), expected, rtol=RTOL, atol=0)
    assert_array_equal(out["name"].to_numpy(), source.column("name").to_numpy())
    assert_array_equal(out["flag"].to_numpy(), source.column("flag").to_numpy())

    text = inspected.stdout
    for word in ["momentum", "0.8", "keras", "unbiased", "batches", "moving_mean", "gamma"]:
        assert word in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    for j, name in enumerate(NUMERIC):
        row = lines[name]
        assert_allclose(float(row[1]), model.moving_mean_[j], rtol=1e-9)
        assert_allclose(float(row[2]), model.moving_var_[j], rtol=1e-9)
        assert [float(row[3]), float(row[4])] == [1.0, 0.0]


def test_demo(runs):
    result = _ok(runs["demo"]())
    assert "digits" in result.stdout and "21 batches and 1344 samples" in result.stdout
    assert "accuracy" in result.stdout
    scores = [
        float(line.split()[-1])
        for line in result.stdout.splitlines()
        if line.startswith("  StandardScaler()") or line.startswith("  BatchNormScaler(")
    ]
    assert len(scores) == 3 and all(0.9 < s <= 1.0 for s in scores)


# -- the command itself --------------------------------------------------------------


def test_core_does_not_import_cli(runs):
    result = runs["core_import"]()
    assert result.returncode == 0, result.stderr
    # skbn alone does not import the command line, which imports its extras lazily.
    assert result.stdout.split("\n")[:2] == ["False", "[]"]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"skbn {skbn.__version__}\n"


def test_console_script_entry_point():
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="skbn")
    assert entry.value == "skbn.__main__:main"
    import skbn.__main__

    assert entry.load() is skbn.__main__.main


@pytest.mark.parametrize("preset", [None, "3"])
def test_the_program_runs_blas_on_one_thread_unless_told(preset):
    """``python -m skbn`` and ``skbn`` load NumPy with one BLAS thread (an idle
    OpenBLAS pool spins on the cores the parser needs), unless the
    environment sets the count."""
    code = (
        "import skbn.__main__, json, os, threadpoolctl; print(json.dumps(["
        "os.environ['OPENBLAS_NUM_THREADS'], "
        "[i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    code_pool = "import skbn.__main__, pyarrow; print(pyarrow.cpu_count())"
    pool = subprocess.run(
        [sys.executable, "-c", code_pool], env=env, capture_output=True, text=True
    )
    assert pool.stdout.strip() == str(os.cpu_count())  # pyarrow's own pool keeps every core
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    variable, counts = json.loads(out.stdout)
    assert variable == (preset or "1")
    assert counts and all(n == min(int(variable), os.cpu_count()) for n in counts)


@pytest.mark.parametrize(
    "args, status, out, err",
    [(["--version"], 0, "skbn ", ""), (["scale", "missing.csv", "out.csv"], 1, "", "not found"),
     (["scale"], 2, "", "required: INPUT, OUTPUT")],
)  # fmt: skip
def test_program_ends_with_mains_status_and_flushed_output(tmp_path, args, status, out, err):
    """``python -m skbn`` ends with os._exit after flushing: the status and
    every line of output still arrive."""
    child = subprocess.run(
        [sys.executable, "-m", "skbn", *args], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert child.returncode == status
    assert out in child.stdout and err in child.stderr


def test_help(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ["scale", "demo", "inspect", "--version"]:
        assert command in text
    assert main(["scale", "--help"]) == 0
    text = capsys.readouterr().out
    for option in [
        "--chunksize", "--momentum", "--epsilon", "--unbiased", "--init",
        "--columns", "--save", "--load", "--no-progress", "INPUT", "OUTPUT",
    ]:  # fmt: skip
        assert option in text
    assert main(["inspect", "--help"]) == 0 and "MODEL.skops" in capsys.readouterr().out
    assert main(["demo", "--help"]) == 0 and "--dataset" in capsys.readouterr().out


# -- errors ---------------------------------------------------------------------------


def _assert_one_line_error(stderr: str, needle: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("skbn: error: "), stderr
    assert needle in lines[0], stderr


def test_error_in_a_child_process(runs, files):
    """A run that fails in its transform pass, after writing two chunks."""
    result = runs["error_midway"]()
    assert result.returncode == 1
    _assert_one_line_error(result.stderr, "column 'a' holds an infinite value (data row 251)")
    # The old OUTPUT is as it was, and no temporary file is left.
    assert (files / "old" / "out.csv").read_text() == "old content\n"
    assert not list(files.rglob("*.skbn-tmp"))


@pytest.fixture(scope="module")
def error_files(tmp_path_factory):
    """A folder of bad and good files for the in-process error cases."""
    root = tmp_path_factory.mktemp("errors")
    pd.DataFrame({"s": ["a", "b"], "t": ["c", "d"]}).to_csv(root / "text.csv", index=False)
    (root / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    (root / "empty.csv").write_bytes(b"")
    (root / "corrupt.parquet").write_bytes(b"PAR1 this is not a Parquet file")
    pq.write_table(pa.table({"l": [[1], [2]], "a": [1.0, 2.0]}), root / "lists.parquet")
    pq.write_table(pa.table({"a": pa.array([], pa.float64())}), root / "norows.parquet")
    (root / "data.txt").write_text("a\n1\n")
    (root / "garbage.skops").write_bytes(b"not a zip file")
    from fractions import Fraction

    from sklearn.preprocessing import StandardScaler

    sio.dump(StandardScaler().fit([[0.0], [1.0]]), root / "standard.skops")
    sio.dump({"scaler": Fraction(1, 3)}, root / "fraction.skops")
    sio.dump(BatchNormScaler(), root / "unfitted.skops")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    sio.dump(BatchNormScaler().fit(frame), root / "ab.skops")
    frame.to_csv(root / "ab.csv", index=False)
    pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}).to_csv(root / "abc.csv", index=False)
    (root / "adir.csv").mkdir()
    return root


ERRORS = [
    # (arguments, words in the message, exit status)
    (["scale", "nope.csv", "out.csv"], "input file 'nope.csv' not found", 1),
    (["scale", "adir.csv", "out.csv"], "is not a file", 1),
    (["scale", "data.txt", "out.csv"], "cannot tell the format of INPUT 'data.txt'", 2),
    (["scale", "ab.csv", "out.json"], "from its suffix (.json)", 2),
    (["scale", "ab.csv", "missing_dir/out.csv"], "does not exist", 1),
    (["scale", "ab.csv", "ab.csv"], "INPUT and OUTPUT are the same file", 2),
    (["scale", "ab.csv", "adir.csv"], "OUTPUT 'adir.csv' is a directory", 1),
    (["scale", "ab.csv", "out.csv", "--save", "no_dir/m.skops"], "does not exist", 1),
    (["scale", "lists.parquet", "out.csv"], "column 'l' of type list<", 1),
    (["scale", "text.csv", "out.csv"], "has no numeric column to scale", 1),
    (["scale", "ragged.csv", "out.csv"], "cannot read 'ragged.csv'", 1),
    (["scale", "empty.csv", "out.csv"], "cannot read 'empty.csv'", 1),
    (["scale", "corrupt.parquet", "out.csv"], "cannot read 'corrupt.parquet'", 1),
    (["scale", "norows.parquet", "out.parquet"], "has no data rows", 1),
    (["scale", "ab.csv", "out.csv", "--momentum", "1.5"], "--momentum: must be", 2),
    (["scale", "ab.csv", "out.csv", "--momentum", "fast"], "got 'fast'", 2),
    (["scale", "ab.csv", "out.csv", "--chunksize", "0"], "--chunksize: must be", 2),
    (["scale", "ab.csv", "out.csv", "--chunksize", "1.5"], "--chunksize: must be", 2),
    (["scale", "ab.csv", "out.csv", "--epsilon", "-1"], "--epsilon: must be", 2),
    (["scale", "ab.csv", "out.csv", "--init", "zeros"], "invalid choice: 'zeros'", 2),
    (["scale", "ab.csv", "out.csv", "--columns", "a,zz"], "has no column 'zz'", 2),
    (["scale", "text.csv", "out.csv", "--columns", "s"], "column 's' is text", 2),
    (["scale", "ab.csv", "out.csv", "--columns", "a,,b"], "separated by commas", 2),
    (["scale", "ab.csv", "out.csv", "--columns", "a,a"], "names a column twice", 2),
    (["scale", "ab.csv", "out.csv", "--load", "nope.skops"], "'nope.skops' not found", 1),
    (["scale", "ab.csv", "out.csv", "--load", "garbage.skops"], "not a skops file", 1),
    (["scale", "ab.csv", "out.csv", "--load", "standard.skops"], "not a skbn", 1),
    (["scale", "ab.csv", "out.csv", "--load", "fraction.skops"], "fractions.Fraction", 1),
    (["scale", "ab.csv", "out.csv", "--load", "unfitted.skops"], "never fitted", 1),
    (
        ["scale", "abc.csv", "o.csv", "--load", "ab.skops", "--columns", "a,b,c"],
        "unknown to the scaler: c",
        1,
    ),
    (["scale", "ab.csv", "out.csv", "--load", "ab.skops", "--unbiased"], "--unbiased", 2),
    (["scale", "ab.csv", "out.csv", "--save", "ab.csv"], "are the same file", 2),
    (["scale", "ab.csv"], "the following arguments are required: OUTPUT", 2),
    (["scale", "ab.csv", "out.csv", "--frobnicate"], "unrecognized arguments", 2),
    (["inspect", "fraction.skops"], "holds a builtins.dict, not a skbn BatchNormScaler", 1),
    (["inspect", "garbage.skops"], "not a skops file", 1),
    (["inspect", "standard.skops"], "holds a sklearn.preprocessing._data.StandardScaler", 1),
    (["inspect", "unfitted.skops"], "never fitted", 1),
    (["scale", "ab.csv", "out.csv", "--inverse"], "--inverse needs --load", 2),
    (
        ["scale", "ab.csv", "out.csv", "--exclude", "zz"],
        "--exclude: 'ab.csv' has no column 'zz'",
        2,
    ),
    (["scale", "ab.csv", "out.csv", "--dtype", "a"], "must be COLUMN=TYPE", 2),
    (["scale", "ab.csv", "out.csv", "--dtype", "a=complex"], "unknown type 'complex'", 2),
    (
        ["scale", "ab.csv", "out.csv", "--float-precision", "0"],
        "must be a whole number in 1..17",
        2,
    ),
    (["scale", "ab.csv", "out.csv", "--input-format", "xls"], "unknown format 'xls'", 2),
    (["scale", "ab.csv", "out.parquet.gz"], "cannot be compressed as a whole", 2),
    (["scale", "norows.parquet", "out.csv", "--delimiter", ";"], "--delimiter applies to CSV", 2),
    (
        ["scale", "ab.csv", "out.csv", "--momentum", "pooled", "--load", "ab.skops"],
        "--momentum",
        2,
    ),
    (["inspect", "nope.skops"], "not found", 1),
    (["demo", "--chunksize", "5000"], "larger than the digits training set", 2),
    ([], "the following arguments are required: COMMAND", 2),
    (["transmogrify"], "invalid choice: 'transmogrify'", 2),
]


@pytest.mark.parametrize(
    "argv, needle, status", ERRORS, ids=[" ".join(argv) or "(nothing)" for argv, _, _ in ERRORS]
)
def test_error_is_one_line(error_files, monkeypatch, capsys, argv, needle, status):
    monkeypatch.chdir(error_files)
    monkeypatch.delenv("SKBN_DEBUG", raising=False)
    before = sorted(p.name for p in error_files.iterdir())
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_one_line_error(captured.err, needle)
    # Nothing was written: no OUTPUT, no model, no temporary file.
    assert sorted(p.name for p in error_files.iterdir()) == before


def test_failure_while_writing_leaves_no_output(tmp_path, monkeypatch, capsys):
    """The transform pass fails in its third chunk, after two were written."""
    frame = pd.DataFrame({"a": np.arange(300.0), "b": np.ones(300)})
    sio.dump(BatchNormScaler().fit(frame), tmp_path / "ab.skops")
    frame.loc[250, "b"] = -np.inf
    frame.to_csv(tmp_path / "in.csv", index=False)
    monkeypatch.chdir(tmp_path)
    for output in ["out.csv", "out.parquet"]:
        argv = ["scale", "in.csv", output, "--load", "ab.skops", "--chunksize", "100"]
        assert main(argv) == 1
        _assert_one_line_error(capsys.readouterr().err, "column 'b' holds an infinite value")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ab.skops", "in.csv"]


@pytest.mark.parametrize(
    "module, argv, package",
    [
        ("pyarrow", ["scale", "in.csv", "out.csv"], "'pyarrow'"),
        ("tqdm", ["scale", "in.csv", "out.csv"], "'tqdm'"),
        ("polars", ["scale", "in.csv", "out.csv"], "'polars'"),
        ("skops.io", ["scale", "in.csv", "out.csv", "--save", "m.skops"], "'skops'"),
    ],
)
def test_missing_extra_names_it(tmp_path, monkeypatch, capsys, module, argv, package):
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "in.csv", index=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    # The progress bar is wanted only on a terminal: pretend stderr is one.
    monkeypatch.setattr("skbn.cli._stderr_is_terminal", lambda: True)
    assert main(argv) == 1
    err = capsys.readouterr().err
    _assert_one_line_error(err, package)
    assert 'pip install "skbn[cli]"' in err
    assert not (tmp_path / "out.csv").exists()


def test_scale_file_python_api(tmp_path):
    """``scale_file`` is what ``skbn scale`` runs; it returns what it did."""
    from skbn.io import scale_file

    frame = pd.DataFrame({"a": np.arange(10.0), "s": list("abcdefghij")})
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = scale_file(
        tmp_path / "in.csv",
        tmp_path / "out.parquet",
        chunksize=4,
        scaler=BatchNormScaler(momentum=None),
    )
    assert result.columns == ("a",) and result.n_rows == 10 and result.n_batches == 3
    expected = _reference(frame[["a"]].to_numpy(), chunk=4, momentum=None)[1]
    out = pq.read_table(tmp_path / "out.parquet")
    assert_allclose(_arrow_numbers(out, ["a"]), expected, rtol=RTOL)
    assert out.column("s").to_pylist() == list("abcdefghij")
    # A CSV as pyarrow writes it reads back to the same numbers.
    buffer = io.BytesIO()
    pacsv.write_csv(out, buffer)
    again = pacsv.read_csv(io.BytesIO(buffer.getvalue()))
    assert_array_equal(_arrow_numbers(again, ["a"]), _arrow_numbers(out, ["a"]))


# -- streams, signals, limits and imports (child processes) ----------------------------

# A child whose text pieces are 4 KiB, so that a few KiB on a pipe is a whole piece.
_SMALL_PIECES = (
    "import sys, skbn.io._text as t; t.PIECE_BYTES = 4096; "
    "from skbn.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _csv_text(n_rows: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": np.arange(n_rows), "x": rng.normal(5.0, 2.0, n_rows)})
    return frame.to_csv(index=False).encode()


def _leftovers(*folders) -> list:
    return [p.name for folder in folders for p in folder.iterdir() if "skbn" in p.name]


def test_stdin_to_stdout(tmp_path):
    data = _csv_text(3000)
    child = subprocess.run(
        [sys.executable, "-m", "skbn", "scale", "-", "-", "--output-format", "parquet"],
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    out = pq.read_table(io.BytesIO(child.stdout))
    source = pd.read_csv(io.BytesIO(data))
    from sklearn.preprocessing import StandardScaler

    expected = StandardScaler().fit_transform(source.to_numpy(dtype=float))
    assert_allclose(_arrow_numbers(out, ["id", "x"]), expected, rtol=1e-12, atol=1e-12)


def _start_blocked(tmp_path, args: list[str], data: bytes) -> subprocess.Popen:
    """A child reading stdin that has been sent ``data`` but not its end."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(scratch)}
    env.pop("SKBN_DEBUG", None)
    child = subprocess.Popen(
        [sys.executable, "-c", _SMALL_PIECES, "scale", "-", *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdin.write(data)
    child.stdin.flush()
    return child


def _wait_for(predicate, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the child did not get there in time"
        time.sleep(0.05)


def _written(folder, pattern: str) -> bool:
    return any(p.stat().st_size > 0 for p in folder.glob(pattern))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("stage", ["pass 1", "pass 2"])
def test_signal_leaves_nothing(tmp_path, signum, stage):
    """Stopped mid-run: no OUTPUT, no temporary file anywhere, one line, 128 + signal."""
    data = _csv_text(20_000)
    if stage == "pass 2":  # one pass with --load: OUTPUT's temporary file has data
        frame = pd.read_csv(io.BytesIO(data))
        sio.dump(BatchNormScaler().fit(frame), tmp_path / "m.skops")
        child = _start_blocked(tmp_path, ["out.csv", "--load", "m.skops"], data[:60_000])
        _wait_for(lambda: _written(tmp_path, ".out.csv.*.skbn-tmp"))
    else:  # pass 1: the cache in TMPDIR has data
        child = _start_blocked(tmp_path, ["out.csv"], data[:60_000])
        _wait_for(lambda: _written(tmp_path / "scratch", "skbn-*/skbn-cache-*"))
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signum, err
    _assert_one_line_error(err.decode(), "nothing was written")
    assert not (tmp_path / "out.csv").exists()
    assert _leftovers(tmp_path, tmp_path / "scratch") == []


@pytest.mark.parametrize("route", ["page cache", "direct"])
def test_file_size_limit_leaves_nothing(direct_tmp_path, route):
    """``ulimit -f``: the write fails with EFBIG, reported, and nothing is
    left; also where OUTPUT is written with O_DIRECT past its first 4 KiB
    (RELEASE_BYTES and the direct writer's stage made small, so that the
    limit is met by a direct write in the writing thread)."""
    tmp_path = direct_tmp_path
    (tmp_path / "in.csv").write_bytes(_csv_text(20_000))

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    program = ["-m", "skbn"]
    if route == "direct":
        program = ["-c", _EARLY_DIRECT]
    child = subprocess.run(
        [sys.executable, *program, "scale", "in.csv", "out.csv"],
        cwd=tmp_path,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 1
    _assert_one_line_error(child.stderr, "cannot write 'out.csv': File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# The program, writing OUTPUT with O_DIRECT from its first 4 KiB on, 16 KiB
# at a time (and failing if it cannot).
_EARLY_DIRECT = """
import sys
import skbn.io._direct as direct, skbn.io._formats as formats
formats.RELEASE_BYTES = 4096
direct.STAGE_BYTES = 16384
open_direct = formats.DirectWriter.open
def checked(*args):
    writer = open_direct(*args)
    assert writer is not None
    return writer
formats.DirectWriter.open = checked
from skbn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_disk_full_on_stdout(tmp_path):
    (tmp_path / "in.csv").write_bytes(_csv_text(2000))
    with open("/dev/full", "wb") as full:
        child = subprocess.run(
            [sys.executable, "-m", "skbn", "scale", "in.csv", "-"],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert child.returncode == 1
    _assert_one_line_error(child.stderr, "cannot write stdout: No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


_IMPORTED = (
    "import sys; from skbn.cli import main; status = main(sys.argv[1:]); "
    "heavy = ['sklearn', 'pandas', 'scipy.stats', 'skops', 'torch', 'keras']; "
    "print(status, sorted(m for m in heavy if m in sys.modules))"
)


@pytest.mark.parametrize(
    "argv",
    [["scale", "in.csv", "out.parquet"], ["scale", "in.csv", "out.csv", "--exclude", "id"]],
)
def test_scale_imports_neither_sklearn_nor_pandas(tmp_path, argv):
    (tmp_path / "in.csv").write_bytes(_csv_text(500))
    child = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.stdout.split() == ["0", "[]"], child.stderr


def test_inspect_reads_the_archive_itself(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [3.0, 5.0, 9.0]})
    scaler = BatchNormScaler(momentum=None).fit(frame)
    sio.dump(scaler, tmp_path / "m.skops")
    child = subprocess.run(
        [sys.executable, "-c", _IMPORTED, "inspect", "m.skops"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    *table, last = child.stdout.strip().splitlines()
    assert last == "0 []"
    rows = {line.split()[0]: line.split() for line in table if line.strip()}
    for j, name in enumerate(["a", "b"]):
        assert_allclose(float(rows[name][1]), scaler.moving_mean_[j], rtol=1e-9)
        assert_allclose(float(rows[name][2]), scaler.moving_var_[j], rtol=1e-9)


# -- the documented examples ------------------------------------------------------------

CLI_DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def _doc_blocks(language: str) -> list[str]:
    with open(os.path.join(CLI_DOCS, "cli.md")) as page:
        return re.findall(rf"```{language}\n(.*?)```", page.read(), re.DOTALL)


def _scale_options() -> set:
    from skbn.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    return {
        option
        for action in commands["scale"]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def test_documented_examples_run(tmp_path):
    """Every ``skbn`` line of docs/cli.md's bash blocks runs, after its setup block."""
    (setup,) = _doc_blocks("python")
    lines = [line for block in _doc_blocks("bash") for line in block.splitlines()]
    lines = [line for line in lines if line.startswith("skbn ")]
    shown = set(re.findall(r"--[a-z-]+", " ".join(lines)))
    assert _scale_options() <= shown, _scale_options() - shown
    subprocess.run([sys.executable, "-c", setup], cwd=tmp_path, check=True, timeout=120)
    python = shlex.quote(sys.executable)
    script = "\n".join([f'skbn() {{ {python} -m skbn "$@"; }}', "set -e", *lines])
    child = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    assert "skbn BatchNormScaler" in child.stdout
    restored = pd.read_csv(tmp_path / "restored.csv")
    original = pd.read_csv(tmp_path / "data.csv")
    assert_allclose(_numbers(restored, ["age", "income"]), _numbers(original, ["age", "income"]),
                    rtol=1e-9)  # fmt: skip


# Pass 2 in polars' streaming engine, slowed down: every piece polars maps
# waits 50 ms, and the first one leaves a mark that pass 2 has begun.  The
# cache is in memory (polars reads it from Python) or in files (polars reads
# them itself), as the first argument says.
_SLOW_SINK = """
import sys, time
import skbn.io._engine as engine, skbn.io._formats as formats
engine.MEMORY_CACHE_BYTES = 1 << 40 if sys.argv.pop(1) == "memory" else 0
engine._SINK_ROWS = 100
def slow(frame):
    open("pass2-started", "w").close()
    time.sleep(0.05)
    return frame
original = formats.Sink.sink
def sink(self, frame):
    return original(self, frame.map_batches(slow, streamable=True))
formats.Sink.sink = sink
from skbn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _signal_in_pass_two(tmp_path, script: str, cache: str, signum: int, output: str) -> None:
    """Run ``script`` (a slowed pass 2), signal it once pass 2 has begun:
    it stops at once, with no OUTPUT, no temporary file, one line, 128 + signal."""
    (tmp_path / "in.csv").write_bytes(_csv_text(200_000))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    command = [sys.executable, "-c", script, cache, "scale", "in.csv", output]
    child = subprocess.Popen(
        [*command, "--no-progress"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_for(lambda: (tmp_path / "pass2-started").exists() or child.poll() is not None)
    assert child.poll() is None, child.communicate()[1]
    started = time.monotonic()
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    assert time.monotonic() - started < 5  # not after the whole pass
    assert child.returncode == 128 + signum, err
    _assert_one_line_error(err.decode(), "nothing was written")
    assert not (tmp_path / output).exists()
    assert _leftovers(tmp_path, scratch) == []


@pytest.mark.parametrize("cache", ["memory", "files"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_sink_pass_leaves_nothing(tmp_path, signum, cache):
    """A signal while polars writes OUTPUT (in a worker thread); Parquet, as
    a CSV output is written by the compiled writer (the next test)."""
    _signal_in_pass_two(tmp_path, _SLOW_SINK, cache, signum, "out.parquet")


# Pass 2 by the compiled CSV writer, slowed down: every record batch waits
# 50 ms in a formatting thread; a mark is left once the first KiB is written
# and the rest is written with O_DIRECT.
_SLOW_COMPILED = """
import sys, time
import skbn.io._csvout as csvout, skbn.io._engine as engine, skbn.io._stream as stream
import skbn.io._formats as formats
engine.MEMORY_CACHE_BYTES = 1 << 40 if sys.argv.pop(1) == "memory" else 0
stream.BATCH_ROWS = 100
formats.RELEASE_BYTES = 1024  # O_DIRECT once 1 KiB is written
format_rows, open_direct = csvout._csvwrite.format_rows, formats.DirectWriter.open
class Slow:
    @staticmethod
    def format_rows(*args):
        time.sleep(0.05)
        return format_rows(*args)
def marked(*args):
    writer = open_direct(*args)
    assert writer is not None
    open("pass2-started", "w").close()
    return writer
formats.DirectWriter.open = marked
csvout._csvwrite = Slow
from skbn.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("cache", ["memory", "files"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_the_compiled_pass_leaves_nothing(direct_tmp_path, signum, cache):
    """A signal while the compiled writer's threads format OUTPUT."""
    _signal_in_pass_two(direct_tmp_path, _SLOW_COMPILED, cache, signum, "out.csv")


def test_a_run_after_an_abandoned_worker_returns(monkeypatch):
    """A worker left running by an interrupted run (in a notebook, say) does
    not make a later main() end the process."""
    import skbn.io._stream as stream

    monkeypatch.setattr(stream, "_ABANDONED", ["skbn-prefetch"])
    assert main(["--version"]) == 0
    assert not stream.reader_blocked()


def test_program_with_stdout_closed(tmp_path):
    (tmp_path / "in.csv").write_bytes(_csv_text(100))
    child = subprocess.run(
        f"{sys.executable} -m skbn scale in.csv out.csv >&-", shell=True, cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert "Traceback" not in child.stderr
    assert pd.read_csv(tmp_path / "out.csv").shape == (100, 2)
