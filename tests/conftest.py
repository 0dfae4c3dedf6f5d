"""Test configuration shared by the whole suite."""

import os

import pytest

# Both must be set before scipy / keras are first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def one_torch_thread():
    """PyTorch on one thread for the test (``test_torch.py``, ``test_keras.py``).

    Their tensors are tiny: with several threads PyTorch only waits on them
    (on a busy machine a train-mode call then takes ~0.1 s instead of ~20 us).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_sessionfinish(session, exitstatus):
    """With SKBN_NO_SKIPS set (CI sets it), a skipped test fails the run."""
    if not os.environ.get("SKBN_NO_SKIPS"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(
            f"SKBN_NO_SKIPS: {len(skipped)} test(s) were skipped; every test must run in CI.",
            red=True,
        )
        session.exitstatus = 1
