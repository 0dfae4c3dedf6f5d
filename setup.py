"""The compiled kernels, ``skbn._kernels``, and the CSV writer of the file
engine, ``skbn.io._csvwrite`` (everything else is in pyproject.toml).

Both are optional: where they cannot be built (no C compiler), skbn installs
without them and computes the same formulas with NumPy alone, slower for
small batches, and the file engine writes CSV with polars (the same bytes).
``-ffp-contract=off`` and ``-fno-fast-math`` keep every operation a
separately rounded IEEE operation (no fused multiply-add, no reassociation),
as NumPy computes them; the sources refuse to compile where double
arithmetic is carried in wider registers (x87), and skbn then installs
without them.
"""

import sys

from setuptools import Extension, setup

windows = sys.platform == "win32"
flags = ["/O2"] if windows else ["-O3", "-ffp-contract=off", "-fno-fast-math"]
libraries = [] if windows else ["m"]

setup(
    ext_modules=[
        Extension(
            "skbn._kernels",
            ["skbn/_kernels.c"],
            extra_compile_args=flags,
            libraries=libraries,
            optional=True,
        ),
        # Zmij (third_party/zmij, MIT) finds the shortest round-trip
        # decimal of a double.
        Extension(
            "skbn.io._csvwrite",
            ["skbn/io/_csvwrite.c", "third_party/zmij/zmij.c"],
            include_dirs=["third_party"],
            depends=["third_party/zmij/zmij-c.h"],
            extra_compile_args=flags,
            libraries=libraries,
            optional=True,
        ),
    ]
)
