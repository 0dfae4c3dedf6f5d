"""
Streaming the digits data set through ``BatchNormScaler``
=========================================================

This example learns feature scaling from a stream of mini-batches, the way a
batch-normalization layer learns its moving statistics, and compares the result
with the exact statistics that :class:`~sklearn.preprocessing.StandardScaler`
computes from the whole training set at once.

The training part of scikit-learn's 8x8 handwritten digits (64 pixel features)
is cut into chunks of 64 rows, and each chunk is one call to
:meth:`~skbn.BatchNormScaler.partial_fit`, as it would be when the data arrives
from a CSV reader, a database cursor or a dask array block by block.

* ``momentum=None`` takes the plain average of the per-chunk statistics
  (PyTorch's ``BatchNorm1d(momentum=None)``).  With chunks of equal size the
  average of the chunk means *is* the mean of the data, to rounding.
* The average of the per-chunk variances is *not* the variance of the data:
  each chunk variance is measured around that chunk's own mean, so the spread
  of the chunk means around the overall mean (the between-chunk part of the
  law of total variance) is left out, and each biased chunk variance is on
  average ``(m - 1) / m`` of the true variance for chunks of ``m`` rows.
  ``unbiased=True`` multiplies each chunk variance by ``m / (m - 1)``
  (Bessel's correction, as PyTorch's ``running_var`` does); for shuffled rows
  the average is then an unbiased estimate of the variance, so it is compared
  with ``np.var(..., ddof=1)``.  It still differs from it by sampling noise.
* The default ``momentum=0.99`` is an exponential moving average: a chunk
  ``k`` batches old weighs ``0.99**k``, so recent chunks count more.  That
  tracks a drifting stream, but on a stationary one even the mean is then a
  weighted average of the chunk means rather than the exact mean.

Finally the scaler is used as the first step of a
:class:`~sklearn.pipeline.Pipeline`, where ``batch_size=64`` makes ``fit``
stream the training set through ``partial_fit`` itself, and its test accuracy
is compared with the same pipeline built on ``StandardScaler``.
"""

# The thumbnail in the gallery (this script is shown, not run, while the site
# is built): drawn by docs/thumbnails/make_thumbnails.py.
# sphinx_gallery_thumbnail_path = "thumbnails/stream_digits.png"

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler

CHUNK = 64  # rows per mini-batch
N_TRAIN = 20 * CHUNK  # 1280 training rows: every chunk has the same size


def stream(scaler, X, chunk=CHUNK):
    """Feed ``X`` to ``scaler.partial_fit`` one chunk of rows at a time."""
    for start in range(0, X.shape[0], chunk):
        scaler.partial_fit(X[start : start + chunk])
    return scaler


