#!/usr/bin/env python
"""Fit ``BatchNormScaler`` on a multi-gigabyte dask array on a local cluster.

Run from the repository root (needs the ``dask`` and ``bench`` extras)::

    python benchmarks/dask_bench.py                # 4 GB, 2 worker processes
    python benchmarks/dask_bench.py --gigabytes 1  # a quicker run
    python benchmarks/dask_bench.py --markdown     # the report as a markdown table

What is measured
----------------
* **in memory**: ``partial_fit`` (one batch) of an in-memory NumPy array of
  the same width that fits comfortably in this process
  (``--in-memory-gigabytes``), with ``n_jobs=None`` (one thread) and
  ``n_jobs=-1``, and ``fit`` with ``batch_size``.
* **dask, persisted**: the dask array held in the workers' memory
  (``X.persist()``, not timed), then ``fit`` (one batch) and ``fit`` with
  ``batch_size`` (mini-batches that cross block boundaries).  These and the
  in-memory calls are timed interleaved (A B C D E A B C D E ...), so that a
  change of load on the machine hits both sides alike.
* **dask, generated**: ``fit`` of ``da.random.random((N, 50))``, never held in
  memory anywhere: each worker generates a block, reduces it to its moments
  (in the same task) and drops it.  The time includes generating the random
  numbers, so a plain reduction of the same array (``X.sum(axis=0)``) is
  timed too: the floor for anything that reads this array.
* **client memory**: the resident set size (``psutil``) of this process,
  sampled every 5 ms in a thread during each dask call; the figure is the
  peak above the size just before the call (the scheduler of the
  ``LocalCluster`` runs in this process too, so it is counted).

Throughput is bytes of float64 data / wall-clock seconds, best of
``--repeat`` calls.  The script always exits with status 0: it is a report;
its last lines say whether the targets (client growth < 300 MB for 4 GB,
throughput within 2x of in-memory ``partial_fit``) are met.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import threading
import time
from collections.abc import Callable

import numpy as np

MB = 1024**2
GB = 1e9  # throughput in decimal GB/s, sizes in GB


class PeakRSS:
    """Peak resident-set growth of this process while the ``with`` block runs."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self.peak_growth = 0

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.peak_growth = self._peak - self._start


