"""The ``skbn`` command line: ``skbn scale``, ``skbn inspect`` and ``skbn demo``.

Run it as ``skbn ...`` (the console script installed with the package) or as
``python -m skbn ...``.  This module parses arguments and prints messages;
the work is done by :mod:`skbn.io` (files) and :mod:`skbn._demo`.  The
command line's dependencies (pyarrow and polars to read and write files,
tqdm for the progress bar, skops for ``--save`` and ``--load``) come with the
``cli`` extra, ``pip install "skbn[cli]"``, and are imported only by the
commands that use them: ``skbn scale`` with the default pooled statistics
imports neither scikit-learn nor pandas, and ``skbn inspect`` reads the
model file with NumPy and the standard library only.

Every error ends the run with one line on stderr, ``skbn: error: ...``, and a
nonzero exit status (2 for a bad command line, 1 otherwise, 128 + the signal
number when a signal stopped it); set the environment variable
``SKBN_DEBUG=1`` to see the traceback of an unexpected error instead.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .io import (
    DEFAULT_CHUNKSIZE,
    INFER_ROWS,
    TRUSTED_TYPE,
    FileError,
    Interrupted,
    load_scaler,
    read_model,
    save_scaler,
    scale_file,
    signals_as_exceptions,
)
from .io._errors import one_line
from .io._stream import forget_abandoned, reader_blocked

__all__ = [
    "CLIError",
    "TRUSTED_TYPE",
    "build_parser",
    "load_scaler",
    "main",
    "run",
    "save_scaler",
]

#: The error the command reports as one line (the file engine's error type).
CLIError = FileError


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- skbn scale ---------------------------------------------------------------------


def _fit_options(args: argparse.Namespace) -> dict:
    """The scaler's parameters given on the command line, in option order."""
    given = {
        "momentum": args.momentum is not _UNSET,
        "epsilon": args.epsilon is not None,
        "unbiased": args.unbiased,
        "init": args.init is not None,
    }
    return {name: getattr(args, name) for name, on in given.items() if on}


def _tune_process() -> None:
    """Settings of this process (the command's own) for ``skbn scale``.

    - pyarrow on the C library's allocator: pyarrow's default pool (mimalloc)
      hands freed blocks back to the system and faults them in again batch
      after batch; glibc's malloc reuses them.  Measured on ``skbn scale`` of
      a 237 MiB CSV: 10% less CPU time, 20 MiB less peak memory.
    - In the program (:func:`run`, not a :func:`main` called from Python):
      polars and pyarrow imported first, then every object so far (about a
      million, alive until the process ends) frozen out of the cycle
      collector's way (``gc.freeze``): its full collections walked them all,
      5% of the CPU time of pass 1 (measured with ``perf``).
    """
    with contextlib.suppress(ImportError):
        import polars  # noqa: F401
        import pyarrow

        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    if _PROGRAM:
        gc.freeze()


#: Whether this process is the ``skbn`` program (set by :func:`run`).
_PROGRAM = False


def _cmd_scale(args: argparse.Namespace) -> int:
    params = _fit_options(args)
    if args.load is not None and params:
        raise CLIError(
            f"{', '.join('--' + name for name in params)} cannot be combined with "
            "--load: the loaded scaler keeps the parameters it was fitted with",
            status=2,
        )
    if args.inverse and args.load is None:
        raise CLIError("--inverse needs --load MODEL.skops: the scaler to undo", status=2)
    progress = not args.no_progress and _stderr_is_terminal()
    _tune_process()
    result = scale_file(
        args.input,
        args.output,
        chunksize=args.chunksize,
        **params,
        columns=args.columns,
        exclude=args.exclude,
        dtypes=dict(args.dtype or []),
        input_format=args.input_format,
        output_format=args.output_format,
        delimiter=args.delimiter,
        float_precision=args.float_precision,
        save=args.save,
        load=args.load,
        inverse=args.inverse,
        progress=progress,
    )
    if progress:
        how = f"fitted on {result.n_batches} batches" if args.load is None else "loaded scaler"
        where = "stdout" if args.output == "-" else args.output
        print(
            f"skbn: scaled {len(result.columns)} column(s) of {result.n_rows:,} rows "
            f"({how}) into {where} in {result.seconds:.1f} s",
            file=sys.stderr,
        )
    return 0