def max_rel_diff(estimate, exact):
    """Largest ``|estimate - exact| / |exact|`` over the features where exact != 0.

    Features where ``exact`` is 0 (pixels that are always blank) must have an
    estimate of exactly 0 too; this is checked instead of divided by.
    """
    nonzero = exact != 0
    assert np.all(estimate[~nonzero] == 0), "a constant feature got a nonzero statistic"
    return float(np.max(np.abs(estimate[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=N_TRAIN, random_state=0, stratify=y
    )
    n_chunks = N_TRAIN // CHUNK
    print(
        f"digits: {X_train.shape[0]} training rows streamed as {n_chunks} chunks "
        f"of {CHUNK} rows, {X.shape[1]} features; {X_test.shape[0]} test rows.\n"
    )

    exact = StandardScaler().fit(X_train)
    exact_var1 = X_train.var(axis=0, ddof=1)
    cumulative = stream(BatchNormScaler(momentum=None), X_train)
    cumulative_unbiased = stream(BatchNormScaler(momentum=None, unbiased=True), X_train)
    moving = stream(BatchNormScaler(), X_train)  # default momentum=0.99

    # A few features with the largest variance, to show the numbers.
    shown = np.sort(np.argsort(exact.var_)[-5:])

    # The differences are printed, not the rounded values: at 5 decimals a
    # difference of 1e-15 can show as 6.95312 beside 6.95313.
    print("Moving mean after the stream (a few features): difference from the exact mean")
    print(f"{'feature':>8} {'exact':>10} {'mom=None':>12} {'mom=0.99':>12}")
    for j in shown:
        print(
            f"{j:>8d} {exact.mean_[j]:>10.5f} "
            f"{cumulative.moving_mean_[j] - exact.mean_[j]:>+12.2e} "
            f"{moving.moving_mean_[j] - exact.mean_[j]:>+12.2e}"
        )

    print("\nMoving variance after the stream (a few features)")
    print(
        f"{'feature':>8} {'var ddof=0':>11} {'mom=None':>10} "
        f"{'var ddof=1':>11} {'mom=None':>10} {'mom=0.99':>10}"
    )
    print(
        f"{'':>8} {'(exact)':>11} {'biased':>10} {'(exact)':>11} {'unbiased':>10} {'biased':>10}"
    )
    for j in shown:
        print(
            f"{j:>8d} {exact.var_[j]:>11.4f} {cumulative.moving_var_[j]:>10.4f} "
            f"{exact_var1[j]:>11.4f} {cumulative_unbiased.moving_var_[j]:>10.4f} "
            f"{moving.moving_var_[j]:>10.4f}"
        )

    rows = [
        ("mean, momentum=None", cumulative.moving_mean_, exact.mean_),
        ("mean, momentum=0.99", moving.moving_mean_, exact.mean_),
        ("var, momentum=None (vs ddof=0)", cumulative.moving_var_, exact.var_),
        ("var, momentum=None, unbiased (vs ddof=1)", cumulative_unbiased.moving_var_, exact_var1),
        ("var, momentum=0.99 (vs ddof=0)", moving.moving_var_, exact.var_),
    ]
    print(f"\nMax relative difference from the exact statistic over all {X.shape[1]} features")
    for label, estimate, reference in rows:
        print(f"  {label:<42} {max_rel_diff(estimate, reference):.2e}")
    # Law of total variance, exact for chunks of equal size: the full-data
    # (biased) variance is the average within-chunk variance plus the variance
    # of the chunk means.  The second term is what the moving variance leaves out.
    chunk_means = X_train.reshape(n_chunks, CHUNK, -1).mean(axis=1)
    between = chunk_means.var(axis=0)
    total = cumulative.moving_var_ + between
    label = "var, None + var(chunk means) (vs ddof=0)"
    print(f"  {label:<42} {max_rel_diff(total, exact.var_):.2e}")
    print(
        "\nThe momentum=None mean equals the exact mean (equal chunks), to rounding.\n"
        "The momentum=None variance is the average of the per-chunk variances: it\n"
        "misses the spread between chunk means (adding it back, last line above,\n"
        "gives the full-data variance to rounding), and biased chunk variances run\n"
        "low by about 1/64: it is an estimate, not the full-data variance.\n"
        "unbiased=True removes the systematic part; sampling noise remains.\n"
        "momentum=0.99 weighs a chunk k batches old by 0.99**k, so even its mean\n"
        "is a weighted average of the chunk means, not the exact mean."
    )

    pipelines = {
        "StandardScaler": StandardScaler(),
        "BatchNormScaler(momentum=None, unbiased=True, batch_size=64)": BatchNormScaler(
            momentum=None, unbiased=True, batch_size=CHUNK
        ),
        "BatchNormScaler(batch_size=64)  [momentum=0.99]": BatchNormScaler(batch_size=CHUNK),
    }
    print("\nPipeline([scale, LogisticRegression]) test accuracy")
    for label, scaler in pipelines.items():
        model = Pipeline([("scale", scaler), ("clf", LogisticRegression(max_iter=2000))])
        model.fit(X_train, y_train)
        print(f"  {label:<62} {model.score(X_test, y_test):.4f}")


if __name__ == "__main__":
    main()
