"""Draw the gallery thumbnails of the examples that do not run during the build.

``stream_digits.py``, ``torch_finetune.py`` and ``dask_larger_than_memory.py``
need PyTorch, dask or more time than a docs build should take, so
sphinx-gallery shows them as code; each names one of these images in its
``sphinx_gallery_thumbnail_path`` line. Run this script to redraw them::

    python docs/thumbnails/make_thumbnails.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from skbn import BatchNormScaler  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZE = (4, 3)


def stream_digits():
    """Moving mean and variance of the digits' pixels, learned from chunks of 64."""
    X, _ = load_digits(return_X_y=True)
    scaler = BatchNormScaler(momentum=None, unbiased=True)
    for start in range(0, len(X), 64):
        scaler.partial_fit(X[start : start + 64])
    fig, axes = plt.subplots(1, 2, figsize=SIZE, layout="constrained")
    for ax, values, title in zip(
        axes,
        (scaler.moving_mean_, scaler.moving_var_),
        ("moving_mean_", "moving_var_"),
        strict=True,
    ):
        ax.imshow(values.reshape(8, 8), cmap="viridis")
        ax.set_title(title)
        ax.set_axis_off()
    return fig


def box(ax, xy, text, color):
    ax.add_patch(
        FancyBboxPatch(xy, 0.36, 0.3, boxstyle="round,pad=0.03", fc=color, ec="0.2", lw=1.5)
    )
    ax.text(xy[0] + 0.18, xy[1] + 0.15, text, ha="center", va="center", fontsize=11)


def torch_finetune():
    """A fitted scaler becomes a network's first BatchNorm1d, then trains on."""
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    box(ax, (0.04, 0.6), "BatchNorm\nScaler", "#9ecae1")
    box(ax, (0.6, 0.6), "torch\nBatchNorm1d", "#fdae6b")
    box(ax, (0.6, 0.08), "Linear, ReLU,\n...", "#c7e9c0")
    ax.add_patch(FancyArrowPatch((0.43, 0.75), (0.6, 0.75), arrowstyle="-|>", mutation_scale=20))
    ax.add_patch(FancyArrowPatch((0.78, 0.6), (0.78, 0.41), arrowstyle="-|>", mutation_scale=20))
    ax.text(0.515, 0.82, "to_torch()", ha="center", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    return fig


def dask_larger_than_memory():
    """A dask array's blocks, each one mini-batch of partial_fit."""
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    colors = plt.cm.Blues(np.linspace(0.3, 0.9, 8))
    for i, color in enumerate(colors):
        ax.add_patch(plt.Rectangle((0.1, 0.9 - (i + 1) * 0.1), 0.35, 0.09, fc=color, ec="0.2"))
        ax.add_patch(
            FancyArrowPatch(
                (0.47, 0.855 - i * 0.1), (0.62, 0.5), arrowstyle="-", lw=0.8, color="0.5"
            )
        )
    ax.add_patch(FancyBboxPatch((0.62, 0.38), 0.3, 0.24, boxstyle="round,pad=0.02", fc="#fdae6b"))
    ax.text(0.77, 0.5, "moving\nmean, var", ha="center", va="center", fontsize=10)
    ax.text(0.275, 0.02, "dask blocks", ha="center", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    return fig


if __name__ == "__main__":
    for draw in (stream_digits, torch_finetune, dask_larger_than_memory):
        figure = draw()
        figure.savefig(HERE / f"{draw.__name__}.png", dpi=100)
        plt.close(figure)
