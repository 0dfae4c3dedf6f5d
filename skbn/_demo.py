"""``skbn demo``: a data set shipped with scikit-learn streamed through the scaler."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import BatchNormScaler
from ._table import table
from .io import FileError as CLIError

__all__ = ["run_demo"]


def _table(header, rows) -> list:

    return table(header, rows)


def _max_rel_diff(estimate: np.ndarray, exact: np.ndarray) -> float:
    nonzero = exact != 0
    if not nonzero.any():
        return float(np.max(np.abs(estimate)))
    return float(np.max(np.abs(estimate[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))


_HEADER = [
    "feature",
    "mean (exact)",
    "momentum=None",
    "momentum=0.99",
    "var ddof=1 (exact)",
    "momentum=None",
    "momentum=0.99",
]


def _rows(exact, exact_var1, average, moving) -> list:
    """The table of the 5 features with the largest variance."""
    shown = np.sort(np.argsort(exact.var_, kind="stable")[-5:])
    rows = [
        [
            f"x{j}",
            f"{exact.mean_[j]:.5f}",
            f"{average.moving_mean_[j]:.5f}",
            f"{moving.moving_mean_[j]:.5f}",
            f"{exact_var1[j]:.4f}",
            f"{average.moving_var_[j]:.4f}",
            f"{moving.moving_var_[j]:.4f}",
        ]
        for j in shown
    ]
    return rows


def run_demo(dataset: str, chunk: int) -> int:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    loader: Callable = getattr(datasets, f"load_{dataset}")
    X, y = loader(return_X_y=True)
    n_train = (int(0.75 * len(X)) // chunk) * chunk
    if n_train == 0:
        raise CLIError(
            f"--chunksize {chunk} is larger than the {dataset} training set "
            f"({int(0.75 * len(X))} rows)",
            status=2,
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=n_train, random_state=0, stratify=y
    )
    n_chunks = n_train // chunk
    print(
        f"skbn demo: scikit-learn's {dataset} data set, {X.shape[1]} features.\n"
        f"{n_train} training rows are streamed through BatchNormScaler.partial_fit "
        f"as {n_chunks} mini-batches of {chunk} rows\n(as chunks of a CSV file or "
        f"blocks of a database cursor would be); {len(X_test)} rows are kept for testing.\n"
    )

    def stream(scaler: BatchNormScaler) -> BatchNormScaler:
        for start in range(0, n_train, chunk):
            scaler.partial_fit(X_train[start : start + chunk])
        return scaler

    exact = StandardScaler().fit(X_train)
    exact_var1 = X_train.var(axis=0, ddof=1)
    average = stream(BatchNormScaler(momentum=None, unbiased=True))
    moving = stream(BatchNormScaler())
    print(
        "Learned: BatchNormScaler(momentum=None, unbiased=True) saw "
        f"{average.n_batches_seen_} batches and {average.n_samples_seen_} samples;\n"
        "its moving mean is the average of the batch means and its moving variance the\n"
        "average of the (Bessel-corrected) batch variances.  BatchNormScaler() (momentum=0.99)\n"
        "is an exponential moving average that favours recent batches.\n"
    )
    rows = _rows(exact, exact_var1, average, moving)
    print("The 5 features with the largest variance, next to StandardScaler's exact statistics:")
    print("\n".join("  " + line for line in _table(_HEADER, rows)))
    print(
        f"\nLargest relative difference over all {X.shape[1]} features, momentum=None:\n"
        f"  mean      {_max_rel_diff(average.moving_mean_, exact.mean_):.1e}"
        "   (equal batches: the exact mean, to rounding)\n"
        f"  variance  {_max_rel_diff(average.moving_var_, exact_var1):.1e}"
        "   (an estimate: the spread between batch means is left out)\n"
    )

    return _accuracies(X_train, X_test, y_train, y_test, chunk)


def _accuracies(X_train, X_test, y_train, y_test, chunk: int) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    candidates = {
        "StandardScaler()": StandardScaler(),
        f"BatchNormScaler(momentum=None, unbiased=True, batch_size={chunk})": BatchNormScaler(
            momentum=None, unbiased=True, batch_size=chunk
        ),
        f"BatchNormScaler(batch_size={chunk})": BatchNormScaler(batch_size=chunk),
    }
    print("Pipeline([scaler, LogisticRegression]) accuracy on the test rows:")
    width = max(map(len, candidates))
    for label, scaler in candidates.items():
        model = Pipeline([("scale", scaler), ("clf", LogisticRegression(max_iter=5000))])
        model.fit(X_train, y_train)
        print(f"  {label:<{width}}  {model.score(X_test, y_test):.4f}")
    return 0
