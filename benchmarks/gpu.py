"""GPU throughput of BatchNormScaler on PyTorch CUDA tensors (Array API path).

Run where CUDA is available::

    python benchmarks/gpu.py [--rows 20000000] [--features 50] [--dtype float32]

It reports, side by side in one process, the time of ``partial_fit`` and
``transform`` on a tensor already on the GPU, the device's copy bandwidth
(``X.clone()``, the floor for ``transform``) and a read-only reduction
(``X.sum(0)``, the floor for ``partial_fit``), and scikit-learn's
``StandardScaler`` on the same tensors, all with ``array_api_dispatch=True``.
On a machine without CUDA it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import time


def _timed(fn, sync, repeat):
    best = float("inf")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA device here: nothing measured (run this on a machine with a GPU).")
        return 0

    import sklearn
    from sklearn.preprocessing import StandardScaler

    from skbn import BatchNormScaler

    dtype = getattr(torch, args.dtype)
    X = torch.randn(args.rows, args.features, device="cuda", dtype=dtype)
    nbytes = X.numel() * X.element_size()
    sync = torch.cuda.synchronize
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"X: {args.rows} x {args.features} {args.dtype} ({nbytes / 1e9:.2f} GB)")

    with sklearn.config_context(array_api_dispatch=True):
        ours = BatchNormScaler().fit(X)
        theirs = StandardScaler().fit(X)
        rows = [
            ("X.clone() (copy floor)", lambda: X.clone(), 2 * nbytes),
            ("X.sum(0) (read floor)", lambda: X.sum(0), nbytes),
            ("BatchNormScaler.partial_fit", lambda: BatchNormScaler().partial_fit(X), nbytes),
            ("StandardScaler.partial_fit", lambda: StandardScaler().partial_fit(X), nbytes),
            ("BatchNormScaler.transform", lambda: ours.transform(X), 2 * nbytes),
            ("StandardScaler.transform", lambda: theirs.transform(X), 2 * nbytes),
        ]
        times = {name: _timed(fn, sync, args.repeat) for name, fn, _ in rows}
    print(f"{'operation':32s} {'time (ms)':>10s} {'GB/s':>8s}")
    for name, _, moved in rows:
        t = times[name]
        print(f"{name:32s} {t * 1e3:10.2f} {moved / t / 1e9:8.1f}")
    fit_ratio = times["BatchNormScaler.partial_fit"] / times["StandardScaler.partial_fit"]
    tr_ratio = times["BatchNormScaler.transform"] / times["StandardScaler.transform"]
    copy_ratio = times["BatchNormScaler.transform"] / times["X.clone() (copy floor)"]
    print(
        f"ratios: partial_fit / StandardScaler {fit_ratio:.2f}, "
        f"transform / StandardScaler {tr_ratio:.2f}, transform / clone {copy_ratio:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
