"""
Momentum modes against ``StandardScaler`` on the breast cancer data set
=======================================================================

:class:`~sklearn.preprocessing.StandardScaler` computes the exact mean and
variance of all the data. :class:`~skbn.BatchNormScaler` learns them from a
stream of mini-batches, one :meth:`~skbn.BatchNormScaler.partial_fit` call per
batch, and how it averages the batches is set by ``momentum``:

* ``momentum="pooled"``: the exact statistics of every value seen, as
  ``StandardScaler.partial_fit`` computes them;
* ``momentum=None``: the plain average of the batch statistics, each batch
  weighing the same;
* a float such as ``0.99`` (the default) or ``0.9``: an exponential moving
  average with a memory of about ``1 / (1 - momentum)`` batches, as a
  batch-normalization layer keeps.

This example streams scikit-learn's breast cancer data set (569 rows, 30
features on very different scales) in batches of 32 rows through each mode and
measures, after every batch, how far the learned statistics are from those of
``StandardScaler`` fitted on all of the data.
"""

# %%
# Stream the data set through each mode
# -------------------------------------
#
# ``epsilon=0`` makes the transform divide by the plain standard deviation, as
# ``StandardScaler`` does. The errors are in units the features share: the
# mean's error in standard deviations, the variance's as a relative error,
# each the largest over the 30 features.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler

X, _ = load_breast_cancer(return_X_y=True)
BATCH_SIZE = 32
batches = [X[start : start + BATCH_SIZE] for start in range(0, len(X), BATCH_SIZE)]

reference = StandardScaler().fit(X)
MODES = {
    '"pooled"': "pooled",
    "None": None,
    "0.99 (default)": 0.99,
    "0.9": 0.9,
}


def errors_per_batch(momentum):
    """Largest mean and variance error against ``StandardScaler`` after each batch."""
    scaler = BatchNormScaler(momentum=momentum, epsilon=0.0)
    mean_errors, var_errors = [], []
    for batch in batches:
        scaler.partial_fit(batch)
        mean_errors.append(
            np.max(np.abs(scaler.moving_mean_ - reference.mean_) / reference.scale_)
        )
        var_errors.append(np.max(np.abs(scaler.moving_var_ / reference.var_ - 1)))
    return scaler, np.array(mean_errors), np.array(var_errors)


results = {label: errors_per_batch(momentum) for label, momentum in MODES.items()}

# %%
# The final statistics
# --------------------
#
# After the last batch only ``"pooled"`` has the exact statistics: its
# difference from ``StandardScaler`` is rounding (about 1e-15), so its
# transform is ``StandardScaler``'s. ``None`` gets the mean nearly right
# (the batches are equal but for the last one) but misses the spread of the
# batch means in the variance; the exponential averages weigh the last
# batches most, ``0.9`` more so than ``0.99``.

print(f"{'momentum':>16}  {'max mean error':>15}  {'max var error':>15}  {'transform diff':>15}")
for label, (scaler, mean_errors, var_errors) in results.items():
    transform_diff = np.max(np.abs(scaler.transform(X) - reference.transform(X)))
    print(f"{label:>16}  {mean_errors[-1]:15.3e}  {var_errors[-1]:15.3e}  {transform_diff:15.3e}")

# %%
# The error after each batch
# --------------------------
#
# ``"pooled"`` is exact for the rows seen so far, and the rows seen so far
# become all the rows: its error falls to rounding at the last batch (the
# floor of the plot stands for "exact to rounding"). The other modes settle
# at an error set by how they weigh the batches, not by how many they saw.

FLOOR = 1e-16
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, layout="constrained")
for label, (_, mean_errors, var_errors) in results.items():
    seen = np.arange(1, len(batches) + 1)
    axes[0].semilogy(seen, np.maximum(mean_errors, FLOOR), marker="o", ms=3, label=label)
    axes[1].semilogy(seen, np.maximum(var_errors, FLOOR), marker="o", ms=3, label=label)
axes[0].set_title("moving_mean_: largest error, in standard deviations")
axes[1].set_title("moving_var_: largest relative error")
for ax in axes:
    ax.set_xlabel(f"batches of {BATCH_SIZE} rows seen")
    ax.grid(True, which="major", alpha=0.3)
axes[0].set_ylabel("error against StandardScaler on all rows")
axes[1].legend(title="momentum")
plt.show()
