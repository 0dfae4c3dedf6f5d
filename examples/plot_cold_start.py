"""
Cold start: ``init="debiased"`` against ``init="keras"``
========================================================

A batch-normalization layer starts its moving mean at 0 and its moving
variance at 1, and moves them toward each batch's statistics by a step of
``1 - momentum``. With Keras's default ``momentum=0.99`` that start fades
slowly: after ``t`` batches it still holds a share ``0.99**t`` of the
estimate, 90% after 10 batches and 37% after 100. Inside a network trained
for thousands of steps that does no harm, but a scaler fitted on a few chunks
would report a mean near 0 and a variance near 1 whatever the data.

:class:`~skbn.BatchNormScaler` reproduces that update with ``init="keras"``.
Its default, ``init="debiased"``, computes the same exponential average
without the start, dividing it by the weight the batches have accumulated (as
Adam corrects its moments): the first batch is taken exactly, and later
batches are averaged with the same memory of about ``1 / (1 - momentum)``
batches. This example plots both over the first 300 batches of a stream
whose mean (5) and variance (4) are far from the starting 0 and 1.
"""

# %%
# Both scalers see the same batches
# ---------------------------------

import matplotlib.pyplot as plt
import numpy as np

from skbn import BatchNormScaler

TRUE_MEAN, TRUE_VAR = 5.0, 4.0


def cold_start(n_batches=300, batch_size=32, momentum=0.99, seed=0):
    """Moving mean and variance after each batch, for both ``init`` values.

    Returns a dict of arrays of shape ``(n_batches,)``: ``"debiased_mean"``,
    ``"debiased_var"``, ``"keras_mean"``, ``"keras_var"``, and the statistics
    of each batch, ``"batch_mean"`` and ``"batch_var"`` (biased).
    """
    rng = np.random.default_rng(seed)
    scalers = {
        "debiased": BatchNormScaler(momentum=momentum, init="debiased"),
        "keras": BatchNormScaler(momentum=momentum, init="keras"),
    }
    out = {f"{name}_{stat}": [] for name in (*scalers, "batch") for stat in ("mean", "var")}
    for _ in range(n_batches):
        batch = rng.normal(TRUE_MEAN, np.sqrt(TRUE_VAR), size=(batch_size, 1))
        out["batch_mean"].append(batch.mean())
        out["batch_var"].append(batch.var())
        for name, scaler in scalers.items():
            scaler.partial_fit(batch)
            out[f"{name}_mean"].append(scaler.moving_mean_[0])
            out[f"{name}_var"].append(scaler.moving_var_[0])
    return {key: np.array(values) for key, values in out.items()}


MOMENTUM = 0.99
result = cold_start(momentum=MOMENTUM)
t = np.arange(1, len(result["keras_mean"]) + 1)

# %%
# The first batches
# -----------------
# The debiased estimate is right from the first batch (it *is* the first
# batch's statistics) and then averages the batches seen. The Keras estimate
# starts at ``(1 - momentum)`` times the first batch's statistics plus
# ``momentum`` times the start, and crawls toward the truth as
# ``1 - momentum**t``: the dotted line is that curve for the true values.

fig, (ax_mean, ax_var) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for ax, stat, truth, start in ((ax_mean, "mean", TRUE_MEAN, 0.0), (ax_var, "var", TRUE_VAR, 1.0)):
    ax.plot(t, result[f"batch_{stat}"], ".", ms=3, color="0.7", label="each batch")
    ax.plot(t, result[f"debiased_{stat}"], lw=2, color="tab:blue", label='init="debiased"')
    ax.plot(t, result[f"keras_{stat}"], lw=2, color="tab:orange", label='init="keras"')
    crawl = (1 - MOMENTUM**t) * truth + MOMENTUM**t * start
    ax.plot(
        t,
        crawl,
        ":",
        color="tab:orange",
        lw=1.5,
        label="(1 - momentum**t) truth + momentum**t start",
    )
    ax.axhline(truth, color="k", ls="--", lw=1.2, label="true value")
    ax.set_xscale("log")
    ax.set_xticks([1, 3, 10, 30, 100, 300], labels=["1", "3", "10", "30", "100", "300"])
    ax.set_xlabel("batches seen (32 rows each, log scale)")
    ax.grid(alpha=0.3)
ax_mean.set_ylabel("moving mean")
ax_var.set_ylabel("moving variance")
ax_mean.legend(loc="center left", fontsize="small")
fig.suptitle(f"Cold start with momentum={MOMENTUM}: true mean 5, true variance 4")
plt.show()

# %%
# After the first batch the debiased scaler holds that batch's mean and
# (biased) variance exactly; the Keras-initialized one holds 1% of them plus
# 99% of the start:

print(f"first batch:      mean {result['batch_mean'][0]:.3f}, var {result['batch_var'][0]:.3f}")
for name in ("debiased", "keras"):
    mean, var = result[f"{name}_mean"][0], result[f"{name}_var"][0]
    print(f"{name:>8} after 1: mean {mean:.3f}, var {var:.3f}")
for n in (10, 100, 300):
    print(
        f"after {n:3d} batches the keras estimate still owes {MOMENTUM**n:.0%} to the start: "
        f"mean {result['keras_mean'][n - 1]:.2f}, var {result['keras_var'][n - 1]:.2f}"
    )

# %%
# The two are the same average with a different start: at every batch ``t``::
#
#     keras = (1 - momentum**t) * debiased + momentum**t * start
#
# so once ``momentum**t`` is negligible they agree. Use ``init="keras"`` to
# reproduce a Keras or PyTorch layer exactly; keep the default when the
# scaler is the model, so that few batches, or a single ``fit``, already give
# the statistics of the data.

weight = 1 - MOMENTUM**t
assert np.allclose(result["keras_mean"], weight * result["debiased_mean"] + (1 - weight) * 0.0)
assert np.allclose(result["keras_var"], weight * result["debiased_var"] + (1 - weight) * 1.0)
