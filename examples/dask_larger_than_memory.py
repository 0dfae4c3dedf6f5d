"""
Scaling a dataset larger than memory with dask
==============================================

A dask array or DataFrame is a grid of blocks that are produced (read from
files, generated, computed) only when they are needed, so it can describe far
more data than fits in memory.  :class:`~skbn.BatchNormScaler` fits and
transforms such collections without ever gathering them:

* ``fit`` and ``partial_fit`` turn each block into a few numbers per feature
  (its weight, mean and variance) where the block lives, on the workers, and
  only those numbers travel back to merge them exactly, in block order;
* ``transform`` and ``inverse_transform`` return a *lazy* dask collection:
  nothing is computed until you ask for a result (a reduction, a write to
  Parquet or Zarr, ...), and then block by block.

The collection here is kept small (1,000,000 rows x 8 features, 64 MB) so the
example runs in seconds, but nothing below depends on its size: with
``n_blocks = 40_000`` it would describe 2.5 TB, the client would hold the same
few kilobytes per block, and each worker one block at a time.

The data drifts: the second half of the rows is shifted by +3 in every
feature.  That shows the difference between fitting **one batch** (the exact
mean and variance of all the data, like ``StandardScaler``) and fitting
**mini-batches** (``batch_size``: batch normalization's moving statistics,
which follow recent data).

Needs the ``dask`` extra: ``pip install "skbn[dask]"``.
"""

# The thumbnail in the gallery (this script is shown, not run, while the site
# is built): drawn by docs/thumbnails/make_thumbnails.py.
# sphinx_gallery_thumbnail_path = "thumbnails/dask_larger_than_memory.png"

import dask
import dask.array as da
import numpy as np

from skbn import BatchNormScaler

# The threaded scheduler of this process.  On a cluster, create a
# ``distributed.Client(...)`` instead: nothing else changes.
dask.config.set(scheduler="threads")

n_blocks, rows_per_block, n_features = 40, 25_000, 8


def make_block(block_id: int) -> np.ndarray:
    """One block of rows, made on demand (a stand-in for reading one file)."""
    rng = np.random.default_rng(block_id)
    drift = 3.0 if block_id >= n_blocks // 2 else 0.0
    return rng.normal(loc=10.0 + drift, scale=2.0, size=(rows_per_block, n_features))


# A lazy array: a graph of 40 "make a block" tasks; no block exists yet.
blocks = [
    da.from_delayed(
        dask.delayed(make_block)(i), shape=(rows_per_block, n_features), dtype=np.float64
    )
    for i in range(n_blocks)
]
X = da.concatenate(blocks, axis=0)
print(X)

# %%
# One batch: the exact mean and variance of all the data
# -------------------------------------------------------
# With ``batch_size=None`` (the default), ``fit`` treats the whole collection
# as one batch.  Each block's moments are computed where the block is made,
# and merged exactly, so the result is the mean and (biased) variance of all
# one million rows, as if they had been in memory, both halves counted alike.

one_batch = BatchNormScaler().fit(X)
print("one batch:   mean", one_batch.moving_mean_[:3].round(3), "var",
      one_batch.moving_var_[:3].round(3), "batches", one_batch.n_batches_seen_)  # fmt: skip

# The same figures computed directly by dask, to compare (here the data fits).
mean, var = dask.compute(X.mean(axis=0), X.var(axis=0))
print("dask check:  mean", mean[:3].round(3), "var", var[:3].round(3))

# %%
# Mini-batches: the moving statistics follow the drift
# ----------------------------------------------------
# With ``batch_size=k``, ``fit`` feeds the consecutive ``k``-row slices to the
# moving average in order, exactly as it would in memory, whatever the block
# boundaries (here a slice of 10,000 rows never lines up with the 25,000-row
# blocks: the slices that cross two blocks are merged from their pieces).
# With ``momentum=0.95`` a batch ``t`` batches old weighs ``0.95**t`` (a
# memory of about 20 batches of the 100): the moving mean ends near the
# *recent* level, about 12.8, rather than the overall average 11.5, and the
# moving variance, an average of within-batch variances, leaves out the jump
# between the halves (about 4 instead of 6.25).

mini_batch = BatchNormScaler(batch_size=10_000, momentum=0.95).fit(X)
print("mini-batch:  mean", mini_batch.moving_mean_[:3].round(3), "var",
      mini_batch.moving_var_[:3].round(3), "batches", mini_batch.n_batches_seen_)  # fmt: skip

# %%
# Streaming the blocks yourself
# -----------------------------
# ``partial_fit`` treats whatever it is given as one batch, so calling it on
# each block in turn streams the blocks as mini-batches (one per block).  It
# also accepts in-memory batches, and both kinds mix in one stream.

streamed = BatchNormScaler(momentum=0.9)
for block in X.blocks:
    streamed.partial_fit(block)
print("per block:   mean", streamed.moving_mean_[:3].round(3), "batches",
      streamed.n_batches_seen_)  # fmt: skip

# %%
# A lazy transform
# ----------------
# ``transform`` returns a dask array with the same chunks (and dtype: float32
# stays float32), built from the statistics as they are now.  Nothing has been
# computed yet; each block is scaled when, and where, it is needed, so the
# scaled data can be larger than memory too.  Write it out with
# ``Z.to_zarr(...)`` or reduce it, as here.

Z = one_batch.transform(X)
print(type(Z).__name__, Z.chunks == X.chunks, Z.dtype)
print("scaled mean", Z.mean(axis=0).compute()[:3].round(6) + 0.0)
print("scaled var ", Z.var(axis=0).compute()[:3].round(4), "(var / (var + epsilon))")

# %%
# DataFrames
# ----------
# A dask DataFrame works the same way: the column names are checked as in
# memory (``feature_names_in_``), and ``transform`` returns a lazy dask
# DataFrame with the same columns and index.

import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402

frame = dd.from_dask_array(X[:, :3], columns=["a", "b", "c"])
scaler = BatchNormScaler().fit(frame)
print(scaler.feature_names_in_, type(scaler.transform(frame)).__name__)
print(scaler.transform(frame).head(3))
assert isinstance(scaler.transform(frame).head(3), pd.DataFrame)
