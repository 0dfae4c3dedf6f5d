"""The documentation: gallery examples and the code on the pages.

* Each ``examples/plot_*.py`` (the gallery scripts that run while the site is
  built) runs as a script, headless, exits 0 and prints no warning.
* What each plot shows holds numerically: the tests run the example's code and
  check the claim its text makes (the cold start's first batch, the variance
  bias ``(m - 1) / m``, the drifting stream's lag and all-time average).
* The ``python`` code blocks of the Markdown pages run.

The site itself is built by ``.ci/run`` (``sphinx -W``, warnings are errors).
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # the examples' figures, run in this process
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PLOT_EXAMPLES = (
    "plot_cold_start",
    "plot_drifting_stream",
    "plot_momentum_modes",
    "plot_variance_bias",
)
# Pages whose ``python`` blocks are complete programs (others show code that
# needs a GPU or names defined elsewhere).
PAGES_WITH_RUNNABLE_CODE = (
    "index",
    "getting_started",
    "mapping",
    "numerics",
    "persistence",
    "user_guide",
)


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory):
    """Start every plot example at once, in the background; name -> Popen."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": ""}
    strict = [
        "-W",
        "error::UserWarning",
        "-W",
        "error::RuntimeWarning",
        "-W",
        "error::FutureWarning",
    ]
    runs = {}
    for name in PLOT_EXAMPLES:
        cwd = tmp_path_factory.mktemp(name)  # anything written lands here
        runs[name] = subprocess.Popen(
            [sys.executable, *strict, str(EXAMPLES / f"{name}.py")],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    yield runs
    for process in runs.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_every_plot_example_is_tested(script_runs):
    # Also starts the scripts: they run while the tests below do.
    found = sorted(path.stem for path in EXAMPLES.glob("plot_*.py"))
    assert found == sorted(PLOT_EXAMPLES)


# -- the claims of the plots ---------------------------------------------------


def run_example(name: str) -> dict:
    """Run an example in this process and return its global variables."""
    try:
        return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"skbn_docs_{name}")
    finally:
        plt.close("all")


@pytest.fixture(scope="module")
def cold_start():
    return run_example("plot_cold_start")


@pytest.fixture(scope="module")
def drifting():
    return run_example("plot_drifting_stream")


@pytest.fixture(scope="module")
def variance_bias():
    return run_example("plot_variance_bias")


@pytest.fixture(scope="module")
def momentum_modes():
    return run_example("plot_momentum_modes")


def test_momentum_modes_pooled_is_standard_scaler(momentum_modes):
    """The claims of the modes example: "pooled" is exact, the others are not."""
    results = momentum_modes["results"]
    pooled, mean_errors, var_errors = results['"pooled"']
    assert mean_errors[-1] < 1e-12 and var_errors[-1] < 1e-12
    X, reference = momentum_modes["X"], momentum_modes["reference"]
    np.testing.assert_allclose(pooled.transform(X), reference.transform(X), atol=1e-12)
    for label in ("None", "0.99 (default)", "0.9"):
        assert results[label][2][-1] > 0.1  # the variance misses by 10% or more
    # the shorter memory is further off than the longer one
    assert results["0.9"][1][-1] > results["0.99 (default)"][1][-1]


def test_cold_start_debiased_takes_the_first_batch_exactly(cold_start):
    result, rho = cold_start["result"], cold_start["MOMENTUM"]
    mean, var = result["batch_mean"][0], result["batch_var"][0]
    # debiased: the first batch's own mean and biased variance
    assert result["debiased_mean"][0] == pytest.approx(mean, rel=1e-12)
    assert result["debiased_var"][0] == pytest.approx(var, rel=1e-12)
    # keras: one step of 1 - momentum away from mean 0 and variance 1
    assert result["keras_mean"][0] == pytest.approx((1 - rho) * mean, rel=1e-12)
    assert result["keras_var"][0] == pytest.approx(rho * 1.0 + (1 - rho) * var, rel=1e-12)
    assert abs(result["keras_mean"][0] - mean) > 0.9 * abs(mean)


def test_cold_start_keras_crawls_debiased_is_right_early(cold_start):
    result, truth = cold_start["result"], cold_start["TRUE_MEAN"]
    tenth = 9  # after 10 batches
    assert abs(result["debiased_mean"][tenth] - truth) < 0.05 * truth
    assert result["keras_mean"][tenth] < 0.15 * truth  # still 90% at the start
    assert abs(result["debiased_var"][tenth] / cold_start["TRUE_VAR"] - 1) < 0.15
    assert result["keras_var"][tenth] < 1.5


def test_cold_start_keras_is_the_debiased_average_plus_the_start(cold_start):
    result, rho = cold_start["result"], cold_start["MOMENTUM"]
    t = np.arange(1, len(result["keras_mean"]) + 1)
    share = rho**t  # the start's share of the Keras estimate
    np.testing.assert_allclose(result["keras_mean"], (1 - share) * result["debiased_mean"])
    np.testing.assert_allclose(
        result["keras_var"], (1 - share) * result["debiased_var"] + share * 1.0
    )


