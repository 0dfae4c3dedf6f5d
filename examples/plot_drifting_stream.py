"""
Following a drifting stream: momentum against ``StandardScaler.partial_fit``
============================================================================

When the data arrive as a stream whose distribution changes over time, the
statistics a scaler should use are those of the *recent* data.
:class:`~sklearn.preprocessing.StandardScaler` cannot give them: its
``partial_fit`` merges every batch exactly into the mean and variance of *all*
the data seen so far, so each new batch counts for less and less, and after a
shift its variance also counts the spread between the old and the new data.

:class:`~skbn.BatchNormScaler` averages the batch statistics exponentially: a
batch ``k`` updates old weighs ``momentum**k``, so the scaler remembers about
``1 / (1 - momentum)`` batches. This example streams batches of 64 rows whose
true mean first climbs steadily and then, together with the variance, jumps,
and plots what scalers with several momenta report after each batch, next to
``StandardScaler.partial_fit`` and the true values. A last plot measures the
tracking error against the momentum: a short memory is noisy, a long one
lags, and the best momentum lies in between.
"""

# %%
# The stream
# ----------
# 300 batches of 64 rows of one feature. For the first 150 batches the true
# mean climbs from 0 to 4 with a standard deviation of 1; then both jump: the
# mean to 1, the standard deviation to 2 (a variance of 4).

import matplotlib.pyplot as plt
import numpy as np
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler

N_BATCHES, BATCH_SIZE, SHIFT_AT = 300, 64, 150


def true_statistics(n_batches=N_BATCHES, shift_at=SHIFT_AT):
    """The true mean and variance of the distribution each batch is drawn from."""
    t = np.arange(n_batches)
    mean = np.where(t < shift_at, 4.0 * t / shift_at, 1.0)
    var = np.where(t < shift_at, 1.0, 4.0)
    return mean, var


def make_stream(n_batches=N_BATCHES, batch_size=BATCH_SIZE, seed=0):
    """One ``(batch_size, 1)`` array per batch, drawn from the drifting distribution."""
    rng = np.random.default_rng(seed)
    mean, var = true_statistics(n_batches)
    return [
        rng.normal(mu, np.sqrt(v), size=(batch_size, 1)) for mu, v in zip(mean, var, strict=True)
    ]


def track(scaler, batches):
    """The scaler's mean and variance after each ``partial_fit`` call."""
    means, variances = [], []
    for batch in batches:
        scaler.partial_fit(batch)
        means.append(scaler.mean_[0])
        variances.append(scaler.var_[0])
    return np.array(means), np.array(variances)


batches = make_stream()
true_mean, true_var = true_statistics()

# %%
# Moving statistics against the all-time average
# ----------------------------------------------
# Each ``partial_fit`` call is one batch. Both scalers expose ``mean_`` and
# ``var_`` (for ``BatchNormScaler`` aliases of ``moving_mean_`` and
# ``moving_var_``).

MOMENTA = (0.8, 0.95, 0.99)
tracks = {m: track(BatchNormScaler(momentum=m), batches) for m in MOMENTA}
standard = track(StandardScaler(), batches)

batch_index = np.arange(1, N_BATCHES + 1)
fig, (ax_mean, ax_var) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, layout="constrained")
colors = plt.cm.viridis(np.linspace(0.0, 0.7, len(MOMENTA)))
for (momentum, (mean, var)), color in zip(tracks.items(), colors, strict=True):
    label = f"BatchNormScaler(momentum={momentum})  ~{1 / (1 - momentum):.0f} batches"
    ax_mean.plot(batch_index, mean, color=color, lw=1.3, label=label)
    ax_var.plot(batch_index, var, color=color, lw=1.3, label=label)
