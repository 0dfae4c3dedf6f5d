"""Collection rules for the whole tree: ``tests/`` and the doctests of ``skbn/``.

``.ci/run`` runs the core suite in two more environments, the oldest releases
skbn supports (``constraints/floor.txt``) and the newest ones, with only the
core dependencies and the ``test-core`` extra installed, and sets
``SKBN_CORE_ONLY=1`` there.  The files and tests below need an optional
extra (named beside each): in those environments they are not collected at all
(a ``file::test`` entry is deselected), so nothing is skipped (``SKBN_NO_SKIPS``
counts a skipped test as a failure) and the run lists exactly what ran.  The
ports of scikit-learn's own tests use the private helpers of the release they
were ported from, so they are collected there only from that release on.
Everything else is the core suite.  A new test file or module that imports an
optional extra goes on this list; the full environment (the README's test
command) collects everything.
"""

import os

import pytest

CORE_ONLY = bool(os.environ.get("SKBN_CORE_ONLY"))

NEEDS_AN_EXTRA = {
    "skbn/_dask.py": "dask",
    "skbn/io/_engine.py": "cli (pyarrow): its doctest writes a file",
    "skbn/onnx.py": "onnx",
    "skbn/river.py": "river",
    "skbn/spark": "spark",
    "tests/test_array_api.py": "torch, array-api-strict",
    "tests/test_cli.py": "cli, pandas",
    "tests/test_dask.py": "dask",
    "tests/test_exactness.py::test_array_api_torch_at_huge_constants": "torch",
    "tests/test_exactness.py::test_dask_exact_whatever_the_chunks": "dask",
    "tests/test_exactness.py::test_dask_two_d_and_unknown_chunks_equal_the_in_memory_fit": "dask",
    "tests/test_docs.py": "docs' examples: matplotlib",
    "tests/test_docs_reference.py::test_every_public_name_is_in_the_reference[skbn.onnx]": (
        "onnx"
    ),
    "tests/test_docs_reference.py::test_every_public_name_is_in_the_reference[skbn.river]": (
        "river"
    ),
    "tests/test_docs_reference.py::test_every_public_name_is_in_the_reference[skbn.spark]": (
        "spark"
    ),
    "tests/test_flax.py": "flax",
    "tests/test_integration.py": "pandas, polars",
    "tests/test_io.py": "cli (pyarrow)",
    "tests/test_io_csvwrite.py": "cli (pyarrow, polars)",
    "tests/test_keras.py": "keras, torch",
    "tests/test_keras_backends.py": "keras, torch, flax, tensorflow",
    "tests/test_onnx.py": "onnx",
    "tests/test_reference_layers.py": "keras, torch",
    "tests/test_reliability.py": "skops, river",
    "tests/test_river.py": "river",
    "tests/test_spark.py": "spark",
    "tests/test_threads.py::test_saving_leaves_the_live_object_unchanged[skops]": "skops",
    "tests/test_torch.py": "torch",
    "tests/upstream/test_flax_batchnorm.py": "flax",
    "tests/upstream/test_keras_batchnorm.py": "keras, torch",
    "tests/upstream/test_sklearn_extmath.py::"
    "test_incremental_weighted_mean_and_variance_array_api": "torch, array-api-strict",
    "tests/upstream/test_sklearn_data.py": "torch, array-api-strict",
    "tests/upstream/test_torch_batchnorm.py": "torch",
}

# The ports of scikit-learn's tests, and the release each was ported from.
PORTED_FROM_SCIKIT_LEARN = {
    "tests/upstream/test_sklearn_extmath.py": "1.9",
    "tests/upstream/test_sklearn_sparsefuncs.py": "1.9",
}

collect_ignore = []
if CORE_ONLY:
    import sklearn

    installed = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
    collect_ignore += [path for path in NEEDS_AN_EXTRA if "::" not in path]
    collect_ignore += [
        path
        for path, release in PORTED_FROM_SCIKIT_LEARN.items()
        if installed < tuple(int(part) for part in release.split("."))
    ]


def pytest_collection_modifyitems(config, items):
    """Deselect the single tests of NEEDS_AN_EXTRA in the core-only environments."""
    if not CORE_ONLY:
        return
    tests = tuple(path for path in NEEDS_AN_EXTRA if "::" in path)
    deselected = [item for item in items if item.nodeid.startswith(tests)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.nodeid.startswith(tests)]


@pytest.fixture
def direct_tmp_path(tmp_path):
    """``tmp_path``, where its file system writes with ``O_DIRECT`` (else the
    test is skipped: macOS, Windows, tmpfs before Linux 6.6, ...)."""
    from skbn.io._direct import DirectWriter

    probe = tmp_path / "o-direct-probe"
    probe.write_bytes(b"")
    writer = DirectWriter.open(str(probe), 0)
    if writer is None:
        pytest.skip(f"the file system of {tmp_path} has no O_DIRECT")
    writer.abort()
    probe.unlink()
    return tmp_path
