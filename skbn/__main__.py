"""``python -m skbn`` and the ``skbn`` program: the command line (see :mod:`skbn.cli`).

Before NumPy loads, BLAS is given one thread (unless the environment says
otherwise): the command line computes with skbn's own kernels, and keeps
BLAS on one thread anyway so that its sums do not depend on the thread
count, while an idle OpenBLAS pool, once woken, spins on the other cores
(about 5% of the CPU time of ``skbn scale``, measured).
"""

import os

# Not OMP_NUM_THREADS: pyarrow sizes its own thread pool by it.
for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from skbn.cli import run  # noqa: E402 - after the thread settings


def main() -> None:
    """The program (the ``skbn`` entry point)."""
    run()


if __name__ == "__main__":
    main()