ax_mean.plot(batch_index, standard[0], color="tab:red", lw=2, label="StandardScaler.partial_fit")
ax_var.plot(batch_index, standard[1], color="tab:red", lw=2, label="StandardScaler.partial_fit")
ax_mean.plot(batch_index, true_mean, "k--", lw=1.5, label="true value")
ax_var.plot(batch_index, true_var, "k--", lw=1.5, label="true value")
ax_mean.set_ylabel("mean")
ax_var.set_ylabel("variance")
ax_var.set_xlabel("batches seen (64 rows each)")
ax_mean.set_title("Moving statistics on a drifting stream")
ax_var.legend(loc="upper left", fontsize="small")
for ax in (ax_mean, ax_var):
    ax.axvline(SHIFT_AT + 0.5, color="0.6", lw=0.8, zorder=0)
    ax.grid(alpha=0.3)

# %%
# While the mean climbs, every moving mean lags behind it, in the long run
# by ``momentum / (1 - momentum)`` batches: 4 batches for ``momentum=0.8``,
# 19 for ``0.95``, and 99 for ``0.99``, which the 150 batches of the climb
# barely let it approach. After the jump the moving statistics
# forget the old regime at their own rate, and the short memories settle
# within a few dozen batches, at the price of noisier estimates.
#
# ``StandardScaler`` keeps the statistics of everything it has seen. During
# the climb its variance rises well above the true variance of 1, because the
# climb of the mean itself counts as spread; after the jump its mean and
# variance move toward the new regime ever more slowly, each new batch
# weighing ``1 / t``, and end at the mean and variance of all the data pooled.

all_data = np.concatenate(batches)
print(f"StandardScaler mean_ {standard[0][-1]:.3f} = mean of all data {all_data.mean():.3f}")
print(f"StandardScaler var_  {standard[1][-1]:.3f} = variance of all data {all_data.var():.3f}")
for momentum, (mean, var) in tracks.items():
    print(f"momentum={momentum}: mean_ {mean[-1]:.3f}, var_ {var[-1]:.3f} (true 1 and 4)")

# %%
# How much memory?
# ----------------
# The root-mean-square distance between each scaler's statistics and the
# truth, over the whole stream, for a range of momenta. A short memory
# (small momentum) follows the truth closely but with the noise of a few
# batches; a long one is smooth but lags. The mean and the variance need not
# share the best momentum: the variance of a batch is noisier than its mean.


def tracking_error(estimate, truth):
    """Root-mean-square distance between an estimate and the truth over the stream."""
    return np.sqrt(np.mean((estimate - truth) ** 2))


def stream_errors(momentum):
    """Tracking errors of the mean and of the variance for one momentum."""
    mean, var = track(BatchNormScaler(momentum=momentum), batches)
    return tracking_error(mean, true_mean), tracking_error(var, true_var)


MOMENTUM_GRID = np.array([0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995])
errors = np.array([stream_errors(m) for m in MOMENTUM_GRID])
standard_error = [tracking_error(standard[0], true_mean), tracking_error(standard[1], true_var)]

memory = 1 / (1 - MOMENTUM_GRID)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
for ax, column, name in zip(axes, range(2), ("mean", "variance"), strict=True):
    ax.plot(memory, errors[:, column], "o-", color="tab:blue", label="BatchNormScaler")
    ax.axhline(standard_error[column], color="tab:red", lw=2, label="StandardScaler.partial_fit")
    best = np.argmin(errors[:, column])
    ax.plot(memory[best], errors[best, column], "*", ms=14, color="gold", mec="k", zorder=3)
    ax.annotate(
        f"momentum={MOMENTUM_GRID[best]}",
        (memory[best], errors[best, column]),
        textcoords="offset points",
        xytext=(0, -14),
        ha="center",
        va="top",
    )
    ax.set_xscale("log")
    ax.set_xticks(
        [1, 2, 5, 10, 20, 50, 100, 200], labels=["1", "2", "5", "10", "20", "50", "100", "200"]
    )
    ax.minorticks_off()
    ax.set_xlabel("memory 1 / (1 - momentum), in batches")
    ax.set_ylabel(f"RMS error of the {name}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
axes[0].legend(loc="lower right", fontsize="small")
fig.suptitle("Tracking error over the stream: noise on the left, lag on the right")
plt.show()