# -- skbn inspect -------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float) or type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        return f"{value:.10g}"
    if hasattr(value, "shape"):
        return f"array of shape {value.shape}"
    return repr(value) if isinstance(value, str) else str(value)


_STAT_COLUMNS = ("moving_mean_", "moving_var_", "gamma_", "beta_", "n_samples_seen_")


def _cmd_inspect(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    out = [f"{args.model}: skbn BatchNormScaler", "", "Parameters"]
    out += [f"  {name:<10} {_fmt(value)}" for name, value in model.params.items()]
    out += ["", "Fitted", f"  features   {len(model.feature_names)}"]
    for name in ("n_batches_seen_", "n_samples_seen_"):
        if name in model.fitted:
            out.append(f"  {name.split('_')[1]:<10} {_fmt(model.fitted[name])}")
    if "n_samples_seen_" in model.arrays:
        out.append("  samples    per feature, see below")
    shown = [name for name in _STAT_COLUMNS if name in model.arrays]
    header = ["feature", *(name.rstrip("_") for name in shown)]
    header = [h.replace("n_samples_seen", "samples") for h in header]
    rows = [
        [feature, *(_fmt(model.arrays[name][j]) for name in shown)]
        for j, feature in enumerate(model.feature_names)
    ]
    from ._table import table

    out += ["", "Per-feature statistics", *("  " + line for line in table(header, rows))]
    print("\n".join(out))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(args.dataset, args.chunksize)


# -- the parser -----------------------------------------------------------------------


class _UnsetType:
    def __repr__(self) -> str:
        return "pooled"


_UNSET: Any = _UnsetType()


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``skbn: error: ...``."""

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')", status=2)


def _momentum(text: str) -> float | str | None:
    word = text.strip().lower()
    if word in ("none", "pooled"):
        return None if word == "none" else "pooled"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"must be 'pooled', 'none' or a number in [0, 1), got {text!r}"
        )
    return value


def _epsilon(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _int_in(low: int, high: float = math.inf):
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            bound = f">= {low}" if high == math.inf else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be a whole number {bound}, got {text!r}")
        return value

    return parse


def _column_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise argparse.ArgumentTypeError(f"must be column names separated by commas, got {text!r}")
    dupes = sorted({name for name in names if names.count(name) > 1})
    if dupes:
        raise argparse.ArgumentTypeError(f"names a column twice: {', '.join(dupes)}")
    return names


def _dtype(text: str) -> tuple[str, str]:
    name, sep, kind = text.rpartition("=")
    if not sep or not name.strip() or not kind.strip():
        raise argparse.ArgumentTypeError(f"must be COLUMN=TYPE, got {text!r}")
    return name.strip(), kind.strip()


def _delimiter(text: str) -> str:
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    return named.get(text.lower(), text)


_SCALE_DESCRIPTION = f"""\
Scale the numeric columns of INPUT into OUTPUT.  Pass 1 reads INPUT in chunks
of --chunksize rows and computes each chunk's moments; pass 2 scales each
batch and writes it, so memory does not grow with the file.  A text INPUT is
parsed once: pass 2 reads the batches pass 1 kept.  Every numeric column is
scaled (integer columns such as an id too; --exclude passes them through);
other columns pass through unchanged, in their places, and missing values stay
missing.  Column types are inferred from the first {INFER_ROWS:,} rows of a text
file (at most its first 8 MiB); --dtype overrides them.  Formats follow the
suffixes (.csv .tsv .parquet .pq .feather .arrow .ipc .ndjson .jsonl; text
may end in .gz .bz2 .zst .lz4 .br) or --input-format/--output-format; '-' is
stdin or stdout (CSV unless a format is given).  OUTPUT appears, by one atomic
rename, only when the run succeeds.
"""

_SCALE_EPILOG = """\
which --momentum:
  pooled (default)  the exact mean and variance of the whole file, what
                    StandardScaler gives on the loaded file (epsilon 0):
                    for a file or a table whose rows come in no order
  none              each chunk one mini-batch, the chunks' statistics averaged
  M in [0, 1)       an exponential moving average over the chunks, favouring
                    the end of the file: for a drifting stream, or to match a
                    network's batch normalization (Keras momentum, M=0.99)

examples:
  skbn scale data.csv scaled.parquet
  skbn scale data.csv scaled.csv --exclude id --float-precision 7
  skbn scale data.parquet scaled.csv --momentum 0.99 --save scaler.skops
  skbn scale new.csv new_scaled.csv --load scaler.skops
  skbn scale new_scaled.csv restored.csv --load scaler.skops --inverse
  gzip -dc data.csv.gz | skbn scale - - --output-format ndjson > scaled.ndjson
"""


def _add_scale(commands) -> None:
    scale = commands.add_parser(
        "scale",
        help="scale the numeric columns of a file (CSV, Parquet, Arrow, NDJSON), streaming it",
        description=_SCALE_DESCRIPTION,
        epilog=_SCALE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = scale.add_argument
    add("input", metavar="INPUT", help="file to read, or '-' for stdin")
    add("output", metavar="OUTPUT", help="file to write, or '-' for stdout")
    add(
        "--chunksize",
        type=_int_in(1),
        default=DEFAULT_CHUNKSIZE,
        metavar="ROWS",
        help=f"rows per chunk, i.e. per mini-batch (default: {DEFAULT_CHUNKSIZE})",
    )
    add(
        "--momentum",
        type=_momentum,
        default=_UNSET,
        metavar="pooled|none|M",
        help="how the chunks' statistics are combined (default: pooled; see below)",
    )
    add(
        "--epsilon",
        type=_epsilon,
        default=None,
        metavar="E",
        help="added to the variance, >= 0 (default: 0 when pooled, else 0.001)",
    )
    add(
        "--unbiased",
        action="store_true",
        help="Bessel's correction: n/(n-1) of the file when pooled, of each chunk otherwise",
    )
    add(
        "--init",
        choices=["debiased", "keras"],
        default=None,
        help="how a moving average starts (default: debiased)",
    )
    scale.set_defaults(func=_cmd_scale)
    _add_file_options(add)


def _add_file_options(add) -> None:
    """The options of ``skbn scale`` that choose columns, formats and files."""
    add(
        "--columns",
        type=_column_list,
        default=None,
        metavar="A,B,...",
        help="scale only these columns (default: every numeric column)",
    )
    add(
        "--exclude",
        type=_column_list,
        default=None,
        metavar="A,B,...",
        help="pass these columns through unchanged (e.g. an integer id)",
    )
    add(
        "--dtype",
        type=_dtype,
        action="append",
        metavar="COL=TYPE",
        help="read COL as TYPE: str, int, float or an Arrow type name such as float32, "
        "int64, string (repeatable)",
    )
    add(
        "--input-format",
        default=None,
        metavar="FMT",
        help="INPUT's format, instead of its suffix: csv, tsv, parquet, ipc, ndjson, ... "
        "(e.g. csv.gz)",
    )
    add("--output-format", default=None, metavar="FMT", help="OUTPUT's format, likewise")
    add(
        "--delimiter",
        type=_delimiter,
        default=None,
        metavar="CHAR",
        help="CSV field delimiter, for INPUT and a CSV OUTPUT (e.g. ';', tab)",
    )
    add(
        "--float-precision",
        type=_int_in(1, 17),
        default=None,
        metavar="N",
        help="significant digits of the scaled columns in a text OUTPUT "
        "(default: the shortest text that reads back to the same number)",
    )
    add("--save", metavar="MODEL.skops", help="write the fitted scaler to this skops file")
    add(
        "--load",
        metavar="MODEL.skops",
        help="transform with this saved scaler instead of fitting one (one pass)",
    )
    add("--inverse", action="store_true", help="with --load: undo the scaling (inverse_transform)")
    add(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only when stderr is a terminal)",
    )


def _add_others(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="stream a data set shipped with scikit-learn through the scaler and report",
        description=(
            "Stream a data set shipped with scikit-learn through BatchNormScaler.partial_fit "
            "in chunks, compare what it learned with StandardScaler's exact statistics, and "
            "compare their accuracy in a Pipeline with LogisticRegression. Needs no download."
        ),
    )
    demo.add_argument(
        "--dataset",
        choices=["digits", "breast_cancer", "wine", "iris"],
        default="digits",
        help="the data set (default: digits)",
    )
    demo.add_argument(
        "--chunksize", type=_int_in(1), default=64, metavar="ROWS",
        help="rows per mini-batch (default: 64)",
    )  # fmt: skip
    demo.set_defaults(func=_cmd_demo)
    inspect = commands.add_parser(
        "inspect",
        help="print a saved scaler's parameters and per-feature statistics",
        description=(
            "Print the parameters of a scaler saved with 'skbn scale --save' (or "
            "skops.io.dump) and, per feature, its moving mean and variance, gamma and beta. "
            "The file is read as an archive (NumPy and the standard library): nothing in it "
            "is loaded or run, and neither skops nor scikit-learn is imported."
        ),
    )
    inspect.add_argument("model", metavar="MODEL.skops", help="the skops file")
    inspect.set_defaults(func=_cmd_inspect)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skbn`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _Parser(
        prog="skbn",
        description=(
            "Batch normalization's moving mean and variance as a scikit-learn "
            "transformer, from the command line."
        ),
        epilog="Run 'skbn COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"skbn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_scale(commands)
    _add_others(commands)
    return parser


def _error(message: str) -> None:
    print(f"skbn: error: {one_line(message)}", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that exiting does not fail flushing it."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skbn`` command line.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after the program name; default: ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when the command failed, 2 for a bad command line,
        128 + the signal number when SIGINT, SIGTERM or SIGHUP stopped it.
    """
    forget_abandoned()
    status = _run(build_parser(), argv)
    if reader_blocked():  # stopped while a reader thread waits on a pipe
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def run() -> None:
    """The program: ``skbn`` and ``python -m skbn``.

    :func:`main`, then, once stdout and stderr are flushed, the process ends
    with ``os._exit``: every file is closed and every temporary file removed
    by then, and Python's own shutdown (tearing down NumPy, pyarrow and
    polars) would add about 50 ms to every run, 5% of scaling the benchmark's
    237 MiB CSV.
    """
    global _PROGRAM
    _PROGRAM = True
    status = main()
    try:
        if sys.stdout is not None:  # None when the program runs with stdout closed
            sys.stdout.flush()
    except BrokenPipeError:  # the reader of stdout left (`| head`): not an error
        pass
    except OSError as exc:
        _error(f"cannot write stdout: {exc.strerror or exc}")
        status = status or 1
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
    os._exit(status)


def _run(parser: argparse.ArgumentParser, argv) -> int:
    try:
        with signals_as_exceptions():
            args = parser.parse_args(argv)
            return args.func(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except CLIError as exc:
        _error(str(exc))
        return exc.status
    except Interrupted as exc:
        _error(f"stopped by {exc}; nothing was written")
        return 128 + exc.signum
    except KeyboardInterrupt:
        _error("interrupted; nothing was written")
        return 130
    except BrokenPipeError:  # e.g. `skbn inspect m.skops | head`
        _quiet_stdout()
        return 1
    except Exception as exc:
        if os.environ.get("SKBN_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (set SKBN_DEBUG=1 to see the traceback)")
        return 1
