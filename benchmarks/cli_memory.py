#!/usr/bin/env python
"""Peak memory and time of ``skbn scale`` on a CSV file of 1 GB or more.

Run from the repository root (needs the ``cli`` extra)::

    python benchmarks/cli_memory.py                 # 1 GiB CSV -> CSV
    python benchmarks/cli_memory.py --to parquet    # 1 GiB CSV -> Parquet
    python benchmarks/cli_memory.py --size-gb 2 --chunksize 100000

Method
------
* A CSV file of at least ``--size-gb`` GiB is written to a temporary
  directory (``--dir`` to choose where; removed at the end unless ``--keep``):
  an integer id, 8 float64 columns of normal noise with assorted offsets and
  scales, a few of them with missing values, and a string column, all
  written by pyarrow in slices of 200,000 rows.
* ``python -m skbn scale INPUT OUTPUT --no-progress`` runs as a child
  process, with the command's defaults (exact pooled statistics) and
  ``--chunksize`` (default: the command's default): it parses the file once,
  keeps the parsed batches in an Arrow IPC file in the temporary directory,
  and reads them back for the transform pass.
* Its peak resident memory is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``
  read after it exited: the largest resident set of the (only) child,
  measured by the kernel, so no sampling can miss a short peak.  The time is
  the child's wall time from start to exit (Python start-up included).

The script prints the figures and whether the peak stays under the 400 MB
(400 * 2**20 bytes) target; it exits with status 1 when the run fails or
misses the target.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

TARGET_BYTES = 400 * 2**20
SLICE_ROWS = 200_000


def write_csv(path: str, size_bytes: int, seed: int = 0) -> int:
    """Write a CSV of at least ``size_bytes`` bytes; return its number of rows."""
    rng = np.random.default_rng(seed)
    offsets = np.array([0.0, 10.0, -3.5, 1e3, 0.0, 1e6, 42.0, -1e-3])
    scales = np.array([1.0, 2.0, 0.5, 100.0, 1e-3, 1e4, 7.0, 1e-4])
    rows = 0
    with pacsv.CSVWriter(path, _schema()) as writer:
        while os.path.getsize(path) < size_bytes:
            n = SLICE_ROWS
            values = rng.standard_normal((n, 8)) * scales + offsets
            columns = {"id": pa.array(np.arange(rows, rows + n))}
            for j in range(8):
                mask = rng.random(n) < 0.01 if j in (1, 5) else None
                columns[f"x{j}"] = pa.array(values[:, j], mask=mask)
            columns["label"] = pa.array(np.char.add("item-", (np.arange(n) % 997).astype(str)))
            writer.write_table(pa.table(columns, schema=_schema()))
            rows += n
    return rows


def _schema() -> pa.Schema:
    fields = [pa.field("id", pa.int64())]
    fields += [pa.field(f"x{j}", pa.float64()) for j in range(8)]
    fields.append(pa.field("label", pa.string()))
    return pa.schema(fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="CSV size in GiB (>= 1)")
    parser.add_argument("--chunksize", type=int, default=None, help="rows per chunk")
    parser.add_argument("--to", choices=["csv", "parquet"], default="csv", help="output format")
    parser.add_argument("--dir", default=None, help="directory for the temporary files")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="skbn-cli-memory-", dir=args.dir)
    try:
        source = os.path.join(workdir, "input.csv")
        target = os.path.join(workdir, f"output.{args.to}")
        started = time.perf_counter()
        n_rows = write_csv(source, int(args.size_gb * 2**30))
        size = os.path.getsize(source)
        print(
            f"input: {size / 2**30:.2f} GiB ({size:,} bytes), {n_rows:,} rows x 10 columns "
            f"(id, x0..x7 float64, label string); written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from file_engine import compile_skbn

        compile_skbn(sys.executable)  # as an installed package is
        command = [sys.executable, "-m", "skbn", "scale", source, target, "--no-progress"]
        if args.chunksize is not None:
            command += ["--chunksize", str(args.chunksize)]
        print("running:", " ".join(["python", *command[1:]]))
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        # ru_maxrss is in KiB on Linux and in bytes on macOS.
        peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        if completed.returncode != 0:
            print(f"skbn scale failed ({completed.returncode}): {completed.stderr.strip()}")
            return 1
        out_size = os.path.getsize(target)
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, pyarrow {pa.__version__}"
        )
        print(f"output: {args.to}, {out_size / 2**30:.2f} GiB")
        print(
            f"time: {seconds:.1f} s wall ({size / 2**20 / seconds:.1f} MiB/s of input, "
            f"two passes), {usage.ru_utime + usage.ru_stime:.1f} s CPU"
        )
        print(f"peak RSS: {peak / 2**20:.1f} MiB")
        ok = peak < TARGET_BYTES
        print(f"peak RSS < 400 MiB: {'yes' if ok else 'NO'}")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
