"""skbn: batch normalization's moving statistics as a scikit-learn transformer."""

from ._version import __version__

__all__ = ["BatchNormScaler", "__version__"]


def __getattr__(name: str):
    # BatchNormScaler is imported on first use, so that `python -m skbn scale`
    # and `skbn.io` start without importing scikit-learn (about 2 s).
    if name == "BatchNormScaler":
        from ._scaler import BatchNormScaler

        return BatchNormScaler
    raise AttributeError(f"module 'skbn' has no attribute {name!r}")


def __dir__() -> list:
    return sorted([*globals(), "BatchNormScaler"])
