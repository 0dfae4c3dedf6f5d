#!/usr/bin/env python
"""``skbn scale`` against polars by hand, on the same file, on this machine.

Run from the repository root (needs the ``cli`` extra and polars)::

    python benchmarks/file_engine.py                  # 1.5M rows, 3 rounds
    python benchmarks/file_engine.py --rows 300000 --rounds 1

Method
------
* A CSV file is written to a temporary directory: ``--rows`` rows of an
  integer ``id``, 12 float columns (8 of them with 6 significant digits, 4 with
  17; two with 1% missing values; offsets from -3.5 to 1e6) and a text
  column, written by pyarrow (about 250 MB for 1.5M rows).
* skbn's modules are compiled to bytecode first (``compileall``), as pip
  compiles an installed package: an editable install run with
  ``PYTHONDONTWRITEBYTECODE=1`` (as on the machine of docs/performance.md)
  would otherwise compile them from source in every run, about 26 ms.
* Each contender runs as a child process, start-up included, and its peak
  resident memory is read from the kernel (``RUSAGE_CHILDREN``'s maxrss of a
  fresh child, through ``os.wait4``):

  - **polars by hand**: ``pl.scan_csv`` -> mean and ``std(ddof=0)`` of every
    numeric column (one ``collect``) -> ``(x - mean) / std`` ->
    ``sink_parquet``/``sink_csv``: the five lines a user writes;
  - **skbn**: ``python -m skbn scale INPUT OUTPUT --no-progress``, the
    default exact pooled statistics.

  Both scale the same columns with the exact statistics of the whole file.
* The contenders alternate within each round (so a change in the machine's
  load hits both), ``--rounds`` times, each writing a file of its own: from
  the second round on, each replaces its own output of the round before
  (polars truncates it, skbn renames over it), as when a user runs the same
  command again; the table shows the median time of each
  and the ratio of the medians, and the largest peak RSS.
* ``skbn inspect`` of a model saved by the run is timed against
  ``python -c "import sklearn"`` the same way.

The machine's load average (``os.getloadavg``) is printed before and after:
the figures mean little on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

POLARS_BY_HAND = """
import sys
import polars as pl
source, target = sys.argv[1], sys.argv[2]
frame = pl.scan_csv(source)
numeric = [name for name, kind in frame.collect_schema().items() if kind.is_numeric()]
stats = frame.select(
    [pl.col(numeric).mean().name.suffix("_mean"), pl.col(numeric).std(ddof=0).name.suffix("_std")]
).collect()
scaled = frame.with_columns(
    [(pl.col(c) - stats[c + "_mean"][0]) / stats[c + "_std"][0] for c in numeric]
)
if target.endswith(".csv"):
    scaled.sink_csv(target)
else:
    scaled.sink_parquet(target)
"""


def write_csv(path: str, n_rows: int, seed: int = 0) -> None:
    """The benchmark's CSV file (see the module's docstring)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    offsets = [0, 10, -3.5, 1e3, 0, 1e6, 42, -1e-3, 5, 7, 100, 0.5]
    scales = [1, 2, 0.5, 100, 1e-3, 1e4, 7, 1e-4, 3, 1, 20, 0.1]
    columns = {"id": pa.array(np.arange(n_rows))}
    for j in range(12):
        values = rng.standard_normal(n_rows) * scales[j] + offsets[j]
        if j < 8:  # 6 significant digits
            digits = 5 - np.floor(np.log10(np.abs(values)))
            values = np.rint(values * 10.0**digits) / 10.0**digits
        mask = rng.random(n_rows) < 0.01 if j in (1, 5) else None
        columns[f"x{j}"] = pa.array(values, mask=mask)
    labels = np.char.add("item-", (np.arange(n_rows) % 997).astype(str))
    columns["label"] = pa.array(labels)
    pacsv.write_csv(pa.table(columns), path)


def compile_skbn(python: str) -> None:
    """Compile skbn's modules to bytecode, as pip does when it installs them."""
    code = "import os, skbn; print(os.path.dirname(skbn.__file__))"
    package = subprocess.check_output([python, "-c", code], text=True).strip()
    subprocess.run([python, "-m", "compileall", "-q", package], check=True)


def run(command: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of a child process; it must succeed."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {error}")
    return seconds, usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def compare(name: str, commands: dict, rounds: int) -> list[str]:
    """Alternate the commands ``rounds`` times; one table row per command."""
    times: dict = {label: [] for label in commands}
    peaks: dict = {label: 0 for label in commands}
    for _ in range(rounds):
        for label, command in commands.items():
            seconds, peak = run(command)
            times[label].append(seconds)
            peaks[label] = max(peaks[label], peak)
    medians = {label: statistics.median(values) for label, values in times.items()}
    first = next(iter(medians.values()))
    return [
        f"| {name} | {label} | {medians[label]:.2f} | {medians[label] / first:.2f}x | "
        f"{peaks[label] / 2**20:.0f} |"
        for label in commands
    ]


def versions(python: str) -> str:
    code = "import pyarrow, polars; print(pyarrow.__version__, polars.__version__)"
    pyarrow, polars = subprocess.check_output([python, "-c", code], text=True).split()
    return f"pyarrow {pyarrow}, polars {polars}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_500_000, help="rows of the CSV file")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender")
    parser.add_argument("--dir", default=None, help="directory for the temporary files")
    args = parser.parse_args(argv)
    python = sys.executable
    workdir = tempfile.mkdtemp(prefix="skbn-file-engine-", dir=args.dir)
    try:
        source = os.path.join(workdir, "input.csv")
        # In a child: a child forked from a large parent would count its pages.
        code = f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
        code += f"from file_engine import write_csv; write_csv({source!r}, {args.rows})"
        subprocess.run([python, "-c", code], check=True)
        print(f"input: {args.rows:,} rows, {os.path.getsize(source) / 2**20:.0f} MiB of CSV")
        compile_skbn(python)
        print(f"load average before: {os.getloadavg()}")
        rows = [
            "| run | contender | seconds (median) | ratio | peak RSS (MiB) |",
            "|---|---|---|---|---|",
        ]
        for suffix in ("parquet", "csv"):
            # Each contender replaces its own output of the round before, as a
            # user running one of them again would.
            polars_out, skbn_out = (os.path.join(workdir, f"{who}.{suffix}") for who in "ps")
            commands = {
                "polars by hand": [python, "-c", POLARS_BY_HAND, source, polars_out],
                "skbn scale": [python, "-m", "skbn", "scale", source, skbn_out, "--no-progress"],
            }
            rows += compare(f"CSV -> {suffix}", commands, args.rounds)
        model = os.path.join(workdir, "model.skops")
        subprocess.run(
            [python, "-m", "skbn", "scale", source, os.path.join(workdir, "m.parquet"),
             "--save", model, "--no-progress"],
            check=True,
        )  # fmt: skip
        commands = {
            "python -c 'import sklearn'": [python, "-c", "import sklearn"],
            "skbn inspect": [python, "-m", "skbn", "inspect", model],
        }
        rows += compare("inspect", commands, args.rounds)
        print(f"load average after: {os.getloadavg()}")
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, {versions(python)}"
        )
        print("\n".join(rows))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
