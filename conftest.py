"""Collection rules for the whole tree: ``tests/`` and the doctests of ``skbn/``.

``.ci/run`` runs the core suite in two more environments, the oldest releases
skbn supports (``constraints/floor.txt``) and the newest ones, with only the
core dependencies and the ``test-core`` extra installed, and sets
``SKBN_CORE_ONLY=1`` there.  The files below need an optional extra (named
beside each): in those environments they are not collected at all, so nothing
is skipped (``SKBN_NO_SKIPS`` counts a skipped test as a failure) and the run
lists exactly what ran.  Everything else is the core suite.  A new test file
or module that imports an optional extra goes on this list; the full
environment (the README's test command) collects everything.
"""

import os

NEEDS_AN_EXTRA = {
    "skbn/_dask.py": "dask",
    "skbn/onnx.py": "onnx",
    "skbn/river.py": "river",
    "skbn/spark.py": "spark",
    "tests/test_array_api.py": "torch, array-api-strict",
    "tests/test_cli.py": "cli, pandas",
    "tests/test_dask.py": "dask",
    "tests/test_docs.py": "docs' examples: matplotlib",
    "tests/test_flax.py": "flax",
    "tests/test_integration.py": "pandas, polars",
    "tests/test_keras.py": "keras, torch",
    "tests/test_keras_backends.py": "keras, torch, flax, tensorflow",
    "tests/test_onnx.py": "onnx",
    "tests/test_reference_layers.py": "keras, torch",
    "tests/test_reliability.py": "skops, river",
    "tests/test_river.py": "river",
    "tests/test_spark.py": "spark",
    "tests/test_torch.py": "torch",
    "tests/upstream/test_flax_batchnorm.py": "flax",
    # a port of scikit-learn 1.9's own tests, using its private helpers (move_to)
    "tests/upstream/test_sklearn_data.py": "torch, array-api-strict",
}

collect_ignore = list(NEEDS_AN_EXTRA) if os.environ.get("SKBN_CORE_ONLY") else []