def best_time(func: Callable[[], object], repeat: int) -> tuple[float, int]:
    """Best wall-clock time of ``repeat`` calls, and the largest client RSS growth."""
    times, growth = [], 0
    for _ in range(repeat):
        with PeakRSS() as rss:
            start = time.perf_counter()
            func()
            times.append(time.perf_counter() - start)
        growth = max(growth, rss.peak_growth)
    return min(times), growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gigabytes", type=float, default=4.0, help="size of the dask array")
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--chunk-megabytes", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--in-memory-gigabytes", type=float, default=0.8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    import dask
    import dask.array as da
    import distributed
    import psutil

    import skbn
    from skbn import BatchNormScaler

    load_before = os.getloadavg()[0]
    n_features = args.n_features
    row_bytes = 8 * n_features
    n_rows = int(args.gigabytes * GB) // row_bytes
    chunk_rows = int(args.chunk_megabytes * MB) // row_bytes
    nbytes = n_rows * row_bytes
    results: list[tuple[str, float, float, int | None]] = []  # name, GB, seconds, client growth

    m_rows = int(args.in_memory_gigabytes * GB) // row_bytes
    X_mem = np.random.default_rng(0).random((m_rows, n_features))
    m_bytes = X_mem.nbytes

    with (
        distributed.LocalCluster(
            n_workers=args.workers,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=0,  # the persisted array is given room; nothing spills
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        X = da.random.random((n_rows, n_features), chunks=(chunk_rows, n_features))
        BatchNormScaler().fit(X[: 2 * chunk_rows])  # warm up the workers (imports)

        # -- in memory and persisted, interleaved (A B C D A B C D ...) so that
        # a change of load on the machine hits both sides alike.
        Xp = X.persist()
        distributed.wait(Xp)
        bs = args.batch_size
        contenders = {
            "in memory: partial_fit (one batch), n_jobs=None": (
                m_bytes,
                lambda: BatchNormScaler().partial_fit(X_mem),
            ),
            "in memory: partial_fit (one batch), n_jobs=-1": (
                m_bytes,
                lambda: BatchNormScaler(n_jobs=-1).partial_fit(X_mem),
            ),
            f"in memory: fit, batch_size={bs:_}": (
                m_bytes,
                lambda: BatchNormScaler(batch_size=bs).fit(X_mem),
            ),
            "dask, persisted: fit (one batch)": (nbytes, lambda: BatchNormScaler().fit(Xp)),
            f"dask, persisted: fit, batch_size={bs:_}": (
                nbytes,
                lambda: BatchNormScaler(batch_size=bs).fit(Xp),
            ),
        }
        best: dict = {name: (np.inf, 0) for name in contenders}
        for _ in range(args.repeat):
            for name, (_, func) in contenders.items():
                t, g = best_time(func, 1)
                best[name] = (min(best[name][0], t), max(best[name][1], g))
        for name, (size, _) in contenders.items():
            growth = best[name][1] if name.startswith("dask") else None
            results.append((name, size / GB, best[name][0], growth))
        check = BatchNormScaler(batch_size=bs).fit(Xp)
        assert check.n_batches_seen_ == -(-n_rows // bs)
        Xp = None
        X_mem = None
        client.run(gc.collect)

        # -- generated on the fly: never held in memory anywhere.
        t, g = best_time(lambda: X.sum(axis=0).compute(), args.repeat)
        results.append(("dask, generated: X.sum(axis=0) (reading floor)", nbytes / GB, t, g))
        t, g = best_time(lambda: BatchNormScaler().fit(X), args.repeat)
        results.append(("dask, generated: fit (one batch)", nbytes / GB, t, g))
        t, g = best_time(lambda: BatchNormScaler(batch_size=bs).fit(X), args.repeat)
        results.append((f"dask, generated: fit, batch_size={bs:_}", nbytes / GB, t, g))

    # -- report ---------------------------------------------------------------------
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, "
        f"{psutil.virtual_memory().total / GB:.0f} GB RAM; Python {platform.python_version()}, "
        f"NumPy {np.__version__}, dask {dask.__version__}, distributed "
        f"{distributed.__version__}, skbn {skbn.__version__}; load average before the run "
        f"{load_before:.1f}"
    )
    setup = (
        f"dask array {n_rows:_} x {n_features} float64 = {nbytes / GB:.2f} GB in chunks of "
        f"{chunk_rows:_} rows ({chunk_rows * row_bytes / MB:.0f} MiB); LocalCluster of "
        f"{args.workers} worker processes x 1 thread on 127.0.0.1; in-memory array "
        f"{m_rows:_} x {n_features} ({m_bytes / GB:.2f} GB); best of {args.repeat}."
    )
    rows = []
    for name, size, seconds, growth in results:
        grow = "-" if growth is None else f"{growth / MB:.0f}"
        rows.append((name, f"{size:.2f}", f"{seconds:.2f}", f"{size / seconds:.2f}", grow))
    if args.markdown:
        print(f"Machine: {machine}.\n\n{setup}\n")
        print("| what | GB | seconds | GB/s | client RSS growth (MiB) |")
        print("|---|---:|---:|---:|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        print(machine)
        print(setup)
        for name, size, seconds, rate, grow in rows:
            print(f"{name:<52} {size:>6} GB {seconds:>7} s {rate:>6} GB/s  client RSS +{grow} MiB")

    by_name = {name: (size, seconds, growth) for name, size, seconds, growth in results}
    worst_growth = max(g for _, _, _, g in results if g is not None)
    in_memory = by_name["in memory: partial_fit (one batch), n_jobs=None"]
    persisted = by_name["dask, persisted: fit (one batch)"]
    in_memory_rate = in_memory[0] / in_memory[1]  # GB/s
    persisted_rate = persisted[0] / persisted[1]
    floor = by_name["dask, generated: X.sum(axis=0) (reading floor)"][1]
    generated = by_name["dask, generated: fit (one batch)"][1]
    print()
    print(
        f"target client growth < 300 MB: {'met' if worst_growth < 300e6 else 'NOT met'} "
        f"({worst_growth / MB:.0f} MiB at most, for {nbytes / GB:.1f} GB)"
    )
    ratio = in_memory_rate / persisted_rate
    print(
        "target throughput within 2x of in-memory partial_fit (n_jobs=None): "
        f"{'met' if ratio <= 2 else 'NOT met'} (persisted dask fit {persisted_rate:.2f} "
        f"GB/s vs in memory {in_memory_rate:.2f} GB/s: ratio {ratio:.2f})"
    )
    print(
        f"generated array: fit {generated:.2f} s vs {floor:.2f} s to generate and sum it "
        f"(the fit costs {generated / floor:.2f}x the reading floor)"
    )


if __name__ == "__main__":
    main()
