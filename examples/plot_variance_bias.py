"""
The bias of the moving variance against batch size, and ``unbiased=True``
=========================================================================

The variance of a batch of ``m`` rows, measured around the batch's own mean,
is on average ``(m - 1) / m`` times the true variance: the batch mean sits
closer to its own rows than the true mean does. A moving variance averages
such batch variances, so it inherits the bias, whatever the number of
batches: it converges, but to the wrong value. Keras's ``moving_variance``
(``unbiased=False``, the default) keeps it; PyTorch's ``running_var``
(``unbiased=True``) multiplies each batch variance by ``m / (m - 1)``,
Bessel's correction, and removes it.

This example measures the bias: for batch sizes from 2 to 64 it streams 400
batches of 50 independent standard-normal features, scaled to a variance of
4, through :class:`~skbn.BatchNormScaler` (``fit`` with ``batch_size=m`` is a
stream of ``partial_fit`` calls of ``m`` rows each) and compares the moving
variance with the truth. ``momentum=None`` makes the moving variance the
plain average of the batch variances; an exponential average
(``momentum=0.99``) has the same expectation, with more noise.
"""

# %%
# Moving variance over true variance
# ----------------------------------

import matplotlib.pyplot as plt
import numpy as np

from skbn import BatchNormScaler

TRUE_VAR = 4.0
BATCH_SIZES = np.array([2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64])


def variance_ratio(batch_size, unbiased, n_batches=400, n_features=50, seed=0):
    """Moving variance over the true variance, one value per feature.

    Also returns the standard deviation, per feature, of the scaler's output on
    fresh data from the same distribution (``epsilon=0``): 1 for an exact
    variance.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, np.sqrt(TRUE_VAR), size=(batch_size * n_batches, n_features))
    scaler = BatchNormScaler(momentum=None, unbiased=unbiased, epsilon=0.0, batch_size=batch_size)
    scaler.fit(X)
    X_new = rng.normal(0.0, np.sqrt(TRUE_VAR), size=(10_000, n_features))
    return scaler.moving_var_ / TRUE_VAR, scaler.transform(X_new).std(axis=0)


ratios, output_std = {}, {}
for unbiased in (False, True):
    per_size = [variance_ratio(m, unbiased) for m in BATCH_SIZES]
    ratios[unbiased] = np.array([ratio for ratio, _ in per_size])  # (n_sizes, n_features)
    output_std[unbiased] = np.array([std for _, std in per_size])

# %%
# Each point is the average over the 50 features, with its standard error.
# Without the correction the measured ratio follows ``(m - 1) / m``: half the
# variance is missing with batches of 2, 3% with batches of 32. With
# ``unbiased=True`` it is 1 at every batch size. On the right, what the bias
# does to the data: the scaler divides by too small a standard deviation, so
# its output has a standard deviation of ``sqrt(m / (m - 1))`` instead of 1.

sizes = np.linspace(2, 64, 500)
styles = {
    False: ("tab:orange", "unbiased=False (Keras)"),
    True: ("tab:blue", "unbiased=True (PyTorch)"),
}
fig, (ax_var, ax_std) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for unbiased, (color, label) in styles.items():
    for ax, values in ((ax_var, ratios[unbiased]), (ax_std, output_std[unbiased])):
        stderr = values.std(axis=1, ddof=1) / np.sqrt(values.shape[1])
        ax.errorbar(
            BATCH_SIZES, values.mean(axis=1), yerr=2 * stderr, fmt="o", color=color, label=label
        )
ax_var.plot(sizes, (sizes - 1) / sizes, "k--", lw=1, label="(m - 1) / m")
ax_var.axhline(1.0, color="k", lw=0.8)
ax_var.set_ylabel("moving variance / true variance")
ax_std.plot(sizes, np.sqrt(sizes / (sizes - 1)), "k--", lw=1, label="sqrt(m / (m - 1))")
ax_std.axhline(1.0, color="k", lw=0.8)
ax_std.set_ylabel("standard deviation of transform(new data)")
for ax in (ax_var, ax_std):
    ax.set_xscale("log", base=2)
    ax.set_xticks(BATCH_SIZES, labels=[str(m) for m in BATCH_SIZES])
    ax.minorticks_off()
    ax.set_xlabel("batch size m (rows per partial_fit call)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
fig.suptitle("Bias of the moving variance: 400 batches, mean of 50 features, 2 standard errors")
plt.show()

# %%
# The numbers behind the left panel:

print(" m   (m-1)/m   unbiased=False   unbiased=True")
for m, biased, corrected in zip(
    BATCH_SIZES, ratios[False].mean(axis=1), ratios[True].mean(axis=1), strict=True
):
    print(f"{m:2d}   {(m - 1) / m:.4f}    {biased:.4f}           {corrected:.4f}")

# %%
# More batches do not help: the average of the batch variances converges to
# ``(m - 1) / m`` times the true variance, not to the true variance. So with
# small batches pick ``unbiased=True``, unless the goal is to reproduce a
# Keras layer's ``moving_variance``. (Even corrected, a moving variance is
# the average of *within-batch* variances: when the batch means differ
# systematically, as in a drifting or sorted stream, it leaves out their
# spread. The user guide's section on the averaging modes says more.)