def test_cold_start_function_against_the_formulas(cold_start):
    """The example's function, with other arguments, against a direct computation."""
    rho = 0.8
    result = cold_start["cold_start"](n_batches=6, batch_size=5, momentum=rho, seed=3)
    for stat in ("mean", "var"):
        b = result[f"batch_{stat}"]
        start = 0.0 if stat == "mean" else 1.0
        for t in range(1, len(b) + 1):
            weights = (1 - rho) * rho ** np.arange(t - 1, -1, -1)  # batch k weighs rho^(t-k)
            expected = weights @ b[:t] / (1 - rho**t)
            assert result[f"debiased_{stat}"][t - 1] == pytest.approx(expected, rel=1e-12)
            keras = rho**t * start + weights @ b[:t]
            assert result[f"keras_{stat}"][t - 1] == pytest.approx(keras, rel=1e-12)


def test_variance_bias_is_m_minus_1_over_m(variance_bias):
    sizes = variance_bias["BATCH_SIZES"]
    for unbiased, expected in ((False, (sizes - 1) / sizes), (True, np.ones(len(sizes)))):
        ratios = variance_bias["ratios"][unbiased]  # (n_sizes, n_features)
        stderr = ratios.std(axis=1, ddof=1) / np.sqrt(ratios.shape[1])
        np.testing.assert_array_less(np.abs(ratios.mean(axis=1) - expected), 4 * stderr)
    biased = variance_bias["ratios"][False].mean(axis=1)
    assert biased[0] == pytest.approx(0.5, abs=0.02)  # batches of 2 miss half
    assert np.all(biased[sizes <= 8] < 0.9)


def test_variance_bias_output_std(variance_bias):
    sizes = variance_bias["BATCH_SIZES"]
    for unbiased, expected in ((False, np.sqrt(sizes / (sizes - 1))), (True, np.ones(len(sizes)))):
        std = variance_bias["output_std"][unbiased]
        stderr = std.std(axis=1, ddof=1) / np.sqrt(std.shape[1])
        np.testing.assert_array_less(np.abs(std.mean(axis=1) - expected), 4 * stderr + 1e-3)


def test_drifting_standard_scaler_is_the_all_time_average(drifting):
    all_data = np.concatenate(drifting["batches"])
    mean, var = drifting["standard"]
    assert mean[-1] == pytest.approx(all_data.mean(), rel=1e-10)
    assert var[-1] == pytest.approx(all_data.var(), rel=1e-10)
    # During the climb it counts the drift of the mean as spread.
    shift = drifting["SHIFT_AT"]
    assert var[shift - 1] > 2.0 * drifting["true_var"][shift - 1]


def test_drifting_momentum_sets_the_lag(drifting):
    tracks, true_mean, true_var = drifting["tracks"], drifting["true_mean"], drifting["true_var"]
    shift = drifting["SHIFT_AT"]
    end_of_climb = [tracks[m][0][shift - 1] for m in (0.8, 0.95, 0.99)]
    # shorter memory, smaller lag; the all-time average lags most
    assert true_mean[shift - 1] > end_of_climb[0] > end_of_climb[1] > end_of_climb[2]
    assert end_of_climb[2] > drifting["standard"][0][shift - 1]
    # after the jump the short memory settles on the new values, the average does not
    settled = slice(shift + 50, None)
    short_mean, short_var = tracks[0.8][0][settled], tracks[0.8][1][settled]
    assert np.abs(short_mean - true_mean[settled]).mean() < 0.15
    assert np.abs(short_var / true_var[settled] - 1).mean() < 0.1
    assert drifting["standard"][0][-1] - true_mean[-1] > 0.4


def test_drifting_best_momentum_is_in_between(drifting):
    errors, standard_error = drifting["errors"], drifting["standard_error"]
    for column in range(2):
        best = int(np.argmin(errors[:, column]))
        assert 0 < best < len(errors) - 1  # noise on the left, lag on the right
        assert errors[best, column] < 0.5 * standard_error[column]


# -- the code on the pages ---------------------------------------------------


def python_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES_WITH_RUNNABLE_CODE)
def test_page_code_runs(page, capsys):
    blocks = python_blocks(page)
    assert blocks, f"docs/{page}.md has no python code block"
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/{page}.md, python block {i + 1}", "exec"), {})


def test_array_api_page_runs_in_a_fresh_interpreter():
    """docs/array_api.md sets SCIPY_ARRAY_API itself: run it without the variable.

    The page's blocks are one program (the second continues the first); the
    test suite's own ``SCIPY_ARRAY_API=1`` (tests/conftest.py) is removed so
    that the page's ``os.environ`` line is what makes it work.
    """
    pytest.importorskip("torch")
    program = "\n".join(python_blocks("array_api"))
    env = {key: value for key, value in os.environ.items() if key != "SCIPY_ARRAY_API"}
    run = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "Tensor" in run.stdout and "ndarray 2" in run.stdout


# -- the scripts run headless, without warnings (started by the first test) ----


@pytest.mark.parametrize("name", PLOT_EXAMPLES)
def test_example_runs_as_a_script(script_runs, name):
    stdout, stderr = script_runs[name].communicate(timeout=300)
    assert script_runs[name].returncode == 0, stderr
    assert stderr == "", f"{name} wrote to stderr (a warning?):\n{stderr}"
    assert stdout.strip(), f"{name} printed nothing"
