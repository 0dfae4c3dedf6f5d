#!/usr/bin/env python
"""Speed and memory of ``skbn.BatchNormScaler``, side by side with its peers.

Run from the repository root::

    python benchmarks/run.py              # full size: 2,000,000 x 50 float64
    python benchmarks/run.py --quick      # 200,000 x 50, fewer repeats, small sweep
    python benchmarks/run.py --markdown   # the same report as markdown tables

Every figure is a *ratio* of two times (or of two byte counts) measured in
this process, one right after the other, so it says how skbn compares with
its reference on this machine rather than how fast this machine is.

Method
------
* Time: each contender is called once to warm up, then the contenders are
  called in turn (A B C A B C ...) ``--repeat`` times; each one's figure is
  the best (minimum) of its calls, measured with ``time.perf_counter`` and the
  garbage collector off.  A call too short to time well is repeated in a loop
  and the loop time divided by the number of calls.
* Memory: ``tracemalloc`` (NumPy reports every array allocation to it), peak
  traced bytes above the baseline during one call.  ``X`` exists before the
  measurement starts, so for ``partial_fit`` the figure is the extra memory;
  for ``transform`` it includes the output array.
* ``partial_fit`` is timed on a scaler that has already seen one batch (the
  streaming case: every further call is one more mini-batch).

The script always exits with status 0: it is a report, not a test.  The last
line says how many of the issue's targets are met.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.preprocessing import StandardScaler

import skbn
from skbn import BatchNormScaler

try:  # River is an optional peer (the ``bench`` extra)
    import pandas as pd
    import river
    from river import preprocessing as river_pp
except ImportError:  # pragma: no cover - reported in the output
    river = None

N_FEATURES = 50
#: The rows of the array the issue's targets are set for.
FULL_ROWS = 2_000_000
SMALL_SHAPE = (256, 20)
#: A River call slower than this (seconds) is timed on a slice of the rows.
RIVER_SLOW_S = 2.0
#: ...and that slice has this many rows.
RIVER_SLICE_ROWS = 200_000
#: Short calls are repeated in a loop of at least this many seconds.
MIN_LOOP_S = 0.02


# -- measuring -----------------------------------------------------------------


def race(contenders: dict, repeat: int, warmup: int = 1) -> dict:
    """Best seconds per call of each ``name -> callable``, interleaved A B A B.

    Each callable is warmed up first; a call shorter than ``MIN_LOOP_S`` is
    repeated in a loop and the loop time divided by the number of calls.
    """
    number = {}
    for name, func in contenders.items():
        elapsed = math.inf
        for _ in range(max(warmup, 1)):
            start = time.perf_counter()
            func()
            elapsed = min(elapsed, time.perf_counter() - start)
        number[name] = max(1, math.ceil(MIN_LOOP_S / max(elapsed, 1e-9)))
    best = dict.fromkeys(contenders, math.inf)
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, func in contenders.items():
                n = number[name]
                start = time.perf_counter()
                for _ in range(n):
                    func()
                best[name] = min(best[name], (time.perf_counter() - start) / n)
    finally:
        if enabled:
            gc.enable()
    return best


def peak_bytes(func) -> int:
    """Peak traced bytes above the baseline during one call of ``func``.

    What ``func`` returns is alive at the end of the call, so it counts.
    """
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = func()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    gc.collect()
    return peak


# -- report model --------------------------------------------------------------


@dataclass
class Figure:
    """One of the issue's targets: ``ours / reference <= target``."""

    name: str
    ours_label: str
    ours: float
    ref_label: str
    ref: float
    target: float
    unit: str = "s"  # "s" or "B"

    @property
    def ratio(self) -> float:
        return self.ours / self.ref

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_bytes(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def fmt_value(value: float, unit: str) -> str:
    return fmt_bytes(value) if unit == "B" else fmt_time(value)


def table(header: list, rows: list, markdown: bool) -> str:
    """A plain-text or markdown table; the first column left-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(cells[0]) + " |"]
        lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        parts = [row[0].ljust(widths[0])] + rest
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def heading(text: str, markdown: bool) -> str:
    return f"\n### {text}\n" if markdown else f"\n{text}\n{'=' * len(text)}"


# -- the machine -----------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def total_memory() -> str:
    try:
        import psutil

        return fmt_bytes(psutil.virtual_memory().total)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return fmt_bytes(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return "unknown"


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl missing)"
    found = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        found.append(
            f"{info.get('internal_api')} {info.get('version')} "
            f"({info.get('architecture', '?')}, {info.get('num_threads')} threads, "
            f"{os.path.basename(info.get('filepath', ''))})"
        )
    return "; ".join(found) or "none found"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def busy_warning() -> str:
    """A warning when other processes use the CPUs: the ratios are then noisy."""
    try:
        one = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ""
    cores = os.cpu_count() or 1
    if one <= 0.5 * cores:
        return ""
    return (
        f"WARNING: the machine is busy (load {one:.2f} on {cores} cores): other "
        "processes compete for the CPUs and the memory bus, so these timings are noisy."
    )


def skbn_revision() -> str:
    """The git commit of the checkout skbn is imported from, if it is one."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(skbn.__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "skbn"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (git {head}{', skbn/ has uncommitted changes' if dirty else ''})"


def machine_lines() -> list:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    lines = [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpu", f"{cpu_model()}; os.cpu_count()={os.cpu_count()}, usable={usable}"),
        ("memory", total_memory()),
        ("load average", load_average()),
        ("os", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("blas", blas_info()),
        ("skbn", skbn.__version__ + skbn_revision()),
        ("scikit-learn", sklearn.__version__),
        ("river", river.__version__ if river is not None else "not installed"),
    ]
    if river is not None:
        lines.append(("pandas", pd.__version__))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # fmt: skip
        if var in os.environ:
            lines.append((var, os.environ[var]))
    return lines


# -- the benchmarks --------------------------------------------------------------


def make_data(n_rows: int, n_features: int, seed: int) -> np.ndarray:
    """Features of different offsets and scales, like real tabular data."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_features))
    X *= rng.uniform(0.1, 100.0, n_features)
    X += rng.uniform(-1e3, 1e3, n_features)
    return X


def frame(X: np.ndarray):
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])], copy=False)


def river_on_slice(func_full, func_slice, n_rows: int, slice_rows: int):
    """Time River on all rows, or on a slice when one call is slower than RIVER_SLOW_S.

    Returns ``(callable, scale, note)``: the callable's time times ``scale``
    estimates the time on all rows.
    """
    func_slice()  # warm up
    start = time.perf_counter()
    func_full()
    if time.perf_counter() - start <= RIVER_SLOW_S or slice_rows >= n_rows:
        return func_full, 1.0, ""
    scale = n_rows / slice_rows
    return func_slice, scale, f" (timed on {slice_rows:,} rows, x{scale:g})"


def with_river(contenders: dict, name: str, full, part, n_rows: int, slice_rows: int) -> dict:
    """Add River's ``full`` call (or ``part``, on a slice, when it is slow);
    returns ``{name: (scale, note)}`` to rescale its time afterwards."""
    func, scale, note = river_on_slice(full, part, n_rows, slice_rows)
    contenders[name] = func
    return {name: (scale, note)}


def rescale(times: dict, notes: dict) -> dict:
    for name, (scale, note) in notes.items():
        times[name + note] = times.pop(name) * scale
    return times


def time_partial_fit(X: np.ndarray, repeat: int) -> dict:
    """partial_fit on scalers that have all seen one batch already (streaming)."""
    ss = StandardScaler().fit(X)
    bn = BatchNormScaler().fit(X)
    bn_all = BatchNormScaler(n_jobs=-1).fit(X)
    contenders = {
        "skbn partial_fit": lambda: bn.partial_fit(X),
        "skbn partial_fit n_jobs=-1": lambda: bn_all.partial_fit(X),
        "StandardScaler.partial_fit": lambda: ss.partial_fit(X),
        "numpy X.sum(axis=0)": lambda: X.sum(axis=0),
    }
    notes = {}
    if river is not None:
        df = frame(X)
        part = df.iloc[:RIVER_SLICE_ROWS]
        rs = river_pp.StandardScaler()
        rs.learn_many(df)
        notes = with_river(
            contenders, "river StandardScaler.learn_many",
            lambda: rs.learn_many(df), lambda: rs.learn_many(part),
            len(X), RIVER_SLICE_ROWS,
        )  # fmt: skip
    return rescale(race(contenders, repeat), notes)


def time_transform(X: np.ndarray, repeat: int) -> dict:
    """transform (a new output array each call), and the X.copy() floor."""
    ss = StandardScaler().fit(X)
    bn = BatchNormScaler().fit(X)
    bn_all = BatchNormScaler(n_jobs=-1).fit(X)
    contenders = {
        "skbn transform": lambda: bn.transform(X),
        "skbn transform n_jobs=-1": lambda: bn_all.transform(X),
        "StandardScaler.transform": lambda: ss.transform(X),
        "numpy X.copy()": lambda: X.copy(),
    }
    notes = {}
    if river is not None and X.dtype == np.float64:
        df = frame(X)
        part = df.iloc[:RIVER_SLICE_ROWS]
        rs = river_pp.StandardScaler()
        rs.learn_many(df)
        notes = with_river(
            contenders, "river StandardScaler.transform_many",
            lambda: rs.transform_many(df), lambda: rs.transform_many(part),
            len(X), RIVER_SLICE_ROWS,
        )  # fmt: skip
    return rescale(race(contenders, repeat), notes)


def measure_memory(X: np.ndarray) -> dict:
    """Peak traced bytes of one call (X itself is not counted)."""
    ss = StandardScaler().fit(X)
    bn = BatchNormScaler().fit(X)
    bn_all = BatchNormScaler(n_jobs=-1).fit(X)
    return {
        "skbn partial_fit": peak_bytes(lambda: bn.partial_fit(X)),
        "skbn partial_fit n_jobs=-1": peak_bytes(lambda: bn_all.partial_fit(X)),
        "StandardScaler.partial_fit": peak_bytes(lambda: ss.partial_fit(X)),
        "skbn transform": peak_bytes(lambda: bn.transform(X)),
        "skbn transform n_jobs=-1": peak_bytes(lambda: bn_all.transform(X)),
        "StandardScaler.transform": peak_bytes(lambda: ss.transform(X)),
        "numpy X.copy()": peak_bytes(lambda: X.copy()),
    }


def bench_large(X: np.ndarray, repeat: int) -> tuple:
    """The 2M x 50 figures: partial_fit, transform (float64 and float32), memory."""
    n_rows = X.shape[0]
    detail = {
        "partial_fit": time_partial_fit(X, repeat),
        "transform": time_transform(X, repeat),
        "transform float32": time_transform(X.astype(np.float32), repeat),
        "memory": measure_memory(X),
    }
    memory = detail["memory"]
    p, t, t32 = detail["partial_fit"], detail["transform"], detail["transform float32"]
    shape = f"{n_rows:,} x {X.shape[1]}"
    figures = [
        Figure(
            f"transform / StandardScaler.transform ({shape} float64)",
            "skbn transform", t["skbn transform"],
            "StandardScaler.transform", t["StandardScaler.transform"], 0.65,
        ),
        Figure(
            f"transform n_jobs=-1 / X.copy() ({shape} float64)",
            "skbn transform n_jobs=-1", t["skbn transform n_jobs=-1"],
            "numpy X.copy()", t["numpy X.copy()"], 1.3,
        ),
        Figure(
            f"transform / StandardScaler.transform ({shape} float32)",
            "skbn transform", t32["skbn transform"],
            "StandardScaler.transform", t32["StandardScaler.transform"], 0.65,
        ),
        Figure(
            f"partial_fit / StandardScaler.partial_fit ({shape})",
            "skbn partial_fit", p["skbn partial_fit"],
            "StandardScaler.partial_fit", p["StandardScaler.partial_fit"], 0.25,
        ),
        Figure(
            f"partial_fit n_jobs=-1 / StandardScaler.partial_fit ({shape})",
            "skbn partial_fit n_jobs=-1", p["skbn partial_fit n_jobs=-1"],
            "StandardScaler.partial_fit", p["StandardScaler.partial_fit"], 0.15,
        ),
    ]  # fmt: skip
    pf_mem = max(memory["skbn partial_fit"], memory["skbn partial_fit n_jobs=-1"])
    tr_mem = max(memory["skbn transform"], memory["skbn transform n_jobs=-1"])
    memory_figures = [
        Figure(
            f"partial_fit peak extra memory / X.nbytes ({shape})",
            "skbn partial_fit (worst n_jobs)", pf_mem, "X.nbytes", X.nbytes, 0.05, "B",
        ),
        Figure(
            f"transform peak memory incl. output / X.nbytes ({shape})",
            "skbn transform (worst n_jobs)", tr_mem, "X.nbytes", X.nbytes, 1.05, "B",
        ),
    ]  # fmt: skip
    return figures, memory_figures, detail


def bench_small(repeat: int, seed: int, calls: int = 200) -> tuple:
    """256 x 20 mini-batches: per-call time of partial_fit and transform."""
    n_rows, n_features = SMALL_SHAPE
    batches = [make_data(n_rows, n_features, seed + i) for i in range(calls)]
    bn = BatchNormScaler().fit(batches[0])
    ss = StandardScaler().fit(batches[0])
    adaptive_batches = 20  # River's row-by-row scaler is slow: fewer batches

    def looped(method):
        def run():
            for b in batches:
                method(b)

        return run

    pf = {
        "skbn partial_fit": looped(bn.partial_fit),
        "StandardScaler.partial_fit": looped(ss.partial_fit),
    }
    tr = {
        "skbn transform": looped(bn.transform),
        "StandardScaler.transform": looped(ss.transform),
        "numpy X.copy()": looped(np.ndarray.copy),
    }
    pf["numpy X.sum(axis=0)"] = looped(lambda b: b.sum(axis=0))
    torch = _torch_one_thread()
    if torch is not None:  # the layer whose speed a small batch should match
        tensors = [torch.from_numpy(b) for b in batches]
        layer = torch.nn.BatchNorm1d(n_features, dtype=torch.float64)

        def torch_forward(train):
            def run():
                layer.train(train)
                with torch.no_grad():
                    for t in tensors:
                        layer(t)

            return run

        pf["torch BatchNorm1d train forward"] = torch_forward(True)
        tr["torch BatchNorm1d eval forward"] = torch_forward(False)
    if river is not None:
        frames = [frame(b) for b in batches]
        dicts = [f.to_dict("records") for f in frames[:adaptive_batches]]
        rs = river_pp.StandardScaler()
        rs.learn_many(frames[0])
        ad = river_pp.AdaptiveStandardScaler()
        for row in dicts[0]:
            ad.learn_one(row)

        def river_learn():
            for f in frames:
                rs.learn_many(f)

        def river_transform():
            for f in frames:
                rs.transform_many(f)

        def adaptive_learn():  # one batch = its rows, one learn_one each
            for rows in dicts:
                for row in rows:
                    ad.learn_one(row)

        def adaptive_transform():
            for rows in dicts:
                for row in rows:
                    ad.transform_one(row)

        pf["river StandardScaler.learn_many"] = river_learn
        tr["river StandardScaler.transform_many"] = river_transform
        pf["river AdaptiveStandardScaler.learn_one x256"] = adaptive_learn
        tr["river AdaptiveStandardScaler.transform_one x256"] = adaptive_transform
    p = race(pf, repeat)
    t = race(tr, repeat)
    for times in (p, t):
        for name in times:
            times[name] /= adaptive_batches if "Adaptive" in name else calls
    shape = f"{n_rows} x {n_features}"
    figures = [
        Figure(
            f"partial_fit per call / StandardScaler.partial_fit ({shape})",
            "skbn partial_fit", p["skbn partial_fit"],
            "StandardScaler.partial_fit", p["StandardScaler.partial_fit"], 0.35,
        ),
        Figure(
            f"transform per call / StandardScaler.transform ({shape})",
            "skbn transform", t["skbn transform"],
            "StandardScaler.transform", t["StandardScaler.transform"], 0.5,
        ),
    ]  # fmt: skip
    if torch is not None:
        figures += [
            Figure(
                f"partial_fit per call / torch BatchNorm1d train forward ({shape}, 1 thread)",
                "skbn partial_fit", p["skbn partial_fit"],
                "torch BatchNorm1d train forward", p["torch BatchNorm1d train forward"], 1.0,
            ),
            Figure(
                f"transform per call / torch BatchNorm1d eval forward ({shape}, 1 thread)",
                "skbn transform", t["skbn transform"],
                "torch BatchNorm1d eval forward", t["torch BatchNorm1d eval forward"], 1.5,
            ),
        ]  # fmt: skip
    return figures, {"partial_fit per call": p, "transform per call": t}


def _torch_one_thread():
    """PyTorch on one thread (as skbn's small batches run), or None."""
    try:
        import torch
    except ImportError:  # pragma: no cover - reported by the missing rows
        return None
    torch.set_num_threads(1)
    return torch


def bench_sweep(repeat: int, seed: int, quick: bool) -> list:
    """How the times grow with n_samples and with n_features (default n_jobs
    unless marked -1)."""
    if quick:
        shapes = [(10_000, 50), (100_000, 50), (200_000, 50)]
        shapes += [(50_000, f) for f in (5, 20, 200, 500)]
    else:
        shapes = [(n, 50) for n in (10_000, 100_000, 1_000_000, 2_000_000)]
        shapes += [(200_000, f) for f in (5, 20, 200, 500)]
    return [sweep_row(n, f, repeat, seed) for n, f in shapes]


def sweep_row(n: int, f: int, repeat: int, seed: int) -> list:
    X = make_data(n, f, seed)
    ss = StandardScaler().fit(X)
    bn = BatchNormScaler().fit(X)
    bn_all = BatchNormScaler(n_jobs=-1).fit(X)
    p = race(
        {
            "bn": lambda: bn.partial_fit(X),
            "bn_all": lambda: bn_all.partial_fit(X),
            "ss": lambda: ss.partial_fit(X),
            "sum": lambda: X.sum(axis=0),
        },
        repeat,
    )
    t = race(
        {
            "bn": lambda: bn.transform(X),
            "bn_all": lambda: bn_all.transform(X),
            "ss": lambda: ss.transform(X),
            "copy": lambda: X.copy(),
        },
        repeat,
    )
    return [
        f"{n:,}",
        f,
        fmt_bytes(X.nbytes),
        fmt_time(p["bn"]),
        f"{p['bn'] / p['ss']:.3f}",
        f"{p['bn_all'] / p['ss']:.3f}",
        f"{p['bn'] / p['sum']:.2f}",
        fmt_time(t["bn"]),
        f"{t['bn'] / t['ss']:.3f}",
        f"{t['bn'] / t['copy']:.2f}",
        f"{t['bn_all'] / t['copy']:.2f}",
    ]


SWEEP_HEADER = [
    "n_samples", "n_features", "X.nbytes",
    "partial_fit", "pf/SS", "pf(-1)/SS", "pf/sum",
    "transform", "t/SS", "t/copy", "t(-1)/copy",
]  # fmt: skip


def detail_rows(detail: dict) -> list:
    """Every contender of every scenario, with its time relative to skbn's."""
    rows = []
    for scenario, times in detail.items():
        unit = "B" if scenario == "memory" else "s"
        if unit == "B":
            for name, value in times.items():
                rows.append([scenario, name, fmt_bytes(value), ""])
            continue
        base = next(v for k, v in times.items() if k.startswith("skbn"))
        for name, value in times.items():
            rows.append([scenario, name, fmt_value(value, unit), f"{value / base:.2f}"])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows, small sweep")
    parser.add_argument("--rows", type=int, default=None, help="rows of the large array")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per contender")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--no-sweep", action="store_true", help="skip the size sweep")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_rows = args.rows or (200_000 if args.quick else FULL_ROWS)
    repeat = args.repeat or (3 if args.quick else 7)
    md = args.markdown
    started = time.perf_counter()

    print(heading("Machine", md))
    print(table(["", ""], machine_lines(), md) if md else
          "\n".join(f"{k:>14}: {v}" for k, v in machine_lines()))  # fmt: skip
    print(
        f"\nlarge array {n_rows:,} x {N_FEATURES} float64 "
        f"({fmt_bytes(n_rows * N_FEATURES * 8)}), small batches "
        f"{SMALL_SHAPE[0]} x {SMALL_SHAPE[1]}; best of {repeat} interleaved calls"
    )
    if busy_warning():
        print(busy_warning())
    sys.stdout.flush()

    X = make_data(n_rows, N_FEATURES, args.seed)
    large, memory, detail = bench_large(X, repeat)
    del X
    gc.collect()
    small, small_detail = bench_small(max(repeat, 5), args.seed)
    detail.update(small_detail)
    figures = large + small + memory

    print(heading("Targets", md))
    rows = [
        [
            f.name,
            fmt_value(f.ours, f.unit),
            f"{fmt_value(f.ref, f.unit)} ({f.ref_label})",
            f"{f.ratio:.3f}",
            f"<= {f.target:g}",
            "PASS" if f.passed else "FAIL",
        ]
        for f in figures
    ]
    print(table(["figure", "skbn", "reference", "ratio", "target", "result"], rows, md))

    print(heading("Side by side (ratio = time / skbn's default-n_jobs time)", md))
    print(table(["scenario", "contender", "time", "ratio"], detail_rows(detail), md))
    if river is None:
        print("\nriver is not installed: its rows are missing (pip install 'skbn[bench]').")

    if not args.no_sweep:
        print(heading("Sweep (best of 3; -1 means n_jobs=-1, else default n_jobs)", md))
        sys.stdout.flush()
        print(table(SWEEP_HEADER, bench_sweep(3, args.seed, args.quick), md))

    met = sum(f.passed for f in figures)
    elapsed = time.perf_counter() - started
    print(f"\nwall time {elapsed:.0f} s; load average at the end {load_average()}")
    if busy_warning():
        print(busy_warning())
    missed = [f.name for f in figures if not f.passed]
    if missed:
        print("missed: " + "; ".join(missed))
    if n_rows != FULL_ROWS:
        print(
            f"note: the targets are set for {FULL_ROWS:,} x {N_FEATURES}; at {n_rows:,} rows "
            "the ratios are indicative only (a smaller X.copy() is relatively cheaper)."
        )
    print(f"targets met: {met}/{len(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
