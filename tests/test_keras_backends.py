"""``to_keras`` / ``from_keras`` / ``get_weights`` / ``set_weights`` on Keras's
``jax`` and ``tensorflow`` backends.

Keras picks its backend when it is first imported, and this process runs it on
torch (``tests/conftest.py``, where ``tests/test_keras.py`` tests it), so the
checks of ``tests/keras_backend_checks.py`` run in one subprocess per backend,
both started at once when the first test here needs them; each check is one
test below.  They are the checks of ``test_keras.py``: the eval output equals
``transform``, ``from_keras(to_keras(s))`` recovers the statistics, a
``Sequential`` holding the layer saves to ``.keras`` and reloads with equal
predictions, and a layer trained on that backend continues as the scaler does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from keras_backend_checks import NAMES

import skbn

BACKENDS = ("jax", "tensorflow")
SCRIPT = Path(__file__).resolve().parent / "keras_backend_checks.py"
TIMEOUT = 900  # seconds for a whole backend (about 30 s each when the machine is idle)


@pytest.fixture(scope="module")
def backend_results(tmp_path_factory):
    """Run the checks on every backend at once; backend -> {name: result}."""
    root = str(Path(skbn.__file__).resolve().parent.parent)  # this skbn, not another
    runs = {}
    for backend in BACKENDS:
        out = tmp_path_factory.mktemp(backend) / "results.json"
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's start-up notices
            "JAX_PLATFORMS": "cpu",
        }
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(out)],
            cwd=out.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        runs[backend] = (process, out)
    results = {}
    try:
        for backend, (process, out) in runs.items():
            output, _ = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0 and out.exists(), (
                f"the {backend} checks exited with {process.returncode}:\n{output[-5000:]}"
            )
            results[backend] = {r["name"]: r for r in json.loads(out.read_text())}
    finally:
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_keras_interop_on_backend(backend_results, backend, name):
    result = backend_results[backend][name]
    assert result["ok"], f"{name} on Keras's {backend} backend:\n{result['detail']}"


def test_every_check_ran_on_every_backend(backend_results):
    for backend in BACKENDS:
        assert sorted(backend_results[backend]) == sorted(NAMES), backend
